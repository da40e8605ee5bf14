"""Rented homes on the real Kafka and Redis (issue #15): a rented home's long-drop alert texts the
landlord once, at the recording SMS gateway, and the manager's push and inbox item carry the landlord."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from meterwatch.contracts import CustomerRecord
from meterwatch.keys import Keys
from meterwatch.settings import Settings
from notifier.clock import FixedClock
from notifier.landlord import sms_nid

from .conftest import (
    Tokens,
    dispatcher_passes,
    make_alert,
    make_customer,
    notifier_settings,
    put_customers,
    run_notifier,
    wait_until,
)
from .fakes import FakeGateway

pytestmark = pytest.mark.integration
UTC = dt.UTC
LANDLORD = {"name": "王先生", "phone": "+8613900139000"}


async def test_a_rented_home_s_long_drop_texts_the_landlord_once_and_the_manager_gets_the_landlord(
    nsettings: Settings,
    redis: Redis,
    tokens: Tokens,
    sms_gw: FakeGateway,
    push_gw: FakeGateway,
    kafka_producer: AIOKafkaProducer,
) -> None:
    s = nsettings.model_copy(update={"manager_digest_daily": False})  # the push goes out at once
    await put_customers(
        redis,
        s,
        make_customer("r1", occupancy="rented", landlord=LANDLORD),
        make_customer("r2", phone="+8613800138002", occupancy="rented", landlord=LANDLORD),
        make_customer("o1", phone="+8613800138003", occupancy="owner", landlord=LANDLORD),
    )
    drops = {c: make_alert(c, rule="sustained_drop", customer_facing=False) for c in ("r1", "r2", "o1")}
    async with run_notifier(s) as n:
        r1 = drops["r1"].to_json()
        for _ in range(2):  # redelivered on Kafka, and posted once more over HTTP: one SMS
            await kafka_producer.send_and_wait(s.topic_alerts, r1, key=b"r1")
        assert await asyncio.to_thread(sms_gw.wait_requests, 1, 20)
        r = await n.client.post("/v1/alerts", content=r1, headers=Tokens.h(tokens.ops))
        assert r.status_code == 202 and r.json()["duplicate"] is True, r.text
        for c in ("r2", "o1"):
            await kafka_producer.send_and_wait(s.topic_alerts, drops[c].to_json(), key=c.encode())
        consumer = n.app.state.consumer
        await wait_until(lambda: consumer.processed >= 4, what="the four Kafka messages consumed")
        await asyncio.to_thread(push_gw.wait_requests, 3, 20)
        await dispatcher_passes(n.app)  # anything else queued would have gone out now
        h = Tokens.h(tokens.ops)
        first = (await n.client.get(f"/v1/notifications/{sms_nid(drops['r1'])}", headers=h)).json()
        second = (await n.client.get(f"/v1/notifications/{sms_nid(drops['r2'])}", headers=h)).json()
        inbox = (await n.client.get("/v1/managers/mgr-1/inbox", headers=Tokens.h(tokens.mgr1))).json()
        seen_by_ops = (await n.client.get("/v1/managers/mgr-1/inbox", headers=h)).text
    # exactly one SMS on the wire: to the landlord, about r1; r2's waits out the per-landlord limit
    assert len(sms_gw.requests) == 1 and sms_gw.duplicates == 0
    req = sms_gw.requests[0]
    assert req.body["to"] == LANDLORD["phone"] and req.reference == sms_nid(drops["r1"])
    text = req.body["text"]
    assert "户号r1" in text and not re.search(r"度|元|kWh", text), text
    assert not any(f in text for f in ("312", "298", "9.6", "14.9")), text  # no figure of the tenant's
    assert (first["status"], first["recipient"], first["phone"]) == ("sent", "landlord", "+86*******9000")
    assert (second["status"], second["recipient"]) == ("suppressed", "landlord")
    assert second["reason"].startswith("moderation.sms_"), second
    # the manager: the push and the inbox item of a rented home carry the landlord, the owner's do not
    pushes = {p.body["customer_id"]: p.body for p in push_gw.requests if p.body.get("kind") == "alert"}
    assert pushes["r1"]["landlord"] == LANDLORD and "landlord" not in pushes["o1"]
    assert pushes["r1"]["text"]["en"].endswith("rented home: landlord 王先生 +8613900139000")
    items = {i["customer_id"]: i for i in inbox["items"] if i["kind"] == "alert"}
    assert items["r1"]["landlord"] == LANDLORD and items["r2"]["landlord"] == LANDLORD
    assert "landlord" not in items["o1"]
    assert items["r1"]["text"]["zh-CN"].endswith("出租房：房东王先生 +8613900139000")
    assert sms_nid(drops["r1"]) in items["r1"]["notification_ids"]
    # ops may read any manager's inbox, the landlord's number only masked (item and text)
    assert "+8613900139000" not in seen_by_ops and "+86*******9000" in seen_by_ops
    assert "王先生" in seen_by_ops


async def test_a_deferred_landlord_sms_goes_to_no_other_landlord_and_not_after_the_customer_left(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = notifier_settings(
        mw_settings, sms_gw, push_gw, quiet_hours_start=21, quiet_hours_end=8, landlord_sms_min_days_between=0
    )
    first = {"name": "Mr Lee", "phone": "+8613900139222"}
    homes = [make_customer(c, occupancy="rented", landlord=first) for c in ("r6", "r7")]
    await put_customers(redis, s, *homes)
    clock = FixedClock(dt.datetime(2025, 1, 21, 15, 30, tzinfo=UTC))  # 23:30 in Shanghai
    h = Tokens.h(tokens.ops)
    async with run_notifier(s, clock=clock, consume=False) as n:
        alerts = [make_alert(c, rule="sustained_drop", customer_facing=False) for c in ("r6", "r7")]
        for a in alerts:
            r = await n.client.post("/v1/alerts", content=a.to_json(), headers=h)
            (ll,) = [x for x in r.json()["notifications"] if x["recipient"] == "landlord"]
            assert ll["status"] == "deferred", ll  # both: no per-cycle limit, no gap (setting 0)
        # overnight: r6's home has another landlord; r7's customer left the registry
        other = {"name": "Ms Wu", "phone": "+8613900139333"}
        moved = homes[0].model_dump() | {"landlord": other}
        await put_customers(redis, s, CustomerRecord.model_validate(moved))
        await redis.delete(Keys(s.redis_prefix).customer("r7"))
        clock.set(dt.datetime(2025, 1, 22, 0, 5, tzinfo=UTC))  # 08:05 in Shanghai
        v6 = await wait_until(lambda: _status(n, h, sms_nid(alerts[0]), "suppressed"), what="r6 suppressed")
        v7 = await wait_until(lambda: _status(n, h, sms_nid(alerts[1]), "suppressed"), what="r7 suppressed")
        await dispatcher_passes(n.app)
    assert (v6["reason"], v7["reason"]) == ("landlord.changed", "landlord.none")
    assert sms_gw.bodies() == []  # the text named Mr Lee: neither he (gone) nor Ms Wu got it


async def test_quiet_hours_defer_it_a_home_no_longer_rented_drops_it_and_the_landlord_s_stop_is_theirs(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = notifier_settings(mw_settings, sms_gw, push_gw, quiet_hours_start=21, quiet_hours_end=8)
    landlord = {"name": "Mr Lee", "phone": "+8613900139111"}
    tenant = make_customer("r3", phone="+8613800138033", occupancy="rented", landlord=landlord)
    await put_customers(redis, s, tenant)
    clock = FixedClock(dt.datetime(2025, 1, 21, 15, 30, tzinfo=UTC))  # 23:30 in Shanghai
    h = Tokens.h(tokens.ops)
    async with run_notifier(s, clock=clock, consume=False) as n:
        a1 = make_alert("r3", rule="sustained_drop", customer_facing=False)
        r = await n.client.post("/v1/alerts", content=a1.to_json(), headers=h)
        (ll,) = [x for x in r.json()["notifications"] if x["recipient"] == "landlord"]
        assert (ll["notification_id"], ll["channel"]) == (sms_nid(a1), "sms")
        assert (ll["status"], ll["reason"]) == ("deferred", "moderation.quiet_hours")
        # overnight the registry says the home is owner-occupied now: the landlord is not texted
        await put_customers(redis, s, tenant.model_copy(update={"occupancy": "owner"}))
        clock.set(dt.datetime(2025, 1, 22, 0, 5, tzinfo=UTC))  # 08:05 in Shanghai
        view = await wait_until(lambda: _status(n, h, sms_nid(a1), "suppressed"), what="suppressed")
        assert view["reason"] == "landlord.none"
        # the landlord replies STOP: their number is opted out, the tenant is not
        r = await n.client.post(
            "/v1/sms/inbound", json={"from": landlord["phone"], "text": "STOP"}, headers=h
        )
        assert r.json()["action"] == "opt_out" and r.json()["customer_id"] is None
        await put_customers(redis, s, tenant)
        clock.advance(40 * 86400)
        a2 = make_alert("r3", rule="sustained_drop", customer_facing=False, cycle_start=dt.date(2025, 3, 1))
        r = await n.client.post("/v1/alerts", content=a2.to_json(), headers=h)
        (ll,) = [x for x in r.json()["notifications"] if x["notification_id"] == sms_nid(a2)]
        assert (ll["status"], ll["reason"]) == ("suppressed", "moderation.opted_out")
        a3 = make_alert("r3", cycle_start=dt.date(2025, 3, 1))  # the tenant's own SMS path is unchanged
        r = await n.client.post("/v1/alerts", content=a3.to_json(), headers=h)
        assert await asyncio.to_thread(sms_gw.wait_requests, 1, 10)
        await dispatcher_passes(n.app)
    assert [b["to"] for b in sms_gw.bodies()] == ["+8613800138033"]
    assert "312" in sms_gw.bodies()[0]["text"]


async def _status(n: Any, h: dict[str, str], nid: str, want: str) -> dict[str, Any] | None:
    view: dict[str, Any] = (await n.client.get(f"/v1/notifications/{nid}", headers=h)).json()
    return view if view["status"] == want else None


async def test_a_rented_home_folded_into_the_daily_digest_keeps_its_landlord_on_the_digest_line(
    mw_settings: Settings, sms_gw: FakeGateway, push_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    s = notifier_settings(
        mw_settings, sms_gw, push_gw, manager_digest_actionable_per_day=1, manager_digest_grace_s=60
    )
    await put_customers(
        redis,
        s,
        make_customer("own5", phone="+8613800138051", occupancy="owner"),
        make_customer("rent5", phone="+8613800138052", occupancy="rented", landlord=LANDLORD),
    )
    big = make_alert("own5", rule="sustained_drop", customer_facing=False, ctd=100.0, same=400.0)
    small = make_alert("rent5", rule="sustained_drop", customer_facing=False, ctd=350.0, same=310.0)
    clock = FixedClock(dt.datetime(2025, 1, 21, 9, 0, tzinfo=UTC))
    async with run_notifier(s, clock=clock, consume=False) as n:
        for a in (big, small):
            r = await n.client.post("/v1/alerts", content=a.to_json(), headers=Tokens.h(tokens.ops))
            assert r.status_code == 202, r.text
        assert await asyncio.to_thread(sms_gw.wait_requests, 1, 10)  # the landlord is not held for the digest
        clock.set(dt.datetime(2025, 1, 22, 0, 1, 1, tzinfo=UTC))  # the day ends: big alone, small folded
        assert await asyncio.to_thread(push_gw.wait_requests, 2, 15)
        await dispatcher_passes(n.app, 3)
    (digest,) = [b for b in push_gw.bodies() if b["kind"] == "daily_digest"]
    lines = {i["customer_id"]: i for i in digest["items"]}
    assert lines["rent5"]["reason"].startswith("folded") and lines["rent5"]["landlord"] == LANDLORD
    assert lines["own5"]["reason"] == "actionable" and "landlord" not in lines["own5"]
    assert [b["to"] for b in sms_gw.bodies()] == [LANDLORD["phone"]]
