"""Offline backtest: the stream's rule engine over a CSV or Parquet file.

Input columns (case-sensitive):

* the customer: ``customer_id``, else ``meter_id``, else ``LCLid`` (or ``id_column``);
* daily rows: ``day`` (date) and ``kwh`` (or ``energy_sum``); optional ``coverage``
  (0-1) or ``energy_count`` (half-hours present, 48 = complete);
* interval rows: ``ts`` (ISO-8601 with offset, or a timestamp column) and ``kwh``
  with optional ``interval_s`` and ``quality``;
* register rows: ``ts`` and ``register_kwh`` with optional ``quality``.

Rows are grouped per id and processed in time order. With a customers file,
an id matches a record by ``customer_id`` or, for a ``meter_id`` column, by the
record's ``meter_ids`` (each meter's stream is then a profile of that
customer). Nothing is sent anywhere; the alerts are returned (and written as
JSON Lines by the CLI).

>>> import datetime as dt
>>> days = [dt.date(2024, 1, d) for d in (1, 2, 2)]
>>> rows = {"customer_id": ["c1"] * 3, "day": days, "kwh": [5.0, 6.0, 6.0]}
>>> res = run_table(table_from_pydict(rows))
>>> res.rows, res.duplicates, res.customers
(3, 1, 1)
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from baselines.rules import RULES, RulesConfig
from meterwatch.contracts import Alert, CustomerRecord

EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
ID_COLUMNS = ("customer_id", "meter_id", "LCLid")


@dataclass
class BacktestResult:
    """Counts and alerts of one run."""

    rows: int = 0
    customers: int = 0
    customer_cycles: int = 0
    rejected: int = 0
    duplicates: int = 0
    alerts: list[Alert] = field(default_factory=list)
    rejected_codes: Counter[str] = field(default_factory=Counter)
    profiles_bytes: int = 0
    cycles_by_customer: dict[str, int] = field(default_factory=dict)

    def per_rule(self) -> dict[str, int]:
        """Alerts per rule (every known rule present).

        >>> BacktestResult().per_rule()["sudden_increase"]
        0
        """
        c = Counter(a.rule for a in self.alerts)
        return {r: c.get(r, 0) for r in RULES}

    def summary(self) -> str:
        """The human summary printed at the end of ``meterwatch backtest``.

        >>> print(BacktestResult(rows=10).summary().splitlines()[0])
        rows 10  customers 0  customer-cycles 0  rejected 0  duplicates 0
        """
        cc = max(1, self.customer_cycles)
        lines = [
            f"rows {self.rows:,}  customers {self.customers:,}  customer-cycles {self.customer_cycles:,}  "
            f"rejected {self.rejected:,}  duplicates {self.duplicates:,}",
            f"{'rule':<28}{'alerts':>8}{'per 100 cust-cycles':>22}{'customer-facing':>17}",
        ]
        cf = Counter(a.rule for a in self.alerts if a.customer_facing)
        for rule, n in self.per_rule().items():
            lines.append(f"{rule:<28}{n:>8}{100.0 * n / cc:>22.2f}{cf.get(rule, 0):>17}")
        ncf = sum(cf.values())
        lines.append(f"{'customer-facing, all rules':<28}{ncf:>8}{100.0 * ncf / cc:>22.2f}")
        if self.customers:
            lines.append(
                f"profile size: {self.profiles_bytes / self.customers:.0f} bytes per customer (JSON)"
            )
        for code, n in self.rejected_codes.most_common():
            lines.append(f"rejected {code}: {n}")
        return "\n".join(lines)


def table_from_pydict(data: dict[str, Sequence[Any]]) -> Any:
    """A pyarrow table from a dict of columns (tests, doctests).

    >>> table_from_pydict({"customer_id": ["a"], "day": ["2024-01-01"], "kwh": [1.0]}).num_rows
    1
    """
    import pyarrow as pa

    return pa.table(data)


def read_table(path: str | Path) -> Any:
    """Read a CSV or Parquet file into a pyarrow table.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "r.csv"
    >>> _ = f.write_text(chr(10).join(["customer_id,day,kwh", "c1,2024-01-01,3.5", ""]))
    >>> read_table(f).column_names
    ['customer_id', 'day', 'kwh']
    >>> read_table(f.with_suffix(".xlsx"))
    Traceback (most recent call last):
    ...
    ValueError: ...: expected a .csv or .parquet file
    """
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return pq.read_table(p)
    if p.suffix.lower() in (".csv", ".gz", ".txt"):
        import pyarrow.csv as pcsv

        return pcsv.read_csv(p)
    raise ValueError(f"{p}: expected a .csv or .parquet file")


def load_customers(path: str | Path) -> dict[str, CustomerRecord]:
    """Customers from CSV or JSON Lines with CustomerRecord fields (``meter_ids`` ';'-separated in CSV).

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "c.csv"
    >>> _ = f.write_text(chr(10).join(["customer_id,meter_ids,read_day", "c1,m1;m2,5", ""]))
    >>> load_customers(f)["c1"].meter_ids
    ['m1', 'm2']
    """
    p = Path(path)
    out: dict[str, CustomerRecord] = {}
    if p.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        with p.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        rec = CustomerRecord.model_validate_json(line)
                    except ValueError as exc:
                        raise ValueError(f"{p}:{n}: {exc}") from exc
                    out[rec.customer_id] = rec
        return out
    import csv

    with p.open(encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), 2):
            data: dict[str, Any] = {k: v for k, v in row.items() if v not in (None, "")}
            if "meter_ids" in data:
                data["meter_ids"] = [m for m in str(data["meter_ids"]).split(";") if m]
            try:
                rec = CustomerRecord.model_validate(data)
            except ValueError as exc:
                raise ValueError(f"{p}:{n}: {exc}") from exc
            out[rec.customer_id] = rec
    return out


def _col(table: Any, *names: str) -> str | None:
    for n in names:
        if n in table.column_names:
            return n
    return None


def _customer_index(table: Any, id_col: str) -> tuple[list[str], Any]:
    """(distinct ids, per-row index into them)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(id_col)
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col.cast(pa.string()))
    col = col.combine_chunks() if hasattr(col, "combine_chunks") else col
    dictionary = [str(x) for x in col.dictionary.to_pylist()]
    idx = col.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return dictionary, idx


def iter_customers(table: Any, id_column: str | None = None) -> Iterator[tuple[str, list[Reading]]]:
    """Per customer (sorted by id), its readings in time order.

    >>> t = table_from_pydict({"LCLid": ["b", "a", "a"], "day": ["2024-01-02", "2024-01-02", "2024-01-01"],
    ...                        "energy_sum": [1.0, 2.0, 3.0]})
    >>> [(cid, [r.value for r in rs]) for cid, rs in iter_customers(t)]
    [('a', [3.0, 2.0]), ('b', [1.0])]
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    id_col = id_column or _col(table, *ID_COLUMNS)
    if id_col is None or id_col not in table.column_names:
        raise ValueError(f"no customer column: expected one of {ID_COLUMNS} (or --id-column)")
    kwh_col = _col(table, "kwh", "energy_sum")
    day_col = _col(table, "day")
    ts_col = _col(table, "ts", "tstp")
    reg_col = _col(table, "register_kwh")
    if day_col is None and ts_col is None:
        raise ValueError("need a 'day' column (daily totals) or a 'ts' column (interval/register reads)")
    if kwh_col is None and reg_col is None:
        raise ValueError("need a 'kwh' (or 'energy_sum') or a 'register_kwh' column")
    names, idx = _customer_index(table, id_col)
    n = table.num_rows

    def floats(name: str) -> Any:
        return table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)

    if day_col is not None and ts_col is None:
        days = table.column(day_col)
        if not pa.types.is_date(days.type):
            days = pc.cast(pc.strptime(days.cast(pa.string()), format="%Y-%m-%d", unit="s"), pa.date32())
        dnum = days.cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
        assert kwh_col is not None
        vals = floats(kwh_col)
        if "coverage" in table.column_names:
            cov = np.clip(floats("coverage"), 0.0, 1.0)
        elif "energy_count" in table.column_names:
            cov = np.clip(floats("energy_count") / 48.0, 0.0, 1.0)
        else:
            cov = np.ones(n)
        order = np.lexsort((dnum, idx))
        idx_s, d_s, v_s, c_s = idx[order], dnum[order], vals[order], cov[order]
        bounds = np.flatnonzero(np.diff(idx_s)) + 1
        starts = [0, *bounds.tolist()]
        ends = [*bounds.tolist(), n]
        name_order = sorted(range(len(starts)), key=lambda k: names[int(idx_s[starts[k]])])
        for k in name_order:
            a, b = starts[k], ends[k]
            cid = names[int(idx_s[a])]
            dl = d_s[a:b].tolist()
            vl = v_s[a:b].tolist()
            cl = c_s[a:b].tolist()
            out = []
            for dd, vv, cc in zip(dl, vl, cl, strict=True):
                if vv != vv or vv < 0:  # NaN or negative: reported as rejected by run_table
                    out.append(Reading("daily", (dd + 1) * 86400.0, -1.0, day=None, coverage=0.0))
                    continue
                out.append(
                    Reading(
                        "daily",
                        (dd + 1) * 86400.0,
                        vv,
                        interval_s=86400,
                        day=dt.date.fromordinal(dd + EPOCH_ORDINAL),
                        coverage=cc,
                    )
                )
            yield cid, out
        return
    # interval / register rows
    assert ts_col is not None
    tsc = table.column(ts_col)
    if pa.types.is_string(tsc.type) or pa.types.is_large_string(tsc.type):
        stamps: list[float] = []
        for n_row, text in enumerate(tsc.to_pylist(), 2):
            if not text:
                stamps.append(np.nan)
                continue
            try:
                stamp = dt.datetime.fromisoformat(text)
            except ValueError as exc:
                raise ValueError(f"row {n_row}: '{ts_col}' is not ISO-8601: {text!r}") from exc
            if stamp.tzinfo is None:
                raise ValueError(f"row {n_row}: '{ts_col}' must carry a UTC offset (e.g. {text}+00:00)")
            stamps.append(stamp.timestamp())
        ts = np.array(stamps, dtype=float)
    else:
        if getattr(tsc.type, "tz", None) is None:
            raise ValueError(f"'{ts_col}' must be a timezone-aware timestamp (or ISO-8601 with offset)")
        ts = pc.cast(tsc, pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False) / 1e6
    is_reg = reg_col is not None and kwh_col is None
    vals = floats(reg_col if is_reg else kwh_col)  # type: ignore[arg-type]
    ivals = (
        table.column("interval_s").cast(pa.int64()).to_numpy(zero_copy_only=False)
        if "interval_s" in table.column_names
        else np.full(n, 1800)
    )
    est = (
        np.array([q == "estimated" for q in table.column("quality").to_pylist()])
        if "quality" in table.column_names
        else np.zeros(n, dtype=bool)
    )
    order = np.lexsort((ts, idx))
    idx_s = idx[order]
    bounds = np.flatnonzero(np.diff(idx_s)) + 1
    starts = [0, *bounds.tolist()]
    ends = [*bounds.tolist(), n]
    name_order = sorted(range(len(starts)), key=lambda k: names[int(idx_s[starts[k]])])
    kind = "register" if is_reg else "interval"
    for k in name_order:
        sel = order[starts[k] : ends[k]]
        cid = names[int(idx_s[starts[k]])]
        out = []
        for t, v, iv, e in zip(
            ts[sel].tolist(), vals[sel].tolist(), ivals[sel].tolist(), est[sel].tolist(), strict=True
        ):
            if t != t or v != v or v < 0 or iv <= 0:
                out.append(Reading("daily", 0.0, -1.0, day=None, coverage=0.0))
                continue
            out.append(Reading(kind, t, v, interval_s=int(iv), estimated=bool(e)))  # type: ignore[arg-type]
        yield cid, out


def run_table(
    table: Any,
    *,
    customers: dict[str, CustomerRecord] | None = None,
    rules: RulesConfig | None = None,
    timezone: str = "Europe/London",
    read_day: int = 1,
    cycle_months: int = 1,
    id_column: str | None = None,
    progress: Callable[[int], None] | None = None,
    only: Iterable[str] | None = None,
) -> BacktestResult:
    """Run the engine over a table; customers without a record get the defaults given.

    >>> t = table_from_pydict({"customer_id": ["c"] * 30, "day": [f"2024-01-{d:02d}" for d in range(1, 31)],
    ...                        "kwh": [4.0] * 30})
    >>> r = run_table(t)
    >>> r.rows, r.customer_cycles, r.alerts
    (30, 1, [])
    """
    engine = Engine(rules)
    res = BacktestResult()
    by_meter = {m: rec for rec in (customers or {}).values() for m in rec.meter_ids}
    wanted = set(only) if only is not None else None
    for cid, readings in iter_customers(table, id_column):
        if progress is not None:
            progress(len(readings))
        res.rows += len(readings)
        if wanted is not None and cid not in wanted:
            continue
        rec = (customers.get(cid) if customers else None) or by_meter.get(cid)
        if rec is not None:
            cust = CustomerConfig.from_record(rec)
        else:
            cust = CustomerConfig(cid, read_day=read_day, cycle_months=cycle_months, timezone=timezone)
        p = Profile.new(cust.customer_id)
        res.customers += 1
        seen_cycles: set[int] = set()
        for r in readings:
            if r.value < 0:
                res.rejected += 1
                res.rejected_codes["backtest.invalid_row"] += 1
                continue
            out = engine.process_inplace(p, r, cust)
            if out.duplicate:
                res.duplicates += 1
            elif out.rejected is not None:
                res.rejected += 1
                res.rejected_codes[out.rejected.code] += 1
            elif p.open_cycles:
                seen_cycles.add(p.open_cycles[-1].start)
            if out.alerts:
                res.alerts.extend(out.alerts)
        res.customer_cycles += len(seen_cycles)
        res.cycles_by_customer[cid] = len(seen_cycles)
        res.profiles_bytes += len(json.dumps(p.to_dict(), separators=(",", ":")))
    return res


def write_alerts(alerts: Iterable[Alert], path: str | Path) -> int:
    """Write alerts as JSON Lines (by alias); returns the count.

    >>> import tempfile, pathlib
    >>> write_alerts([], pathlib.Path(tempfile.mkdtemp()) / "a.jsonl")
    0
    """
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for a in alerts:
            fh.write(a.model_dump_json(by_alias=True))
            fh.write("\n")
            n += 1
    return n
