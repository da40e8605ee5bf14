"""The stored profile (schema 2; schema 1 still reads): the short keys stay readable; round trips."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import ClosedCycleT, OpenCycle, OpenDay, Profile
from baselines.readings import Reading

# A stored value of schema 1 as the worker has written it to RocksDB since the first release:
# every key present. Attribute names may change; these keys and their meaning may not.
STORED_V1: dict[str, Any] = {
    "v": 1,
    "id": "c9",
    "n": 739000,
    "t": 1716000000.0,
    "e": 738999,
    "o": [[738995, 3.25, 5400.0, "7", 1800, {"2": 0.5}, 1.0], [739000, 8.0, 86400.0, "1", 86400, 0, 0.0]],
    "co": [[738980, 739011, 120.5, 14.0]],
    "cy": [[738949, 738980, 250.0, 0.9677]],
    "ds": 738940,
    "dy": [7.5, None, 8.25],
    "fh": "4",
    "fl": "1",
    "bm": [7.875, 0.375, 2, None],
    "wf": [1.0, 1.1, 0.9, 1.0, 1.0, 1.2, 0.8],
    "ns": 0.31,
    "rg": [1715990000.0, 10234.5],
    "re": [1716000000.0, 10240.0],
    "f": {"sudden_increase": 738980, "_customer": 738980, "_customer_wh": 21500},
    "s": {"projected_over_same_period": 2},
    "r": {"sustained_drop": ["baselines.sufficiency.too_few_days", {"days": 2, "needed": 14}]},
}


def test_a_stored_v1_value_reads_into_the_named_attributes_and_writes_back_as_v2_unchanged() -> None:
    p = Profile.from_dict(json.loads(json.dumps(STORED_V1)))
    assert (p.customer_id, p.newest_day, p.latest_ts, p.evaluated_day) == ("c9", 739000, 1716000000.0, 738999)
    assert p.open_days[738995] == OpenDay(3.25, 5400.0, 0b111, 1800, {2: 0.5}, 1.0)
    assert p.open_days[739000].estimated is None
    assert p.open_cycles == [OpenCycle(738980, 739011, 120.5, 14.0)]
    assert p.closed_cycles == [ClosedCycleT(738949, 738980, 250.0, 0.9677)]
    assert (p.final_start, p.final_days, p.high_flags, p.low_flags) == (738940, [7.5, None, 8.25], 4, 1)
    assert (p.baseline_median, p.baseline_mad, p.baseline_days, p.p95_day) == (7.875, 0.375, 2, None)
    assert p.weekday_factors[5] == 1.2 and p.night_share == 0.31
    assert p.register_read == (1715990000.0, 10234.5) and p.register_estimate == (1716000000.0, 10240.0)
    assert p.fired["_customer_wh"] == 21500 and p.streaks == {"projected_over_same_period": 2}
    assert p.tou_days == {}  # the migration: schema 1 kept no TOU split (its days take the fallback)
    assert p.to_dict() == {**STORED_V1, "v": 2}


def test_a_stored_v2_value_keeps_the_tou_days_as_a_run_of_whole_wh() -> None:
    stored = {**STORED_V1, "v": 2, "tu": [738990, [[5200, 2800], None, [6100, 3000]]]}
    p = Profile.from_dict(json.loads(json.dumps(stored)))
    assert p.tou_days == {738990: (5200, 2800), 738992: (6100, 3000)}
    assert p.to_dict() == stored
    q = p.clone()
    q.tou_days = {}  # copy on write: a clone replaces the dict, never changes it
    assert p.to_dict() == stored


@st.composite
def daily_series(draw: st.DrawFn) -> list[Reading]:
    start = draw(st.dates(dt.date(2015, 1, 1), dt.date(2030, 1, 1)))
    n = draw(st.integers(1, 160))
    level = draw(st.floats(0.5, 40.0))
    out = []
    day = start
    for _ in range(n):
        day += dt.timedelta(days=draw(st.sampled_from([1, 1, 1, 1, 2, 9, 0])))
        v = round(level * draw(st.floats(0.0, 4.0)), 3)
        out.append(Reading.daily(day, v, coverage=draw(st.sampled_from([1.0, 1.0, 0.5]))))
    return out


@settings(max_examples=30, deadline=None)
@given(readings=daily_series(), cut=st.floats(0.0, 1.0), read_day=st.integers(1, 28))
def test_a_restored_profile_continues_exactly_like_the_original(
    readings: list[Reading], cut: float, read_day: int
) -> None:
    eng = Engine()
    cust = CustomerConfig("c", read_day=read_day, timezone="UTC")
    k = int(cut * len(readings))
    p = Profile.new("c")
    for r in readings[:k]:
        eng.process_inplace(p, r, cust)
    stored = json.loads(json.dumps(p.to_dict()))
    q = Profile.from_dict(stored)
    assert q == p and q.to_dict() == stored
    for r in readings[k:]:
        a, b = eng.process_inplace(p, r, cust), eng.process_inplace(q, r, cust)
        assert (a.alerts, a.rejected, a.duplicate) == (b.alerts, b.rejected, b.duplicate)
    assert p.to_dict() == q.to_dict()
    assert eng.snapshot(p, cust, None, dt.datetime(2031, 1, 1, tzinfo=dt.UTC)) == eng.snapshot(
        q, cust, None, dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    )


def test_clone_shares_nothing_mutable() -> None:
    p = Profile.from_dict(STORED_V1)
    q = p.clone()
    q.open_days.clear()
    q.open_cycles.clear()
    q.closed_cycles.clear()
    q.final_days.append(1.0)
    q.fired.clear()
    q.streaks.clear()
    q.reasons.clear()
    assert p.to_dict() == {**STORED_V1, "v": 2}
