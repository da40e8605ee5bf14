"""Duplicate customer SMS per 1,000 under kill -9 of the notifier and under gateway timeouts.

Run (the local stack must be up: ``meterwatch dev up``):

    python bench/bench_sms_duplicates.py [--sms 1000] [--before PATH] [--json]

Two scenarios, each on its own topics and Redis prefix (removed afterwards), against the
fake SMS gateway of the tests (a real HTTP server on loopback that records every request
and implements the status query of the gateway contract):

* **kill -9**: ``--sms`` alerts (distinct customers, opted in) wait on Kafka; one
  ``meterwatch notifier`` process sends them to a gateway that takes ``--delay-ms`` per
  request (so about 32 SMS are in flight at any time); it is killed with SIGKILL after a
  third and after two thirds of the SMS reached the gateway, and restarted each time;
* **timeouts**: every 10th request to the gateway takes 1 s, more than the notifier's
  timeout (``MW_SMS_TIMEOUT_S=0.3``); the gateway accepted the SMS nonetheless.

A *duplicate* is a request for a message the gateway had already accepted: what a
gateway that ignores ``Idempotency-Key`` would send to the customer's phone twice.
``--before PATH`` runs the same scenarios in the same run against another checkout's
notifier (e.g. the main branch before this change), so the two can be compared directly.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaProducer  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from meterwatch.contracts import Alert, CustomerRecord, CycleRef, Explanation, Observed, SegmentRef  # noqa: E402
from meterwatch.keys import Keys  # noqa: E402
from meterwatch.settings import Settings  # noqa: E402
from meterwatch.topics import delete_consumer_groups, delete_topics, ensure_topics, list_topics  # noqa: E402
from tests.integration.notifier.fakes import FakeGateway  # noqa: E402
from tests.integration.notifier.procs import NotifierProcess  # noqa: E402


def _alert(i: int, tag: str) -> Alert:
    start = dt.date(2025, 1, 1)
    return Alert(
        alert_id=f"{tag}-{i}",
        customer_id=f"d{i}",
        meter_ids=[f"m-d{i}"],
        rule="same_period_reached",
        severity="warning",
        cycle=CycleRef(start=start, end=start + dt.timedelta(days=31)),
        observed=Observed(cycle_to_date_kwh=312.4, same_period_kwh=298.0, ratio=1.05),
        segment=SegmentRef(id=1, label="ordinary"),
        manager_id=f"m{i % 7}",
        triggered_by=dt.datetime(2025, 1, 21, 8, tzinfo=dt.UTC),
        created_at=dt.datetime.now(dt.UTC),
        explanation=Explanation.model_validate({"zh-CN": "本期用电已达去年同期全期用电。", "en": "Reached."}),
        customer_facing=True,
    )


def _settings(base: Settings, gw: FakeGateway, tag: str, **kw: Any) -> Settings:
    upd: dict[str, Any] = {
        f: f"{tag}-{getattr(base, f)}"
        for f in (
            "topic_readings",
            "topic_customers",
            "topic_dlq",
            "topic_alerts",
            "topic_history",
            "topic_features",
            "topic_segments",
        )
    }
    upd.update(
        redis_prefix=f"{tag}:",
        app_id=f"{tag}-meterwatch",
        notifier_group_id=f"{tag}-notifier",
        sms_provider="http",
        sms_http_url=gw.url,
        sms_http_status_url=gw.status_url,
        sms_status_recheck_s=0.5,
        push_webhook_url="",  # manager pushes go to the inbox only
        manager_digest_threshold_per_hour=0,
        quiet_hours_start=0,
        quiet_hours_end=0,
        sms_timeout_s=0.3,
        push_timeout_s=0.3,
        notifier_lease_s=3.0,
        notifier_poll_interval_s=0.05,
        delivery_backoff_base_s=0.05,
        delivery_backoff_max_s=0.4,
        notifier_rate_limit_per_min=0,
    )
    upd.update(kw)
    return base.model_copy(update=upd)


async def _seed(s: Settings, n: int, tag: str) -> None:
    redis = Redis.from_url(s.redis_url)
    keys = Keys(s.redis_prefix)
    records = {
        keys.customer(f"d{i}"): CustomerRecord(
            customer_id=f"d{i}",
            meter_ids=[f"m-d{i}"],
            name="张伟",
            phone=f"+86135{i:08d}",
            manager_id=f"m{i % 7}",
            timezone="Asia/Shanghai",
            language="zh-CN",
            sms_opt_in=True,
        ).model_dump_json()
        for i in range(n)
    }
    await redis.mset(records)
    await redis.aclose()
    await ensure_topics(s, [s.topic_alerts])
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        for i in range(n):
            await producer.send(s.topic_alerts, _alert(i, tag).to_json(), key=f"d{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _settled(s: Settings, gw: FakeGateway, n: int, deadline_s: float = 300) -> None:
    """Every SMS accepted by the gateway and nothing left in the due queue."""
    redis = Redis.from_url(s.redis_url)
    try:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if len(gw.deliveries) >= n and int(await redis.zcard(f"{s.redis_prefix}n:due")) == 0:
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"not settled: {len(gw.deliveries)} of {n} SMS accepted")
    finally:
        await redis.aclose()


async def _cleanup(s: Settings) -> dict[str, int]:
    redis = Redis.from_url(s.redis_url, decode_responses=True)
    try:
        metrics: dict[str, int] = {}
        for k, v in (await redis.hgetall(f"{s.redis_prefix}metrics:notifier")).items():
            assert isinstance(k, str)  # decode_responses=True
            metrics[k] = int(v)
        keys = [k async for k in redis.scan_iter(match=f"{s.redis_prefix}*", count=1000)]
        for i in range(0, len(keys), 500):
            await redis.delete(*keys[i : i + 500])
    finally:
        await redis.aclose()
    prefix = s.topic_alerts.split("-", 1)[0] + "-"
    await delete_topics(s, [t for t in await list_topics(s) if t.startswith(prefix)])
    await delete_consumer_groups(s, [s.notifier_group_id])
    return metrics


def _result(gw: FakeGateway, n: int, metrics: dict[str, int], seconds: float, kills: int) -> dict[str, Any]:
    return {
        "sms": n,
        "requests": len(gw.requests),
        "duplicates": gw.duplicates,
        "duplicates_per_1000": round(1000 * gw.duplicates / n, 1),
        "possible_duplicates_counted": metrics.get('possible_duplicates{channel="sms"}', 0),
        "reconciled": metrics.get('sms_reconciled{outcome="accepted"}', 0),
        "kills": kills,
        "seconds": round(seconds, 1),
    }


async def kill9(base: Settings, n: int, delay_ms: float, code: Path | None, work: Path) -> dict[str, Any]:
    tag = f"bd{uuid.uuid4().hex[:8]}"
    gw = FakeGateway("sms", delay_s=delay_ms / 1000).start()
    s = _settings(base, gw, tag)
    await _seed(s, n, tag)
    t0 = time.monotonic()
    kills = 0
    try:
        for k, share in enumerate((1 / 3, 2 / 3, None)):
            proc = NotifierProcess(s, work, f"{tag}-{k}", code_root=code).start()
            try:
                if share is None:
                    await _settled(s, gw, n)
                    break
                target = int(n * share)
                while len(gw.requests) < target:
                    assert proc.proc is not None and proc.proc.poll() is None, proc.log.read_text()[-2000:]
                    await asyncio.sleep(0.01)
                proc.kill9()
                kills += 1
            finally:
                proc.stop()
        seconds = time.monotonic() - t0
    finally:
        gw.stop()
        metrics = await _cleanup(s)
    return _result(gw, n, metrics, seconds, kills)


async def timeouts(base: Settings, n: int, code: Path | None, work: Path) -> dict[str, Any]:
    tag = f"bt{uuid.uuid4().hex[:8]}"
    gw = FakeGateway("sms", slow_every=10, slow_s=1.0).start()
    s = _settings(base, gw, tag)
    await _seed(s, n, tag)
    t0 = time.monotonic()
    proc = NotifierProcess(s, work, tag, code_root=code).start()
    try:
        await _settled(s, gw, n)
        seconds = time.monotonic() - t0
    finally:
        proc.stop()
        gw.stop()
        metrics = await _cleanup(s)
    return _result(gw, n, metrics, seconds, 0)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    base = Settings()
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sms-") as tmp:
        work = Path(tmp)
        for label, code in (("before", args.before), ("after", None)):
            if label == "before" and code is None:
                continue
            runs[label] = {
                "kill9": await kill9(base, args.sms, args.delay_ms, code, work),
                "timeouts": await timeouts(base, args.sms, code, work),
            }
    return runs


def _print(runs: dict[str, Any]) -> None:
    print(
        f"{'run':8} {'scenario':9} {'SMS':>5} {'requests':>8} {'dup':>5} {'dup/1000':>8} "
        f"{'counted':>7} {'reconciled':>10} {'s':>6}"
    )
    for label, scenarios in runs.items():
        for name, r in scenarios.items():
            print(
                f"{label:8} {name:9} {r['sms']:5d} {r['requests']:8d} {r['duplicates']:5d} "
                f"{r['duplicates_per_1000']:8.1f} {r['possible_duplicates_counted']:7d} "
                f"{r['reconciled']:10d} {r['seconds']:6.1f}"
            )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sms", type=int, default=1000, help="SMS per scenario (default 1000)")
    ap.add_argument("--delay-ms", type=float, default=30.0, help="gateway time per request, kill -9 run")
    ap.add_argument("--before", type=Path, default=None, help="another checkout to measure in the same run")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    result = asyncio.run(main(a))
    print(json.dumps(result, indent=2)) if a.json else _print(result)
