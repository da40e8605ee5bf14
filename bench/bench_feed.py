"""The feed's cost (meterwatch/cli/feed.py) against a plain pyarrow walk of the same file.

    python bench/bench_feed.py [FILE]     # default: the full London daily file (MW_SHARED_DATA)

Prints seconds for: (1) reference: read the Parquet file and walk its columns as numpy
arrays (what any reader must do); (2) the feed: read + every customer's columnar Series
(sorted, as Python lists); (3) the same plus building the domain Reading objects. The
engine itself is not run (see bench_backtest.py). Figures are ratios to (1) in the same run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from meterwatch.cli.feed import iter_customers, read_table  # noqa: E402
from meterwatch.cli.segment_features import london_daily_path  # noqa: E402


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else london_daily_path()
    t0 = time.perf_counter()
    table = pq.read_table(path)
    total = 0
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        arr = col.indices if pa.types.is_dictionary(col.type) else col
        total += len(arr.to_numpy(zero_copy_only=False))
    ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    n = sum(len(s) for _, s in iter_customers(read_table(path)))
    feed = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = sum(1 for _, s in iter_customers(read_table(path)) for _ in s.readings())
    readings = time.perf_counter() - t0
    assert n == m == table.num_rows
    print(f"{path.name}: {n:,} rows")
    print(f"pyarrow walk (reference)      {ref:7.2f} s  1.00x")
    print(f"feed: per-customer Series     {feed:7.2f} s  {feed / ref:5.2f}x")
    print(f"feed + domain Reading objects {readings:7.2f} s  {readings / ref:5.2f}x")


if __name__ == "__main__":
    main()
