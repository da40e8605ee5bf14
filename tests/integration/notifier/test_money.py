"""Money in the notifier: money-first SMS, solicited alerts outside the SMS limits, budget by SMS reply.

Real Redis and Kafka; the SMS and push gateways are fakes on loopback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from meterwatch.contracts import Alert, Money, MoneyTier, Reason
from meterwatch.registry import RegistryPublisher
from meterwatch.settings import Settings
from notifier.clock import FixedClock

from .conftest import (
    Tokens,
    dispatcher_passes,
    make_alert,
    make_customer,
    metric_value,
    put_customers,
    run_notifier,
)
from .fakes import FakeGateway

pytestmark = pytest.mark.integration
UTC = dt.UTC
T0 = dt.datetime(2025, 1, 21, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai
PHONE = "+8613900139001"
SECRET = {"X-MW-Inbound-Secret": "gw-secret"}


def money_alert(customer_id: str, rule: str, **money: Any) -> Alert:
    a = make_alert(customer_id, rule=rule)
    m = Money(
        currency="CNY", to_date=Decimal("51.80"), projected=Decimal("160.35"), same_period=Decimal("48.20")
    )
    upd: dict[str, Any] = {"money": m.model_copy(update=money)}
    if rule.startswith("budget"):
        upd["solicited"] = True
    if rule == "tier_crossing":
        upd["reasons"] = [Reason(code="baselines.rules.tier_crossing", numbers={"to_tier": 2})]
    return a.model_copy(update=upd)


async def _sms_texts(gw: FakeGateway, n: int) -> list[str]:
    assert await asyncio.to_thread(gw.wait_requests, n, 10), f"{n} SMS expected, got {len(gw.requests)}"
    return [str(b["text"]) for b in gw.bodies()]


async def test_money_first_texts_and_solicited_budget_sms_outside_the_limits(
    nsettings: Settings, sms_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    await put_customers(redis, nsettings, make_customer("c1", phone=PHONE, tariff_plan="cn-js-residential"))
    async with run_notifier(nsettings, clock=FixedClock(T0), consume=False) as n:
        h = Tokens.h(tokens.ops)
        tier = MoneyTier(
            index=1, count=3, period="year", period_kwh=2700.0, next_at_kwh=2760.0,
            next_on=dt.date(2025, 1, 25), price_step=Decimal("0.05"),
        )  # fmt: skip
        r = await n.client.post(
            "/v1/alerts", content=money_alert("c1", "tier_crossing", tier=tier).to_json(), headers=h
        )
        assert r.status_code == 202, r.text
        [text] = await _sms_texts(sms_gw, 1)
        assert text.startswith("张伟您好，本期已用电约52元") or text.startswith("本期已用电约52元"), text
        assert "1月25日起进入第2档电价" in text and "0.05元" in text
        # the cycle's one unsolicited SMS is used; a budget alert (solicited) still goes out, counted apart
        b = money_alert("c1", "budget_reached", budget=Decimal("50"))
        r = await n.client.post("/v1/alerts", content=b.to_json(), headers=h)
        sms = {x["channel"]: x for x in r.json()["notifications"]}["sms"]
        assert sms["status"] == "queued", sms
        texts = await _sms_texts(sms_gw, 2)
        assert "本期电费已达约52元，达到您设定的预算50元" in texts[1]
        u = money_alert("c1", "projected_over_same_period").model_copy(update={"alert_id": "other"})
        r = await n.client.post("/v1/alerts", content=u.to_json(), headers=h)
        sms = {x["channel"]: x for x in r.json()["notifications"]}["sms"]
        assert (sms["status"], sms["reason"]) == ("suppressed", "moderation.sms_per_cycle")
        metrics = (await n.client.get("/metrics", headers=h)).text
        assert metric_value(metrics, "meterwatch_notifier_alerts_solicited_total") == 1.0


async def test_a_budget_set_by_sms_reply_is_published_and_confirmed(
    nsettings: Settings, sms_gw: FakeGateway, redis: Redis, tokens: Tokens, kafka_consume: Any
) -> None:
    s = nsettings.model_copy(update={"sms_inbound_secret": SecretStr("gw-secret")})
    rec = make_customer("c2", phone=PHONE, tariff_plan="cn-js-residential")
    doc = {**json.loads(rec.model_dump_json(exclude_none=True)), "billing_ref": "B-9"}
    await redis.set(f"{s.redis_prefix}customer:c2", json.dumps(doc))
    await put_customers(redis, s, make_customer("c3", phone="+8613900139003"))  # no tariff plan
    async with run_notifier(s, clock=FixedClock(T0), consume=False) as n:
        h = Tokens.h(tokens.ops)
        for cid in ("c2", "c3"):  # a first alert indexes the phones for replies
            await n.client.post("/v1/alerts", content=make_alert(cid).to_json(), headers=h)
        await _sms_texts(sms_gw, 2)
        r = await n.client.post("/v1/sms/inbound", json={"from": PHONE, "text": "预算 200元"}, headers=SECRET)
        assert r.status_code == 200 and r.json()["action"] == "budget_set" and r.json()["customer_id"] == "c2"
        texts = await _sms_texts(sms_gw, 3)
        assert "每期电费预算200元" in texts[2]
        # the gateway retries its callback: published again (same record), confirmed once
        r = await n.client.post("/v1/sms/inbound", json={"from": PHONE, "text": "预算 200元"}, headers=SECRET)
        assert r.json()["action"] == "budget_set"
        r = await n.client.post("/v1/sms/inbound", json={"from": PHONE, "text": "BUDGET 0"}, headers=SECRET)
        assert r.json()["action"] == "budget_removed"
        r = await n.client.post(
            "/v1/sms/inbound", json={"from": "+8613900139003", "text": "预算100"}, headers=SECRET
        )
        assert r.json()["action"] == "budget_refused" and r.json()["detail"] == "no tariff plan"
        texts = await _sms_texts(sms_gw, 5)
        assert sorted("取消电费预算" in t for t in texts[3:]) == [False, True]  # sent concurrently
        assert sorted("需要您的电价信息" in t for t in texts[3:]) == [False, True]
        await dispatcher_passes(n.app)
        assert len(sms_gw.requests) == 5
    records = await kafka_consume(s.topic_customers, 3)
    assert [r.key for r in records] == [b"c2"] * 3
    values = [json.loads(r.value) for r in records]
    assert values[0] == {**doc, "budget": {"amount": 200.0, "currency": "CNY"}} == values[1]
    assert values[2] == doc  # removed; the field the billing system added is kept


async def test_a_budget_reply_while_kafka_is_unreachable_is_503_and_changes_nothing(
    nsettings: Settings, sms_gw: FakeGateway, redis: Redis, tokens: Tokens
) -> None:
    await put_customers(redis, nsettings, make_customer("c4", phone=PHONE, tariff_plan="cn-js-residential"))
    async with run_notifier(nsettings, clock=FixedClock(T0), consume=False) as n:
        h = Tokens.h(tokens.ops)
        await n.client.post("/v1/alerts", content=make_alert("c4").to_json(), headers=h)
        await _sms_texts(sms_gw, 1)
        dead = nsettings.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
        n.app.state.registry = RegistryPublisher(dead, timeout_s=1.0)
        r = await n.client.post("/v1/sms/inbound", json={"from": PHONE, "text": "预算200"}, headers=h)
        assert r.status_code == 503 and "registry topic" in r.text
        await dispatcher_passes(n.app)
        assert len(sms_gw.requests) == 1  # no confirmation of a budget that was not saved
