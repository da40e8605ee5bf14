"""Each rule module on hand-made profiles: when it fires, when it refuses, and what it records."""

from __future__ import annotations

import pytest

from baselines.alerts import CUSTOMER_FACING_KEY, CUSTOMER_LEVEL_KEY, ESCALATION
from baselines.profile import Profile
from baselines.rules import projected_over_same_period as projected
from baselines.rules import same_period_reached, sudden_increase, sustained_drop
from baselines.rules.config import RulesConfig, SamePeriodReached
from baselines.rules.same_period import (
    NO_SAME_PERIOD,
    SAME_PERIOD_COVERAGE,
    SAME_PERIOD_TOO_SMALL,
    same_period_basis,
)

from .crafted import FEB_2024, JAN_2023, JAN_2024, closed, context, craft

# ------------------------------------------------------------------ same_period_reached


def same_period_profile(
    newest_offset: int, cycle_kwh: float, last_year: float = 300.0, cov: float = 1.0
) -> Profile:
    p = craft([10.0] * 20, last_ring_day=JAN_2024 + newest_offset, cycle_kwh=cycle_kwh)
    p.closed_cycles.append(closed(JAN_2023, JAN_2023 + 31, last_year, cov))
    return p


def test_same_period_reached_fires_on_the_running_cycle_with_days_left() -> None:
    p = same_period_profile(14, cycle_kwh=320.0)  # 15 January: 320 kWh against 300 last January
    (f,) = same_period_reached.check(context(p))
    assert f.rule == "same_period_reached" and f.cycle.start == JAN_2024
    assert f.explain == {"ctd": 320.0, "sp": 300.0, "days_left": 16.0}
    assert f.numbers == {"same_period_coverage": 1.0, "days_elapsed": 15, "cycle_days": 31}
    assert f.observed.ratio == pytest.approx(320 / 300, abs=1e-3) and not f.customer_facing
    assert "same_period_reached" not in p.reasons


def test_same_period_reached_stays_quiet_late_in_the_cycle_below_the_threshold_and_after_firing() -> None:
    assert same_period_reached.check(context(same_period_profile(28, cycle_kwh=320.0))) == ()  # 29/31 elapsed
    assert same_period_reached.check(context(same_period_profile(14, cycle_kwh=299.0))) == ()
    p = same_period_profile(14, cycle_kwh=320.0)
    p.fired["same_period_reached"] = JAN_2024
    assert same_period_reached.check(context(p)) == ()


@pytest.mark.parametrize(
    ("last_year", "cov", "code"),
    [(None, 1.0, NO_SAME_PERIOD), (300.0, 0.5, SAME_PERIOD_COVERAGE), (5.0, 1.0, SAME_PERIOD_TOO_SMALL)],
)
def test_the_same_period_prelude_records_why_it_cannot_judge(
    last_year: float | None, cov: float, code: str
) -> None:
    p = craft([10.0] * 20, last_ring_day=JAN_2024 + 14, cycle_kwh=320.0)
    if last_year is not None:
        p.closed_cycles.append(closed(JAN_2023, JAN_2023 + 31, last_year, cov))
    ctx = context(p)
    assert same_period_basis(ctx, "x", ctx.cycle, SamePeriodReached()) == code
    assert same_period_reached.check(ctx) == ()
    assert p.reasons["same_period_reached"][0] == code


def test_a_partly_covered_same_period_is_scaled_to_the_whole_cycle() -> None:
    p = same_period_profile(14, cycle_kwh=320.0, last_year=270.0, cov=0.9)
    ctx = context(p)
    basis = same_period_basis(ctx, "x", ctx.cycle, SamePeriodReached())
    assert not isinstance(basis, str)
    assert basis[0] == pytest.approx(300.0) and basis[1] == 0.9


def test_may_fire_now_answers_from_the_profile() -> None:
    cfg = SamePeriodReached()
    assert same_period_reached.may_fire_now(same_period_profile(14, cycle_kwh=320.0), cfg)
    assert not same_period_reached.may_fire_now(same_period_profile(14, cycle_kwh=200.0), cfg)


# ------------------------------------------------------------------ projected_over_same_period


def projected_profile() -> tuple[Profile, int]:
    """49 days at 8 then 7 days at 20 kWh through 10 January 2024; January 2023 used 310 kWh."""
    as_of = JAN_2024 + 9
    p = craft([8.0] * 49 + [20.0] * 7, last_ring_day=as_of, cycle_kwh=200.0)
    p.closed_cycles.append(closed(JAN_2023, JAN_2023 + 31, 310.0))
    return p, as_of


def test_projected_fires_on_the_third_evaluation_in_a_row_and_restarts_after_a_miss() -> None:
    p, as_of = projected_profile()
    ctx = context(p, as_of)
    assert projected.check(ctx) == () and p.streaks[projected.RULE] == 1
    assert projected.check(ctx) == ()
    (f,) = projected.check(ctx)
    assert f.observed.projected_cycle_kwh == pytest.approx(200.0 + 20.0 * 21)
    assert f.observed.recent_daily_kwh == 20.0 and f.customer_facing
    assert projected.RULE not in p.streaks
    # a miss in between restarts the count
    q, _ = projected_profile()
    qctx = context(q, as_of)
    projected.check(qctx)
    q.baseline_median = 19.0  # the recent level is no longer 1.5 x the baseline
    assert projected.check(qctx) == () and projected.RULE not in q.streaks


def test_projected_needs_days_in_the_cycle_and_a_recent_level() -> None:
    p, _ = projected_profile()
    assert projected.check(context(p, JAN_2024 + 3)) == ()
    assert p.reasons[projected.RULE][0] == "baselines.sufficiency.too_few_days_in_cycle"


def test_a_too_small_same_period_keeps_the_projection_streak() -> None:
    # kept as it always was (a too small same period is a passing state, not a broken streak)
    p, as_of = projected_profile()
    p.streaks[projected.RULE] = 2
    p.closed_cycles[-1] = closed(JAN_2023, JAN_2023 + 31, 5.0)
    assert projected.check(context(p, as_of)) == ()
    assert p.streaks[projected.RULE] == 2


# ------------------------------------------------------------------ sudden_increase


def surge_profile(surge: float = 30.0) -> Profile:
    """56 quiet days at 8 kWh, then 5 open days at ``surge`` kWh (in February 2024)."""
    return craft([8.0] * 56, [surge] * 5, last_ring_day=FEB_2024 + 8)


def test_sudden_increase_fires_with_its_figures() -> None:
    p = surge_profile()
    (f,) = sudden_increase.check(context(p))
    assert f.rule == "sudden_increase" and f.severity == "warning" and f.customer_facing
    assert f.explain == {"recent": 30.0, "baseline": 8.0, "ratio": 3.75}
    assert f.numbers["prior_ratio"] == 3.75 and f.numbers["season_factor"] == 1.0
    assert f.numbers["window_days"] == 5
    (g,) = sudden_increase.check(context(surge_profile(45.0)))
    assert g.severity == "critical"


def test_sudden_increase_cheap_exit_and_missing_days() -> None:
    p = surge_profile(8.0)
    p.reasons["sudden_increase"] = ["old", {}]
    assert sudden_increase.check(context(p)) == ()
    assert "sudden_increase" not in p.reasons
    young = craft([8.0] * 10, [30.0] * 5, last_ring_day=FEB_2024 + 8)
    assert sudden_increase.check(context(young)) == ()
    assert young.reasons["sudden_increase"] == [
        "baselines.sufficiency.too_few_days",
        {"days": 10, "needed": 14},
    ]


def test_a_household_with_such_days_is_not_surprised() -> None:
    # three of its 56 quiet days were as high: its own 95th-percentile day explains the surge
    ring = [8.0] * 53 + [31.0] * 3
    p = craft(ring, [30.0] * 5, last_ring_day=FEB_2024 + 8)
    assert p.p95_day == 31.0
    assert sudden_increase.check(context(p)) == ()


@pytest.mark.parametrize(("level_kwh", "fires"), [(10.0, True), (20.0, False)])
def test_escalation_after_a_customer_facing_alert_of_this_cycle(level_kwh: float, fires: bool) -> None:
    p = surge_profile()
    start = p.open_cycles[-1].start
    p.fired.update(
        {"sudden_increase": start, CUSTOMER_FACING_KEY: start, CUSTOMER_LEVEL_KEY: round(level_kwh * 1000)}
    )
    found = sudden_increase.check(context(p))
    assert [f.rule for f in found] == ([ESCALATION] if fires else [])
    if fires:
        assert found[0].escalation and found[0].explain["previous"] == 10.0
        assert found[0].numbers["previous_alert_daily_kwh"] == 10.0


def test_season_factor_from_last_years_cycles() -> None:
    p = surge_profile()
    as_of = p.newest_day
    assert as_of is not None
    cfg = RulesConfig()
    assert sudden_increase.season_factor(p, as_of, cfg) == 1.0
    mid = as_of - cfg.late_window_days - cfg.ring_days // 2 - 365
    p.closed_cycles += [closed(mid - 10, mid + 10, 200.0), closed(as_of - 375, as_of - 355, 300.0)]
    assert sudden_increase.season_factor(p, as_of, cfg) == 1.5


# ------------------------------------------------------------------ sustained_drop


def test_sustained_drop_fires_on_a_fortnight_near_zero() -> None:
    p = craft([8.0] * 42 + [0.1] * 14, last_ring_day=FEB_2024 + 8)
    (f,) = sustained_drop.check(context(p))
    assert f.rule == "sustained_drop" and not f.customer_facing
    assert f.explain == {"recent": 0.1, "baseline": 8.0, "days": 14.0}
    assert f.numbers == {"p80_kwh": 0.1, "days_present": 14, "days": 14}


def test_sustained_drop_exits_early_on_recent_high_days_and_needs_known_days() -> None:
    # the two newest days are normal: no drop, whatever the days before (even unknown) say
    p = craft([8.0] * 42 + [None] * 12 + [8.0] * 2, last_ring_day=FEB_2024 + 8)
    p.reasons["sustained_drop"] = ["old", {}]
    assert sustained_drop.check(context(p)) == () and "sustained_drop" not in p.reasons
    gaps = craft([8.0] * 42 + [0.1] * 10 + [None] * 4, last_ring_day=FEB_2024 + 8)
    assert sustained_drop.check(context(gaps)) == ()
    assert gaps.reasons["sustained_drop"] == ["baselines.sufficiency.recent_days_missing", {"present": 10}]
