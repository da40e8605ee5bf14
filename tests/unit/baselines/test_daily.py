"""baselines.daily: the days made final with the expectation of the baseline that judged them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.customer import CustomerConfig
from baselines.daily import expectation, final_days, load_history_with_days, mark
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from meterwatch.contracts import HistoryRow
from meterwatch.dailyarchive import DayRecord

CUST = CustomerConfig("c1", timezone="UTC")
D0 = dt.date(2024, 1, 1)


def _feed(values: Sequence[float | None]) -> tuple[Engine, Profile, list[DayRecord]]:
    eng, p = Engine(), Profile.new("c1")
    got: list[DayRecord] = []
    for i, v in enumerate(values):
        if v is None:
            continue
        m = mark(p)
        eng.process_inplace(p, Reading.daily(D0 + dt.timedelta(days=i), v), CUST)
        got += final_days(m, p, eng.rules)
    return eng, p, got


def test_every_final_day_is_reported_once_in_order_with_gaps_as_missing() -> None:
    values: list[float | None] = [6.0 + (i % 3) for i in range(70)]
    values[20] = values[21] = None  # two days without data
    _, p, got = _feed(values)
    days = [r.day for r in got]
    assert days == sorted(set(days))
    assert days[0] == D0.toordinal()
    assert p.final_start is not None
    assert days[-1] == p.final_start + len(p.final_days) - 1
    assert {r.day: r.kwh for r in got}[(D0 + dt.timedelta(days=20)).toordinal()] is None


def test_a_surge_day_lies_above_the_band_of_the_baseline_that_judged_it() -> None:
    values = [8.0] * 50 + [40.0] * 3 + [8.0] * 12
    _, _, got = _feed(values)
    surge = [r for r in got if r.kwh == 40.0]
    assert len(surge) == 3
    for r in surge:
        assert r.expected_kwh is not None and r.band_high is not None and r.kwh is not None
        assert r.kwh > r.band_high
    ordinary = [r for r in got if r.kwh == 8.0 and r.expected_kwh is not None]
    assert ordinary
    for r in ordinary:
        assert r.band_low is not None and r.band_high is not None
        assert r.band_low <= 8.0 <= r.band_high


def test_no_band_before_fourteen_baseline_days() -> None:
    _, _, got = _feed([5.0] * 30)
    assert got[0].expected_kwh is None
    assert any(r.expected_kwh is not None for r in got)
    assert expectation(mark(Profile.new("x")), 1, Engine().rules) is None


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=50, allow_nan=False), min_size=20, max_size=120))
def test_history_a_week_at_a_time_equals_one_load_and_archives_every_complete_day(kwhs: list[float]) -> None:
    rows = [HistoryRow(customer_id="c1", day=D0 + dt.timedelta(days=i), kwh=k) for i, k in enumerate(kwhs)]
    rows.append(HistoryRow(customer_id="c1", start=dt.date(2023, 1, 1), end=dt.date(2023, 1, 31), kwh=200.0))
    eng = Engine()
    p, days = load_history_with_days(eng, Profile.new("c1"), rows, CUST)
    assert p == eng.load_history(Profile.new("c1"), rows, CUST)
    assert p.newest_day is not None
    archived = [r.day for r in days]  # every day but the newest (in progress): final, then complete open days
    assert archived == list(range(D0.toordinal(), p.newest_day))
    assert [r.kwh for r in days] == [round(k, 3) for k in kwhs[:-1]]


def test_history_older_than_the_late_window_of_live_data_keeps_its_kwh() -> None:
    eng, p, _ = _feed([5.0] * 40)
    old = [
        HistoryRow(customer_id="c1", day=dt.date(2023, 6, 1) + dt.timedelta(days=i), kwh=3.0)
        for i in range(5)
    ]
    p2, days = load_history_with_days(eng, p, old, CUST)
    assert p2 == eng.load_history(p, old, CUST)
    assert [r.kwh for r in days] == [3.0] * 5
    assert [r.expected_kwh for r in days] == [None] * 5
