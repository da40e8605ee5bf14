"""The manager's daily digest on the real Kafka and Redis, with fake push and SMS gateways on loopback.

Manager-only alerts arrive over Kafka during a day; none is pushed at once. When the day ends,
the top of the day's ranking is pushed on its own, the rest is folded into one digest push;
every manager-only alert ends in exactly one of the two; customer-facing alerts and SMS go out
as before; ``GET /v1/managers/{id|me}/digest`` lists the day, scoped to the manager.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from meterwatch.contracts import Alert
from meterwatch.settings import Settings
from notifier.clock import FixedClock
from notifier.ids import make_nid

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
DAY = dt.date(2025, 1, 21)


def _alerts() -> list[Alert]:
    # kWh at stake: projected (ctd * 31 / 20) against the same period; a drop's is the shortfall
    return [
        make_alert("big", rule="sustained_drop", customer_facing=False, ctd=100.0, same=400.0),  # 245
        make_alert("small", rule="sustained_drop", customer_facing=False, ctd=350.0, same=310.0),  # 232.5
        make_alert("spr", rule="same_period_reached", customer_facing=False, ctd=900.0, same=300.0),  # 1095
        make_alert(
            "other", rule="sustained_drop", customer_facing=False, manager_id="mgr-2", ctd=100.0, same=400.0
        ),
        make_alert("cf", rule="sudden_increase", customer_facing=True),  # pushed and texted at once
    ]


async def _push(n: Any, ops: str, alert_id: str) -> dict[str, Any]:
    r = await n.client.get(f"/v1/notifications/{make_nid('push', alert_id)}", headers=Tokens.h(ops))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_a_day_of_manager_only_alerts_becomes_ranked_pushes_and_one_digest(
    mw_settings: Settings,
    sms_gw: FakeGateway,
    push_gw: FakeGateway,
    redis: Redis,
    tokens: Tokens,
    kafka_producer: AIOKafkaProducer,
) -> None:
    s = notifier_settings(
        mw_settings, sms_gw, push_gw, manager_digest_actionable_per_day=1, manager_digest_grace_s=60
    )
    clock = FixedClock(dt.datetime(2025, 1, 21, 9, 0, tzinfo=UTC))
    alerts = _alerts()
    await put_customers(
        redis, s, *(make_customer(a.customer_id, phone=f"+8613900139{i:03d}") for i, a in enumerate(alerts))
    )
    async with run_notifier(s, clock=clock) as n:
        for a in alerts:
            await kafka_producer.send_and_wait(s.topic_alerts, a.to_json(), key=a.customer_id.encode())
        consumer = n.app.state.consumer
        await wait_until(lambda: consumer.processed >= len(alerts), what="the alerts consumed")
        assert await asyncio.to_thread(push_gw.wait_requests, 1, 10)
        await dispatcher_passes(n.app)
        # during the day: only the customer-facing alert was pushed; the others wait, held
        assert [b["alert"]["alert_id"] for b in push_gw.bodies()] == [alerts[4].alert_id]
        assert len(sms_gw.requests) == 1
        for a in alerts[:4]:
            p = await _push(n, tokens.ops, a.alert_id)
            assert (p["status"], p["reason"]) == ("held", "moderation.manager_daily_digest")
        # the running day's ranking, scoped to the manager
        r = await n.client.get("/v1/managers/me/digest", headers=Tokens.h(tokens.mgr1))
        assert r.status_code == 200, r.text
        open_day = r.json()
        assert open_day["status"] == "open" and open_day["day"] == DAY.isoformat()
        ranked = [(i["customer_id"], i["rank"], i["reason"]) for i in open_day["items"]]
        assert ranked == [
            ("spr", 1, "folded.rule"),
            ("big", 2, "actionable"),
            ("small", 3, "folded.daily_limit"),
        ]
        r = await n.client.get("/v1/managers/mgr-1/digest", headers=Tokens.h(tokens.mgr2))
        assert r.status_code == 403
        mine = (await n.client.get("/v1/managers/me/digest", headers=Tokens.h(tokens.mgr2))).json()
        assert [i["customer_id"] for i in mine["items"]] == ["other"]
        assert (await n.client.get("/v1/managers/me/digest", headers=Tokens.h(tokens.ops))).status_code == 400
        assert (await n.client.get("/v1/managers/me/digest")).status_code == 401

        # the day ends (plus the grace): the top item goes out on its own, the rest in one digest
        clock.set(dt.datetime(2025, 1, 22, 0, 1, 1, tzinfo=UTC))
        assert await asyncio.to_thread(push_gw.wait_requests, 4, 15)  # big, mgr-2's other, mgr-1's digest
        await dispatcher_passes(n.app, 3)
        bodies = push_gw.bodies()
        pushed = [b["alert"]["alert_id"] for b in bodies if b["kind"] == "alert"]
        (digest,) = [b for b in bodies if b["kind"] == "daily_digest"]
        closed = (
            await n.client.get(f"/v1/managers/mgr-1/digest?date={DAY}", headers=Tokens.h(tokens.ops))
        ).json()
        statuses = {a.customer_id: await _push(n, tokens.ops, a.alert_id) for a in alerts[:4]}
        inbox = (
            await n.client.get("/v1/managers/mgr-1/inbox?limit=20", headers=Tokens.h(tokens.mgr1))
        ).json()

        # a manager-only alert of the closed day that arrives late (a replica's clock behind) is pushed at
        # once, never held for a digest that has been made
        clock.set(dt.datetime(2025, 1, 21, 23, 59, 59, tzinfo=UTC))
        late = make_alert(
            "late", rule="sustained_drop", customer_facing=False, cycle_start=dt.date(2025, 1, 2)
        )
        await put_customers(redis, s, make_customer("late", phone="+8613900139999"))
        r = await n.client.post("/v1/alerts", content=late.to_json(), headers=Tokens.h(tokens.ops))
        assert r.status_code == 202, r.text
        assert {x["channel"]: x["status"] for x in r.json()["notifications"]} == {"push": "queued"}

    # each manager-only alert is pushed or folded, exactly once
    assert sorted(pushed) == sorted([alerts[4].alert_id, alerts[0].alert_id, alerts[3].alert_id])
    big = statuses["big"]
    assert big["status"] == "sent"
    assert [h["status"] for h in big["history"]] == ["held", "queued", "sent"]
    assert big["history"][1]["detail"].startswith("rank 2 of the daily digest")
    for cid in ("spr", "small"):
        assert (statuses[cid]["status"], statuses[cid]["reason"]) == (
            "digested",
            "moderation.manager_daily_digest",
        )
    assert statuses["other"]["status"] == "sent"  # mgr-2's only alert: pushed, nothing left to digest
    assert digest["manager_id"] == "mgr-1" and digest["day"] == DAY.isoformat()
    assert (digest["actionable_count"], digest["folded_count"]) == (1, 2)
    assert [i["customer_id"] for i in digest["items"]] == ["spr", "big", "small"]
    assert closed["status"] == "closed"
    assert [(i["customer_id"], i["actionable"]) for i in closed["items"]] == [
        ("spr", False),
        ("big", True),
        ("small", False),
    ]
    # the inbox keeps every alert and lists the digest
    kinds = [i["kind"] for i in inbox["items"]]
    assert kinds.count("alert") == 4 and kinds.count("digest") == 1
    assert len(sms_gw.requests) == 1  # SMS unchanged: only the customer-facing alert
    assert len([b for b in push_gw.bodies() if b["kind"] == "daily_digest"]) == 1
