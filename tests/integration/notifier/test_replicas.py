"""`meterwatch notifier` as real processes: killed with SIGKILL mid-batch, and two replicas at once."""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from meterwatch.contracts import Alert
from meterwatch.settings import Settings
from notifier.ids import make_nid

from .conftest import Tokens, make_alert, make_customer, notifier_settings, put_customers, wait_until
from .fakes import FakeGateway
from .procs import NotifierProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _settings(mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway) -> Settings:
    return notifier_settings(
        mw_settings,
        sms_gw,
        push_gw,
        manager_digest_threshold_per_hour=0,  # every alert is pushed individually here
        notifier_lease_s=3.0,
        notifier_poll_interval_s=0.05,
    )


async def _nothing_due(redis: Redis, s: Settings) -> None:
    """Every notification is settled (none waits, none is claimed): no further request can go out."""

    async def empty() -> bool:
        return int(await redis.zcard(f"{s.redis_prefix}n:due")) == 0

    await wait_until(empty, timeout=60, what="an empty due queue")


async def _seed(redis: Redis, s: Settings, n: int, start: int = 0) -> list[Alert]:
    customers = [
        make_customer(f"k{i}", phone=f"+86135{i:08d}", manager_id=f"m{i % 7}") for i in range(start, n)
    ]
    await put_customers(redis, s, *customers)
    return [make_alert(c.customer_id, manager_id=c.manager_id) for c in customers]


async def test_killed_mid_batch_and_restarted_notifies_every_alert_exactly_once(
    mw_settings: Settings,
    sms_gw: FakeGateway,
    push_gw: FakeGateway,
    redis: Redis,
    kafka_producer: AIOKafkaProducer,
    tmp_path: Path,
) -> None:
    s = _settings(mw_settings, sms_gw, push_gw)
    n = 240
    alerts = await _seed(redis, s, n)
    sms_gw.delay_s = 0.02  # a gateway that takes a little time, so the kill lands mid-batch
    for a in alerts[: n // 2]:
        await kafka_producer.send(s.topic_alerts, a.to_json(), key=a.customer_id.encode())
    await kafka_producer.flush()

    first = NotifierProcess(s, tmp_path, "first").start()
    try:
        assert await asyncio.to_thread(sms_gw.wait_requests, 40, 30)
        first.kill9()
    finally:
        first.kill9()
    sent_before_kill = len(sms_gw.requests)
    assert sent_before_kill < n, "the kill came too late to be mid-batch"
    # more alerts arrive while no notifier runs: they wait in Kafka
    for a in alerts[n // 2 :]:
        await kafka_producer.send(s.topic_alerts, a.to_json(), key=a.customer_id.encode())
    await kafka_producer.flush()
    # ... and some are redelivered by an at-least-once producer
    for a in alerts[:20]:
        await kafka_producer.send(s.topic_alerts, a.to_json(), key=a.customer_id.encode())
    await kafka_producer.flush()

    # every request the killed process had on the wire has reached the gateway by now (two
    # produce rounds later); what the gateway receives from here on, the second process sent
    second_started_at = time.time()
    second = NotifierProcess(s, tmp_path, "second").start()
    try:
        assert await asyncio.to_thread(sms_gw.wait_deliveries, n, 60), len(sms_gw.deliveries)
        assert await asyncio.to_thread(push_gw.wait_deliveries, n, 30), len(push_gw.deliveries)
        await _nothing_due(redis, s)  # every notification settled: nothing can be retaken and resent
    finally:
        second.stop()

    expected = {make_nid("sms", a.alert_id) for a in alerts}
    assert set(sms_gw.deliveries) == expected
    assert set(push_gw.deliveries) == {make_nid("push", a.alert_id) for a in alerts}
    # An SMS the gateway received just before SIGKILL, whose outcome the notifier never recorded,
    # was recorded as in flight before it went out: the next replica asked the gateway for its
    # status instead of sending it again. Not one SMS crossed the wire twice.
    m = await redis.hgetall(f"{s.redis_prefix}metrics:notifier")
    assert int(m["alerts_ingested"]) == n  # each alert recorded once, whatever Kafka redelivered
    assert int(m.get('sms_reconciled{outcome="accepted"}', 0)) >= 1  # the kill did land mid-send
    # (on a machine so loaded that a send outlives its timeout, a resend may follow an unknown
    # outcome: every such duplicate on the wire is counted)
    assert sms_gw.duplicates <= int(m.get('possible_duplicates{channel="sms"}', 0))
    # pushes to managers are not reconciled: a push in flight at the kill is repeated (same key)
    pushes = collections.Counter(push_gw.refs())
    assert all(c <= 2 for c in pushes.values())
    first_seen: dict[str, float] = {}
    for req in push_gw.requests:
        first_seen.setdefault(req.reference, req.at)
    # a push repeated although the second process sent it first is a retry after an unknown
    # outcome (the gateway answered later than the timeout, as on a loaded CI machine): each
    # one is counted, like the SMS above (CI of 2026-11-30 saw one). One the killed process had
    # on the wire reaches the gateway after the kill, and is repeated by design (above); a later
    # CI run saw one counted as late when the boundary was the kill's own time
    late = [r for r, c in pushes.items() if c > 1 and first_seen[r] > second_started_at]
    t0 = second_started_at
    when = {r: [round(q.at - t0, 3) for q in push_gw.requests if q.reference == r] for r in late}
    assert len(late) <= int(m.get('possible_duplicates{channel="push"}', 0)), (when, m)


async def test_two_replicas_never_double_send(
    mw_settings: Settings,
    sms_gw: FakeGateway,
    push_gw: FakeGateway,
    redis: Redis,
    kafka_producer: AIOKafkaProducer,
    tmp_path: Path,
) -> None:
    from meterwatch.auth import create_token
    from meterwatch.keys import Keys

    s = _settings(mw_settings, sms_gw, push_gw)
    n = 240
    alerts = await _seed(redis, s, n)
    ops, _ = await create_token(redis, Keys(s.redis_prefix), "ops")
    a, b = NotifierProcess(s, tmp_path, "a").start(), NotifierProcess(s, tmp_path, "b").start()
    try:
        for al in alerts:
            await kafka_producer.send(s.topic_alerts, al.to_json(), key=al.customer_id.encode())
        await kafka_producer.flush()
        # the same alerts also arrive over HTTP at both replicas at once
        async with httpx.AsyncClient(timeout=20) as c:
            h = Tokens.h(ops)
            rs = await asyncio.gather(
                *(
                    c.post(f"{p.url}/v1/alerts", content=al.to_json(), headers=h)
                    for al in alerts[:60]
                    for p in (a, b)
                )
            )
            assert all(r.status_code == 202 for r in rs)
            # two different alerts of one customer's cycle race on the two replicas: one SMS only
            racers = [make_customer(f"race{i}", phone=f"+86136{i:08d}") for i in range(30)]
            await put_customers(redis, s, *racers)
            pairs = [
                (
                    make_alert(c.customer_id, rule="same_period_reached"),
                    make_alert(c.customer_id, rule="sudden_increase"),
                )
                for c in racers
            ]
            rs = await asyncio.gather(
                *(
                    c.post(f"{p.url}/v1/alerts", content=al.to_json(), headers=h)
                    for pair in pairs
                    for al, p in zip(pair, (a, b), strict=True)
                )
            )
        assert all(r.status_code == 202 for r in rs)
        sms_status = [{x["channel"]: x for x in r.json()["notifications"]}["sms"]["status"] for r in rs]
        assert sms_status.count("queued") == 30 and sms_status.count("suppressed") == 30
        total = n + 30
        assert await asyncio.to_thread(sms_gw.wait_deliveries, total, 60), len(sms_gw.deliveries)
        assert await asyncio.to_thread(push_gw.wait_deliveries, n + 60, 30)
        await _nothing_due(redis, s)
    finally:
        a.stop()
        b.stop()
    # never two replicas on one SMS; a resend after an unknown outcome (a send that outlived its
    # timeout on a loaded machine) is the only way to a second request, and it is counted
    m = await redis.hgetall(f"{s.redis_prefix}metrics:notifier")
    counted = int(m.get('possible_duplicates{channel="sms"}', 0))
    assert len(sms_gw.requests) - total == sms_gw.duplicates <= counted
    per_phone = collections.Counter(r.body["to"] for r in sms_gw.deliveries.values())
    assert all(per_phone[c.phone] == 1 for c in racers)
    assert len(push_gw.deliveries) == n + 60  # every alert reached the manager, each once ...
    assert len(push_gw.requests) - (n + 60) <= int(m.get('possible_duplicates{channel="push"}', 0))
    # both replicas did part of the work, and no log line carries a phone number in clear
    la, lb = a.log.read_text(), b.log.read_text()
    assert "Traceback" not in la + lb
    done = [log.count(" sent to ") + log.count("the gateway has it") for log in (la, lb)]
    assert done[0] > 0 and done[1] > 0 and sum(done) == total
    assert "+86135" not in la + lb and "+86*******" in la + lb
