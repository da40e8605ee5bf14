"""Graded evidence in ``sudden_increase`` (issue #15): a large, steady jump needs fewer days."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.rules import RulesConfig
from baselines.rules.config import SuddenIncrease
from meterwatch.contracts import Alert

from .helpers import feed_daily

D0 = dt.date(2023, 1, 1)
CUST = CustomerConfig("c1", timezone="UTC")


def habit(n: int = 60) -> list[float]:
    """A steady household around 7 kWh/day (6.0-8.0, no day above 8)."""
    return [6.0 + (i % 5) * 0.5 for i in range(n)]


def settled(eng: Engine, vals: list[float] | None = None) -> Profile:
    p, alerts = feed_daily(eng, CUST, D0, vals or habit())
    assert alerts == []
    return p


def surges(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.rule == "sudden_increase"]


def test_a_sixfold_jump_fires_on_its_second_day_from_two_days() -> None:
    eng = Engine()
    p = settled(eng)
    # day 60 is the first surge day; each row is told when its day closes (the next midnight)
    _, alerts = feed_daily(eng, CUST, D0 + dt.timedelta(days=60), [42.0, 43.0, 44.0], p)
    si = surges(alerts)
    assert len(si) == 1
    assert si[0].triggered_by.date() == D0 + dt.timedelta(days=62)  # the end of the second surge day
    assert si[0].reasons[0].numbers["window_days"] == 2
    assert si[0].observed.ratio is not None and si[0].observed.ratio >= 5.0
    assert si[0].severity == "critical"


def test_without_graded_steps_the_same_jump_waits_for_four_days_of_five() -> None:
    eng = Engine(RulesConfig.model_validate({"default": {"sudden_increase": {"graded": []}}}))
    p = settled(eng)
    _, alerts = feed_daily(eng, CUST, D0 + dt.timedelta(days=60), [42.0, 43.0, 44.0, 45.0], p)
    si = surges(alerts)
    assert len(si) == 1
    assert si[0].triggered_by.date() == D0 + dt.timedelta(days=64)
    assert si[0].reasons[0].numbers["window_days"] == 5


def test_one_sixfold_day_is_not_a_surge() -> None:
    eng = Engine()
    p = settled(eng)
    _, alerts = feed_daily(eng, CUST, D0 + dt.timedelta(days=60), [42.0, 7.0, 7.0, 6.5], p)
    assert surges(alerts) == []


def test_a_fourfold_jump_is_below_the_graded_step() -> None:
    eng = Engine()
    p = settled(eng)
    _, alerts = feed_daily(eng, CUST, D0 + dt.timedelta(days=60), [28.0, 29.0, 30.0], p)
    assert surges(alerts) == []  # 4x: the 4-of-5 window decides (on the fourth day)


def test_two_high_days_no_higher_than_a_day_of_its_own_ring_wait_for_the_window() -> None:
    eng = Engine()
    vals = habit()
    vals[30] = 50.0  # one day this household used 50 kWh (a spike; not a 95th-percentile day)
    p = settled(eng, vals)
    _, alerts = feed_daily(eng, CUST, D0 + dt.timedelta(days=60), [42.0, 43.0, 44.0], p)
    assert surges(alerts) == []  # not above every earlier day of the ring: no graded alert


def test_a_higher_day_in_the_late_window_also_counts_as_its_own() -> None:
    eng = Engine()
    vals = habit()
    vals[57] = 50.0  # three days before the surge: still an open day of the late window
    p = settled(eng, vals)
    _, alerts = feed_daily(eng, CUST, D0 + dt.timedelta(days=60), [42.0, 43.0, 44.0], p)
    assert surges(alerts) == []


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"graded": [{"days": 2, "ratio": 2.0, "z_min": 3.0}]}, "below factor x tolerance"),
        ({"graded": [{"days": 6, "ratio": 5.0, "z_min": 3.0}]}, "exceed window_days"),
        ({"prior_days": 0}, "needs prior_days > 0"),
    ],
)
def test_graded_steps_that_could_never_fire_or_break_the_cheap_exit_are_refused(
    over: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        SuddenIncrease.model_validate(over)


def test_the_alert_says_which_evidence_fired_it() -> None:
    eng = Engine()
    p = settled(eng)
    _, fast = feed_daily(eng, CUST, D0 + dt.timedelta(days=60), [42.0, 43.0, 44.0], p)
    _, slow = feed_daily(eng, CUST, D0 + dt.timedelta(days=60), [28.0, 29.0, 30.0, 28.0], p)
    assert [a.reasons[0].numbers["evidence"] for a in surges(fast)] == ["graded"]
    assert [a.reasons[0].numbers["evidence"] for a in surges(slow)] == ["window"]
