"""Billing-cycle bookkeeping on a profile, and cumulative register reads spread over days."""

from __future__ import annotations

import datetime as dt

import pytest

from baselines.customer import CustomerConfig
from baselines.cycle_book import (
    add_late_kwh,
    close_cycles_before,
    cycle_to_date,
    ensure_cycles,
    insert_closed_cycle,
    same_period_figures,
)
from baselines.late_window import DayLocator
from baselines.profile import REGISTER_GRANULARITY_S, OpenCycle, Profile
from baselines.readings import Reading
from baselines.register import fold_register
from baselines.rules.config import RulesConfig

from .crafted import JAN_2023, JAN_2024, closed, day_acc

CFG = RulesConfig()


def o(y: int, m: int, d: int) -> int:
    return dt.date(y, m, d).toordinal()


def test_cycles_follow_the_read_day_across_gaps_and_before_the_first() -> None:
    cust = CustomerConfig("c", read_day=15, cycle_months=2)
    p = Profile.new("c")
    ensure_cycles(p, o(2024, 4, 20), cust)
    assert [(c.start, c.end) for c in p.open_cycles] == [(o(2024, 3, 15), o(2024, 5, 15))]
    ensure_cycles(p, o(2024, 8, 1), cust)
    assert [c.start for c in p.open_cycles] == [o(2024, 3, 15), o(2024, 5, 15), o(2024, 7, 15)]
    ensure_cycles(p, o(2024, 2, 1), cust)  # a late day before the first open cycle
    assert p.open_cycles[0] == OpenCycle(o(2024, 1, 15), o(2024, 3, 15), 0.0, 0.0)


def test_closing_keeps_the_running_cycle_and_the_last_36() -> None:
    p = Profile.new("c")
    p.closed_cycles = [closed(i * 30, i * 30 + 30, 1.0) for i in range(36)]
    p.open_cycles = [OpenCycle(1080, 1110, 15.0, 15.0), OpenCycle(1110, 1140, 0.0, 0.0)]
    close_cycles_before(p, 2000)
    assert len(p.closed_cycles) == 36 and p.closed_cycles[-1] == closed(1080, 1110, 15.0, 0.5)
    assert p.open_cycles == [OpenCycle(1110, 1140, 0.0, 0.0)]


def test_history_cycles_never_overlap_known_ones() -> None:
    p = Profile.new("c")
    p.open_cycles = [OpenCycle(100, 130, 0.0, 0.0)]
    insert_closed_cycle(p, closed(110, 140, 9.0))
    insert_closed_cycle(p, closed(40, 70, 9.0))
    insert_closed_cycle(p, closed(70, 70, 9.0))  # empty
    insert_closed_cycle(p, closed(10, 40, 9.0))
    assert [c.start for c in p.closed_cycles] == [10, 40]


def test_cycle_to_date_counts_open_days_of_that_cycle_only() -> None:
    p = Profile.new("c")
    p.open_cycles = [OpenCycle(100, 110, 20.0, 2.0), OpenCycle(110, 140, 0.0, 0.0)]
    p.open_days = {108: day_acc(1.0), 109: day_acc(2.0), 110: day_acc(4.0)}
    assert (cycle_to_date(p, 0), cycle_to_date(p, 0, upto=108), cycle_to_date(p, 1)) == (23.0, 21.0, 4.0)


def test_same_period_is_pro_rata_and_its_cache_follows_the_closed_cycles() -> None:
    p = Profile.new("c")
    p.closed_cycles = [
        closed(JAN_2023 - 31, JAN_2023, 310.0, 1.0),
        closed(JAN_2023, JAN_2023 + 31, 620.0, 0.5),
    ]
    kwh, cov = same_period_figures(p, JAN_2024 - 16, JAN_2024 + 15) or (0.0, 0.0)
    assert kwh == pytest.approx(16 * 10.0 + 15 * 20.0) and cov == pytest.approx((16 + 15 * 0.5) / 31)
    add_late_kwh(p, JAN_2023 + 3, 31.0)  # a register spread into a closed cycle
    assert p.same_period_cache is None
    kwh2, _ = same_period_figures(p, JAN_2024 - 16, JAN_2024 + 15) or (0.0, 0.0)
    assert kwh2 == pytest.approx(kwh + 15.0)
    assert same_period_figures(Profile.new("c"), JAN_2024, JAN_2024 + 31) is None


def reads(*pairs: tuple[float, float], estimated: bool = False) -> list[Reading]:
    return [Reading("register", t, v, estimated=estimated) for t, v in pairs]


T0 = dt.datetime(2024, 1, 10, 12, tzinfo=dt.UTC).timestamp()
DAY = 86400.0


def fold_all(rs: list[Reading], p: Profile | None = None) -> tuple[Profile, list[object]]:
    p = p or Profile.new("c")
    cust, loc = CustomerConfig("c", timezone="UTC"), DayLocator()
    return p, [fold_register(p, r, cust, CFG, loc) for r in rs]


def test_a_register_difference_is_spread_over_the_days_by_time() -> None:
    p, outs = fold_all(reads((T0, 100.0), (T0 + 2 * DAY, 124.0)))
    assert outs == [None, None]
    got = {d: round(a.kwh, 3) for d, a in sorted(p.open_days.items())}
    day0 = o(2024, 1, 10)
    assert got == {day0: 6.0, day0 + 1: 12.0, day0 + 2: 6.0}
    assert {a.granularity_s for a in p.open_days.values()} == {REGISTER_GRANULARITY_S}


def test_register_reset_backwards_implausible_and_estimates() -> None:
    p, outs = fold_all(
        reads(
            (T0, 5000.0), (T0 + 3600, 4000.0), (T0 + 7200, 5000.0 + 1e6), (T0 + 9000, 3.0), (T0 - 60, 4000.0)
        )
    )
    codes = [getattr(getattr(out, "rejected", None), "code", out) for out in outs]
    assert codes == [
        None,
        "baselines.readings.register_backwards",
        "baselines.readings.register_implausible",
        None,  # down to at most 10 %: a meter reset
        "baselines.readings.register_backwards",  # older and higher than the current register
    ]
    assert p.reasons["_register"][0] == "baselines.readings.meter_reset" and p.register_read == (
        T0 + 9000,
        3.0,
    )
    _, est = fold_all(reads((T0 + 9900, 3.5), (T0 + 9900, 3.5), estimated=True), p)
    assert [(getattr(e, "provisional", None), getattr(e, "duplicate", None)) for e in est] == [
        (True, False),
        (False, True),
    ]
    assert p.register_estimate == (T0 + 9900, 3.5)
