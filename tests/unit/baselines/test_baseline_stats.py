"""The ring of final days and its statistics."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.baseline_stats import (
    day_values,
    p95_day,
    project_cycle,
    push_final_day,
    recent_level,
    recompute,
)
from baselines.profile import OpenCycle, Profile
from baselines.rules.config import RulesConfig

from .crafted import JAN_2024, day_acc

CFG = RulesConfig()
MONDAY = JAN_2024  # 1 January 2024 was a Monday


def fed(values: Sequence[float | None], start: int = MONDAY) -> Profile:
    p = Profile.new("c")
    for i, v in enumerate(values):
        push_final_day(p, start + i, v, CFG)
    return p


def test_a_surge_day_is_flagged_and_kept_out_of_the_baseline() -> None:
    p = fed([8.0] * 30 + [40.0] + [8.0] * 6)
    assert p.high_flags == 1 << 30
    recompute(p)
    assert p.baseline_median == 8.0 and p.baseline_days == 36 and p.p95_day == 8.0


def test_a_level_that_persists_becomes_the_new_habit() -> None:
    need = int(CFG.level_shift_share * CFG.level_shift_days)  # 21 of 28 days
    assert fed([8.0] * 30 + [25.0] * (need - 1)).high_flags.bit_count() == need - 1
    assert fed([8.0] * 30 + [25.0] * need).high_flags == 0  # cleared: they count again
    assert fed([8.0] * 30 + [25.0] * 80).baseline_median == 25.0


def test_the_ring_keeps_ring_days_and_restarts_after_a_long_gap() -> None:
    p = fed([8.0] * (CFG.ring_days + 10))
    assert len(p.final_days) == CFG.ring_days and p.final_start == MONDAY + 10
    push_final_day(p, MONDAY + 10 + 2 * CFG.ring_days + 5, 3.0, CFG)
    assert p.final_days == [3.0]


def test_weekday_factors_follow_the_weekly_shape() -> None:
    week = [8.0, 8.0, 8.0, 8.0, 8.0, 16.0, 16.0]  # weekends doubled
    p = fed(week * 8)
    assert p.weekday_factors[:5] == (1.0,) * 5
    assert p.weekday_factors[5] == p.weekday_factors[6] > 1.5


def test_day_values_prefer_open_days_and_need_coverage() -> None:
    p = fed([1.0, 2.0, 3.0])
    p.open_days[MONDAY + 3] = day_acc(4.0)
    p.open_days[MONDAY + 4] = day_acc(5.0)._replace(covered_s=3600.0)
    assert day_values(p, MONDAY - 1, MONDAY + 6, CFG.min_day_coverage) == [
        None,
        1.0,
        2.0,
        3.0,
        4.0,
        None,
        None,
    ]


def test_recent_level_divides_by_the_weekday_factor() -> None:
    p = fed([8.0] * 56)
    p.weekday_factors = (1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0)
    sunday = MONDAY + 55
    assert recent_level(p, sunday, 2, CFG.min_day_coverage) == (4.0, 2)  # Saturday and Sunday
    assert recent_level(p, sunday, 7, CFG.min_day_coverage) == (8.0, 7)


def test_projection_is_cycle_to_date_plus_level_times_the_remaining_weekday_factors() -> None:
    p = fed([10.0] * 14)
    p.weekday_factors = (1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0)
    as_of = MONDAY + 13  # a Sunday
    p.open_cycles.append(OpenCycle(MONDAY, MONDAY + 21, 140.0, 14.0))
    proj = project_cycle(p, 0, as_of, CFG.min_day_coverage)
    assert proj is not None
    level = proj[2]
    assert proj[1] == 140.0 and proj[0] == 140.0 + level * (5 * 1.0 + 2 * 2.0)


@settings(max_examples=60, deadline=None)
@given(
    days=st.lists(st.one_of(st.none(), st.floats(0.0, 50.0)), min_size=1, max_size=56),
    flags=st.integers(0, 2**56 - 1),
    flagged=st.booleans(),
)
def test_recompute_p95_shortcut_equals_the_ring_p95(
    days: list[float | None], flags: int, flagged: bool
) -> None:
    p = Profile.new("c")
    p.final_start, p.final_days = MONDAY, list(days)
    p.high_flags = flags & ((1 << len(days)) - 1) if flagged else 0
    recompute(p)
    assert p.p95_day == p95_day(days)
    known = sorted(v for i, v in enumerate(days) if v is not None and not (p.high_flags >> i) & 1)
    assert p.baseline_days == len(known)
