"""The learned temperature response (issue #15 item 1, ``baselines.weather``): the pure fold."""

from __future__ import annotations

import json
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.profile import Profile
from baselines.weather import (
    MIN_DAYS,
    Response,
    cdd,
    expected_adjustment,
    hdd,
    sufficiency,
    update,
)
from baselines.weather_profile import absorb, window_adjustment

DAY0 = 735_000


def london_like_temps(rng: random.Random, n: int) -> list[float]:
    """Daily means from autumn into winter (18 C down to 2 C) with day-to-day weather (+-4 C)."""
    return [18.0 - 16.0 * i / max(1, n - 1) + rng.uniform(-4.0, 4.0) for i in range(n)]


def fit(kwh: list[float], temps: list[float]) -> Response:
    r = Response.new()
    for i, (y, t) in enumerate(zip(kwh, temps, strict=True)):
        r = update(r, DAY0 + i, y, hdd(t), cdd(t))
    return r


@settings(max_examples=40, deadline=None)
@given(
    base=st.floats(2.0, 15.0),
    slope=st.floats(0.0, 2.0),
    noise=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_pure_heating_household_gets_its_slope(base: float, slope: float, noise: float, seed: int) -> None:
    rng = random.Random(seed)
    temps = london_like_temps(rng, 120)
    kwh = [max(0.0, base + slope * hdd(t) + rng.gauss(0.0, noise)) for t in temps]
    r = fit(kwh, temps)
    assert sufficiency(r) is None
    assert abs(r.heating_slope - slope) <= 0.1 + 0.05 * slope


@settings(max_examples=30, deadline=None)
@given(slope=st.floats(0.3, 2.0), seed=st.integers(0, 2**32 - 1), parties=st.integers(1, 8))
def test_a_few_wild_days_barely_move_the_slope(slope: float, seed: int, parties: int) -> None:
    rng = random.Random(seed)
    temps = london_like_temps(rng, 120)
    kwh = [6.0 + slope * hdd(t) + rng.gauss(0.0, 0.5) for t in temps]
    for i in rng.sample(range(30, 120), parties):  # a party, a guest, a broken heater: 25 kWh more
        kwh[i] += 25.0
    r = fit(kwh, temps)
    assert abs(r.heating_slope - slope) <= 0.25 + 0.1 * slope


@settings(max_examples=40, deadline=None)
@given(
    days=st.lists(
        st.tuples(st.floats(0.0, 80.0), st.floats(-15.0, 35.0)),
        min_size=0,
        max_size=80,
    )
)
def test_the_response_round_trips(days: list[tuple[float, float]]) -> None:
    r = fit([y for y, _ in days], [t for _, t in days])
    back = Response.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    p = Profile.new("c")
    p.weather = r
    assert Profile.from_dict(json.loads(json.dumps(p.to_dict()))).weather == r
    # the fold goes on the same way from the stored value
    assert update(back, DAY0 + 999, 5.0, 3.0, 0.0) == update(r, DAY0 + 999, 5.0, 3.0, 0.0)


@settings(max_examples=30, deadline=None)
@given(
    vals=st.lists(st.one_of(st.none(), st.floats(0.0, 60.0)), min_size=0, max_size=120),
    start=st.integers(730_000, 740_000),
)
def test_without_weather_there_is_no_response_and_nothing_changes(
    vals: list[float | None], start: int
) -> None:
    p = Profile.new("c")
    p.final_start, p.final_days = start, list(vals)
    before = p.to_dict()
    absorb(p, {})  # a feed without this region's temperatures
    assert p.weather is None and p.to_dict() == before
    assert window_adjustment(p, None, start, start + 5) is None
    assert window_adjustment(p, {}, start, start + 5) is None


def test_sufficiency_names_its_reasons_with_numbers() -> None:
    rng = random.Random(1)
    temps = london_like_temps(rng, MIN_DAYS - 1)
    r = fit([5.0 + hdd(t) for t in temps], temps)
    assert sufficiency(r) == ("baselines.weather.too_few_days", {"days": MIN_DAYS - 1, "needed": MIN_DAYS})
    assert expected_adjustment(r, 10.0, 0.0, 2.0) is None
    summer = [19.0 + rng.uniform(-2.0, 2.0) for _ in range(90)]  # no heating day at all
    code, numbers = sufficiency(fit([5.0] * 90, summer)) or ("", {})
    assert code == "baselines.weather.no_temperature_spread" and numbers["hdd_sd"] < 2.0


def test_the_adjustment_explains_cold_not_warm_and_ignores_a_negative_slope() -> None:
    rng = random.Random(2)
    temps = london_like_temps(rng, 120)
    r = fit([4.0 + 1.0 * hdd(t) for t in temps], temps)
    assert abs((expected_adjustment(r, 12.0, 0.0, 4.0) or 0.0) - 8.0) < 0.2
    assert (expected_adjustment(r, 2.0, 0.0, 4.0) or 0.0) < 0.0  # a warm spell: less expected
    lighter_when_cold = fit([10.0 - 0.3 * hdd(t) for t in temps], temps)
    assert lighter_when_cold.heating_slope < 0
    assert expected_adjustment(lighter_when_cold, 12.0, 0.0, 4.0) == 0.0


def test_absorb_skips_flagged_and_special_days_and_goes_on_where_it_stopped() -> None:
    p = Profile.new("c")
    p.final_start, p.final_days = DAY0, [5.0 + 0.5 * (i % 9) for i in range(30)]
    temps = {DAY0 + i: 15.5 - (i % 9) for i in range(40)}
    p.high_flags = 1 << 3
    p.special_flags = 1 << 4
    absorb(p, temps)
    assert p.weather is not None and p.weather.days == 28 and p.weather.last_day == DAY0 + 29
    once = p.weather
    absorb(p, temps)
    assert p.weather is once  # nothing new
    p.final_days.append(9.0)
    absorb(p, temps)
    assert p.weather.days == 29 and p.weather.last_day == DAY0 + 30


def test_weeks_of_identical_days_then_a_different_one_is_a_step_not_a_crash() -> None:
    # a vacant home: 30 days of exactly 0 kWh (residual scale 0), then a day with use
    temps = london_like_temps(random.Random(3), 31)
    r = fit([0.0] * 30 + [5.0], temps)
    assert r.days == 31 and all(math.isfinite(x) for x in (*r.theta, *r.cov))
    assert r.scale is not None and math.isfinite(r.scale)
