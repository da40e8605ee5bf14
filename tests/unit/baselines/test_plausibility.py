"""Issue #10 item 2 (domain): no non-finite or implausible kWh reaches the profile, snapshot or alerts."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baselines.customer import CustomerConfig
from baselines.engine import Engine, StepResult
from baselines.profile import Profile
from baselines.readings import MAX_RATING_KW, Kind, Reading
from baselines.rules import RulesConfig
from meterwatch.cli.feed import run_table
from meterwatch.contracts import Alert, CustomerRecord

from .helpers import half_hourly, sample_data

NOW = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
CUST = CustomerConfig("c1", timezone="UTC")
DAY = dt.date(2024, 1, 10)
T0 = dt.datetime(2024, 1, 10, tzinfo=dt.UTC).timestamp()
KINDS: list[Kind] = ["interval", "daily", "register"]


def non_finite_in(obj: Any) -> list[Any]:
    """Every non-finite float anywhere in a JSON-like value."""
    if isinstance(obj, float):
        return [] if math.isfinite(obj) else [obj]
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in non_finite_in(v)]
    if isinstance(obj, list | tuple):
        return [x for v in obj for x in non_finite_in(v)]
    return []


def assert_all_finite(eng: Engine, p: Profile, cust: CustomerConfig, alerts: list[Alert]) -> None:
    assert non_finite_in(p.to_dict()) == []
    assert non_finite_in(eng.snapshot(p, cust, None, NOW).model_dump()) == []
    for a in alerts:
        assert non_finite_in(a.model_dump()) == []
    # the stored value is strict JSON and loads again
    assert Profile.from_dict(json.loads(json.dumps(p.to_dict(), allow_nan=False))) == p


def test_two_readings_of_1e308_kwh_are_rejected_and_the_cycle_stays_finite() -> None:
    eng = Engine()
    p = Profile.new("c1")
    ok = eng.process_inplace(p, Reading("interval", T0 + 1800, 0.4), CUST)
    assert ok.rejected is None
    before = p.to_dict()
    for k in (2, 3):
        res = eng.process_inplace(p, Reading("interval", T0 + 1800 * k, 1e308), CUST)
        assert res.rejected is not None and res.rejected.code == "baselines.readings.kwh_implausible"
        assert res.rejected.numbers["kwh"] == 1e308 and res.rejected.numbers["max_kw"] == 100.0
        assert res.rejected.numbers["limit_kwh"] == 50.0
    assert p.to_dict() == before
    assert eng.snapshot(p, CUST, None, NOW).cycle.cycle_to_date_kwh == 0.4


def test_1e12_kwh_in_a_half_hour_is_rejected() -> None:
    res = Engine().process(Profile.new("c1"), Reading("interval", T0 + 1800, 1e12), CUST)
    assert res.rejected is not None and res.rejected.code == "baselines.readings.kwh_implausible"
    assert res.profile.to_dict() == Profile.new("c1").to_dict()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -0.5])
@pytest.mark.parametrize("kind", ["interval", "daily", "register"])
def test_non_finite_and_negative_values_are_rejected_by_every_kind(kind: str, value: float) -> None:
    eng = Engine()
    p = Profile.new("c1")
    if kind == "register":
        assert eng.process_inplace(p, Reading("register", T0, 100.0), CUST).rejected is None
        r = Reading("register", T0 + 3600, value)
    elif kind == "daily":
        r = Reading.daily(DAY, value)
    else:
        r = Reading("interval", T0 + 1800, value)
    before = p.to_dict()
    res = eng.process_inplace(p, r, CUST)
    assert res.rejected is not None and res.rejected.code == "baselines.readings.kwh_implausible"
    assert not res.duplicate and p.to_dict() == before
    assert non_finite_in(res.rejected.model_dump()) == []  # the reason itself is JSON-safe


def test_the_limit_scales_with_the_interval_and_the_day() -> None:
    eng = Engine()
    # 100 kW residential default: 25 kWh in 15 minutes, 2,500 kWh in a day (the longest day is 25 h)
    assert (
        eng.process(Profile.new("c1"), Reading("interval", T0 + 900, 25.0, interval_s=900), CUST).rejected
        is None
    )
    assert eng.process(Profile.new("c1"), Reading("interval", T0 + 900, 25.01, interval_s=900), CUST).rejected
    assert eng.process(Profile.new("c1"), Reading.daily(DAY, 2500.0), CUST).rejected is None
    assert eng.process(Profile.new("c1"), Reading.daily(DAY, 2500.1), CUST).rejected


def test_the_rating_comes_from_the_record_else_the_tariff_else_the_default() -> None:
    eng = Engine(RulesConfig(max_kw_by_tariff={"commercial": 1000.0}, default_max_kw=20.0))
    r = Reading("interval", T0 + 1800, 400.0)  # 800 kW on average
    commercial = CustomerConfig.from_record(
        CustomerRecord(customer_id="c1", tariff="commercial", timezone="UTC")
    )
    assert eng.process(Profile.new("c1"), r, commercial).rejected is None
    rated = CustomerConfig.from_record(
        CustomerRecord(customer_id="c1", tariff="commercial", timezone="UTC", max_kw=500.0)
    )
    res = eng.process(Profile.new("c1"), r, rated)
    assert res.rejected is not None and res.rejected.numbers["max_kw"] == 500.0
    residential = CustomerConfig("c1", timezone="UTC")  # not in this config's table: the default 20 kW
    res = eng.process(Profile.new("c1"), Reading("interval", T0 + 1800, 10.5), residential)
    assert res.rejected is not None and res.rejected.numbers["max_kw"] == 20.0


def test_days_at_the_largest_rating_alert_with_finite_numbers() -> None:
    # the bounds keep every sum finite: months of the largest possible days, then a surge to the limit
    eng = Engine()
    cust = CustomerConfig("c1", timezone="UTC", max_kw=MAX_RATING_KW)
    top = MAX_RATING_KW * 25
    days = [Reading.daily(DAY + dt.timedelta(days=i), top / 10 * (1 + i % 3) / 3) for i in range(400)]
    days += [Reading.daily(DAY + dt.timedelta(days=400 + i), top) for i in range(20)]
    p, alerts = Profile.new("c1"), []
    for r in days:
        res = eng.process_inplace(p, r, cust)
        assert res.rejected is None
        alerts.extend(res.alerts)
    assert {a.rule for a in alerts} >= {"sudden_increase"}
    assert_all_finite(eng, p, cust, alerts)


def test_a_huge_rating_in_the_record_is_capped() -> None:
    c = CustomerConfig.from_record(CustomerRecord(customer_id="c1", max_kw=1e308))
    assert c.max_kw == MAX_RATING_KW
    with pytest.raises(ValueError, match="max_kw"):
        CustomerConfig("c1", max_kw=math.inf)


@pytest.mark.parametrize("ts", [math.nan, math.inf, -1.0, 1e300])
@pytest.mark.parametrize("kind", ["interval", "register"])
def test_a_reading_time_that_is_no_date_is_rejected_without_touching_the_profile(
    kind: Kind, ts: float
) -> None:
    p = Profile.new("c1")
    res = Engine().process_inplace(p, Reading(kind, ts, 1.0), CUST)
    assert res.rejected is not None and res.rejected.code == "baselines.readings.ts_out_of_range"
    assert p.to_dict() == Profile.new("c1").to_dict()


def test_a_register_beyond_its_digits_is_rejected() -> None:
    cust = CustomerConfig("c1", timezone="UTC", register_digits=5)
    res = Engine().process(Profile.new("c1"), Reading("register", T0, 100000.0), cust)
    assert res.rejected is not None and res.rejected.code == "baselines.readings.register_implausible"
    assert Engine().process(Profile.new("c1"), Reading("register", T0, 99999.9), cust).rejected is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("t", math.inf),
        ("co", [[739000, 739031, math.nan, 1.0]]),
        ("dy", [1.0, math.inf]),
        ("bm", [1.0, "nan", 14, 2.0]),
        ("rg", [1.7e9, "-Infinity"]),
        ("r", {"x": ["code", {"n": math.nan}]}),
    ],
)
def test_a_stored_value_with_a_non_finite_number_does_not_load(key: str, value: Any) -> None:
    d = {"v": 1, "id": "c1", "ds": 739000, "dy": [1.0], key: value}
    with pytest.raises(ValueError, match=f"profile field '{key}' holds a non-finite number"):
        Profile.from_dict(d)


def test_a_stored_null_where_a_number_belongs_is_a_value_error() -> None:
    # what orjson writes for a NaN: before the fix this was a TypeError on every later reading
    with pytest.raises(ValueError, match="malformed profile value"):
        Profile.from_dict({"v": 1, "id": "c1", "co": [[739000, 739031, None, 1.0]]})


def test_history_rows_beyond_the_rating_are_skipped_and_counted() -> None:
    rows: list[dict[str, Any]] = [
        {"customer_id": "c1", "start": "2023-01-01", "end": "2023-01-31", "kwh": 1e300},
        {"customer_id": "c1", "start": "2023-02-01", "end": "2023-02-28", "kwh": 300.0},
        {"customer_id": "c1", "day": "2023-03-01", "kwh": 3000.0},
        {"customer_id": "c1", "day": "2023-03-02", "kwh": 9.0},
    ]
    p = Engine().load_history(Profile.new("c1"), rows, CUST)
    assert [c.kwh for c in p.closed_cycles] == [300.0]
    assert sorted(d.kwh for d in p.open_days.values()) == [9.0]
    assert p.reasons["_history"] == [
        "baselines.readings.kwh_implausible",
        {"skipped_rows": 2, "max_kw": 100.0},
    ]


def test_no_real_london_day_or_half_hour_is_rejected() -> None:
    # the sample kept in the repository: every daily total and every half-hour passes the default bounds
    daily = run_table(pq.read_table(sample_data() / "lcl_london_daily" / "lcl_daily_kwh.parquet"))
    assert daily.rows > 10_000
    assert set(daily.rejected_codes) <= {"backtest.invalid_row"}
    hh = pq.read_table(sample_data() / "lcl_london_halfhourly_2013" / "lcl_hh_2013.parquet")
    values = [v for v in hh.column("kwh").to_pylist() if v is not None and v == v]
    assert len(values) > 10_000
    eng, p = Engine(), Profile.new("c1")
    worst = max(values)
    res = eng.process_inplace(p, half_hourly(DAY, [worst])[0], CUST)
    assert res.rejected is None, (worst, res.rejected)


# --- the property -------------------------------------------------------------------------------

VALUES = st.one_of(
    st.floats(0.0, 3.0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 1e12, 5e-324, 49.99, 50.0, 2500.0, math.nan, math.inf, -math.inf, -0.0]),
)


@st.composite
def readings(draw: st.DrawFn) -> list[Reading]:
    out: list[Reading] = []
    for _ in range(draw(st.integers(1, 60))):
        kind = draw(st.sampled_from(KINDS))
        step = draw(st.integers(0, 24 * 20))  # half-hours after T0 (20 days: through the late window)
        v = draw(VALUES)
        est = draw(st.booleans())
        if kind == "daily":
            out.append(Reading.daily(DAY + dt.timedelta(days=step // 48), v))
        else:
            out.append(Reading(kind, T0 + 1800.0 * step, v, estimated=est))
    return out


def run(
    eng: Engine, cust: CustomerConfig, rs: list[Reading], inplace: bool, p: Profile
) -> tuple[Profile, list[Alert]]:
    alerts: list[Alert] = []
    for r in rs:
        res: StepResult = eng.process_inplace(p, r, cust) if inplace else eng.process(p, r, cust)
        p = res.profile
        alerts.extend(res.alerts)
    return p, alerts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rs=readings(),
    inplace=st.booleans(),
    history=st.lists(
        st.tuples(st.integers(0, 60), st.one_of(st.floats(0.0, 1e308), st.just(5e-324))), max_size=8
    ),
    max_kw=st.one_of(st.none(), st.floats(1e-3, MAX_RATING_KW)),
    digits=st.one_of(st.none(), st.integers(4, 10)),
    steady=st.booleans(),
)
def test_no_sequence_of_readings_puts_a_non_finite_value_anywhere(
    rs: list[Reading],
    inplace: bool,
    history: list[tuple[int, float]],
    max_kw: float | None,
    digits: int | None,
    steady: bool,
) -> None:
    eng = Engine()
    cust = CustomerConfig("c1", timezone="Europe/London", max_kw=max_kw, register_digits=digits)
    rows = [
        {"customer_id": "c1", "day": DAY - dt.timedelta(days=90 - d), "kwh": kwh}
        if d % 2
        else {
            "customer_id": "c1",
            "start": DAY - dt.timedelta(days=400 - 31 * d),
            "end": DAY - dt.timedelta(days=370 - 31 * d),
            "kwh": kwh,
        }
        for d, kwh in history
    ]
    p = eng.load_history(Profile.new("c1"), rows, cust)
    if steady:  # a baseline first, so that accepted values can fire rules
        steady_days = [Reading.daily(DAY - dt.timedelta(days=40 - i), 5.0 + i % 3) for i in range(40)]
        p, _ = run(eng, cust, steady_days, inplace, p)
    p, alerts = run(eng, cust, rs, inplace, p)
    assert_all_finite(eng, p, cust, alerts)
