"""Money end to end on the real stack: a `meterwatch worker` subprocess, the notifier, real Kafka and Redis.

A household on the Jiangsu annual-tier plan (tier 2 from 2,760 kWh a year) has used
2,600 kWh from January to June; in July it uses 10 kWh a day. The worker warns of the
tier crossing (``tier_crossing``, priced: the alert's ``money``), the notifier texts the
customer in yuan, money first; the customer replies "预算20" (a budget of 20 yuan per
cycle), the notifier publishes the registry record with the budget and confirms, the
worker applies it, and the next day's readings raise a solicited ``budget_reached`` whose
SMS goes out although the cycle's one unsolicited SMS was already sent.
The SMS gateway is a fake HTTP server on loopback; everything else is real.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from baselines.tariffs.fmt import format_amount
from meterwatch.contracts import Alert, BaselineSnapshot, CustomerRecord, MeterReading
from meterwatch.keys import Keys
from meterwatch.settings import Settings

from ..notifier.conftest import notifier_settings, run_notifier
from ..notifier.fakes import FakeGateway
from .conftest import customer, daily_readings, publish, snapshot_of, wait_for

pytestmark = [pytest.mark.integration]

CID, METER, PHONE = "c-money", "m-money", "+8613900139777"
PLAN = "cn-js-residential"


def _history() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"customer_id": CID, "start": "2023-07-01", "end": "2023-07-31", "kwh": 300.0}
    ]
    for m, kwh in zip(range(1, 7), (400.0, 400.0, 400.0, 400.0, 500.0, 500.0), strict=True):
        end = dt.date(2024, m + 1, 1) - dt.timedelta(days=1)
        rows.append({"customer_id": CID, "start": f"2024-{m:02d}-01", "end": end.isoformat(), "kwh": kwh})
    return rows


def _expected(rec: dict[str, Any], readings: list[dict[str, Any]]) -> list[Alert]:
    """The domain engine in-process, on the same history and readings (the stack must agree)."""
    eng = Engine()
    cfg = CustomerConfig.from_record(CustomerRecord.model_validate(rec))
    p = eng.load_history(Profile.new(CID), _history(), cfg)
    out: list[Alert] = []
    for r in readings:
        out += eng.process_inplace(p, Reading.from_contract(MeterReading.model_validate(r)), cfg).alerts
    return out


@pytest.fixture
def gateways() -> Iterator[tuple[FakeGateway, FakeGateway]]:
    sms, push = FakeGateway("sms").start(), FakeGateway("push").start()
    yield sms, push
    sms.stop()
    push.stop()


def _yuan(x: Any) -> str:
    return format_amount(x, "CNY", "zh-CN", whole=True)


async def _sms(gw: FakeGateway, n: int, what: str) -> list[str]:
    ok = await asyncio.to_thread(gw.wait_requests, n, 60)
    assert ok, f"{what}: {len(gw.requests)} SMS received, {n} expected: {gw.bodies()}"
    return [str(b["text"]) for b in gw.bodies()]


async def test_tier_crossing_sms_in_yuan_then_a_budget_set_by_sms_reply_raises_a_budget_alert(
    mw_settings: Settings,
    worker_factory: Any,
    kafka_producer: Any,
    kafka_consume: Any,
    redis_client: Any,
    gateways: tuple[FakeGateway, FakeGateway],
) -> None:
    sms_gw, push_gw = gateways
    s = notifier_settings(mw_settings, sms_gw, push_gw, sms_inbound_secret=SecretStr("gw-secret"))
    keys = Keys(s.redis_prefix)
    rec = customer(CID, [METER], tariff_plan=PLAN, language="zh-CN", phone=PHONE, name="王芳")
    await publish(kafka_producer, s.topic_customers, [(CID, rec)])
    worker_factory(s)
    await publish(kafka_producer, s.topic_history, [(CID, row) for row in _history()])

    async def history_in() -> BaselineSnapshot | None:
        raw = await snapshot_of(redis_client, s, CID)
        snap = BaselineSnapshot.model_validate_json(raw) if raw else None
        return snap if snap is not None and len(snap.baseline.cycles) == 7 else None

    await wait_for(history_in, 90, "the bootstrap history in the read model")
    july = daily_readings(METER, dt.date(2024, 7, 1), 5, 10.0)
    [want] = _expected(rec, july)
    assert want.rule == "tier_crossing" and want.money is not None and want.money.tier is not None
    assert (want.money.tier.next_on, want.money.tier.next_at_kwh) == (dt.date(2024, 7, 17), 2760.0)
    assert str(want.money.tier.price_step) == "0.05" and str(want.money.same_period) == "158.49"

    async with run_notifier(s, consume=True) as n:
        await publish(kafka_producer, s.topic_readings, [(METER, r) for r in july])
        [got] = [Alert.model_validate_json(r.value) for r in await kafka_consume(s.topic_alerts, 1, 60)]
        assert (got.alert_id, got.rule, got.money) == (want.alert_id, want.rule, want.money)
        [text] = await _sms(sms_gw, 1, "the tier-crossing SMS")
        m = want.money
        assert f"本期已用电约{_yuan(m.to_date)}" in text and "7月17日起进入第2档电价" in text, text
        assert "每度加价0.05元" in text and text.index("元") < text.index("第2档"), text  # money first

        # the customer replies with a budget of 20 yuan per cycle
        r = await n.client.post(
            "/v1/sms/inbound",
            json={"from": PHONE, "text": "预算20"},
            headers={"X-MW-Inbound-Secret": "gw-secret"},
        )
        assert r.status_code == 200 and r.json()["action"] == "budget_set", r.text
        texts = await _sms(sms_gw, 2, "the budget confirmation")
        assert "每期电费预算20元" in texts[1]

        async def budget_applied() -> bool:
            raw = await redis_client.get(keys.customer(CID))
            return bool(raw) and json.loads(raw).get("budget") == {"amount": 20.0, "currency": "CNY"}

        await wait_for(budget_applied, 60, "the worker's copy of the record with the budget")
        more = daily_readings(METER, dt.date(2024, 7, 6), 2, 10.0)
        await publish(kafka_producer, s.topic_readings, [(METER, x) for x in more])
        alerts = [Alert.model_validate_json(x.value) for x in await kafka_consume(s.topic_alerts, 2, 60)]
        budget = alerts[1]
        assert (budget.rule, budget.solicited, budget.customer_facing) == ("budget_reached", True, True)
        assert budget.money is not None and str(budget.money.budget) == "20"
        texts = await _sms(sms_gw, 3, "the budget SMS (solicited: outside the one-SMS-per-cycle limit)")
        assert f"本期电费已达约{_yuan(budget.money.to_date)}，达到您设定的预算20元" in texts[2], texts[2]

    raw = await snapshot_of(redis_client, s, CID)
    assert raw is not None
    snap = BaselineSnapshot.model_validate_json(raw)
    assert snap.money is not None and snap.money.plan_id == PLAN and snap.money.budget is not None
    assert snap.money.tier is not None and snap.money.tier.period_start == dt.date(2024, 1, 1)


def _half_hourly_tou_readings(meter: str) -> list[dict[str, Any]]:
    """1-9 March 2024 in Asia/Shanghai (UTC+8), half-hourly: valley 0.25 kWh a half-hour, peak
    (08:00-22:00 local, which is 00:00-14:00Z) 0.5; the 3rd misses 00:00-04:00, the 4th has no data."""
    tz = dt.timezone(dt.timedelta(hours=8))
    out: list[dict[str, Any]] = []
    for d in range(1, 10):
        if d == 4:
            continue
        t0 = dt.datetime(2024, 3, d, tzinfo=tz)
        for i in range(8 if d == 3 else 0, 48):
            end = (t0 + dt.timedelta(minutes=30 * (i + 1))).astimezone(dt.UTC)
            out.append({"meter_id": meter, "ts": end.isoformat(), "kwh": 0.5 if 16 <= i < 44 else 0.25})
    return out


async def test_a_half_hourly_time_of_use_customer_is_priced_from_the_measured_periods(
    mw_settings: Settings, worker_factory: Any, kafka_producer: Any, redis_client: Any
) -> None:
    cid, meter = "c-tou", "m-tou"
    rec = customer(cid, [meter], tariff_plan="cn-zj-residential-tou", timezone="Asia/Shanghai")
    await publish(kafka_producer, mw_settings.topic_customers, [(cid, rec)])
    worker_factory(mw_settings)
    await publish(
        kafka_producer, mw_settings.topic_readings, [(meter, r) for r in _half_hourly_tou_readings(meter)]
    )

    async def priced() -> BaselineSnapshot | None:
        raw = await snapshot_of(redis_client, mw_settings, cid)
        snap = BaselineSnapshot.model_validate_json(raw) if raw else None
        ok = snap is not None and snap.money is not None and snap.money.as_of == dt.date(2024, 3, 9)
        return snap if ok else None

    snap = await wait_for(priced, 90, "the snapshot money as of 9 March")
    # by hand (tests/unit/baselines/test_money_tou.py): peak 112 kWh x 0.568 = 63.62, valley 38 kWh
    # x 0.288 = 10.94; projection 568 kWh, the rest at the measured shares: 240.88 + 41.45
    assert snap.money.kwh_to_date == 150.0 and str(snap.money.to_date) == "74.56"
    assert snap.cycle.projected_kwh == 568.0 and str(snap.money.projected) == "282.33"
