"""Weather-aware expectations in the rules (issue #15 item 1): a cold snap on an electric-heating
home is expected use; without a weather feed every alert is what it was."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.backtest import BacktestResult, run_customers
from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from baselines.weather import Temperatures, hdd
from meterwatch.cli.feed import iter_customers
from meterwatch.cli.weather_file import read_weather
from meterwatch.contracts import Alert

from .helpers import feed_daily, sample_data

START = dt.date(2013, 6, 1)
CUST = CustomerConfig("c1", timezone="UTC")
SNAP = 200  # the cold snap's first day (18 December 2013): a week at about -4 C
SNAP_DAYS = 7


def season(n: int, seed: int = 5, snap: bool = True) -> list[float]:
    """Daily means from a London summer (17 C) into winter (8 C), +-3 C day to day; a cold snap
    (unless ``snap`` is false)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = 17.0 - 9.0 * min(1.0, max(0.0, i - 60) / 120) + rng.uniform(-3.0, 3.0)
        if snap and SNAP <= i < SNAP + SNAP_DAYS:
            t = -4.0 + rng.uniform(-1.0, 1.0)
        out.append(t)
    return out


def feed(temps: list[float]) -> Temperatures:
    return Temperatures({"*": {(START + dt.timedelta(days=i)).toordinal(): t for i, t in enumerate(temps)}})


def electric_heating(temps: list[float], slope: float = 1.5) -> list[float]:
    """6 kWh/day plus ``slope`` kWh per heating degree day (a weekly wobble of +-10 %)."""
    return [6.0 + slope * hdd(t) * (0.9 + 0.05 * (i % 5)) for i, t in enumerate(temps)]


def num(numbers: dict[str, Any], key: str) -> float:
    x = numbers[key]
    assert isinstance(x, int | float), (key, x)
    return float(x)


def surges(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.rule == "sudden_increase"]


def test_a_cold_snap_on_an_electric_heating_home_is_expected_use_with_weather() -> None:
    temps = season(SNAP + SNAP_DAYS)
    kwh = electric_heating(temps)
    _, plain = feed_daily(Engine(), CUST, START, kwh)
    assert len(surges(plain)) == 1  # without weather: the cold snap looks like a surge
    p, with_weather = feed_daily(Engine(weather=feed(temps)), CUST, START, kwh)
    assert surges(with_weather) == []
    code, numbers = p.reasons["sudden_increase"]
    assert code == "baselines.weather.explained"
    assert numbers["hdd"] > 15.0 and numbers["baseline_hdd"] < 10.0
    assert numbers["expected_extra_kwh"] > 10.0 and numbers["expected_kwh"] > numbers["recent_kwh"] / 2.5
    assert p.weather is not None and abs(p.weather.heating_slope - 1.5) < 0.2


def test_a_real_surge_in_a_cold_snap_still_alerts_and_shows_the_weather() -> None:
    temps = season(SNAP + SNAP_DAYS)
    kwh = electric_heating(temps)
    for i in range(SNAP, SNAP + SNAP_DAYS):
        kwh[i] *= 3.0  # a fault on top of the cold: three times the (cold-weather) use
    _, alerts = feed_daily(Engine(weather=feed(temps)), CUST, START, kwh)
    (a,) = surges(alerts)
    numbers = a.reasons[0].numbers
    assert num(numbers, "weather_kwh") > 10.0 and num(numbers, "hdd") > 15.0
    assert num(numbers, "expected_kwh") > 20.0


def test_a_home_without_electric_heating_learns_no_slope_and_keeps_its_alerts() -> None:
    temps = season(SNAP + SNAP_DAYS)
    kwh = electric_heating(temps, slope=0.0)
    for i in range(SNAP, SNAP + SNAP_DAYS):
        kwh[i] *= 3.0
    _, plain = feed_daily(Engine(), CUST, START, kwh)
    p, with_weather = feed_daily(Engine(weather=feed(temps)), CUST, START, kwh)
    assert len(surges(plain)) == 1
    assert [a.alert_id for a in surges(with_weather)] == [a.alert_id for a in surges(plain)]
    assert p.weather is not None and abs(p.weather.heating_slope) < 0.05


def run_engine(engine: Engine, cust: CustomerConfig, vals: list[float | None]) -> tuple[Any, list[str]]:
    p = Profile.new(cust.customer_id)
    out: list[str] = []
    for i, v in enumerate(vals):
        if v is None:
            continue
        res = engine.process_inplace(p, Reading.daily(START + dt.timedelta(days=i), v), cust)
        out.extend(a.model_dump_json() for a in res.alerts)
    return p.to_dict(), out


@settings(max_examples=25, deadline=None)
@given(
    level=st.floats(1.0, 30.0),
    jump=st.floats(1.0, 6.0),
    at=st.integers(30, 120),
    gaps=st.sets(st.integers(0, 159), max_size=10),
    seed=st.integers(0, 1000),
)
def test_without_a_weather_feed_for_the_customer_alerts_and_state_are_unchanged(
    level: float, jump: float, at: int, gaps: set[int], seed: int
) -> None:
    rng = random.Random(seed)
    vals: list[float | None] = [
        None if i in gaps else round(level * (jump if i >= at else 1.0) * rng.uniform(0.7, 1.3), 3)
        for i in range(160)
    ]
    cust = CustomerConfig("c1", timezone="UTC", region="GB-ENG")
    ref = run_engine(Engine(), cust, vals)
    assert run_engine(Engine(weather=Temperatures({})), cust, vals) == ref
    other_region = Temperatures({"CN": {START.toordinal() + i: -5.0 for i in range(160)}})
    assert run_engine(Engine(weather=other_region), cust, vals) == ref


@pytest.fixture(scope="module")
def sample_rows() -> list[Any]:
    t = pq.read_table(sample_data() / "lcl_london_daily" / "lcl_daily_kwh.parquet")
    return list(itertools.islice(iter_customers(t), 120))


@pytest.fixture(scope="module")
def plain(sample_rows: list[Any]) -> BacktestResult:
    return run_customers(sample_rows)


def test_the_sample_backtest_is_identical_with_an_empty_weather_feed(
    sample_rows: list[Any], plain: BacktestResult
) -> None:
    empty = run_customers(sample_rows, weather=Temperatures({}))
    assert plain.alerts and [a.model_dump_json() for a in empty.alerts] == [
        a.model_dump_json() for a in plain.alerts
    ]
    assert empty.profiles_bytes == plain.profiles_bytes


def test_the_london_weather_only_takes_surges_away_on_the_sample(
    sample_rows: list[Any], plain: BacktestResult
) -> None:
    weather = read_weather(sample_data() / "weather" / "london_daily_temperature.csv")
    warm = run_customers(sample_rows, weather=weather)
    key = {(a.customer_id, a.cycle.start) for a in plain.alerts if a.rule == "sudden_increase"}
    got = {(a.customer_id, a.cycle.start) for a in warm.alerts if a.rule == "sudden_increase"}
    assert got < key  # fewer surges, none new (the weather only explains use)
    weathered = [
        a for a in warm.alerts if a.rule == "sudden_increase" and "weather_kwh" in a.reasons[0].numbers
    ]
    assert weathered and all(num(a.reasons[0].numbers, "weather_kwh") > 0 for a in weathered)


@settings(max_examples=15, deadline=None)
@given(
    base=st.floats(3.0, 15.0),
    slope=st.floats(0.5, 3.0),
    snap_c=st.floats(-8.0, 2.0),
    snap_days=st.integers(3, 10),
    seed=st.integers(0, 10_000),
)
def test_a_pure_temperature_effect_is_never_a_surge_once_learned(
    base: float, slope: float, snap_c: float, snap_days: int, seed: int
) -> None:
    rng = random.Random(seed)
    temps = season(SNAP + 14, seed, snap=False)
    temps[SNAP : SNAP + snap_days] = [snap_c + rng.uniform(-1.0, 1.0) for _ in range(snap_days)]
    kwh = [(base + slope * hdd(t)) * rng.uniform(0.95, 1.05) for t in temps]
    start = (START + dt.timedelta(days=150)).toordinal()  # the response is sufficient by then
    _, alerts = feed_daily(Engine(weather=feed(temps)), CUST, START, kwh)
    late = [a for a in surges(alerts) if a.triggered_by.date().toordinal() >= start]
    assert late == [], [(a.triggered_by.date(), a.reasons[0].numbers) for a in late]
