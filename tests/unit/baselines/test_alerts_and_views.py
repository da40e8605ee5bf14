"""Findings -> moderated alerts; the rule context; the read-model views."""

from __future__ import annotations

import datetime as dt

import pytest

from baselines.alerts import CUSTOMER_FACING_KEY, CUSTOMER_LEVEL_KEY, ESCALATION, Finding, alert_id, fire
from baselines.customer import CustomerConfig
from baselines.cycle_book import ensure_cycles
from baselines.profile import OpenCycle
from baselines.rules.config import RulesConfig
from baselines.rules.context import RuleContext
from baselines.rules.evaluate import Evaluator
from baselines.views import segment_features, snapshot
from meterwatch.contracts import Observed, SegmentRef

from .crafted import CUST, FEB_2024, JAN_2024, context, craft

NOW = dt.datetime(2024, 2, 12, 8, tzinfo=dt.UTC)


def finding(rule: str, facing: bool, recent: float | None = 20.0, escalation: bool = False) -> Finding:
    c = OpenCycle(FEB_2024, FEB_2024 + 29, 0.0, 0.0)
    return Finding(
        rule,
        c,
        "warning",
        facing,
        Observed(recent_daily_kwh=recent, ratio=2.5),
        {"recent": recent or 0.0, "baseline": 8.0, "ratio": 2.5},
        {"z": 4.0},
        escalation=escalation,
    )


def test_an_alert_carries_the_finding_its_texts_and_a_deterministic_id() -> None:
    p = craft([8.0] * 20, last_ring_day=FEB_2024 + 10)
    seg = SegmentRef(id=3, label="night owls")
    a = fire(context(p, segment=seg, ts=1_707_700_000.0), finding("sudden_increase", True))
    assert a.alert_id == alert_id("c1", "sudden_increase", dt.date(2024, 2, 1))
    assert (a.cycle.start, a.cycle.end) == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert a.segment == seg and a.manager_id == "m1" and a.meter_ids == ["mtr1"]
    assert a.created_at == a.triggered_by == dt.datetime.fromtimestamp(1_707_700_000.0, dt.UTC)
    assert a.reasons[0].numbers == {"recent_daily_kwh": 20.0, "ratio": 2.5, "z": 4.0}
    assert "20.0 kWh" in a.explanation.en and "20.0" in a.explanation.zh_CN


def test_one_customer_facing_alert_per_cycle_then_one_escalation() -> None:
    p = craft([8.0] * 20, last_ring_day=FEB_2024 + 10)
    ctx = context(p)
    first = fire(ctx, finding("projected_over_same_period", True, recent=12.0))
    assert (
        first.customer_facing
        and p.fired[CUSTOMER_FACING_KEY] == FEB_2024
        and p.fired[CUSTOMER_LEVEL_KEY] == 12000
    )
    second = fire(ctx, finding("sudden_increase", True))
    assert not second.customer_facing
    assert second.reasons[1].code == "baselines.moderation.one_customer_alert_per_cycle"
    esc = fire(ctx, finding(ESCALATION, True, escalation=True))
    assert esc.customer_facing and esc.reasons[1].code == "baselines.moderation.escalation"
    assert p.fired[ESCALATION] == FEB_2024
    manager_only = fire(ctx, finding("sustained_drop", False))
    assert not manager_only.customer_facing and len(manager_only.reasons) == 1


def test_a_clock_gives_created_at() -> None:
    p = craft([8.0] * 20, last_ring_day=FEB_2024 + 10)
    cfg = RulesConfig()
    ctx = RuleContext(
        p,
        cfg,
        cfg.resolve("residential", None),
        CUST,
        None,
        1_707_700_000.0,
        lambda: NOW,
        p.newest_day or 0,
        0,
    )
    assert fire(ctx, finding("sudden_increase", True)).created_at == NOW


def test_the_context_separates_the_as_of_cycle_from_the_running_one() -> None:
    # newest day 1 February (incomplete): the rules judge 31 January, in the January cycle
    p = craft([8.0] * 20, last_ring_day=FEB_2024)
    ensure_cycles(p, FEB_2024 - 1, CUST)
    ctx = context(p, FEB_2024 - 1)
    assert ctx.cycle.start != ctx.running_cycle.start and ctx.newest == FEB_2024
    assert ctx.running_index == len(p.open_cycles) - 1 and ctx.cycle_index == 0
    assert ctx.window(3) == [8.0, 8.0, 8.0] and ctx.level(FEB_2024 - 1) == (8.0, 7)


def test_the_evaluator_caches_a_plan_per_tariff_and_segment() -> None:
    cfg = RulesConfig(by_segment={2: {"sudden_increase": {"enabled": False}}})
    ev = Evaluator(cfg)
    plan = ev.plan("residential", SegmentRef(id=2))
    assert not plan.rules.sudden_increase.enabled and len(plan.checks) == 5 and plan.live is not None
    assert ev.plan("residential", SegmentRef(id=2)) is plan
    assert len(ev.plan("residential", None).checks) == 6  # four consumption rules, two money rules
    off = Evaluator(RulesConfig.model_validate({"default": {"same_period_reached": {"enabled": False}}}))
    assert off.plan("residential", None).live is None


def test_snapshot_of_a_running_cycle_with_a_provisional_register_estimate() -> None:
    cust = CustomerConfig("c1", timezone="UTC", manager_id="m1")
    p = craft([8.0] * 20, last_ring_day=FEB_2024 + 10, cycle_kwh=80.0)
    p.latest_ts = NOW.timestamp()
    p.register_read, p.register_estimate = (0.0, 100.0), (1.0, 103.5)
    p.fired["sudden_increase"] = FEB_2024
    p.reasons["sustained_drop"] = ["baselines.sufficiency.too_few_days", {"days": 3, "needed": 14}]
    snap = snapshot(p, cust, None, NOW, RulesConfig())
    assert (snap.cycle.start, snap.cycle.end) == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert snap.cycle.cycle_to_date_kwh == 83.5 and snap.cycle.days_elapsed == 11.0
    assert snap.cycle.projected_kwh == pytest.approx(80.0 + 8.0 * 19)
    assert snap.open_alerts == [alert_id("c1", "sudden_increase", dt.date(2024, 2, 1))]
    assert [r.code for r in snap.reasons] == ["baselines.sufficiency.too_few_days"]
    assert snap.recent_daily_kwh == 8.0 and snap.baseline.daily_kwh == 8.0 and snap.same_period.kwh is None


def test_segment_features_from_the_profile_and_the_customer() -> None:
    p = craft([8.0] * 20, last_ring_day=JAN_2024 + 10)
    p.weekday_factors = (1.0, 1.0, 1.0, 1.0, 1.0, 1.5, 1.5)
    f = segment_features(p, CustomerConfig("c1", tariff="commercial", arrears_count=2))
    assert f["level_kwh_day"] == 8.0 and f["weekend_ratio"] == 1.5
    assert (f["tariff_code"], f["arrears_count"], f["rented"]) == (1.0, 2.0, 0.0)
