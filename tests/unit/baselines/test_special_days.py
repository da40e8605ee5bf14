"""Holidays and away periods (issue #15 item 2): no evidence of a surge or drop, out of the baseline."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.special_days import holiday_days, is_holiday
from meterwatch.contracts import Alert, CustomerRecord

from .helpers import feed_daily

GB = CustomerConfig("c1", timezone="UTC", region="GB-ENG")
PLAIN = CustomerConfig("c1", timezone="UTC")
AUTUMN = dt.date(2013, 10, 1)  # 85 days before Christmas 2013


def habit(n: int, level: float = 7.0) -> list[float]:
    """A steady household around ``level`` kWh/day (+-15 %, weekly pattern)."""
    return [level * (0.85 + 0.075 * (i % 5)) for i in range(n)]


def days_from(start: dt.date, first: dt.date, last: dt.date) -> range:
    """Indexes of the days ``first``..``last`` in a series starting ``start``."""
    return range((first - start).days, (last - start).days + 1)


def rule(alerts: list[Alert], name: str) -> list[Alert]:
    return [a for a in alerts if a.rule == name]


def christmas_at_home(mult: float, n: int = 112) -> list[float]:
    """Autumn habit, then x ``mult`` over the whole Christmas break (25 Dec - 1 Jan), then habit."""
    vals = habit(n)
    for i in days_from(AUTUMN, dt.date(2013, 12, 25), dt.date(2014, 1, 1)):
        if i < n:
            vals[i] *= mult
    return vals


def test_the_calendar_bridges_breaks_and_knows_the_spring_festival() -> None:
    xmas = {dt.date.fromordinal(d) for d in holiday_days("GB-ENG", 2013)}
    assert {dt.date(2013, 12, d) for d in range(25, 32)} <= xmas  # 27-31 Dec bridged
    assert dt.date(2013, 12, 24) not in xmas and dt.date(2013, 7, 1) not in xmas
    assert is_holiday("GB-ENG", dt.date(2014, 1, 1).toordinal())  # across the year boundary
    spring = [dt.date(2024, 2, d) for d in range(10, 17)]
    assert all(is_holiday("CN", d.toordinal()) for d in spring)
    assert not is_holiday("CN", dt.date(2024, 2, 20).toordinal())


def test_a_christmas_at_home_is_a_surge_without_the_calendar_and_none_with_it() -> None:
    vals = christmas_at_home(4.0)
    _, plain = feed_daily(Engine(), PLAIN, AUTUMN, vals)
    assert rule(plain, "sudden_increase"), (
        "the unmasked break must look like a surge (else the test proves nothing)"
    )
    _p, gb = feed_daily(Engine(), GB, AUTUMN, vals)
    assert rule(gb, "sudden_increase") == []


def test_a_surge_after_the_break_is_still_told() -> None:
    vals = christmas_at_home(4.0, n=125)
    for i in days_from(AUTUMN, dt.date(2014, 1, 20), dt.date(2014, 1, 31)):
        vals[i] *= 5.0
    _, gb = feed_daily(Engine(), GB, AUTUMN, vals)
    [surge] = rule(gb, "sudden_increase")
    assert surge.triggered_by.date() >= dt.date(2014, 1, 20)


def test_while_the_break_fills_the_window_the_rule_says_why() -> None:
    vals = christmas_at_home(4.0, n=(dt.date(2013, 12, 31) - AUTUMN).days + 1)
    p, _ = feed_daily(Engine(), GB, AUTUMN, vals)
    code, numbers = p.reasons["sudden_increase"]
    assert code == "baselines.calendar.holiday" and numbers["special_days"] >= 2


@settings(max_examples=25, deadline=None)
@given(
    base=st.lists(st.floats(3.0, 12.0), min_size=112, max_size=112),
    holiday_a=st.lists(st.floats(0.0, 60.0), min_size=8, max_size=8),
    holiday_b=st.lists(st.floats(0.0, 60.0), min_size=8, max_size=8),
)
def test_holiday_values_never_reach_the_baseline(
    base: list[float], holiday_a: list[float], holiday_b: list[float]
) -> None:
    """Whatever the household does over the break, the baseline statistics are the same."""
    idx = list(days_from(AUTUMN, dt.date(2013, 12, 25), dt.date(2014, 1, 1)))

    def run(holiday: list[float]) -> Profile:
        vals = list(base)
        for i, v in zip(idx, holiday, strict=True):
            vals[i] = round(v, 3)
        p, _ = feed_daily(Engine(), GB, AUTUMN, vals)
        return p

    a, b = run(holiday_a), run(holiday_b)
    stats = ("baseline_median", "baseline_mad", "baseline_days", "p95_day", "weekday_factors")
    assert [getattr(a, s) for s in stats] == [getattr(b, s) for s in stats]
    assert a.special_flags and a.special_flags == b.special_flags
    assert (a.high_flags, a.low_flags) == (b.high_flags, b.low_flags)


def test_a_declared_absence_mutes_the_drop_alert_and_stays_out_of_the_baseline() -> None:
    start = dt.date(2024, 1, 1)
    vals = habit(60) + [0.05] * 20 + habit(10)
    away_first, away_last = start + dt.timedelta(days=60), start + dt.timedelta(days=79)
    _, plain = feed_daily(Engine(), PLAIN, start, vals)
    assert rule(plain, "sustained_drop"), "an undeclared absence is a drop"
    away = CustomerConfig("c1", timezone="UTC", away=((away_first.toordinal(), away_last.toordinal()),))
    p, alerts = feed_daily(Engine(), away, start, vals[:80])
    assert rule(alerts, "sustained_drop") == []
    assert p.reasons["sustained_drop"][0] == "baselines.calendar.away"
    p, alerts = feed_daily(Engine(), away, start + dt.timedelta(days=80), vals[80:], profile=p)
    assert alerts == [] and p.baseline_median is not None and p.baseline_median > 5.0


def test_an_absence_longer_than_declared_is_told() -> None:
    start = dt.date(2024, 1, 1)
    vals = habit(60) + [0.05] * 40
    short = CustomerConfig("c1", timezone="UTC", away=((start.toordinal() + 60, start.toordinal() + 66),))
    _, alerts = feed_daily(Engine(), short, start, vals)
    drop = rule(alerts, "sustained_drop")[0]  # (and again in the next cycle)
    assert drop.triggered_by.date() >= start + dt.timedelta(days=66 + 12)  # 12 undeclared low days


def test_the_spring_festival_homecoming_is_no_surge_in_china() -> None:
    start = dt.date(2023, 11, 20)
    vals = habit(100)
    for i in days_from(start, dt.date(2024, 2, 10), dt.date(2024, 2, 17)):
        vals[i] *= 5.0
    cn = CustomerConfig("c1", timezone="Asia/Shanghai", region="CN")
    plain = CustomerConfig("c1", timezone="Asia/Shanghai")
    assert rule(feed_daily(Engine(), plain, start, vals)[1], "sudden_increase")
    assert rule(feed_daily(Engine(), cn, start, vals)[1], "sudden_increase") == []


def test_without_region_or_absence_the_profile_is_what_it_was() -> None:
    """No calendar: the stored profile has no special days and the same bytes as before."""
    vals = christmas_at_home(4.0)
    p, _ = feed_daily(Engine(), PLAIN, AUTUMN, vals)
    assert "fx" not in p.to_dict() and p.special_flags == 0
    q, _ = feed_daily(Engine(), GB, AUTUMN, vals)
    assert "fx" in q.to_dict() and Profile.from_dict(q.to_dict()).special_flags == q.special_flags


def test_records_name_known_regions_and_ordered_absences() -> None:
    rec = CustomerRecord(
        customer_id="c", region="GB-ENG", away=[{"start": "2024-02-01", "end": "2024-02-03"}]
    )
    assert CustomerConfig.from_record(rec).away == ((738917, 738919),)
    for bad in ({"region": "XX"}, {"region": "GB-XYZ"}, {"region": "gb"}):
        with pytest.raises(ValidationError, match="region"):
            CustomerRecord(customer_id="c", **bad)
    with pytest.raises(ValidationError, match="before it starts"):
        CustomerRecord(customer_id="c", away=[{"start": "2024-02-03", "end": "2024-02-01"}])
    with pytest.raises(ValidationError, match="at most"):
        CustomerRecord(customer_id="c", away=[{"start": "2024-01-01", "end": "2024-01-01"}] * 25)


def test_an_absence_declared_afterwards_leaves_the_baseline_and_undeclared_again_returns() -> None:
    start = dt.date(2024, 1, 1)
    vals = habit(40) + [0.05] * 35  # 35 low days: enough to pass for a new level if undeclared
    p, _ = feed_daily(Engine(), PLAIN, start, vals)
    undeclared = p.baseline_median
    away = ((start.toordinal() + 40, start.toordinal() + 74),)
    told = CustomerConfig("c1", timezone="UTC", away=away)
    p, _ = feed_daily(Engine(), told, start + dt.timedelta(days=75), habit(2), profile=p)
    assert undeclared is not None and p.baseline_median is not None and p.baseline_median > undeclared
    assert p.special_flags and not (p.low_flags & p.special_flags)
    p, _ = feed_daily(Engine(), PLAIN, start + dt.timedelta(days=77), habit(2), profile=p)
    assert p.special_flags == 0 and p.calendar_key is None


def test_no_calendar_makes_more_than_a_few_weeks_a_year_special() -> None:
    import holidays

    counts = {c: len(holiday_days(c, 2024)) for c in holidays.list_supported_countries()}
    assert max(counts.values()) <= 45, sorted(counts.items(), key=lambda kv: -kv[1])[:5]
    assert counts["SE"] < 30 and counts["CN"] >= 20 and counts["GB"] >= 8
