"""Issue #10 item 5 (domain): a second, different value for a booked slot is reported, not dropped."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baselines.customer import CustomerConfig
from baselines.engine import Engine, StepResult
from baselines.profile import Profile
from baselines.readings import Reading

CUST = CustomerConfig("c1", timezone="UTC")
DAY = dt.date(2024, 1, 10)
T0 = dt.datetime(2024, 1, 10, tzinfo=dt.UTC).timestamp()
CONFLICT = "baselines.readings.conflicting_duplicate"


def interval(slot: int, v: float, *, estimated: bool = False) -> Reading:
    return Reading("interval", T0 + 1800.0 * (slot + 1), v, estimated=estimated)


def step(eng: Engine, p: Profile, r: Reading, inplace: bool) -> StepResult:
    return eng.process_inplace(p, r, CUST) if inplace else eng.process(p, r, CUST)


@pytest.mark.parametrize("inplace", [False, True])
def test_a_different_interval_value_is_rejected_with_both_values_and_changes_nothing(inplace: bool) -> None:
    eng = Engine()
    p = eng.process(Profile.new("c1"), interval(0, 0.25), CUST).profile
    before = p.to_dict()
    res = step(eng, p, interval(0, 0.4), inplace)
    assert res.rejected is not None and res.rejected.code == CONFLICT and not res.duplicate
    assert res.rejected.numbers == {
        "booked_kwh": 0.25,
        "new_kwh": 0.4,
        "day": "2024-01-10",
        "slot": 1,
        "ts": "2024-01-10T00:30:00+00:00",
    }
    assert res.profile.to_dict() == before and p.to_dict() == before  # first value wins


def test_the_same_value_again_is_a_plain_duplicate() -> None:
    eng = Engine()
    p = eng.process(Profile.new("c1"), interval(0, 0.25), CUST).profile
    res = eng.process(p, interval(0, 0.25), CUST)
    assert res.duplicate and res.rejected is None


def test_slots_arriving_out_of_order_keep_their_own_values() -> None:
    eng = Engine()
    p = Profile.new("c1")
    for slot, v in [(9, 0.9), (2, 0.2), (5, 0.5), (0, 0.05), (7, 0.7)]:
        assert eng.process_inplace(p, interval(slot, v), CUST).rejected is None
    for slot, v in [(0, 0.05), (2, 0.2), (5, 0.5), (7, 0.7), (9, 0.9)]:
        assert eng.process(p, interval(slot, v), CUST).duplicate
        res = eng.process(p, interval(slot, v + 1.0), CUST)
        assert res.rejected is not None and res.rejected.numbers["booked_kwh"] == v


def test_an_actual_value_still_replaces_an_estimate_and_then_holds_the_slot() -> None:
    eng = Engine()
    p = eng.process(Profile.new("c1"), interval(3, 0.3, estimated=True), CUST).profile
    assert eng.process(p, interval(3, 0.3, estimated=True), CUST).duplicate
    newer = eng.process(p, interval(3, 0.35, estimated=True), CUST)  # a newer estimate replaces it
    assert newer.rejected is None and not newer.duplicate
    res = eng.process(newer.profile, interval(3, 0.5), CUST)
    assert res.rejected is None and not res.duplicate
    p = res.profile
    assert p.open_days[DAY.toordinal()].kwh == pytest.approx(0.5)
    assert eng.process(p, interval(3, 0.3, estimated=True), CUST).duplicate  # an estimate never replaces it
    again = eng.process(p, interval(3, 0.6), CUST)
    assert again.rejected is not None and again.rejected.numbers["booked_kwh"] == 0.5


def test_a_different_daily_total_for_a_booked_day_is_rejected() -> None:
    eng = Engine()
    p = eng.process(Profile.new("c1"), Reading.daily(DAY, 7.5), CUST).profile
    assert eng.process(p, Reading.daily(DAY, 7.5), CUST).duplicate
    res = eng.process(p, Reading.daily(DAY, 8.0), CUST)
    assert res.rejected is not None and res.rejected.code == CONFLICT
    assert (res.rejected.numbers["booked_kwh"], res.rejected.numbers["new_kwh"]) == (7.5, 8.0)
    assert res.rejected.numbers["day"] == "2024-01-10"
    assert res.profile is p


def test_a_different_register_read_for_the_same_time_is_rejected() -> None:
    eng = Engine()
    p = eng.process(Profile.new("c1"), Reading("register", T0, 1000.0), CUST).profile
    p = eng.process(p, Reading("register", T0 + 86400, 1010.0), CUST).profile
    before = p.to_dict()
    assert eng.process(p, Reading("register", T0 + 86400, 1010.0), CUST).duplicate
    for v in (1009.0, 1012.0):
        res = eng.process(p, Reading("register", T0 + 86400, v), CUST)
        assert res.rejected is not None and res.rejected.code == CONFLICT
        assert res.rejected.numbers == {"booked_kwh": 1010.0, "new_kwh": v, "ts": "2024-01-11T00:00:00+00:00"}
    # an estimate for that time does not conflict with the actual read; older reads keep today's handling
    assert eng.process(p, Reading("register", T0 + 86400, 1009.0, estimated=True), CUST).duplicate
    assert eng.process(p, Reading("register", T0 + 3600, 1001.0), CUST).duplicate
    assert p.to_dict() == before


def test_the_booked_values_survive_the_stored_form() -> None:
    eng = Engine()
    p = Profile.new("c1")
    for slot in (4, 1, 3):
        eng.process_inplace(p, interval(slot, 0.1 * slot), CUST)
    q = Profile.from_dict(json.loads(json.dumps(p.to_dict())))
    assert q == p
    res = eng.process(q, interval(3, 0.31), CUST)
    assert res.rejected is not None and res.rejected.numbers["booked_kwh"] == pytest.approx(0.3)


def test_a_day_stored_without_values_still_loads_and_treats_a_repeat_as_a_duplicate() -> None:
    # an open day written before the per-slot values were kept (7 elements)
    d = {"v": 1, "id": "c1", "n": DAY.toordinal(), "o": [[DAY.toordinal(), 0.25, 1800.0, "2", 1800, 0, 0.25]]}
    p = Profile.from_dict(d)
    assert Engine().process(p, interval(0, 0.4), CUST).duplicate
    assert p.to_dict() == {**d, "v": 2}  # and it is written back the same way (as schema 2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    vals=st.lists(st.floats(0.0, 3.0).map(lambda x: round(x, 3)), min_size=1, max_size=200),
    seed=st.integers(0, 2**32 - 1),
)
def test_conflicting_values_change_nothing_and_are_all_reported(vals: list[float], seed: int) -> None:
    rng = random.Random(seed)
    eng = Engine()
    readings = [interval(i, v) for i, v in enumerate(vals)]
    clean = Profile.new("c1")
    for r in readings:
        eng.process_inplace(clean, r, CUST)
    p = Profile.new("c1")
    for r in readings:  # at most 200 half-hours: every slot is still inside the late window
        eng.process_inplace(p, r, CUST)
        i = rng.randrange(int((r.ts - T0) / 1800))
        other = interval(i, vals[i] + rng.choice([0.001, 1.0, -vals[i]]) if vals[i] else 0.5)
        res = eng.process_inplace(p, other, CUST)
        assert res.rejected is not None and res.rejected.code == CONFLICT
        assert (
            res.rejected.numbers["booked_kwh"] == vals[i] and res.rejected.numbers["new_kwh"] == other.value
        )
    assert p == clean
