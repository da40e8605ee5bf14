"""``tier_crossing``'s armed mark carried over the previous cycle closing (``_armed_over_close``).

Where it says "out of reach", so do the running bound (``_marked_out_of_reach``) of the mark it
leaves, the full bound (``_nothing_to_warn``), and the carried memo's tier-period kWh equals
``tier_facts`` afresh; at the corner of the allowance it leaves (booked kWh just under it, the largest
day at the cap, the weekday factors' ratio at its headroom) the running bound still holds. Fails when
the closed cycle's kWh are not taken off the allowance, or when the memo is not updated (both tried).
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
from baselines.billing import plan_on, tier_facts
from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from baselines.rules.context import RuleContext

JS = "cn-js-residential"  # annual tiers: 2,760 / 4,800 kWh
D = dt.date


@contextmanager
def carried() -> Iterator[list[tuple[bool, bool, bool, bool]]]:
    """(running bound, full bound, memo afresh, corner) of every evaluation the carried mark ends."""
    seen: list[tuple[bool, bool, bool, bool]] = []
    over = tc._armed_over_close

    def spy(ctx: RuleContext, mk: tc._Mark) -> bool:
        out = over(ctx, mk)
        if out:
            p = ctx.profile
            assert ctx.tariffs is not None
            plan = plan_on(p, ctx.customer, ctx.tariffs, ctx.cycle.start)
            assert plan is not None
            new = p.tier_mark
            assert new is not None and p.money_cache is not None
            held = (p.booked_kwh, p.peak_kwh, p.weekday_factors)
            running = tc._marked_out_of_reach(ctx, new._replace(allow=-math.inf))
            full = tc._nothing_to_warn(ctx, plan)
            memo = p.money_cache[tc.MEMO].before == tier_facts(p, plan, ctx.cycle_index)[0]
            corner = True
            if new.end - ctx.as_of - 1 > 0 and new.cap < math.inf:
                p.booked_kwh, p.peak_kwh = math.nextafter(new.allow, -math.inf), new.cap
                p.weekday_factors = (1.0,) * 6 + (new.ratio,)
                corner = tc._marked_out_of_reach(ctx, new._replace(allow=-math.inf))
            p.booked_kwh, p.peak_kwh, p.weekday_factors = held
            p.tier_mark = new  # (the running bound re-arms the mark it passes)
            seen.append((running, full, memo, corner))
        return out

    with mock.patch.object(tc, "_armed_over_close", spy):
        yield seen


def _run(before: float, level: float, weekend: float, late: float) -> list[tuple[bool, bool, bool, bool]]:
    eng = Engine()
    cust = CustomerConfig("c", tariff_plan=JS, timezone="UTC")
    rows = [
        {
            "customer_id": "c",
            "start": f"2024-{m:02d}-01",
            "end": (D(2024, m + 1, 1) - dt.timedelta(days=1)).isoformat(),
            "kwh": before / 6,
        }
        for m in range(1, 7)
    ]
    p = eng.load_history(Profile.new("c"), rows, cust)
    with carried() as seen:
        for i in range(100):
            day = D(2024, 7, 1) + dt.timedelta(days=i)
            # the last days of each month heavier (what the close adds to the tariff year's kWh)
            v = level * (weekend if day.weekday() >= 5 else 1.0) * (late if day.day > 24 else 1.0)
            eng.process_inplace(p, Reading.daily(day, v), cust)
    return seen


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(before=1500.0, level=6.0, weekend=1.0, late=1.0)
@example(before=2760.0 - 400.0, level=4.0, weekend=1.5, late=3.0)
@given(
    before=st.floats(2760.0 - 900.0, 2760.0, allow_nan=False),
    level=st.floats(0.5, 15.0, allow_nan=False),
    weekend=st.floats(0.3, 3.0, allow_nan=False),
    late=st.floats(1.0, 4.0, allow_nan=False),
)
def test_the_carried_mark_says_out_of_reach_only_where_the_bounds_do(
    before: float, level: float, weekend: float, late: float
) -> None:
    seen = _run(before, level, weekend, late)
    assert all(r for r, _, _, _ in seen)  # the running bound with the closed cycle counted
    assert all(f for _, f, _, _ in seen)  # the full bound
    assert all(m for _, _, m, _ in seen)  # the memo carried over as tier_facts has it
    assert all(c for _, _, _, c in seen)  # the corner of the allowance it leaves


def test_the_carried_mark_ends_the_evaluation_after_a_close() -> None:
    # far below the next tier: each of the three closes (July, August, September) is carried over
    seen = _run(600.0, 6.0, 1.2, 1.0)
    assert len(seen) == 3
    assert all(all(x) for x in seen)
