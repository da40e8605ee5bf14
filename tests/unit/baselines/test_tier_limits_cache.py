"""``billing.cycle_tier_limits``'s cache (per compiled plan and cycle): every answer equals the
computation afresh, for every shipped plan, in any order of plans and cycles (fails when the key
leaves out the plan or the cycle's end, both tried)."""

from __future__ import annotations

import datetime as dt
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from baselines import billing
from baselines.billing import Tariffs, cycle_tier_limits

PLANS = [p for p in Tariffs.default().catalogue.plans]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(range(len(PLANS))),
            st.integers(dt.date(2019, 1, 1).toordinal(), dt.date(2027, 1, 1).toordinal()),
            st.integers(1, 62),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_the_cached_limits_are_the_limits(calls: list[tuple[int, int, int]]) -> None:
    with mock.patch.dict(billing._LIMITS, {}, clear=True):
        for i, start, n in calls * 2:  # each cycle asked twice: the second answer from the cache
            plan = PLANS[i]
            assert cycle_tier_limits(plan, start, start + n) == billing._cycle_tier_limits(
                plan.compiled, start, start + n
            )


def test_the_cache_is_bounded() -> None:
    plan = PLANS[0]
    with mock.patch.dict(billing._LIMITS, {}, clear=True), mock.patch.object(billing, "_LIMITS_MAX", 10):
        for start in range(738000, 738050):
            cycle_tier_limits(plan, start, start + 30)
        assert 0 < len(billing._LIMITS) <= 10
