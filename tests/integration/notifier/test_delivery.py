"""The notifier on the real Kafka and Redis, with fake SMS and push gateways on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from meterwatch.contracts import SegmentRef
from meterwatch.settings import Settings
from notifier.clock import FixedClock

from .conftest import (
    Tokens,
    dispatcher_passes,
    make_alert,
    make_customer,
    metric_value,
    notifier_settings,
    put_customers,
    run_notifier,
    wait_until,
)
from .fakes import FakeGateway

pytestmark = pytest.mark.integration
UTC = dt.UTC


async def status_of(client: httpx.AsyncClient, ops: str, nid: str) -> dict[str, Any]:
    r = await client.get(f"/v1/notifications/{nid}", headers=Tokens.h(ops))
    assert r.status_code == 200, r.text
    view: dict[str, Any] = r.json()
    return view


async def nids_of(client: httpx.AsyncClient, ops: str, alert_id: str) -> dict[str, str]:
    r = await client.get(f"/v1/alerts/{alert_id}/notifications", headers=Tokens.h(ops))
    assert r.status_code == 200, r.text
    return {n["channel"]: n["notification_id"] for n in r.json()["notifications"]}


async def test_same_alert_twice_over_kafka_and_http_gives_one_sms(
    nsettings: Settings,
    redis: Redis,
    tokens: Tokens,
    sms_gw: FakeGateway,
    push_gw: FakeGateway,
    kafka_producer: AIOKafkaProducer,
) -> None:
    await put_customers(redis, nsettings, make_customer("c1"))
    alert = make_alert("c1")
    async with run_notifier(nsettings) as n:
        # twice on Kafka, once more over HTTP
        for _ in range(2):
            await kafka_producer.send_and_wait(nsettings.topic_alerts, alert.to_json(), key=b"c1")
        assert await asyncio.to_thread(sms_gw.wait_requests, 1, 20)
        r = await n.client.post("/v1/alerts", content=alert.to_json(), headers=Tokens.h(tokens.ops))
        assert r.status_code == 202, r.text
        assert r.json()["duplicate"] is True
        await asyncio.to_thread(push_gw.wait_requests, 1, 10)
        consumer = n.app.state.consumer
        await wait_until(lambda: consumer.processed >= 2, what="both Kafka copies consumed")
        await dispatcher_passes(n.app)  # anything a duplicate had queued would have gone out now
        nids = await nids_of(n.client, tokens.ops, alert.alert_id)
    assert len(sms_gw.requests) == 1
    req = sms_gw.requests[0]
    assert req.body["to"] == "+8613800138000"
    assert req.reference == nids["sms"] == req.body["reference"]
    assert req.headers["X-Api-Key"] == "k-test"  # the configured gateway auth header
    assert "312" in req.body["text"] and "298" in req.body["text"]
    assert len(push_gw.requests) == 1
    assert push_gw.requests[0].body["alert"]["alert_id"] == alert.alert_id


async def test_gateway_500s_then_recovery_delivers_exactly_once(
    nsettings: Settings, redis: Redis, tokens: Tokens, sms_gw: FakeGateway
) -> None:
    await put_customers(redis, nsettings, make_customer("c2"))
    sms_gw.fail_next = 3
    alert = make_alert("c2")
    async with run_notifier(nsettings, consume=False) as n:
        r = await n.client.post("/v1/alerts", content=alert.to_json(), headers=Tokens.h(tokens.ops))
        assert r.status_code == 202
        sms_nid = {x["channel"]: x["notification_id"] for x in r.json()["notifications"]}["sms"]

        async def sent() -> dict[str, Any] | None:
            s = await status_of(n.client, tokens.ops, sms_nid)
            return s if s["status"] == "sent" else None

        s = await wait_until(sent, timeout=20)
    assert len(sms_gw.requests) == 4  # 3 failures + 1 success
    assert set(sms_gw.refs()) == {sms_nid}
    assert len(sms_gw.deliveries) == 1
    assert s["attempts"] == 4
    statuses = [e["status"] for e in s["history"]]
    assert statuses == ["queued", "retrying", "retrying", "retrying", "sent"]
    assert s["phone"] != "+8613800138000" and s["phone"].endswith("8000")


async def test_gateway_down_fails_and_escalates_to_manager(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = notifier_settings(mw_settings, sms_gw, push_gw, delivery_max_attempts=3)
    await put_customers(redis, s, make_customer("c3"))
    sms_gw.fail_always = True
    alert = make_alert("c3")
    async with run_notifier(s, consume=False) as n:
        await n.client.post("/v1/alerts", content=alert.to_json(), headers=Tokens.h(tokens.ops))
        nids = await nids_of(n.client, tokens.ops, alert.alert_id)

        async def failed() -> dict[str, Any] | None:
            st = await status_of(n.client, tokens.ops, nids["sms"])
            return st if st["status"] == "failed" else None

        st = await wait_until(failed, timeout=20)
        assert st["attempts"] == 3
        await asyncio.to_thread(push_gw.wait_requests, 2, 10)
        inbox = (await n.client.get("/v1/managers/mgr-1/inbox", headers=Tokens.h(tokens.mgr1))).json()
    kinds = [i["kind"] for i in inbox["items"]]
    assert kinds == ["escalation", "alert"]  # newest first
    assert nids["sms"] in inbox["items"][0]["notification_ids"]
    pushes = [b["kind"] for b in push_gw.bodies()]
    assert sorted(pushes) == ["alert", "escalation"]
    assert len(sms_gw.requests) == 3


async def test_quiet_hours_defer_to_the_morning_never_drop(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = notifier_settings(mw_settings, sms_gw, push_gw, quiet_hours_start=21, quiet_hours_end=8)
    await put_customers(redis, s, make_customer("c4", timezone="Asia/Shanghai"))
    clock = FixedClock(dt.datetime(2025, 1, 21, 15, 30, tzinfo=UTC))  # 23:30 in Shanghai
    alert = make_alert("c4")
    async with run_notifier(s, clock=clock, consume=False) as n:
        r = await n.client.post("/v1/alerts", content=alert.to_json(), headers=Tokens.h(tokens.ops))
        refs = {x["channel"]: x for x in r.json()["notifications"]}
        assert refs["sms"]["status"] == "deferred"
        assert refs["sms"]["reason"] == "moderation.quiet_hours"
        await asyncio.to_thread(push_gw.wait_requests, 1, 10)  # the manager is told at once
        await dispatcher_passes(n.app)
        assert sms_gw.requests == []
        st = await status_of(n.client, tokens.ops, refs["sms"]["notification_id"])
        assert st["due_at"] == "2025-01-22T00:00:00Z"  # 08:00 local
        clock.set(dt.datetime(2025, 1, 21, 23, 59, tzinfo=UTC))  # 07:59 local: still quiet
        await dispatcher_passes(n.app)
        assert sms_gw.requests == []
        clock.set(dt.datetime(2025, 1, 22, 0, 0, 5, tzinfo=UTC))  # 08:00:05 local
        assert await asyncio.to_thread(sms_gw.wait_requests, 1, 10)
        await wait_until(lambda: _status_is(n.client, tokens.ops, refs["sms"]["notification_id"], "sent"))
        await dispatcher_passes(n.app)
    assert len(sms_gw.requests) == 1


async def test_opt_out_by_sms_and_opt_in_by_api(
    nsettings: Settings, sms_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    phone = "+8613900139000"
    await put_customers(redis, nsettings, make_customer("c5", phone=phone))
    clock = FixedClock(dt.datetime(2025, 1, 21, 3, 0, tzinfo=UTC))
    async with run_notifier(nsettings, clock=clock, consume=False) as n:
        h = Tokens.h(tokens.ops)
        # the first SMS goes out (and indexes the phone for replies)
        a1 = make_alert("c5", cycle_start=dt.date(2025, 1, 1))
        await n.client.post("/v1/alerts", content=a1.to_json(), headers=h)
        assert await asyncio.to_thread(sms_gw.wait_requests, 1, 10)
        # the customer replies 退订
        r = await n.client.post("/v1/sms/inbound", json={"from": phone, "text": " 退订 "}, headers=h)
        assert r.status_code == 200 and r.json() == {
            "action": "opt_out",
            "customer_id": "c5",
            "notification_id": None,
            "detail": "",
        }
        clock.advance(40 * 86400)  # past the min days between two SMS
        a2 = make_alert("c5", cycle_start=dt.date(2025, 3, 1))
        r = await n.client.post("/v1/alerts", content=a2.to_json(), headers=h)
        sms2 = {x["channel"]: x for x in r.json()["notifications"]}["sms"]
        assert (sms2["status"], sms2["reason"]) == ("suppressed", "moderation.opted_out")
        c = (await n.client.get("/v1/customers/c5/sms-consent", headers=Tokens.h(tokens.mgr1))).json()
        assert c["opt_in"] is False and c["source"] == "override"
        # manager 2 may not touch manager 1's customer
        r = await n.client.put(
            "/v1/customers/c5/sms-consent", json={"opt_in": True}, headers=Tokens.h(tokens.mgr2)
        )
        assert r.status_code == 404
        # opt in again by API (the customer's own manager)
        r = await n.client.put(
            "/v1/customers/c5/sms-consent", json={"opt_in": True}, headers=Tokens.h(tokens.mgr1)
        )
        assert r.status_code == 200 and r.json()["opt_in"] is True
        clock.advance(40 * 86400)
        a3 = make_alert("c5", cycle_start=dt.date(2025, 5, 1))
        await n.client.post("/v1/alerts", content=a3.to_json(), headers=h)
        assert await asyncio.to_thread(sms_gw.wait_requests, 2, 10)
        await dispatcher_passes(n.app)
    assert len(sms_gw.requests) == 2
    assert [b["to"] for b in sms_gw.bodies()] == [phone, phone]


async def test_opt_out_while_deferred_is_respected_at_send_time(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = notifier_settings(mw_settings, sms_gw, push_gw, quiet_hours_start=21, quiet_hours_end=8)
    await put_customers(
        redis, s, make_customer("c6", phone="+447700900123", timezone="Europe/London", language="en")
    )
    clock = FixedClock(dt.datetime(2025, 1, 21, 22, 0, tzinfo=UTC))
    async with run_notifier(s, clock=clock, consume=False) as n:
        h = Tokens.h(tokens.ops)
        r = await n.client.post("/v1/alerts", content=make_alert("c6").to_json(), headers=h)
        sms = {x["channel"]: x for x in r.json()["notifications"]}["sms"]
        assert sms["status"] == "deferred"
        r = await n.client.post("/v1/sms/inbound", json={"from": "+447700900123", "text": "STOP"}, headers=h)
        assert r.json()["action"] == "opt_out"
        clock.set(dt.datetime(2025, 1, 22, 8, 1, tzinfo=UTC))

        async def done() -> dict[str, Any] | None:
            st = await status_of(n.client, tokens.ops, sms["notification_id"])
            return st if st["status"] == "suppressed" else None

        st = await wait_until(done, timeout=10)
    assert st["reason"] == "moderation.opted_out"
    assert sms_gw.requests == []


async def test_one_sms_per_cycle_and_min_days_but_every_alert_reaches_the_manager(
    nsettings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    await put_customers(redis, nsettings, make_customer("c7"))
    h = Tokens.h(tokens.ops)
    async with run_notifier(nsettings, consume=False) as n:
        res = []
        for a in (
            make_alert("c7", rule="projected_over_same_period"),
            make_alert("c7", rule="same_period_reached"),  # same cycle
            make_alert("c7", rule="sudden_increase", cycle_start=dt.date(2025, 2, 1)),  # < 7 days later
        ):
            r = await n.client.post("/v1/alerts", content=a.to_json(), headers=h)
            res.append({x["channel"]: x for x in r.json()["notifications"]})
        assert await asyncio.to_thread(push_gw.wait_requests, 3, 10)
        await dispatcher_passes(n.app)
    assert [r["sms"]["status"] for r in res] == ["queued", "suppressed", "suppressed"]
    assert [r["sms"]["reason"] for r in res] == ["", "moderation.sms_per_cycle", "moderation.sms_min_days"]
    assert len(sms_gw.requests) == 1
    assert len(push_gw.requests) == 3


async def test_manager_flood_collapses_into_one_digest(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = notifier_settings(mw_settings, sms_gw, push_gw, manager_digest_threshold_per_hour=2)
    clock = FixedClock(dt.datetime(2025, 1, 21, 3, 10, tzinfo=UTC))
    await put_customers(redis, s, *(make_customer(f"d{i}", phone=f"+86139001390{i:02d}") for i in range(5)))
    async with run_notifier(s, clock=clock, consume=False) as n:
        for i in range(5):
            r = await n.client.post(
                "/v1/alerts", content=make_alert(f"d{i}").to_json(), headers=Tokens.h(tokens.ops)
            )
            push = {x["channel"]: x for x in r.json()["notifications"]}["push"]
            assert push["status"] == ("queued" if i < 2 else "digested")
        # a premium customer's alert is never collapsed into the digest (policy digest=false)
        await put_customers(redis, s, make_customer("vip", phone="+8613900139999"))
        r = await n.client.post(
            "/v1/alerts",
            content=make_alert("vip", segment=SegmentRef(id=6, label="premium")).to_json(),
            headers=Tokens.h(tokens.ops),
        )
        assert {x["channel"]: x for x in r.json()["notifications"]}["push"]["status"] == "queued"
        assert await asyncio.to_thread(push_gw.wait_requests, 3, 10)
        await dispatcher_passes(n.app)
        assert len(push_gw.requests) == 3  # the digest waits for the hour's end
        clock.set(dt.datetime(2025, 1, 21, 4, 0, 1, tzinfo=UTC))
        assert await asyncio.to_thread(push_gw.wait_requests, 4, 10)
        await dispatcher_passes(n.app)
        inbox = (
            await n.client.get("/v1/managers/mgr-1/inbox?limit=10", headers=Tokens.h(tokens.mgr1))
        ).json()
    (digest,) = [b for b in push_gw.bodies() if b["kind"] == "digest"]
    assert digest["count"] == 3
    assert [i["customer_id"] for i in digest["items"]] == ["d2", "d3", "d4"]
    assert len(push_gw.requests) == 4
    assert [i["kind"] for i in inbox["items"]].count("alert") == 6  # the inbox keeps every alert
    assert inbox["items"][0]["kind"] == "digest"
    assert len(sms_gw.requests) == 5  # customers' SMS are not digested (the premium one waits: manager first)


async def test_segment_policies_sensitive_waits_for_manager_premium_manager_first(
    nsettings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:

    await put_customers(redis, nsettings, make_customer("s1"), make_customer("p1", phone="+8613700137000"))
    async with run_notifier(nsettings, consume=False) as n:
        h = Tokens.h(tokens.ops)
        r = await n.client.post(
            "/v1/alerts",
            content=make_alert("s1", segment=SegmentRef(id=4, label="Sensitive")).to_json(),
            headers=h,
        )
        sms_s = {x["channel"]: x for x in r.json()["notifications"]}["sms"]
        assert (sms_s["status"], sms_s["reason"]) == ("held", "policy.after_manager")
        r = await n.client.post(
            "/v1/alerts",
            content=make_alert("p1", segment=SegmentRef(id=5, label="premium")).to_json(),
            headers=h,
        )
        sms_p = {x["channel"]: x for x in r.json()["notifications"]}["sms"]
        assert (sms_p["status"], sms_p["reason"]) == ("deferred", "policy.manager_first")
        assert await asyncio.to_thread(push_gw.wait_requests, 2, 10)
        await dispatcher_passes(n.app)
        assert sms_gw.requests == []
        # another manager cannot release it; the customer's manager can, after the call
        r = await n.client.post(
            f"/v1/notifications/{sms_s['notification_id']}/release", headers=Tokens.h(tokens.mgr2)
        )
        assert r.status_code == 404
        r = await n.client.post(
            f"/v1/notifications/{sms_s['notification_id']}/release", headers=Tokens.h(tokens.mgr1)
        )
        assert r.status_code == 200, r.text
        assert await asyncio.to_thread(sms_gw.wait_requests, 1, 10)
        # the premium SMS is cancelled by its manager before the delay ends
        r = await n.client.post(
            f"/v1/notifications/{sms_p['notification_id']}/cancel", headers=Tokens.h(tokens.mgr1)
        )
        assert r.json()["status"] == "cancelled"
        await dispatcher_passes(n.app)
    assert [b["to"] for b in sms_gw.bodies()] == ["+8613800138000"]


async def test_delivery_receipt_updates_status_and_failure_escalates(
    nsettings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = nsettings.model_copy(update={"sms_inbound_secret": __import__("pydantic").SecretStr("gw-secret")})
    await put_customers(redis, s, make_customer("r1"), make_customer("r2", phone="+8613600136000"))
    async with run_notifier(s, consume=False) as n:
        h = Tokens.h(tokens.ops)
        ids = []
        for c in ("r1", "r2"):
            r = await n.client.post("/v1/alerts", content=make_alert(c).to_json(), headers=h)
            ids.append({x["channel"]: x["notification_id"] for x in r.json()["notifications"]}["sms"])
        assert await asyncio.to_thread(sms_gw.wait_requests, 2, 10)
        await wait_until(lambda: _all_sent(n.client, tokens.ops, ids), timeout=10)
        # wrong secret, no token: 401
        r = await n.client.post(
            "/v1/sms/inbound",
            json={"reference": ids[0], "status": "delivered"},
            headers={"X-MW-Inbound-Secret": "nope"},
        )
        assert r.status_code == 401
        sec = {"X-MW-Inbound-Secret": "gw-secret"}
        r = await n.client.post(
            "/v1/sms/inbound", json={"reference": ids[0], "status": "delivered"}, headers=sec
        )
        assert r.status_code == 200 and r.json()["action"] == "receipt"
        r = await n.client.post(
            "/v1/sms/inbound",
            json={"reference": ids[1], "status": "undelivered", "error": "handset off"},
            headers=sec,
        )
        assert r.status_code == 200
        assert (await status_of(n.client, tokens.ops, ids[0]))["status"] == "delivered"
        st = await status_of(n.client, tokens.ops, ids[1])
        assert st["status"] == "undelivered"
        assert await asyncio.to_thread(push_gw.wait_requests, 3, 10)
        r = await n.client.post(
            "/v1/sms/inbound", json={"reference": "n_nope", "status": "delivered"}, headers=sec
        )
        assert r.status_code == 404
        r = await n.client.post("/v1/sms/inbound", json={"text": "hello"}, headers=sec)
        assert r.status_code == 422 and "detail" in r.json()
    esc = [b for b in push_gw.bodies() if b["kind"] == "escalation"]
    assert len(esc) == 1 and esc[0]["failed_notification_id"] == ids[1]


async def _status_is(client: httpx.AsyncClient, ops: str, nid: str, want: str) -> bool:
    return bool((await status_of(client, ops, nid))["status"] == want)


async def _all_sent(client: httpx.AsyncClient, ops: str, ids: list[str]) -> bool:
    for i in ids:
        if (await status_of(client, ops, i))["status"] != "sent":
            return False
    return True


async def test_malformed_kafka_message_is_set_aside_and_consumption_continues(
    nsettings: Settings,
    sms_gw: FakeGateway,
    push_gw: FakeGateway,
    redis: Redis,
    tokens: Tokens,
    kafka_producer: AIOKafkaProducer,
) -> None:
    await put_customers(redis, nsettings, make_customer("k1"))
    await kafka_producer.send_and_wait(nsettings.topic_alerts, b"{not json", key=b"k1")
    await kafka_producer.send_and_wait(
        nsettings.topic_alerts, json.dumps({"alert_id": "x"}).encode(), key=b"k1"
    )
    await kafka_producer.send_and_wait(nsettings.topic_alerts, make_alert("k1").to_json(), key=b"k1")
    async with run_notifier(nsettings) as n:
        assert await asyncio.to_thread(sms_gw.wait_requests, 1, 20)
        m = await n.client.get("/metrics", headers=Tokens.h(tokens.ops))
        r = await n.client.get("/v1/rejected-alerts", headers=Tokens.h(tokens.ops))
        assert (await n.client.get("/v1/rejected-alerts", headers=Tokens.h(tokens.mgr1))).status_code == 403
    rejected = r.json()
    assert len(rejected) == 2
    assert {r["raw"] for r in rejected} == {"{not json", '{"alert_id": "x"}'}
    assert all(
        r["error"]["code"] == "invalid_alert" and r["source"]["topic"] == nsettings.topic_alerts
        for r in rejected
    )
    assert metric_value(m.text, "meterwatch_notifier_alerts_rejected_total") == 2
    assert metric_value(m.text, "meterwatch_notifier_notifications_total", channel="sms", status="sent") == 1
    assert metric_value(m.text, "meterwatch_notifier_kafka_connected") == 1
    assert metric_value(m.text, "meterwatch_notifier_breaker_open", channel="sms") == 0


async def test_a_number_changed_while_deferred_gets_the_sms_not_the_old_one(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = notifier_settings(mw_settings, sms_gw, push_gw, quiet_hours_start=21, quiet_hours_end=8)
    await put_customers(redis, s, make_customer("p9", phone="+8613500000001"))
    clock = FixedClock(dt.datetime(2025, 1, 21, 15, 0, tzinfo=UTC))  # 23:00 in Shanghai
    async with run_notifier(s, clock=clock, consume=False) as n:
        r = await n.client.post(
            "/v1/alerts", content=make_alert("p9").to_json(), headers=Tokens.h(tokens.ops)
        )
        sms = {x["channel"]: x for x in r.json()["notifications"]}["sms"]
        assert sms["status"] == "deferred"
        await put_customers(redis, s, make_customer("p9", phone="+8613500000002"))  # new tenant's number
        clock.set(dt.datetime(2025, 1, 22, 0, 30, tzinfo=UTC))
        assert await asyncio.to_thread(sms_gw.wait_requests, 1, 10)
        await dispatcher_passes(n.app)
        view = await status_of(n.client, tokens.ops, sms["notification_id"])
    assert [b["to"] for b in sms_gw.bodies()] == ["+8613500000002"]
    assert view["phone"].endswith("0002")
