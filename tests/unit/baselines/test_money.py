"""Money in the engine: plans, bill figures of the open cycle, the money rules, alerts' money.

Figures are computed by hand in the comments (docs/money.md: each bill line rounds
half up to 0.01, the total is the sum of the lines).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from baselines.alerts import Finding, fire
from baselines.billing import Tariffs, cycle_days, snapshot_money
from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import OpenCycle, Profile
from baselines.rules.config import RulesConfig
from baselines.rules.context import RuleContext
from baselines.tariffs import bill, default_catalogue
from meterwatch.contracts import Alert, Budget, Money, Observed

from .helpers import feed_daily, half_hourly

JS = "cn-js-residential"  # 0.5283 CNY/kWh; annual tiers 2,760 / 4,800 kWh, +0.05 / +0.30
UK = "uk-london-standard"  # from 2013-12-01: 0.154 GBP/kWh + 0.18 GBP/day
D = dt.date
CENT = Decimal("0.01")


def _history(cid: str) -> list[dict[str, object]]:
    """July 2023 (300 kWh) and January-June 2024 (2,600 kWh), as bootstrap cycles."""
    rows: list[dict[str, object]] = [
        {"customer_id": cid, "start": "2023-07-01", "end": "2023-07-31", "kwh": 300.0}
    ]
    for m, kwh in zip(range(1, 7), (400.0, 400.0, 400.0, 400.0, 500.0, 500.0), strict=True):
        end = D(2024, m + 1, 1) - dt.timedelta(days=1)
        rows.append({"customer_id": cid, "start": f"2024-{m:02d}-01", "end": end.isoformat(), "kwh": kwh})
    return rows


def _js_customer(**kw: object) -> CustomerConfig:
    return CustomerConfig("c1", tariff_plan=JS, **kw)  # type: ignore[arg-type]


def _js_profile(engine: Engine, cust: CustomerConfig) -> Profile:
    return engine.load_history(Profile.new(cust.customer_id), _history(cust.customer_id), cust)


# ------------------------------------------------------------------------------- tier crossing
def test_tier_crossing_warns_before_with_the_day_the_step_and_the_bill() -> None:
    eng, cust = Engine(), _js_customer()
    p, alerts = feed_daily(eng, cust, D(2024, 7, 1), [10.0] * 5, _js_profile(eng, cust))
    assert [a.rule for a in alerts] == ["tier_crossing"]
    a = alerts[0]
    assert a.customer_facing and not a.solicited and a.cycle.start == D(2024, 7, 1)
    m = a.money
    assert m is not None and m.currency == "CNY"
    assert m.to_date == Decimal("26.42")  # 50 kWh x 0.5283 = 26.415 -> 26.42
    # the projection: 50 + 26 days x 10 = 310 kWh; the year reaches 2,910 kWh:
    # energy 310 x 0.5283 = 163.773 -> 163.77; tier 2: 150 kWh x 0.05 = 7.50
    assert m.projected == Decimal("171.27")
    assert m.same_period == Decimal("158.49")  # July 2023: 300 x 0.5283 = 158.49, all in tier 1
    assert m.extra_vs_same_period == Decimal("12.78")
    t = m.tier
    assert t is not None and (t.index, t.count, t.period, t.period_kwh) == (1, 3, "year", 2650.0)
    # 2,600 + 10/day passes 2,760 on the 17th (the 16th ends exactly at the limit, still tier 1)
    assert (t.next_at_kwh, t.next_on, t.price_step, t.period_start) == (
        2760.0,
        D(2024, 7, 17),
        Decimal("0.05"),
        D(2024, 1, 1),
    )
    assert a.reasons[0].numbers["crossing_on"] == "2024-07-17" and a.reasons[0].numbers["to_tier"] == 2
    assert "第2档" in a.explanation.zh_CN and "7月17日" in a.explanation.zh_CN
    assert "tier 2" in a.explanation.en and "CN¥0.05" in a.explanation.en
    assert p.fired["_tier2"] == D(2024, 1, 1).toordinal()


def test_tier_crossing_at_most_once_per_tier_and_tariff_year_and_the_mark_survives_storage() -> None:
    eng, cust = Engine(), _js_customer()
    p, first = feed_daily(eng, cust, D(2024, 7, 1), [10.0] * 5 + [1.0] * 26, _js_profile(eng, cust))
    assert [a.rule for a in first] == ["tier_crossing"]
    p = Profile.from_dict(json.loads(json.dumps(p.to_dict())))  # stored and read back (the worker's table)
    # July ended at 2,676 kWh: August at 10/day again projects the same crossing into tier 2: no new warning
    p, aug = feed_daily(eng, cust, D(2024, 8, 1), [10.0] * 20, p)
    assert [a.rule for a in aug] == []
    assert p.to_dict()["f"]["_tier2"] == D(2024, 1, 1).toordinal()


def test_tier_crossing_needs_tiers_and_stays_silent_below_the_limit() -> None:
    eng = Engine()
    flat = CustomerConfig("c1", tariff_plan="cn-commercial-flat", tariff="commercial")
    _, alerts = feed_daily(eng, flat, D(2024, 7, 1), [10.0] * 10, _js_profile(eng, flat))
    assert alerts == [] or all(a.rule != "tier_crossing" for a in alerts)
    low = _js_customer()
    _, alerts = feed_daily(eng, low, D(2024, 7, 1), [2.0] * 20, _js_profile(eng, low))  # 2,600 + 62 < 2,760
    assert [a.rule for a in alerts] == []


def test_monthly_tiers_are_counted_per_cycle_with_bimonthly_limits_doubled() -> None:
    # Fujian: 200 / 400 kWh a month; a bi-monthly cycle has 400 / 800
    eng = Engine()
    cust = CustomerConfig("c1", tariff_plan="cn-fj-residential-monthly", cycle_months=2)
    _, alerts = feed_daily(eng, cust, D(2024, 7, 1), [10.0] * 8)
    [a] = [a for a in alerts if a.rule == "tier_crossing"]
    t = a.money.tier if a.money is not None else None
    assert t is not None and t.period == "cycle" and t.next_at_kwh == 400.0
    assert t.next_on == D(2024, 8, 10)  # 10 kWh a day passes 400 on the 41st day of the cycle


# ------------------------------------------------------------------------------- budget
def _uk(budget: Budget | None) -> CustomerConfig:
    return CustomerConfig("c2", tariff_plan=UK, timezone="Europe/London", budget=budget)


def test_budget_alerts_are_solicited_and_outside_the_one_customer_alert_per_cycle() -> None:
    eng = Engine()
    cust = _uk(Budget(amount=Decimal(20), currency="GBP"))
    p, alerts = feed_daily(eng, cust, D(2014, 1, 1), [8.0] * 20)
    assert [(a.rule, a.cycle.start) for a in alerts] == [
        ("budget_projected", D(2014, 1, 1)),
        ("budget_reached", D(2014, 1, 1)),
    ]
    proj, reached = alerts
    assert all(a.solicited and a.customer_facing for a in alerts)
    assert all(a.reasons[1].code == "baselines.solicited.budget" for a in alerts)
    assert "_customer" not in p.fired  # the cycle's unsolicited customer alert is still free
    # projected: on day 6 (day 5 starts the streak, persistence 2): 248 kWh x 0.154 = 38.19, 31 x 0.18 = 5.58
    assert proj.triggered_by.date() == D(2014, 1, 7)
    assert proj.money is not None and proj.money.projected == Decimal("43.77")
    assert proj.money.to_date == Decimal("8.47") and proj.money.budget == Decimal(20)  # 7.39 + 1.08
    # reached on day 15: 120 x 0.154 = 18.48, 15 x 0.18 = 2.70 (day 14: 17.25 + 2.52 = 19.77 < 20)
    assert reached.triggered_by.date() == D(2014, 1, 16)
    assert reached.money is not None and reached.money.to_date == Decimal("21.18")
    assert "£20.00" in reached.explanation.en and "£21.18" in reached.explanation.en


def test_a_budget_in_another_currency_than_the_plan_is_a_reason_not_an_alert() -> None:
    eng = Engine()
    cust = _uk(Budget(amount=Decimal(20), currency="CNY"))
    p, alerts = feed_daily(eng, cust, D(2014, 1, 1), [8.0] * 20)
    assert alerts == []
    snap = eng.snapshot(p, cust, None, dt.datetime(2014, 1, 21, tzinfo=dt.UTC))
    assert "baselines.money.budget_currency" in [r.code for r in snap.reasons]
    assert snap.money is not None and snap.money.budget is None


def test_the_budget_rule_can_be_switched_off_per_tariff() -> None:
    rules = RulesConfig(by_tariff={"residential": {"budget": {"projected": False}}})
    eng = Engine(rules)
    _, alerts = feed_daily(eng, _uk(Budget(amount=Decimal(20), currency="GBP")), D(2014, 1, 1), [8.0] * 20)
    assert [a.rule for a in alerts] == ["budget_reached"]


# ------------------------------------------------------------------------------- alerts' money
def _surge(eng: Engine, cust: CustomerConfig) -> list[Alert]:
    values = [8.0] * 45 + [40.0] * 8
    return feed_daily(eng, cust, D(2013, 12, 1), values)[1]


def test_every_alert_carries_money_when_the_customer_has_a_plan_and_none_without() -> None:
    eng = Engine()
    with_plan = _surge(eng, _uk(None))
    without = _surge(eng, CustomerConfig("c2", timezone="Europe/London"))
    assert [a.rule for a in with_plan] == [a.rule for a in without] == ["sudden_increase"]
    a, b = with_plan[0], without[0]
    # an alert without money is written as before money existed (no "money", no "solicited": the
    # backtest's alert file without a plan stays byte-identical); a solicited one says so
    assert b.money is None and not {"money", "solicited"} & set(json.loads(b.to_json()))
    assert Alert.model_validate_json(b.to_json()).solicited is False
    asked = b.model_copy(update={"solicited": True})
    assert json.loads(asked.to_json())["solicited"] is True
    assert Alert.model_validate_json(asked.to_json()).solicited is True
    assert a.money is not None and a.observed == b.observed
    # the bill of the cycle's days so far (January 2014: 8 kWh a day, then 40 from the 15th)
    start = a.cycle.start
    as_of = a.triggered_by.date() - dt.timedelta(days=1)
    n = (as_of - start).days + 1
    kwh = [8.0 if start + dt.timedelta(days=i) < D(2014, 1, 15) else 40.0 for i in range(n)]
    expected = bill(default_catalogue().plan(UK), start, kwh).total
    assert a.money.to_date == expected
    assert "Bill so far £" in a.explanation.en


def test_money_at_stake_raises_the_severity_one_step() -> None:
    rules = RulesConfig()
    p = Profile.new("c")
    c = OpenCycle(D(2024, 1, 1).toordinal(), D(2024, 2, 1).toordinal(), 0.0, 0.0)
    p.open_cycles.append(c)
    ctx = RuleContext(
        p, rules, rules.resolve("residential", None), CustomerConfig("c"), None, 0.0, None, c.start, 0
    )
    money = Money(
        currency="CNY",
        to_date=Decimal(100),
        projected=Decimal(400),
        same_period=Decimal(200),
        same_period_at_current_prices=Decimal(240),
    )
    big = fire(ctx, Finding("sudden_increase", c, "warning", True, Observed(), {}, {}, money=money))
    assert big.severity == "critical" and big.reasons[-1].code == "baselines.money.at_stake"
    small = money.model_copy(update={"projected": Decimal(300)})  # 60 extra at today's prices < 150
    f = Finding(
        "same_period_reached", c, "info", False, Observed(), {"ctd": 1.0, "sp": 1.0, "days_left": 1.0}, {}
    )
    f.money = small
    assert fire(ctx, f).severity == "info"
    f.money = money
    assert fire(ctx, f).severity == "warning"  # info -> warning: one step
    drop = Finding("sustained_drop", c, "warning", False, Observed(), {}, {}, money=money)
    assert fire(ctx, drop).severity == "warning"  # not a rule about an increase


# ------------------------------------------------------------------------------- snapshot, plans, days
def test_the_snapshot_has_the_bill_figures_as_of_the_last_complete_day() -> None:
    eng, cust = Engine(), _js_customer()
    p, _ = feed_daily(eng, cust, D(2024, 7, 1), [10.0] * 10, _js_profile(eng, cust))
    m = eng.snapshot(p, cust, None, dt.datetime(2024, 7, 11, 6, tzinfo=dt.UTC)).money
    assert m is not None and (m.plan_id, m.currency, m.as_of, m.kwh_to_date) == (
        JS,
        "CNY",
        D(2024, 7, 10),
        100.0,
    )
    assert (m.to_date, m.projected, m.same_period) == (Decimal("52.83"), Decimal("171.27"), Decimal("158.49"))
    assert m.same_period_at_current_prices == Decimal("158.49") and m.extra_at_current_prices == Decimal(
        "12.78"
    )
    assert m.tier is not None and (m.tier.index, m.tier.period_kwh, m.tier.next_on) == (
        1,
        2700.0,
        D(2024, 7, 17),
    )
    assert m.next_tier_kwh_to_go == 60.0


def test_the_snapshot_figures_follow_a_late_reading_of_a_counted_day() -> None:
    eng, cust = Engine(), CustomerConfig("c3", timezone="UTC", tariff_plan=UK)
    p = Profile.new("c3")
    late = None
    for day in range(1, 11):
        for i, r in enumerate(half_hourly(D(2014, 1, day), [0.5] * 48)):
            if day == 5 and i == 20:
                late = r  # arrives after the 10th
                continue
            p = eng.process(p, r, cust).profile
    now = dt.datetime(2014, 1, 11, tzinfo=dt.UTC)
    before = eng.snapshot(p, cust, None, now).money
    assert late is not None and before is not None and before.kwh_to_date == pytest.approx(9 * 24.0 + 23.5)
    p = eng.process(p, late, cust).profile
    after = eng.snapshot(p, cust, None, now).money
    assert after is not None and after.as_of == before.as_of and after.kwh_to_date == pytest.approx(240.0)
    assert after.to_date - before.to_date == Decimal("0.08")  # 0.5 kWh x 0.154 = 0.077 -> a cent rounding


def test_no_plan_no_money_and_a_default_plan_per_tariff_gives_money() -> None:
    cust = CustomerConfig("c2", timezone="Europe/London")
    p, _ = feed_daily(Engine(), cust, D(2014, 1, 1), [8.0] * 5)
    now = dt.datetime(2014, 1, 6, tzinfo=dt.UTC)
    assert Engine().snapshot(p, cust, None, now).money is None
    eng = Engine(tariffs=Tariffs.default({"residential": UK}))
    m = eng.snapshot(p, cust, None, now).money
    assert m is not None and m.plan_id == UK and m.to_date == Decimal("7.06")  # 40 x 0.154 = 6.16 + 5 x 0.18


def test_a_plan_change_applies_from_the_next_billing_cycle() -> None:
    eng = Engine()
    js = _js_customer()
    p, _ = feed_daily(eng, js, D(2024, 7, 1), [5.0] * 10, _js_profile(eng, js))
    fj = CustomerConfig("c1", tariff_plan="cn-fj-residential-monthly")
    p, _ = feed_daily(eng, fj, D(2024, 7, 11), [5.0] * 10, p)
    now = dt.datetime(2024, 7, 21, tzinfo=dt.UTC)
    m = eng.snapshot(p, fj, None, now).money
    assert m is not None and m.plan_id == JS  # July keeps the plan it started with
    assert p.plans == [(0, JS), (D(2024, 8, 1).toordinal(), "cn-fj-residential-monthly")]
    p, _ = feed_daily(eng, fj, D(2024, 7, 21), [5.0] * 20, p)
    m = eng.snapshot(p, fj, None, dt.datetime(2024, 8, 10, tzinfo=dt.UTC)).money
    assert m is not None and m.plan_id == "cn-fj-residential-monthly" and m.tier is not None
    assert m.tier.period == "cycle"
    old = {k: v for k, v in p.to_dict().items() if k != "tp"}  # a profile stored before plans existed
    assert Profile.from_dict(old).plans == []


def test_the_cycle_days_add_up_to_the_cycle_even_with_partial_days() -> None:
    eng = Engine()
    cust = CustomerConfig("c3", timezone="UTC", tariff_plan=UK)
    p = Profile.new("c3")
    for day in range(1, 20):
        half = [0.25] * 48 if day != 3 else [0.25] * 24  # the 3rd: only half a day measured
        for r in half_hourly(D(2014, 1, day), half):
            p = eng.process(p, r, cust).profile
    total = round(sum(cycle_days(p, 0, D(2014, 1, 19).toordinal())), 6)
    assert total == pytest.approx(18 * 12.0 + 6.0)
    m = snapshot_money(p, cust, eng.tariffs, 0.9)
    assert m is not None and m.kwh_to_date == pytest.approx(total, abs=1e-3)


def test_time_of_use_plans_price_daily_data_with_the_fallback_shares() -> None:
    # Zhejiang: peak 0.568, valley 0.288; daily data split 65 % / 35 %
    eng = Engine()
    cust = CustomerConfig("c4", tariff_plan="cn-zj-residential-tou")
    p, _ = feed_daily(eng, cust, D(2024, 3, 1), [10.0] * 10)
    m = eng.snapshot(p, cust, None, dt.datetime(2024, 3, 11, tzinfo=dt.UTC)).money
    # 100 kWh: peak 65 x 0.568 = 36.92, valley 35 x 0.288 = 10.08
    assert m is not None and m.to_date == Decimal("47.00")
