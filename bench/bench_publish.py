"""Throughput of the publishers (simulate / replay / bootstrap) against the local Kafka.

Run:  python bench/bench_publish.py [--n 100000]

Needs the local stack (`meterwatch dev up`). Uses private topics (created, deleted at
the end). The reference is a bare aiokafka loop sending pre-encoded messages with the
same producer settings, measured in the same run; every figure is reported as a ratio
to it (2 shared cores: absolute rates vary with what else runs).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from meterwatch.cli.publish import Publisher, run_bootstrap, run_replay, run_simulate  # noqa: E402
from meterwatch.cli.sample_data import shared_data_dir  # noqa: E402
from meterwatch.cli.segment_features import london_daily_path  # noqa: E402
from meterwatch.cli.simulate import SimConfig, encoded_readings, make_households  # noqa: E402
from meterwatch.settings import Settings  # noqa: E402
from meterwatch.topics import delete_topics, ensure_topics  # noqa: E402


async def reference(settings: Settings, n: int) -> float:
    cfg = SimConfig(customers=max(1, n // 48), days=1, history_days=0, surge_share=0.0)
    msgs = list(encoded_readings(make_households(cfg), cfg))[:n]
    t0 = time.perf_counter()
    async with Publisher(settings) as pub:
        for k, v in msgs:
            await pub.send(settings.topic_readings, k, v)
    return len(msgs) / (time.perf_counter() - t0)


async def main_async(n: int) -> int:
    tag = uuid.uuid4().hex[:8]
    base = Settings()
    s = base.model_copy(
        update={
            f: f"bench{tag}-{getattr(base, f)}"
            for f in ("topic_readings", "topic_customers", "topic_history")
        }
    )
    await ensure_topics(s)
    try:
        await reference(s, min(n, 5000))  # warm-up: metadata, leaders, connections
        ref_before = await reference(s, n)
        results: dict[str, float] = {}

        cfg = SimConfig(customers=max(1, n // 48), days=1, history_days=0, start=dt.date(2026, 1, 5))
        rep = await run_simulate(s, cfg, publish_customers=False, progress=False)
        results["simulate (generate + publish readings)"] = rep.rows / rep.seconds

        hh = shared_data_dir() / "lcl_london_halfhourly_2013" / "lcl_hh_2013.parquet"
        rep = await run_replay(
            s,
            hh,
            limit=n,
            timezone="Europe/London",
            ts_marks="start",
            customer_from_meter=True,
            progress=False,
        )
        results["replay London half-hourly parquet (read + validate + publish)"] = rep.rows / rep.seconds

        import pyarrow.parquet as pq

        tmp = Path(tempfile.mkdtemp(prefix="mw-bench-")) / "daily.parquet"
        pq.write_table(pq.read_table(london_daily_path()).slice(0, n), tmp)
        rep = await run_bootstrap(s, tmp, progress=False)
        results["bootstrap London daily parquet (read + validate + publish)"] = rep.rows / rep.seconds
        tmp.unlink()
        tmp.parent.rmdir()
        ref_after = await reference(s, n)
        ref = (ref_before + ref_after) / 2
    finally:
        await delete_topics(s, [s.topic_readings, s.topic_customers, s.topic_history])

    print(f"publishers, {n} messages each, local Kafka, machine: 2 cores shared with other jobs")
    print(
        f"reference: bare aiokafka send loop of pre-encoded readings = 1.00 ({ref:,.0f} msg/s in this run; "
        f"mean of a run before and after: {ref_before:,.0f} / {ref_after:,.0f})"
    )
    for name, rate in results.items():
        print(f"{name}: {rate / ref:.2f}x the reference ({rate:,.0f} rows/s)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="messages per measurement (default 100000)")
    args = ap.parse_args()
    return asyncio.run(main_async(min(args.n, 1_000_000)))


if __name__ == "__main__":
    sys.exit(main())
