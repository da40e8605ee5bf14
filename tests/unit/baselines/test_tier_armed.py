"""``tier_crossing``'s armed mark (``_armed``, ``_arm``): where it says "out of reach", so do the
running bound it stands for (``_marked_out_of_reach``) and the full bound (``_nothing_to_warn``).

Hypothesis series near an annual tier limit, with a weekly shape that moves the weekday factors,
spikes after quiet weeks (the largest day grows past the mark's) and days the fold adds up to the
allowance; the test fails when the arm ignores the largest day, the factors' ratio or the days
gone, or gives the booked kWh the whole room (all tried).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import baselines.rules.tier_crossing as tc
from baselines.billing import plan_on
from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from baselines.rules.context import RuleContext

JS = "cn-js-residential"  # annual tiers: 2,760 / 4,800 kWh
D = dt.date


def _profile(eng: Engine, cust: CustomerConfig, before_kwh: float) -> Profile:
    rows = [
        {
            "customer_id": "c",
            "start": f"2024-{m:02d}-01",
            "end": (D(2024, m + 1, 1) - dt.timedelta(days=1)).isoformat(),
            "kwh": before_kwh / 6,
        }
        for m in range(1, 7)
    ]
    return eng.load_history(Profile.new("c"), rows, cust)


@contextmanager
def armed_answers() -> Iterator[list[tuple[bool, bool]]]:
    """Record (running bound, full bound) of every evaluation the armed mark ends."""
    seen: list[tuple[bool, bool]] = []
    armed, marked = tc._armed, tc._marked_out_of_reach

    def spy(ctx: RuleContext, mk: tc._Mark) -> bool:
        out = armed(ctx, mk)
        if out:
            p = ctx.profile
            assert ctx.tariffs is not None
            plan = plan_on(p, ctx.customer, ctx.tariffs, ctx.cycle.start)
            assert plan is not None
            held = p.tier_mark
            seen.append((marked(ctx, mk._replace(allow=-float("inf"))), tc._nothing_to_warn(ctx, plan)))
            p.tier_mark = held  # (the running bound re-arms the mark it passes)
        return out

    with mock.patch.object(tc, "_armed", spy):
        yield seen


def _run(
    before: float, level: float, weekend: float, spikes: list[tuple[int, float]], ramp: float = 0.0
) -> list[tuple[bool, bool]]:
    eng = Engine()
    cust = CustomerConfig("c", tariff_plan=JS, timezone="UTC")
    p = _profile(eng, cust, before)
    days = [
        level * (1 + ramp * i) * (weekend if (D(2024, 7, 1) + dt.timedelta(days=i)).weekday() >= 5 else 1.0)
        for i in range(75)
    ]
    for i, v in spikes:
        days[i] = v
    with armed_answers() as seen:
        for i, v in enumerate(days):
            eng.process_inplace(p, Reading.daily(D(2024, 7, 1) + dt.timedelta(days=i), v), cust)
    return seen


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(before=2760.0 - 31 * 9.0, level=3.0, weekend=1.0, spikes=[(12, 40.0), (13, 40.0)], ramp=0.0)
@example(before=2760.0 - 31 * 7.0, level=4.0, weekend=1.6, spikes=[], ramp=0.0)
@given(
    before=st.floats(2760.0 - 700.0, 2760.0, allow_nan=False),
    level=st.floats(0.5, 15.0, allow_nan=False),
    weekend=st.floats(0.3, 3.0, allow_nan=False),
    spikes=st.lists(st.tuples(st.integers(0, 74), st.floats(0.0, 80.0, allow_nan=False)), max_size=6),
    ramp=st.floats(0.0, 0.1, allow_nan=False),
)
def test_armed_says_out_of_reach_only_where_the_bounds_do(
    before: float, level: float, weekend: float, spikes: list[tuple[int, float]], ramp: float
) -> None:
    seen = _run(before, level, weekend, spikes, ramp)
    assert all(m for m, _ in seen)  # the running bound agrees (the arm's own claim)
    assert all(n for _, n in seen)  # ... and so does the full bound


def test_the_armed_mark_ends_most_evaluations() -> None:
    # far below the next tier with a weekly shape: the armed test decides, the bound rarely runs
    marked = mock.Mock(wraps=tc._marked_out_of_reach)
    with mock.patch.object(tc, "_marked_out_of_reach", marked):
        seen = _run(600.0, 8.0, 1.5, [(20, 30.0)])
    assert len(seen) >= 50 and all(m and n for m, n in seen)
    assert marked.call_count - len(seen) <= 75 - len(seen)  # (the spy calls it once per armed answer)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.floats(2760.0 - 700.0, 2760.0, allow_nan=False),
    level=st.floats(0.5, 15.0, allow_nan=False),
    weekend=st.floats(0.3, 3.0, allow_nan=False),
)
def test_the_running_bound_holds_at_the_corner_of_what_the_arm_allows(
    before: float, level: float, weekend: float
) -> None:
    # every armed mark at once at its limits: booked kWh just under the allowance, the largest day
    # at the cap, the weekday factors' ratio at its headroom, and no day gone since it was armed
    corners: list[bool] = []
    armed = tc._armed

    def spy(ctx: RuleContext, mk: tc._Mark) -> bool:
        out = armed(ctx, mk)
        if out and mk.end - ctx.as_of - 1 > 0 and mk.cap < math.inf:
            p = ctx.profile
            held = (p.booked_kwh, p.peak_kwh, p.weekday_factors, p.tier_mark)
            p.booked_kwh, p.peak_kwh = math.nextafter(mk.allow, -math.inf), mk.cap
            p.weekday_factors = (1.0,) * 6 + (mk.ratio,)
            corners.append(armed(ctx, mk) and tc._marked_out_of_reach(ctx, mk._replace(allow=-math.inf)))
            p.booked_kwh, p.peak_kwh, p.weekday_factors, p.tier_mark = held
        return out

    with mock.patch.object(tc, "_armed", spy):
        _run(before, level, weekend, [])
    assert all(corners)
