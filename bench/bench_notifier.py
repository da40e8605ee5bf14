"""Benchmark the notifier: notifications per second through moderation to a fake gateway, and
the latency from an alert on Kafka to the gateway request.

Run (the local stack must be up: ``meterwatch dev up``):

    python bench/bench_notifier.py [--burst 2000] [--rate 40] [--seconds 10] [--json]

What it does, on one isolated set of topics and Redis prefix (removed afterwards):

1. starts the fake SMS and push gateways (real HTTP servers on loopback, tests/integration/notifier/fakes.py)
   and one ``meterwatch notifier`` process (SMS over HTTP, pushes to the webhook);
2. burst: puts ``--burst`` alerts (distinct customers, opted in, quiet hours off, digest off)
   on Kafka at once and measures notifications/s (SMS + push) until the gateways saw them all;
3. steady: ``--rate`` alerts/s for ``--seconds`` s and measures p50/p99 from the moment the
   alert was handed to the Kafka producer (acks=all) to the moment the fake gateway received the SMS request;
4. moderation only: the same burst with the console SMS provider and inbox-only pushes, so the
   HTTP gateway (a Python server sharing the 2 cores) is not the bottleneck;
5. references measured in the same run, on the same machine:
   - gateway ceiling: the same gateways hit directly by an httpx client with the notifier's
     concurrency (requests/s) -> the notifier's rate is reported as a ratio of it;
   - bare Kafka hop: a plain aiokafka consumer reading the same kind of messages at the same
     rate (p50/p99 handed to the producer -> consumed) -> the notifier's p99 is reported as a ratio of it.

Machine: 2 cores shared with other jobs; read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from meterwatch.contracts import (  # noqa: E402
    Alert,
    CustomerRecord,
    CycleRef,
    Explanation,
    Observed,
    SegmentRef,
)
from meterwatch.keys import Keys  # noqa: E402
from meterwatch.settings import Settings  # noqa: E402
from meterwatch.topics import delete_topics, ensure_topics, list_topics  # noqa: E402
from notifier.ids import make_nid  # noqa: E402
from tests.integration.notifier.fakes import FakeGateway  # noqa: E402
from tests.integration.notifier.procs import NotifierProcess  # noqa: E402


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def alert(i: int, tag: str) -> Alert:
    import datetime as dt

    start = dt.date(2025, 1, 1)
    return Alert(
        alert_id=f"{tag}-{i}",
        customer_id=f"b{i}",
        rule="same_period_reached",
        cycle=CycleRef(start=start, end=dt.date(2025, 2, 1)),
        observed=Observed(cycle_to_date_kwh=312.4 + i % 50, same_period_kwh=298.0),
        segment=SegmentRef(id=1, label="ordinary"),
        manager_id=f"m{i % 20}",
        triggered_by=dt.datetime(2025, 1, 21, 8, tzinfo=dt.UTC),
        created_at=dt.datetime.now(dt.UTC),
        explanation=Explanation.model_validate(
            {"zh-CN": "本期用电已达去年同期。", "en": "Reached last year's cycle."}
        ),
    )


async def seed(redis: Redis, s: Settings, n: int) -> None:
    await seed_range(redis, s, 0, n)


async def seed_range(redis: Redis, s: Settings, start: int, n: int) -> None:
    keys = Keys(s.redis_prefix)
    for lo in range(start, n, 1000):
        await redis.mset(
            {
                keys.customer(f"b{i}"): CustomerRecord(
                    customer_id=f"b{i}",
                    name="张伟",
                    phone=f"+86135{i:08d}",
                    manager_id=f"m{i % 20}",
                    sms_opt_in=True,
                ).model_dump_json()
                for i in range(lo, min(n, lo + 1000))
            }
        )


async def gateway_ceiling(gw: FakeGateway, n: int, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as c:

        async def one(i: int) -> None:
            async with sem:
                await c.post(
                    gw.url,
                    json={"to": "+8613500000000", "text": "x" * 60, "reference": f"ref-{i}"},
                    headers={"Idempotency-Key": f"ref-{i}"},
                )

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - t0)


async def bare_kafka_latency(s: Settings, rate: float, seconds: float) -> list[float]:
    topic = s.topic_readings  # an isolated topic of this run, otherwise unused here
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=s.kafka_bootstrap,
        group_id=f"{s.app_id}-bare",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    for _ in range(100):  # wait for the partition assignment
        if consumer.assignment():
            break
        await asyncio.sleep(0.1)
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
    await producer.start()
    sent: dict[str, float] = {}
    lat: list[float] = []
    n = int(rate * seconds)

    async def consume() -> None:
        while len(lat) < n:
            batch = await consumer.getmany(timeout_ms=200)
            now = time.time()
            for recs in batch.values():
                for r in recs:
                    k = r.key.decode()
                    if k in sent:
                        lat.append(now - sent[k])

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.5)
    for i in range(n):
        a = alert(i, "bare")
        sent[f"k{i}"] = time.time()
        await producer.send_and_wait(topic, a.to_json(), key=f"k{i}".encode())
        await asyncio.sleep(1 / rate)
    try:
        await asyncio.wait_for(task, timeout=30)
    except TimeoutError:
        pass  # report what arrived
    finally:
        await producer.stop()
        await consumer.stop()
    return lat


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    base = Settings()
    tag = uuid.uuid4().hex[:8]
    s = base.model_copy(
        update={
            **{
                f: f"b{tag}-{getattr(base, f)}"
                for f in (
                    "topic_readings",
                    "topic_customers",
                    "topic_dlq",
                    "topic_alerts",
                    "topic_history",
                    "topic_features",
                    "topic_segments",
                )
            },
            "redis_prefix": f"mwb{tag}:",
            "app_id": f"b{tag}",
            "notifier_group_id": f"b{tag}-notifier",
        }
    )
    sms_gw, push_gw = FakeGateway("sms").start(), FakeGateway("push").start()
    s = s.model_copy(
        update={
            "sms_provider": "http",
            "sms_http_url": sms_gw.url,
            "push_webhook_url": push_gw.url,
            "quiet_hours_start": 0,
            "quiet_hours_end": 0,
            "manager_digest_threshold_per_hour": 0,
            "notifier_poll_interval_s": 0.02,
        }
    )
    await ensure_topics(s)
    redis = Redis.from_url(s.redis_url, decode_responses=True)
    out: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores (shared), {platform.python_implementation()} "
        f"{platform.python_version()}"
    }
    proc = None
    try:
        total = args.burst + int(args.rate * args.seconds)
        await seed(redis, s, total)
        # reference 1: the gateways' own ceiling
        ref_rps = await gateway_ceiling(sms_gw, 2000, s.notifier_dispatch_concurrency)
        sms_gw.requests.clear()
        sms_gw.deliveries.clear()
        out["reference_gateway_direct_rps"] = round(ref_rps, 1)

        proc = NotifierProcess(s, Path(tempfile.mkdtemp(prefix="mwbench-")), "bench").start()
        await asyncio.sleep(2.0)  # consumer joins its group
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            # --- burst ----------------------------------------------------------------------
            t0 = time.time()
            for i in range(args.burst):
                a = alert(i, tag)
                await producer.send(s.topic_alerts, a.to_json(), key=a.customer_id.encode())
            await producer.flush()
            ok_sms = await asyncio.to_thread(sms_gw.wait_requests, args.burst, 180)
            ok_push = await asyncio.to_thread(push_gw.wait_requests, args.burst, 60)
            t_end = max(r.at for r in sms_gw.requests + push_gw.requests)
            n_notif = len(sms_gw.requests) + len(push_gw.requests)
            rate = n_notif / (t_end - t0)
            out["burst_alerts"] = args.burst
            out["burst_complete"] = bool(ok_sms and ok_push)
            out["burst_notifications_per_s"] = round(rate, 1)
            out["burst_alerts_per_s"] = round(rate / 2, 1)
            out["ratio_vs_gateway_direct"] = round(rate / ref_rps, 3)
            # --- steady: latency alert-on-Kafka -> gateway request --------------------------------
            sent_at: dict[str, float] = {}
            n = int(args.rate * args.seconds)
            for j in range(n):
                i = args.burst + j
                a = alert(i, tag)
                sent_at[make_nid("sms", a.alert_id)] = time.time()
                await producer.send_and_wait(s.topic_alerts, a.to_json(), key=a.customer_id.encode())
                await asyncio.sleep(1 / args.rate)
            await asyncio.to_thread(sms_gw.wait_requests, args.burst + n, 60)
            lat = [r.at - sent_at[r.reference] for r in sms_gw.requests if r.reference in sent_at]
            out["steady_rate_alerts_per_s"] = args.rate
            out["steady_samples"] = len(lat)
            out["latency_p50_ms"] = round(statistics.median(lat) * 1000, 1)
            out["latency_p99_ms"] = round(pct(lat, 0.99) * 1000, 1)
            dupes = len(sms_gw.requests) - len(set(sms_gw.refs()))
            out["duplicate_sms_requests"] = dupes
        finally:
            await producer.stop()
        proc.stop()
        proc = None
        # --- moderation only: console SMS, inbox-only pushes (no HTTP gateway in the way) -------
        s2 = s.model_copy(update={"sms_provider": "console", "push_webhook_url": ""})
        proc = NotifierProcess(s2, Path(tempfile.mkdtemp(prefix="mwbench-")), "console").start()
        await asyncio.sleep(2.0)
        keys = Keys(s.redis_prefix)

        async def done() -> int:
            m = await redis.hgetall(keys.metrics("notifier"))
            return int(m.get("sms_sent", 0)) + int(m.get("push_sent", 0))

        before = await done()
        base_i = args.burst + int(args.rate * args.seconds)
        await seed_range(redis, s, base_i, base_i + args.burst)
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            t0 = time.time()
            for i in range(base_i, base_i + args.burst):
                a = alert(i, tag)
                await producer.send(s.topic_alerts, a.to_json(), key=a.customer_id.encode())
            await producer.flush()
            deadline = time.time() + 180
            for _ in range(10**6):  # poll the cluster-wide counters until all are sent
                if await done() - before >= 2 * args.burst or time.time() > deadline:
                    break
                await asyncio.sleep(0.05)
            t1 = time.time()
        finally:
            await producer.stop()
        got = await done() - before
        out["moderation_only_notifications_per_s"] = round(got / (t1 - t0), 1)
        out["moderation_only_complete"] = got >= 2 * args.burst
        out["ratio_moderation_only_vs_gateway_direct"] = round(got / (t1 - t0) / ref_rps, 3)
        proc.stop()
        proc = None
        # reference 2: a bare Kafka hop at the same rate
        bare = await bare_kafka_latency(s, args.rate, args.seconds)
        out["reference_bare_kafka_p50_ms"] = round(statistics.median(bare) * 1000, 1)
        out["reference_bare_kafka_p99_ms"] = round(pct(bare, 0.99) * 1000, 1)
        out["ratio_p99_vs_bare_kafka"] = round(out["latency_p99_ms"] / out["reference_bare_kafka_p99_ms"], 2)
    finally:
        if proc is not None:
            proc.stop()
        sms_gw.stop()
        push_gw.stop()
        found = [k async for k in redis.scan_iter(match=f"{s.redis_prefix}*", count=1000)]
        for i in range(0, len(found), 500):
            await redis.delete(*found[i : i + 500])
        await redis.aclose()
        names = [t for t in await list_topics(s) if t.startswith(f"b{tag}-")]
        await delete_topics(s, names)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--burst", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=40.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"machine: {res['machine']}")
    r = res.get
    print(f"reference  gateway hit directly ({r('reference_gateway_direct_rps')} req/s)")
    print(
        f"burst      {r('burst_alerts')} alerts: {r('burst_notifications_per_s')} notifications/s "
        f"(SMS+push; {r('burst_alerts_per_s')} alerts/s) = {r('ratio_vs_gateway_direct')} x direct"
    )
    print(
        f"steady     {r('steady_rate_alerts_per_s')} alerts/s, {r('steady_samples')} samples: "
        f"p50 {r('latency_p50_ms')} ms, p99 {r('latency_p99_ms')} ms (produced -> gateway request)"
    )
    print(
        f"reference  bare Kafka hop: p50 {r('reference_bare_kafka_p50_ms')} ms, "
        f"p99 {r('reference_bare_kafka_p99_ms')} ms -> notifier p99 = {r('ratio_p99_vs_bare_kafka')} x"
    )
    print(
        f"moderation {r('moderation_only_notifications_per_s')} notifications/s with the console SMS and "
        f"inbox-only pushes (no gateway) = {r('ratio_moderation_only_vs_gateway_direct')} x direct gateway"
    )
    print(f"duplicates {r('duplicate_sms_requests')} SMS requests")


if __name__ == "__main__":
    main()
