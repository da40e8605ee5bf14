from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baselines.customer import CustomerConfig
from baselines.cycles import (
    cycle_containing,
    cycle_end_for,
    day_bounds_epoch,
    fraction_elapsed,
    local_date,
    next_boundary,
    previous_cycle,
    same_period,
    zone,
)
from baselines.engine import Engine

from .helpers import cycle_totals, feed_daily

dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2040, 12, 31))


@given(dates, st.integers(1, 28), st.sampled_from([1, 2]))
def test_cycle_contains_day_and_tiles(day: dt.date, read_day: int, months: int) -> None:
    start, end = cycle_containing(day, read_day, months)
    assert start <= day < end
    assert start.day == read_day and end.day == read_day
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == months
    # the next cycle starts where this one ends; the previous one ends where this starts
    assert cycle_containing(end, read_day, months)[0] == end
    assert previous_cycle(start, read_day, months)[1] == start
    assert next_boundary(day, read_day, months) == end


def test_month_ends_and_leap_years() -> None:
    assert cycle_containing(dt.date(2024, 2, 29), 1) == (dt.date(2024, 2, 1), dt.date(2024, 3, 1))
    assert cycle_containing(dt.date(2023, 2, 28), 28) == (dt.date(2023, 2, 28), dt.date(2023, 3, 28))
    assert cycle_containing(dt.date(2024, 2, 27), 28) == (dt.date(2024, 1, 28), dt.date(2024, 2, 28))
    assert cycle_containing(dt.date(2024, 1, 3), 15) == (dt.date(2023, 12, 15), dt.date(2024, 1, 15))
    # the same-period cycle of a February that has 29 days had 28
    s, e = same_period(dt.date(2024, 2, 1), dt.date(2024, 3, 1))
    assert (e - s).days == 28
    # bi-monthly cycles start in odd months
    assert cycle_containing(dt.date(2024, 2, 20), 10, 2) == (dt.date(2024, 1, 10), dt.date(2024, 3, 10))
    assert cycle_containing(dt.date(2024, 1, 5), 10, 2) == (dt.date(2023, 11, 10), dt.date(2024, 1, 10))


def test_invalid_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="read_day"):
        cycle_containing(dt.date(2024, 1, 1), 29)
    with pytest.raises(ValueError, match="cycle_months"):
        cycle_containing(dt.date(2024, 1, 1), 1, 3)
    with pytest.raises(ValueError, match="timezone"):
        zone("Mars/Olympus")


def test_dst_days_and_fraction_elapsed() -> None:
    tz = zone("Europe/London")
    a, b = day_bounds_epoch(dt.date(2024, 10, 27), tz)
    assert b - a == 25 * 3600
    # March 2024 in London has 743 hours; its midpoint in real time is not noon on the 16th
    at = dt.datetime(2024, 3, 16, 12, 0, tzinfo=tz)
    f = fraction_elapsed(at, dt.date(2024, 3, 1), dt.date(2024, 4, 1), tz)
    assert f == pytest.approx((15 * 24 + 12) / 743)
    # 23:30 UTC on 30 June is already 1 July in London, still 30 June in Shanghai - 8h
    assert local_date(dt.datetime(2024, 6, 30, 23, 30, tzinfo=dt.UTC).timestamp(), tz) == dt.date(2024, 7, 1)
    sh = zone("Asia/Shanghai")
    assert local_date(dt.datetime(2024, 6, 30, 15, 30, tzinfo=dt.UTC).timestamp(), sh) == dt.date(2024, 6, 30)


def test_read_day_change_transitional_cycle() -> None:
    assert cycle_end_for(dt.date(2024, 1, 5), 20) == dt.date(2024, 1, 20)
    assert cycle_end_for(dt.date(2024, 1, 5), 8) == dt.date(2024, 2, 8)
    # engine: customer moves from read day 5 to read day 20 mid-stream; cycles still tile, kWh is kept
    eng = Engine()
    c5 = CustomerConfig("c", read_day=5, timezone="UTC")
    c20 = CustomerConfig("c", read_day=20, timezone="UTC")
    p, _ = feed_daily(eng, c5, dt.date(2024, 1, 5), [1.0] * 40)  # to 2024-02-13
    p, _ = feed_daily(eng, c20, dt.date(2024, 2, 14), [1.0] * 60, p)  # to 2024-04-13
    spans = [(c.start, c.end) for c in p.closed_cycles] + [(c.start, c.end) for c in p.open_cycles]
    for (s0, e0), (s1, _) in itertools.pairwise(spans):
        assert e0 == s1
    starts = [dt.date.fromordinal(s) for s, _ in spans]
    # the running cycle keeps its end; the next one is transitional (5 Mar - 19 Mar), then the 20th
    assert starts[:4] == [dt.date(2024, 1, 5), dt.date(2024, 2, 5), dt.date(2024, 3, 5), dt.date(2024, 3, 20)]
    assert sum(cycle_totals(eng, p).values()) == pytest.approx(100.0)
