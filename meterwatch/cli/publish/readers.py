"""Rows of an input file -> validated contract values (``HistoryRow``, ``MeterReading``).

The file itself is read by :mod:`meterwatch.cli.feed` (the one reader of CSV/Parquet);
here each row is turned into a contract model, or a :class:`Rejected` (row number, reason,
the raw row): callers report every one of them; nothing is dropped silently.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "h.csv"
>>> _ = p.write_text("LCLid,day,energy_sum\\nA,2024-01-01,7.5\\nA,2024-01-02,-1\\n")
>>> rows = list(read_history(p))
>>> rows[0].customer_id, rows[0].day, rows[0].kwh
('A', datetime.date(2024, 1, 1), 7.5)
>>> rows[1].row, rows[1].reason
(2, 'kwh: Input should be greater than or equal to 0')
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from meterwatch.cli.feed import InputError, Malformed, iter_rows
from meterwatch.contracts import HistoryRow, MeterReading

ID_COLUMNS = ("customer_id", "meter_id", "LCLid")
KWH_COLUMNS = ("kwh", "energy_sum")
TS_COLUMNS = ("ts", "tstp", "timestamp")


@dataclass(frozen=True)
class Rejected:
    """A row that could not be published, and why (1-based row number, header excluded)."""

    row: int
    reason: str
    raw: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps({"row": self.row, "reason": self.reason, "raw": self.raw}, default=str)


def _pick(columns: Iterable[str], wanted: Iterable[str], explicit: str | None = None) -> str | None:
    cols = list(columns)
    if explicit:
        if explicit not in cols:
            raise InputError(f"column {explicit!r} not in the file (columns: {', '.join(cols)})")
        return explicit
    for w in wanted:
        if w in cols:
            return w
    return None


def _reason(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
    return "; ".join(parts)


def _num(v: Any) -> Any:
    """CSV text -> number where it is one (so that '7.5' and 7.5 validate alike)."""
    if isinstance(v, str):
        s = v.strip()
        if s == "":
            return None
        try:
            return float(s)
        except ValueError:
            return v
    return v


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | Rejected]]:
    """The feed's rows; a malformed CSV line is already a ``Rejected``."""
    for n, row in iter_rows(path):
        if isinstance(row, Malformed):
            yield n, Rejected(n, row.reason(), {"line": row.text})
        else:
            yield n, row


def _missing(path: Path, cols: list[str], missing: list[str]) -> InputError:
    return InputError(f"{path}: missing column(s): {', '.join(missing)} (columns: {', '.join(cols)})")


def _history_row(raw: dict[str, Any], idc: str, kwhc: str) -> dict[str, Any] | str:
    """The HistoryRow fields of a raw row, or the reason it has none."""
    d: dict[str, Any] = {"customer_id": raw.get(idc), "kwh": _num(raw.get(kwhc))}
    if raw.get("day") is not None:
        d["day"] = raw["day"]
    else:
        d["start"], d["end"] = raw.get("start"), raw.get("end")
    cov = _num(raw.get("coverage"))
    if cov is None and raw.get("energy_count") is not None:
        cnt = _num(raw["energy_count"])
        if isinstance(cnt, float | int):
            cov = min(1.0, float(cnt) / 48.0)
    if cov is not None:
        d["coverage"] = cov
    if d["kwh"] is None:
        return "kwh: missing value"
    return d


def read_history(path: Path, id_column: str | None = None) -> Iterator[HistoryRow | Rejected]:
    """``HistoryRow`` (or ``Rejected``) for every row of a daily or per-cycle history file.

    Daily: an id column (``customer_id`` | ``meter_id`` | ``LCLid``), ``day`` and
    ``kwh`` | ``energy_sum`` (``energy_count`` -> coverage = count / 48 if present).
    Per-cycle: ``customer_id``, ``start``, ``end``, ``kwh`` [, ``coverage``].
    """
    idc = kwhc = None
    for n, raw in _rows(path):
        if isinstance(raw, Rejected):
            yield raw
            continue
        if idc is None or kwhc is None:
            cols = list(raw)
            idc, kwhc = _pick(cols, ID_COLUMNS, id_column), _pick(cols, KWH_COLUMNS)
            missing = [name for name, c in (("id", idc), ("kwh", kwhc)) if c is None]
            if "day" not in cols and not ("start" in cols and "end" in cols):
                missing.append("day (or start and end)")
            if missing:
                raise _missing(path, cols, missing)
        assert idc is not None and kwhc is not None
        d = _history_row(raw, idc, kwhc)
        if isinstance(d, str):
            yield Rejected(n, d, raw)
            continue
        try:
            yield HistoryRow.model_validate(d)
        except ValidationError as e:
            yield Rejected(n, _reason(e), raw)


def _aware(v: Any, tz: ZoneInfo) -> dt.datetime | None:
    if isinstance(v, dt.datetime):
        t = v
    elif isinstance(v, str) and v.strip():
        try:
            t = dt.datetime.fromisoformat(v.strip())
        except ValueError:
            return None
    else:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)


@dataclass(frozen=True)
class ReadingColumns:
    """Which columns of a readings file mean what, and how to read its times."""

    idc: str
    tsc: str | None
    kwhc: str
    daily: bool
    tz: ZoneInfo
    ts_marks: str
    interval_s: int
    customer_from_meter: bool

    @classmethod
    def of(cls, path: Path, cols: list[str], id_column: str | None, **how: Any) -> ReadingColumns:
        idc = _pick(cols, ("meter_id", "LCLid", "customer_id"), id_column)
        tsc = _pick(cols, TS_COLUMNS)
        kwhc = _pick(cols, (*KWH_COLUMNS, "register_kwh"))
        daily = tsc is None and "day" in cols
        missing = [name for name, c in (("meter id", idc), ("kwh", kwhc)) if c is None]
        if tsc is None and not daily:
            missing.append("ts (or day)")
        if missing or idc is None or kwhc is None:
            raise _missing(path, cols, missing)
        return cls(idc=idc, tsc=tsc, kwhc=kwhc, daily=daily, **how)

    def fields(self, raw: dict[str, Any]) -> dict[str, Any] | str:
        """The MeterReading fields of a raw row, or the reason it has none."""
        mid = raw.get(self.idc)
        d: dict[str, Any] = {"meter_id": mid}
        if "customer_id" in raw and self.idc != "customer_id" and raw["customer_id"] is not None:
            d["customer_id"] = raw["customer_id"]
        elif self.customer_from_meter:
            d["customer_id"] = mid
        when = self._daily_time(raw) if self.daily else self._interval_time(raw)
        if isinstance(when, str):
            return when
        d.update(when)
        value = _num(raw.get(self.kwhc))
        if value is None:
            return f"{self.kwhc}: missing value"
        d["register_kwh" if self.kwhc == "register_kwh" else "kwh"] = value
        if raw.get("quality") is not None:
            d["quality"] = raw["quality"]
        return d

    def _daily_time(self, raw: dict[str, Any]) -> dict[str, Any] | str:
        day = raw.get("day")
        if isinstance(day, str):
            try:
                day = dt.date.fromisoformat(day.strip())
            except ValueError:
                return f"day: not a date: {day!r}"
        if not isinstance(day, dt.date):
            return "day: missing value"
        ts = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=self.tz)
        return {"ts": ts, "interval_s": 86400}

    def _interval_time(self, raw: dict[str, Any]) -> dict[str, Any] | str:
        assert self.tsc is not None
        ts = _aware(raw.get(self.tsc), self.tz)
        if ts is None:
            return f"ts: not a timestamp: {raw.get(self.tsc)!r}"
        step = int(_num(raw.get("interval_s")) or self.interval_s)
        return {"interval_s": step, "ts": ts + dt.timedelta(seconds=step) if self.ts_marks == "start" else ts}


def read_readings(
    path: Path,
    id_column: str | None = None,
    timezone: str = "UTC",
    ts_marks: str = "end",
    interval_s: int = 1800,
    customer_from_meter: bool = False,
    limit: int | None = None,
) -> Iterator[MeterReading | Rejected]:
    """``MeterReading`` (or ``Rejected``) for every row of a readings file, in file order.

    Interval files: an id column (``meter_id`` | ``customer_id`` | ``LCLid`` or ``id_column``),
    a time column (``ts`` | ``tstp`` | ``timestamp``; naive times are in ``timezone``;
    ``ts_marks="start"`` when they mark the start of the interval) and ``kwh`` or
    ``register_kwh``.  Daily files: ``day`` and ``kwh`` | ``energy_sum`` -> one reading
    per day at the next local midnight with ``interval_s = 86400``.
    """
    how = {
        "tz": ZoneInfo(timezone),
        "ts_marks": ts_marks,
        "interval_s": interval_s,
        "customer_from_meter": customer_from_meter,
    }
    cols: ReadingColumns | None = None
    for n, raw in _rows(path):
        if limit is not None and n > limit:
            return
        if isinstance(raw, Rejected):
            yield raw
            continue
        if cols is None:
            cols = ReadingColumns.of(path, list(raw), id_column, **how)
        d = cols.fields(raw)
        if isinstance(d, str):
            yield Rejected(n, d, raw)
            continue
        try:
            yield MeterReading.model_validate(d)
        except ValidationError as e:
            yield Rejected(n, _reason(e), raw)


def reading_json(r: MeterReading) -> bytes:
    """Compact JSON of a reading, ``ts`` as ISO-8601 with offset, no nulls."""
    return r.model_dump_json(exclude_none=True).encode()
