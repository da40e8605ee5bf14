"""Benchmark of the local stack: `meterwatch dev up|down` times and broker round trips.

Runs on an ALTERNATE stack (free ports, a temporary MW_DATA_DIR, the shared jar
cache), never on the shared one, and stops it at the end. Prints absolute
figures and ratios against references measured in the same run:

* lifecycle times against a bare JVM start (``java -version``);
* Kafka produce->consume latency against a Redis PING round trip.

Usage:  python bench/bench_stack.py [--messages 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meterwatch.cli.devstack import down, ensure_kafka_jars
from meterwatch.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}")
    return time.perf_counter() - t0


async def _round_trips(settings: Settings, messages: int) -> dict[str, float]:
    import redis.asyncio as aioredis
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from meterwatch.topics import ensure_topics

    await ensure_topics(settings)
    topic = settings.topic_readings
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="latest", group_id=None
    )
    await producer.start()
    await consumer.start()
    r = aioredis.Redis.from_url(settings.redis_url)
    try:
        await consumer.seek_to_end()
        await asyncio.sleep(0.5)
        # single-message latency: send, then wait for it on the consumer
        lat = []
        for i in range(50):
            t0 = time.perf_counter()
            await producer.send_and_wait(topic, f"{i}".encode(), key=b"m")
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                if any(rec.value == f"{i}".encode() for recs in batch.values() for rec in recs):
                    break
            lat.append(time.perf_counter() - t0)
        pings = []
        for _ in range(200):
            t0 = time.perf_counter()
            await r.ping()
            pings.append(time.perf_counter() - t0)
        # throughput: produce N readings-sized messages, read them back
        payload = b'{"meter_id":"m-000001","ts":"2024-01-01T00:30:00+00:00","kwh":0.123,"interval_s":1800}'
        t0 = time.perf_counter()
        futures = [await producer.send(topic, payload, key=f"m-{i % 500}".encode()) for i in range(messages)]
        await asyncio.gather(*futures)
        produced = time.perf_counter() - t0
        got = 0
        while got < messages:
            batch = await consumer.getmany(timeout_ms=2000, max_records=5000)
            n = sum(len(v) for v in batch.values())
            if n == 0:
                break
            got += n
        total = time.perf_counter() - t0
        t0 = time.perf_counter()
        async with r.pipeline(transaction=False) as pipe:
            for i in range(messages):
                pipe.set(f"{settings.redis_prefix}bench:{i}", payload)
            await pipe.execute()
        redis_set = time.perf_counter() - t0
    finally:
        await producer.stop()
        await consumer.stop()
        await r.aclose()
    return {
        "kafka_rt_p50_ms": statistics.median(lat) * 1000,
        "redis_ping_p50_ms": statistics.median(pings) * 1000,
        "produce_per_s": messages / produced,
        "roundtrip_per_s": got / total,
        "consumed": float(got),
        "redis_set_per_s": messages / redis_set,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="warm starts per mode (default 3)")
    args = parser.parse_args()

    base = Settings()
    ensure_kafka_jars(base)
    tmp = Path(tempfile.mkdtemp(prefix="mw-bench-stack-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    env.update(
        MW_KAFKA_BOOTSTRAP=f"127.0.0.1:{_free_port()}",
        MW_KAFKA_CONTROLLER_PORT=str(_free_port()),
        MW_REDIS_URL=f"redis://127.0.0.1:{_free_port()}/0",
        MW_DATA_DIR=str(tmp / "data"),
        MW_CACHE_DIR=str(base.cache_dir),
    )
    settings = Settings(
        kafka_bootstrap=env["MW_KAFKA_BOOTSTRAP"],
        kafka_controller_port=int(env["MW_KAFKA_CONTROLLER_PORT"]),
        redis_url=env["MW_REDIS_URL"],
        data_dir=Path(env["MW_DATA_DIR"]),
        cache_dir=base.cache_dir,
    )
    cli = [sys.executable, "-m", "meterwatch.cli", "dev"]
    jvm = statistics.median(_timed(["java", "-version"], env) for _ in range(3))
    warm: dict[str, list[float]] = {"true": [], "false": []}
    try:
        first = _timed([*cli, "up"], env)
        again = _timed([*cli, "up"], env)
        rt = asyncio.run(_round_trips(settings, args.messages))
        stops = [_timed([*cli, "down"], env)]
        # warm starts, alternating with and without the class-data-sharing archive
        for _ in range(args.rounds):
            for cds in ("false", "true"):
                warm[cds].append(_timed([*cli, "up", "--no-topics"], {**env, "MW_KAFKA_CDS": cds}))
                stops.append(_timed([*cli, "down"], env))
    finally:
        down(settings)
    warm_plain, warm_cds = statistics.median(warm["false"]), statistics.median(warm["true"])
    print(
        f"machine: {os.cpu_count()} cores (shared with other work), {platform.platform()}, "
        f"Python {platform.python_version()}"
    )
    print(
        f"reference: bare JVM start (java -version) {jvm:.2f} s; "
        f"Redis PING p50 {rt['redis_ping_p50_ms']:.2f} ms"
    )
    print("lifecycle                           seconds   x JVM start")
    for name, t in (
        ("first dev up (format + start)", first),
        ("dev up while running (no-op)", again),
        (f"warm dev up, no CDS (median {args.rounds})", warm_plain),
        (f"warm dev up, CDS (median {args.rounds})", warm_cds),
        ("dev down (median)", statistics.median(stops)),
    ):
        print(f"  {name:<34}{t:>7.2f}   {t / jvm:>8.1f}")
    print(f"  class-data sharing: warm dev up takes {warm_cds / warm_plain:.2f} x the time without it")
    print("broker (loopback, acks=all)")
    print(
        f"  produce->consume p50 latency   {rt['kafka_rt_p50_ms']:.2f} ms"
        f" = {rt['kafka_rt_p50_ms'] / rt['redis_ping_p50_ms']:.1f} x Redis PING"
    )
    print(
        f"  produce {args.messages} readings         {rt['produce_per_s']:.0f} msg/s"
        f" = {rt['produce_per_s'] / rt['redis_set_per_s']:.2f} x Redis pipelined SET"
    )
    print(
        f"  produce + consume back         {rt['roundtrip_per_s']:.0f} msg/s ({rt['consumed']:.0f} consumed)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
