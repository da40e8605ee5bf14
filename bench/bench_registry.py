"""Benchmark: a worker's start-up with a registry of N customers (prints figures; asserts nothing).

    python bench/bench_registry.py [--customers 100000] [--rounds 2] [--ref-repo DIR] [--profile]

On private topics, consumer groups and Redis prefix of the running local stack (removed at
the end), N registry records are produced to ``customers`` once; then, per round:

- the reference: a raw aiokafka consumer (``getmany``, no group) reading the whole
  ``customers`` topic, bytes only, plus ``orjson.loads`` of each value;
- this checkout's worker (and, with ``--ref-repo DIR``, the worker of another checkout, run
  with that checkout's ``.venv/bin/python`` from its root: e.g. main, for before/after in
  the same run), each started with an empty data dir and a fresh app id (so every round
  applies the whole registry), timed from the process start until the read model's
  ``customers_applied`` counter (mirrored every second) reaches N. The worker is then
  stopped (SIGTERM) and its CPU seconds read from /proc just before.

Rounds interleave the workers (``this``, ``ref``, ``this``, ``ref``, ...); the figure is the
best of the rounds of each, also as a ratio to the reference of the same run. ``--profile``
runs this checkout's worker under cProfile (first round only) and prints the top.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import redis

from meterwatch.cli.devstack.bulk import BatchWriter
from meterwatch.cli.devstack.isolation import delete_groups, list_groups
from meterwatch.keys import Keys
from meterwatch.settings import Settings
from meterwatch.topics import delete_topics, list_topics
from stream.app import prepare_topics

HERE = Path(__file__).resolve().parent.parent


def customer_record(i: int) -> bytes:
    cid = f"bc{i:06d}"
    return orjson.dumps(
        {"customer_id": cid, "meter_ids": [f"bm{i:06d}"], "manager_id": f"mgr-{i % 50}", "timezone": "UTC"}
    )


def worker_env(s: Settings, app_id: str, prefix: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    for name, value in s.model_dump(mode="json").items():
        if value is None or "secret" in name or "auth_header" in name:
            continue
        env[f"MW_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    env.update(MW_APP_ID=app_id, MW_REDIS_PREFIX=prefix, MW_DATA_DIR=str(data_dir))
    return env


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def reference(s: Settings, n: int) -> float:
    """Seconds for a raw aiokafka consumer (+ orjson) to read the whole registry topic."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, group_id=None, enable_auto_commit=False)
    await c.start()
    try:
        parts = c.partitions_for_topic(s.topic_customers) or set()
        if not parts:
            await c._client.force_metadata_update()
            parts = c.partitions_for_topic(s.topic_customers) or set()
        tps = [TopicPartition(s.topic_customers, p) for p in sorted(parts)]
        c.assign(tps)
        t0 = time.perf_counter()
        await c.seek_to_beginning(*tps)
        seen = 0
        while seen < n:
            batch = await c.getmany(timeout_ms=500, max_records=5000)
            for recs in batch.values():
                for r in recs:
                    orjson.loads(r.value)
                seen += len(recs)
        return time.perf_counter() - t0
    finally:
        await c.stop()


def run_worker(
    s: Settings, repo: Path, n: int, tmp: Path, label: str, profile: bool, timeout: float
) -> tuple[float, float, Path | None]:
    """(seconds to apply the registry, CPU seconds, profile path) of one worker start."""
    tag = uuid.uuid4().hex[:6]
    app_id, prefix = f"{s.app_id}-{tag}", f"{s.redis_prefix}{tag}:"
    env = worker_env(s, app_id, prefix, tmp / f"data-{tag}")
    py = repo / ".venv" / "bin" / "python"
    prof = tmp / f"{label}-{tag}.prof" if profile else None
    cmd = [str(py)] + (["-m", "cProfile", "-o", str(prof)] if prof else [])
    cmd += ["-m", "meterwatch.cli", "worker", "--instance", "bench", "--metrics-port", "0"]
    cmd += ["--loglevel", os.environ.get("MW_BENCH_LOGLEVEL", "warning")]
    rds = redis.Redis.from_url(s.redis_url)
    keys = Keys(prefix)
    log_path = tmp / f"{label}-{tag}.log"
    t0 = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(repo))
    elapsed = cpu = float("nan")
    first: float | None = None
    try:
        while time.perf_counter() - t0 < timeout:
            time.sleep(0.1)
            v = rds.hget(keys.metrics("worker"), "customers_applied")
            if v is not None and first is None:
                first = time.perf_counter() - t0
            if v is not None and int(v) >= n:
                elapsed = time.perf_counter() - t0
                break
            if proc.poll() is not None:
                print(f"{label}: worker exited; see {log_path}")
                break
        if proc.poll() is None:
            cpu = cpu_seconds(proc.pid)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for k in rds.scan_iter(match=f"{prefix}*", count=1000):
            rds.delete(k)
        rds.close()
        shutil.rmtree(tmp / f"data-{tag}", ignore_errors=True)
        if os.environ.get("MW_BENCH_KEEP_LOGS"):
            shutil.copy(log_path, Path(os.environ["MW_BENCH_KEEP_LOGS"]) / log_path.name)
    print(f"  ({label}: first customers applied after {first or float('nan'):.1f} s)")
    return elapsed, cpu, prof


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ref-repo", type=Path, help="another checkout whose worker runs interleaved")
    ap.add_argument("--profile", action="store_true", help="cProfile this checkout's worker (first round)")
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    tag = uuid.uuid4().hex[:8]
    base = Settings()
    s = base.model_copy(
        update={
            "topic_customers": f"b{tag}-{base.topic_customers}",
            "topic_readings": f"b{tag}-{base.topic_readings}",
            "topic_dlq": f"b{tag}-{base.topic_dlq}",
            "topic_alerts": f"b{tag}-{base.topic_alerts}",
            "topic_history": f"b{tag}-{base.topic_history}",
            "topic_features": f"b{tag}-{base.topic_features}",
            "topic_segments": f"b{tag}-{base.topic_segments}",
            "redis_prefix": f"mwb{tag}:",
            "app_id": f"b{tag}-meterwatch",
        }
    )
    tmp = Path(tempfile.mkdtemp(prefix="mw-benchreg-"))
    n = args.customers
    print(f"machine: {platform.machine()} {os.cpu_count()} cores (shared), load avg {os.getloadavg()[0]:.1f}")
    from aiokafka import AIOKafkaProducer

    await prepare_topics(s)
    prod = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks=1, linger_ms=5, max_batch_size=1 << 20)
    await prod.start()
    workers: list[tuple[str, Path]] = [("this", HERE)]
    if args.ref_repo is not None:
        workers.append(("ref", args.ref_repo.resolve()))
    results: dict[str, list[tuple[float, float]]] = {"reference": []}
    try:
        cp = BatchWriter(prod, s.topic_customers, s.customers_partitions)
        for i in range(n):
            cp.add(f"bc{i:06d}".encode(), customer_record(i))
        await cp.flush()
        print(f"registry: {n:,} records on {s.customers_partitions} partitions")
        profs: list[Path] = []
        for r in range(args.rounds):
            ref_s = await reference(s, n)
            results["reference"].append((ref_s, float("nan")))
            print(f"round {r + 1} reference (raw aiokafka + orjson): {ref_s:6.2f} s")
            for label, repo in workers:
                prof = args.profile and label == "this" and r == 0
                el, cpu, path = run_worker(s, repo, n, tmp, label, prof, args.timeout)
                if path is not None:
                    profs.append(path)
                results.setdefault(label, []).append((el, cpu))
                print(
                    f"round {r + 1} {label:<4} worker: registry applied in {el:6.1f} s "
                    f"(CPU {cpu:5.1f} s; {1e6 * el / n:5.0f} us/record)  load {os.getloadavg()[0]:.1f}"
                )
        ref_best = min(t for t, _ in results["reference"])
        for label, _ in workers:
            best = min(t for t, _ in results[label])
            print(
                f"best {label}: {best:.1f} s for {n:,} customers = {best / ref_best:.1f} x the raw consumer "
                f"({ref_best:.2f} s)"
            )
        if "ref" in results:
            b_this = min(t for t, _ in results["this"])
            b_ref = min(t for t, _ in results["ref"])
            print(f"this / ref: {b_this / b_ref:.2f} (best of {args.rounds} each)")
        for path in profs:
            if path.exists():
                print("--- worker profile (main thread, by own time) ---")
                pstats.Stats(str(path)).sort_stats("tottime").print_stats(25)
                print("--- by cumulative time ---")
                pstats.Stats(str(path)).sort_stats("cumulative").print_stats(35)
    finally:
        await prod.stop()
        names = [t for t in await list_topics(s) if t.startswith(f"b{tag}-")]
        await delete_topics(s, names)
        await delete_groups(s, [g for g in await list_groups(s) if g.startswith(f"b{tag}-")])
        rds = redis.Redis.from_url(s.redis_url)
        for k in rds.scan_iter(match=f"{s.redis_prefix}*", count=1000):
            rds.delete(k)
        rds.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
