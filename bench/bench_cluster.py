"""Throughput with 1, 2 and 3 worker processes on a 3-broker cluster, and failover times
(prints figures; asserts nothing).

    python bench/bench_cluster.py [--customers 200] [--days 14] [--timeout 240] [--no-failover]

Everything runs on a private cluster (``meterwatch.cli.devstack.cluster`` on free ports:
3 KRaft nodes, RF 3, min ISR 2, Redis primary + replica + 3 sentinels), never on the
shared stack. Phases, in one run:

1. backlog: ``--customers`` households, ``--days`` days of half-hourly readings on a
   12-partition readings topic, produced once before any worker runs.
2. workers: for 1, 2 and 3 ``meterwatch worker`` processes, each a fresh consumer group
   (own app id, internal topics, Redis prefix, RocksDB) over the same backlog. Sustained
   rate = readings processed between 10 % and 100 % of the backlog / elapsed (start-up and
   the first rebalance excluded); the wall time from the start of the processes is printed too,
   and the workers' CPU time per reading (``/proc``, start-up included: the figure that does
   not depend on what else runs on the machine).
3. reference: a raw aiokafka consumer (``getmany``, no processing) reads the same topic,
   after the workers (so they do not share the cores). Figures are ratios to it and to 1 worker.
4. failover (3 workers, 16 households streamed continuously at ~640 readings/s): kill -9
   one broker, then a worker, then the Redis primary; seconds until every household's
   baseline holds a reading published after the fault (bounded by ``--resume-timeout``).

The machine is shared (2 cores, other engineers' processes): load is printed with `uptime`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meterwatch.cli.devstack.cluster import Cluster, ClusterLayout
from meterwatch.cli.devstack.isolation import isolated_settings
from meterwatch.cli.devstack.scenario import Feed, Household, Probe, fault_phase, group_members, wait_for
from meterwatch.cli.devstack.workers import WorkerGroup
from meterwatch.connections import kafka_client_kwargs, redis_client
from meterwatch.settings import Settings
from meterwatch.topics import ensure_topics

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def fresh_group(s: Settings, tmp: Path) -> Settings:
    """Same topics (the backlog), a new worker group: app id, Redis prefix, data dir."""
    tag = uuid.uuid4().hex[:6]
    return s.model_copy(update={"app_id": f"{s.app_id}-{tag}", "redis_prefix": f"{s.redis_prefix}{tag}:",
                                "data_dir": tmp / f"data-{tag}"})  # fmt: skip


async def run_workers(s: Settings, n: int, total: int, tmp: Path, bound_s: float) -> dict[str, float]:
    group = WorkerGroup(s, tmp / f"workers-{n}-{s.app_id[-6:]}")
    redis = redis_client(s)
    probe = Probe(s, redis)
    t_start = time.monotonic()
    try:
        for i in range(n):
            group.start(i)
        t10 = n10 = None
        done = 0
        while time.monotonic() - t_start < bound_s:
            if group.dead():
                raise RuntimeError(f"a worker died:\n{group.tails()}")
            done = await probe.processed()
            if t10 is None and done >= total // 10:
                t10, n10 = time.monotonic(), done
            if done >= total:
                break
            await asyncio.sleep(0.2)
        t_end = time.monotonic()
        cpu_us = group.cpu_seconds() / max(done, 1) * 1e6
        if t10 is None or n10 is None or done < total:
            return {"rate": float("nan"), "wall": float("nan"), "done": float(done), "cpu_us": cpu_us}
        rate = (done - n10) / max(t_end - t10, 1e-9)
        return {"rate": rate, "wall": t_end - t_start, "done": float(done), "cpu_us": cpu_us}
    finally:
        group.stop_all()
        await redis.aclose()


async def raw_rate(s: Settings, total: int) -> float:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**kafka_client_kwargs(s), group_id=None, enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024)  # fmt: skip
    await consumer.start()
    try:
        parts = [TopicPartition(s.topic_readings, p) for p in range(s.readings_partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        n, t0 = 0, time.monotonic()
        while n < total and time.monotonic() - t0 < 120:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            n += sum(len(v) for v in batches.values())
        return n / (time.monotonic() - t0)
    finally:
        await consumer.stop()


async def failover(cluster: Cluster, base: Settings, tmp: Path, resume_timeout: float) -> dict[str, float]:
    s = cluster.layout.settings(isolated_settings(base, tmp / "failover"))
    await ensure_topics(s)
    homes = [Household(f"f-{i:02d}", f"fm-{i:02d}") for i in range(16)]
    feed, redis = Feed(s, homes, T0), redis_client(s)
    probe, group = Probe(s, redis), WorkerGroup(s, tmp / "failover-workers")
    await feed.start()

    def alive() -> None:
        if group.dead():
            raise RuntimeError(f"a worker died:\n{group.tails()}")

    took: dict[str, float] = {}
    try:
        for i in range(3):
            group.start(i)
        await feed.customers()
        await feed.days(0, 9)
        await wait_for(lambda: _members(s), 120, "three workers in the group")
        await wait_for(lambda: _caught_up(feed, probe), 120, "the first days")
        faults = {
            "broker kill -9": lambda: cluster.kill9("kafka2"),
            "worker kill -9": lambda: group.kill9(2),
            "Redis primary kill -9 (sentinel failover)": lambda: cluster.kill9("redis-primary"),
        }
        for k, (name, fault) in enumerate(faults.items()):
            first = 10 + 8 * k
            took[name] = await fault_phase(
                feed, probe, (first, first + 6), fault, alive, timeout_s=resume_timeout
            )
            print(f"  {name}: consumers resumed after {took[name]:.1f} s", flush=True)
    finally:
        group.stop_all()
        await feed.stop()
        await redis.aclose()
    return took


async def _members(s: Settings) -> bool:
    return await group_members(s) == 3


async def _caught_up(feed: Feed, probe: Probe) -> bool:
    return await probe.processed() >= feed.sent


async def run(args: argparse.Namespace, tmp: Path) -> int:
    print(f"machine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load before: {uptime()}")
    cluster = Cluster(ClusterLayout.free(tmp / "cluster"))
    t = time.monotonic()
    cluster.start()
    print(f"cluster up in {time.monotonic() - t:.1f} s: {cluster.layout.bootstrap}", flush=True)
    try:
        base = Settings()
        s = cluster.layout.settings(isolated_settings(base, tmp / "data"))
        await ensure_topics(s)
        homes = [Household(f"c-{i:05d}", f"m-{i:05d}") for i in range(args.customers)]
        feed = Feed(s, homes, T0)
        await feed.start()
        t = time.monotonic()
        await feed.customers()
        await feed.days(0, args.days - 1)
        await feed.stop()
        total = feed.sent
        took = time.monotonic() - t
        print(f"backlog: {total:,} readings ({args.customers} households x {args.days} days x 48) "
              f"on {s.readings_partitions} partitions, produced in {took:.1f} s", flush=True)  # fmt: skip
        rates: dict[int, dict[str, float]] = {}
        for n in args.workers:
            rates[n] = await run_workers(fresh_group(s, tmp), n, total, tmp, args.timeout)
            r = rates[n]
            print(f"  {n} worker(s): {r['rate']:,.0f} readings/s sustained, all {total:,} in "
                  f"{r['wall']:.1f} s from the processes' start; load: {uptime()}", flush=True)  # fmt: skip
        raw = await raw_rate(s, total)
        print(f"  raw aiokafka consumer (reference): {raw:,.0f} records/s", flush=True)
        report(rates, raw)
        if not args.no_failover:
            print("failover (3 workers, 16 households, ~640 readings/s):", flush=True)
            await failover(cluster, base, tmp, args.resume_timeout)
    finally:
        cluster.stop()
    print(f"load after: {uptime()}")
    return 0


def report(rates: dict[int, dict[str, float]], raw: float) -> None:
    one = rates.get(1, {}).get("rate", float("nan"))
    print("workers | readings/s | x 1 worker | / raw consumer | worker CPU us/reading (all processes)")
    for n, r in rates.items():
        print(f"{n:>7} | {r['rate']:>10,.0f} | {r['rate'] / one:>10.2f} | {r['rate'] / raw:>14.3f} | "
              f"{r['cpu_us']:>8.0f}")  # fmt: skip


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=200)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--timeout", type=float, default=240.0, help="bound of each worker run (s)")
    p.add_argument("--resume-timeout", type=float, default=60.0, help="bound of each failover wait (s)")
    p.add_argument("--no-failover", action="store_true")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="mw-bench-cluster-") as tmp:
        return asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    raise SystemExit(main())
