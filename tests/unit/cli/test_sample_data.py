"""The real-data sample kept in the repository: present, small, chosen by its documented rule."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from meterwatch.cli.sample_data import (
    DAILY,
    HALF_HOURLY,
    HOUSEHOLDS,
    MIN_DAYS,
    NAMED,
    REPO,
    choose_daily,
    choose_half_hourly,
    sample_dir,
)


def test_the_sample_is_in_the_repository_and_small() -> None:
    root = sample_dir()
    assert root.is_relative_to(REPO)
    total = sum(p.stat().st_size for p in root.rglob("*.parquet"))
    assert total < 3_000_000
    assert "Open Government Licence" in (root / "README.md").read_text()


def test_the_sample_follows_its_rule() -> None:
    daily = pq.read_table(sample_dir() / DAILY)
    ids = sorted(set(daily.column("LCLid").cast("string").to_pylist()))
    assert len(ids) == HOUSEHOLDS and set(NAMED) <= set(ids)
    # the rule applied to the sample keeps all of it: named + 2-year households in hash order
    assert choose_daily(daily) == ids
    counts = daily.group_by("LCLid").aggregate([("day", "count")]).to_pylist()
    short = {r["LCLid"] for r in counts if r["day_count"] < MIN_DAYS}
    assert short <= set(NAMED)
    hh = pq.read_table(sample_dir() / HALF_HOURLY)
    hh_ids = sorted(set(hh.column("LCLid").to_pylist()))
    assert "MAC000002" in hh_ids and choose_half_hourly(hh, ids) == hh_ids
    first = hh.slice(0, 1).to_pylist()[0]
    assert first["LCLid"] == "MAC000002" and first["tstp"].isoformat() == "2013-01-01T00:00:00"


def test_no_test_reads_the_full_data() -> None:
    tests = Path(__file__).resolve().parents[2]
    for path in tests.rglob("*.py"):
        text = path.read_text()
        if "MW_SHARED_DATA" in text or "shared/data" in text or "shared_data_dir" in text:
            assert "sample_dir" in text, f"{path} reads the full data; tests use data/sample"
