"""The real-data sample kept in the repository (``data/sample/``), and where the full data is.

Tests use the sample only; evaluations (``eval/``) and benchmarks (``bench/``) use the full
London data (``MW_SHARED_DATA``, default ``../shared/data`` beside the clone). The sample has
the full data's layout, so every script runs on either::

    python -m meterwatch.cli.sample_data                   # regenerate data/sample from the full data
    python -m meterwatch.cli.sample_data --check           # is data/sample what the rule gives?

How households are chosen (deterministic, documented in ``data/sample/README.md``):

* daily: the households the tests name (``NAMED``), then households with at least
  ``MIN_DAYS`` days of data in the order of the SHA-256 of their ``LCLid``, up to
  ``households`` in all; every row of each;
* half-hourly 2013: the households of the daily sample that are in the half-hourly file,
  ``MAC000002`` first, then by the same hash order, up to ``hh_households``.

>>> sorted(NAMED)[:2]
['MAC000002', 'MAC000246']
>>> hash_order(["a", "b"])
['b', 'a']
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from meterwatch.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO / "data" / "sample"
DAILY = Path("lcl_london_daily") / "lcl_daily_kwh.parquet"
HALF_HOURLY = Path("lcl_london_halfhourly_2013") / "lcl_hh_2013.parquet"

#: households named by tests (tests/unit/baselines/test_real_households.py)
NAMED = ("MAC000002", "MAC000246", "MAC001074", "MAC003223", "MAC004387", "MAC005492")
MIN_DAYS = 730
HOUSEHOLDS = 300
HH_HOUSEHOLDS = 5


def sample_dir() -> Path:
    """The sample in the repository (``data/sample``)."""
    return SAMPLE_DIR


def shared_data_dir(settings: Settings | None = None) -> Path:
    """The full data: ``MW_SHARED_DATA``, else ``shared/data`` beside the repository."""
    configured = (settings or Settings()).shared_data
    return configured if configured is not None else REPO.parent / "shared" / "data"


def hash_order(ids: Iterable[str]) -> list[str]:
    """Ids in the order of their SHA-256 (a fixed, well-mixed order)."""
    return sorted(ids, key=lambda s: hashlib.sha256(s.encode()).hexdigest())


def _ids(table: Any) -> Any:
    import pyarrow as pa

    return table.column("LCLid").cast(pa.string())


def choose_daily(table: Any, households: int = HOUSEHOLDS, min_days: int = MIN_DAYS) -> list[str]:
    """The daily sample's households (see the module docstring), sorted."""
    import pyarrow as pa

    counts = pa.table({"LCLid": _ids(table)}).group_by("LCLid").aggregate([("LCLid", "count")])
    days = dict(
        zip(counts.column("LCLid").to_pylist(), counts.column("LCLid_count").to_pylist(), strict=True)
    )
    chosen = [h for h in NAMED if h in days]
    for h in hash_order(h for h, n in days.items() if n >= min_days):
        if len(chosen) >= households:
            break
        if h not in chosen:
            chosen.append(h)
    return sorted(chosen)


def choose_half_hourly(table: Any, daily: Sequence[str], households: int = HH_HOUSEHOLDS) -> list[str]:
    present = set(_ids(table).unique().to_pylist())
    first = [h for h in ("MAC000002",) if h in present]
    rest = [h for h in hash_order(set(daily) & present) if h not in first]
    return sorted((first + rest)[:households])


def _subset(table: Any, ids: Sequence[str], time_column: str) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    keep = table.filter(pc.is_in(_ids(table), value_set=pa.array(list(ids))))
    order = pc.sort_indices(
        pa.table({"id": _ids(keep), "t": keep.column(time_column)}),
        sort_keys=[("id", "ascending"), ("t", "ascending")],
    )
    return keep.take(order).replace_schema_metadata(None)


def make_sample(
    src: Path, dst: Path, households: int = HOUSEHOLDS, hh_households: int = HH_HOUSEHOLDS
) -> dict[str, int]:
    """Write the sample of ``src`` (the full data) into ``dst``; returns rows per file."""
    import pyarrow.parquet as pq

    daily = pq.read_table(src / DAILY)
    ids = choose_daily(daily, households)
    hh = pq.read_table(src / HALF_HOURLY)
    hh_ids = choose_half_hourly(hh, ids, hh_households)
    out = {}
    for rel, table, chosen, tcol in ((DAILY, daily, ids, "day"), (HALF_HOURLY, hh, hh_ids, "tstp")):
        part = _subset(table, chosen, tcol)
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, dst / rel, compression="zstd", compression_level=19)
        out[str(rel)] = part.num_rows
    return out


def same_rows(a: Path, b: Path) -> bool:
    """The two Parquet files hold the same rows (bytes may differ between pyarrow versions)."""
    import pyarrow.parquet as pq

    return bool(pq.read_table(a).equals(pq.read_table(b)))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m meterwatch.cli.sample_data", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--from", dest="src", type=Path, default=None, help="the full data (default MW_SHARED_DATA)"
    )
    p.add_argument("--to", dest="dst", type=Path, default=SAMPLE_DIR, help="where to write (data/sample)")
    p.add_argument("--households", type=int, default=HOUSEHOLDS)
    p.add_argument("--check", action="store_true", help="regenerate into a temporary dir and compare")
    args = p.parse_args(argv)
    src = args.src or shared_data_dir()
    if not (src / DAILY).exists():
        print(f"no such file: {src / DAILY} (set MW_SHARED_DATA or --from)", file=sys.stderr)
        return 2
    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            make_sample(src, Path(tmp), args.households)
            bad = [str(rel) for rel in (DAILY, HALF_HOURLY) if not same_rows(Path(tmp) / rel, args.dst / rel)]
        print("sample differs from the rule: " + ", ".join(bad) if bad else "sample matches the rule")
        return 1 if bad else 0
    for rel, n in make_sample(src, args.dst, args.households).items():
        print(f"{args.dst / rel}: {n:,} rows, {(args.dst / rel).stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
