"""The one reader of CSV and Parquet input files (``backtest``, ``replay``, ``bootstrap``).

Files are read columnar with pyarrow; a CSV file's values are all read as text (our
validation, and its messages, decide what a value means, so one bad value far down a
file is one bad row, not a parser failure for the whole file), empty values are null.

* :func:`iter_rows` - every row in file order as a dict (or a :class:`Malformed` CSV row),
  numbered from 1 (header excluded): the publishers validate them one by one;
* :func:`read_table` - the whole file as one pyarrow table;
* :func:`iter_customers` - per customer (sorted by id), its readings as a columnar
  :class:`baselines.backtest.Series` in time order: what the backtest engine folds;
* :func:`load_customers` - a customers file (CSV or JSON Lines of ``CustomerRecord``);
* :func:`run_table` - the backtest over a table (``iter_customers`` + ``run_customers``).

>>> import tempfile, pathlib
>>> f = pathlib.Path(tempfile.mkdtemp()) / "r.csv"
>>> _ = f.write_text("customer_id,day,kwh\\nc1,2024-01-01,3.5\\nc1,2024-01-02,1,2\\nc1,2024-01-03,\\n")
>>> for n, row in iter_rows(f):
...     print(n, row)
1 {'customer_id': 'c1', 'day': '2024-01-01', 'kwh': '3.5'}
2 Malformed(text='c1,2024-01-02,1,2', expected=3, got=4)
3 {'customer_id': 'c1', 'day': '2024-01-03', 'kwh': None}
>>> [(cid, [r.value for r in s.readings()]) for cid, s in iter_customers(read_table(f, strict=False))]
[('c1', [3.5, -1.0])]
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baselines.backtest import BacktestResult, Series, run_customers
from baselines.billing import Tariffs
from baselines.readings import Kind
from baselines.rules import RulesConfig
from baselines.weather import Temperatures
from meterwatch.contracts import CustomerRecord

ID_COLUMNS = ("customer_id", "meter_id", "LCLid")
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz")
BATCH_ROWS = 65536


class InputError(ValueError):
    """The file as a whole cannot be read (missing, unknown format, missing columns)."""


@dataclass(frozen=True)
class Malformed:
    """A CSV line with the wrong number of values."""

    text: str
    expected: int
    got: int

    def reason(self) -> str:
        return f"malformed CSV row (expected {self.expected} columns, got {self.got}): {self.text}"


def file_format(path: Path) -> str:
    """``"parquet"`` or ``"csv"`` by the name; a missing file or another suffix is an ``InputError``.

    >>> file_format(Path("/nonexistent/r.parquet"))
    Traceback (most recent call last):
    ...
    meterwatch.cli.feed.InputError: no such file: /nonexistent/r.parquet
    """
    if not path.is_file():
        raise InputError(f"no such file: {path}" if not path.exists() else f"not a file: {path}")
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise InputError(f"{path}: unknown format (expected .csv, .csv.gz or .parquet)")


def count_rows(path: Path) -> int | None:
    """Number of data rows if cheap to know (Parquet metadata), else None."""
    if file_format(path) == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return None


Batch = tuple[Any, list[tuple[int, Malformed]]]  # (pyarrow RecordBatch, its malformed CSV rows, numbered)


def _csv_header(path: Path) -> list[str]:
    import pyarrow as pa

    head = b""
    with pa.input_stream(str(path), compression="detect") as fh:
        while b"\n" not in head:
            chunk = fh.read(1 << 16)
            if not chunk:
                break
            head += chunk
    first = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
    return next(csv.reader([first]), [])


def _csv_batches(path: Path, batch_rows: int) -> Iterator[Batch]:
    """(record batch of text columns, the malformed rows met while reading it, numbered)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    header = _csv_header(path)
    if not header:
        return
    bad: list[tuple[int, Malformed]] = []

    def on_invalid(row: Any) -> str:
        # row.number counts the header and skips blank lines (single-threaded reader)
        number = int(row.number) - 1 if row.number is not None else -1
        bad.append((number, Malformed(row.text, int(row.expected_columns), int(row.actual_columns))))
        return "skip"

    reader = pcsv.open_csv(
        str(path),
        read_options=pcsv.ReadOptions(use_threads=False, block_size=max(1 << 16, batch_rows * 64)),
        parse_options=pcsv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            strings_can_be_null=True,
            null_values=[""],
        ),
    )
    for batch in reader:
        found, bad[:] = list(bad), []
        yield batch, found
    if bad:
        yield pa.RecordBatch.from_pydict({h: pa.array([], pa.string()) for h in header}), list(bad)


def iter_batches(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[Batch]:
    """The file in pyarrow record batches, with the malformed CSV rows of each (row number, row).

    Wraps pyarrow's errors (bad UTF-8, a broken Parquet file) into ``InputError``.
    """
    import pyarrow as pa

    kind = file_format(path)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
                yield batch, []
        else:
            yield from _csv_batches(path, batch_rows)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: {exc}") from exc


def iter_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | Malformed]]:
    """Every row in file order, numbered from 1 (header excluded): a dict, or a ``Malformed`` line."""
    n = 0
    for batch, bad in iter_batches(path):
        pending = sorted(bad, key=lambda x: x[0])
        k = 0
        for row in batch.to_pylist():
            n += 1
            while k < len(pending) and pending[k][0] <= n:
                yield n, pending[k][1]
                k += 1
                n += 1
            yield n, row
        for _, m in pending[k:]:
            n += 1
            yield n, m


def read_table(path: Path, columns: Sequence[str] | None = None, *, strict: bool = True) -> Any:
    """The whole file as a pyarrow table (CSV: text columns); a malformed CSV row is an ``InputError``
    (``strict=False``: skipped).
    """
    import pyarrow as pa

    if file_format(path) == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path, columns=list(columns) if columns else None)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path}: {exc}") from exc
    batches = []
    for batch, bad in iter_batches(path):
        if bad and strict:
            number, m = bad[0]
            raise InputError(f"{path}: row {number}: {m.reason()}")
        batches.append(batch)
    if not batches:
        raise InputError(f"{path}: empty file")
    table = pa.Table.from_batches(batches)
    return table.select(list(columns)) if columns else table


def table_from_pydict(data: dict[str, Sequence[Any]]) -> Any:
    """A pyarrow table from a dict of columns (tests, doctests).

    >>> table_from_pydict({"customer_id": ["a"], "day": ["2024-01-01"], "kwh": [1.0]}).num_rows
    1
    """
    import pyarrow as pa

    return pa.table(data)


def load_customers(path: Path) -> dict[str, CustomerRecord]:
    """Customers from CSV or JSON Lines with CustomerRecord fields (``meter_ids`` ';'-separated in CSV;
    a budget as the columns ``budget_amount`` and ``budget_currency``).

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "c.csv"
    >>> _ = f.write_text(chr(10).join(["customer_id,meter_ids,read_day", "c1,m1;m2,5", ""]))
    >>> load_customers(f)["c1"].meter_ids
    ['m1', 'm2']
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file: {p}")
    out: dict[str, CustomerRecord] = {}
    if p.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        with p.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        rec = CustomerRecord.model_validate_json(line)
                    except ValueError as exc:
                        raise InputError(f"{p}:{n}: {exc}") from exc
                    out[rec.customer_id] = rec
        return out
    with p.open(encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), 2):
            data: dict[str, Any] = {k: v for k, v in row.items() if v not in (None, "")}
            if "meter_ids" in data:
                data["meter_ids"] = [m for m in str(data["meter_ids"]).split(";") if m]
            if "budget_amount" in data:
                data["budget"] = {
                    "amount": data.pop("budget_amount"),
                    "currency": data.pop("budget_currency", ""),
                }
            try:
                rec = CustomerRecord.model_validate(data)
            except ValueError as exc:
                raise InputError(f"{p}:{n}: {exc}") from exc
            out[rec.customer_id] = rec
    return out


# ------------------------------------------------------------------ per customer, columnar


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


def _floats(table: Any, name: str) -> Any:
    import pyarrow as pa

    return table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)


def _runs(idx_sorted: Any, names: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each customer's run in the sorted rows, in id order."""
    import numpy as np

    n = len(idx_sorted)
    bounds = np.flatnonzero(np.diff(idx_sorted)) + 1
    starts = [0, *bounds.tolist()] if n else []
    ends = [*bounds.tolist(), n] if n else []
    order = sorted(range(len(starts)), key=lambda k: names[int(idx_sorted[starts[k]])])
    return [(starts[k], ends[k]) for k in order]


def _daily(
    table: Any, names: list[str], idx: Any, day_col: str, kwh_col: str
) -> Iterator[tuple[str, Series]]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    days = table.column(day_col)
    if not pa.types.is_date(days.type):
        days = pc.cast(pc.strptime(days.cast(pa.string()), format="%Y-%m-%d", unit="s"), pa.date32())
    dnum = days.cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
    vals = _floats(table, kwh_col)
    if "coverage" in table.column_names:
        cov = np.clip(_floats(table, "coverage"), 0.0, 1.0)
    elif "energy_count" in table.column_names:
        cov = np.clip(_floats(table, "energy_count") / 48.0, 0.0, 1.0)
    else:
        cov = np.ones(table.num_rows)
    order = np.lexsort((dnum, idx))
    idx_s, d_s, v_s, c_s = idx[order], dnum[order], vals[order], cov[order]
    for a, b in _runs(idx_s, names):
        cid = names[int(idx_s[a])]
        yield cid, Series("daily", value=v_s[a:b].tolist(), day=d_s[a:b].tolist(), coverage=c_s[a:b].tolist())


def _epoch_seconds(table: Any, ts_col: str) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    tsc = table.column(ts_col)
    if not (pa.types.is_string(tsc.type) or pa.types.is_large_string(tsc.type)):
        if getattr(tsc.type, "tz", None) is None:
            raise InputError(f"'{ts_col}' must be a timezone-aware timestamp (or ISO-8601 with offset)")
        return (
            pc.cast(tsc, pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False) / 1e6
        )
    stamps: list[float] = []
    for n_row, text in enumerate(tsc.to_pylist(), 2):
        if not text:
            stamps.append(np.nan)
            continue
        try:
            stamp = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise InputError(f"row {n_row}: '{ts_col}' is not ISO-8601: {text!r}") from exc
        if stamp.tzinfo is None:
            raise InputError(f"row {n_row}: '{ts_col}' must carry a UTC offset (e.g. {text}+00:00)")
        stamps.append(stamp.timestamp())
    return np.array(stamps, dtype=float)


def _timed(
    table: Any, names: list[str], idx: Any, ts_col: str, kwh_col: str | None, reg_col: str | None
) -> Iterator[tuple[str, Series]]:
    import numpy as np
    import pyarrow as pa

    n = table.num_rows
    ts = _epoch_seconds(table, ts_col)
    is_reg = reg_col is not None and kwh_col is None
    value_col = reg_col if is_reg else kwh_col
    assert value_col is not None
    vals = _floats(table, value_col)
    ivals = (
        table.column("interval_s").cast(pa.int64()).to_numpy(zero_copy_only=False)
        if "interval_s" in table.column_names
        else np.full(n, 1800)
    )
    est = (
        np.array([q == "estimated" for q in table.column("quality").to_pylist()], dtype=bool)
        if "quality" in table.column_names
        else np.zeros(n, dtype=bool)
    )
    order = np.lexsort((ts, idx))
    idx_s = idx[order]
    kind: Kind = "register" if is_reg else "interval"
    for a, b in _runs(idx_s, names):
        sel = order[a:b]
        yield (
            names[int(idx_s[a])],
            Series(
                kind,
                value=vals[sel].tolist(),
                ts=ts[sel].tolist(),
                interval_s=ivals[sel].tolist(),
                estimated=est[sel].tolist(),
            ),
        )


def iter_customers(table: Any, id_column: str | None = None) -> Iterator[tuple[str, Series]]:
    """Per customer (sorted by id), its readings as columns in time order.

    Columns (case-sensitive): the customer ``customer_id``, else ``meter_id``, else ``LCLid``
    (or ``id_column``); daily rows ``day`` and ``kwh`` (or ``energy_sum``) with optional
    ``coverage`` (0-1) or ``energy_count`` (48 = complete); interval rows ``ts`` (ISO-8601
    with offset, or a timezone-aware timestamp) and ``kwh`` with optional ``interval_s``
    and ``quality``; register rows ``ts`` and ``register_kwh``.

    >>> t = table_from_pydict({"LCLid": ["b", "a", "a"], "day": ["2024-01-02", "2024-01-02", "2024-01-01"],
    ...                        "energy_sum": [1.0, 2.0, 3.0]})
    >>> [(cid, s.value) for cid, s in iter_customers(t)]
    [('a', [3.0, 2.0]), ('b', [1.0])]
    """
    id_col = id_column or _col(table, *ID_COLUMNS)
    if id_col is None or id_col not in table.column_names:
        raise InputError(f"no customer column: expected one of {ID_COLUMNS} (or --id-column)")
    kwh_col = _col(table, "kwh", "energy_sum")
    day_col = _col(table, "day")
    ts_col = _col(table, "ts", "tstp")
    reg_col = _col(table, "register_kwh")
    if day_col is None and ts_col is None:
        raise InputError("need a 'day' column (daily totals) or a 'ts' column (interval/register reads)")
    if kwh_col is None and reg_col is None:
        raise InputError("need a 'kwh' (or 'energy_sum') or a 'register_kwh' column")
    names, idx = _customer_index(table, id_col)
    if day_col is not None and ts_col is None:
        assert kwh_col is not None
        return _daily(table, names, idx, day_col, kwh_col)
    assert ts_col is not None
    return _timed(table, names, idx, ts_col, kwh_col, reg_col)


def run_table(
    table: Any,
    *,
    id_column: str | None = None,
    customers: dict[str, CustomerRecord] | None = None,
    rules: RulesConfig | None = None,
    timezone: str = "Europe/London",
    read_day: int = 1,
    cycle_months: int = 1,
    progress: Callable[[int], None] | None = None,
    only: Iterable[str] | None = None,
    tariffs: Tariffs | None = None,
    region: str | None = None,
    weather: Temperatures | None = None,
) -> BacktestResult:
    """The backtest over a table: :func:`iter_customers` into ``baselines.backtest.run_customers``.

    >>> t = table_from_pydict({"customer_id": ["c"] * 30, "day": [f"2024-01-{d:02d}" for d in range(1, 31)],
    ...                        "kwh": [4.0] * 30})
    >>> r = run_table(t)
    >>> r.rows, r.customer_cycles, r.alerts
    (30, 1, [])
    """
    return run_customers(
        iter_customers(table, id_column),
        customers=customers,
        rules=rules,
        timezone=timezone,
        read_day=read_day,
        cycle_months=cycle_months,
        progress=progress,
        only=only,
        tariffs=tariffs,
        region=region,
        weather=weather,
    )
