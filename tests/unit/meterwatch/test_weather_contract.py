"""The `weather` topic's value (CONTRACTS.md: region, day, temp_mean_c, optional min/max)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from meterwatch.contracts import WeatherDay


def test_the_contract_fields_are_read() -> None:
    w = WeatherDay.model_validate_json(
        b'{"region": "GB-ENG", "day": "2013-12-18", "temp_mean_c": 3.25, "temp_min_c": -1, "temp_max_c": 7.5}'
    )
    assert (w.region, w.day, w.temp_mean_c, w.temp_min_c, w.temp_max_c) == (
        "GB-ENG",
        dt.date(2013, 12, 18),
        3.25,
        -1.0,
        7.5,
    )


@pytest.mark.parametrize(
    "value",
    [
        {"region": "GB-ENG", "day": "2013-12-18"},  # no temperature at all
        {"region": "GB-ENG", "day": "2013-12-18", "temp_min_c": 1.0},  # one bound only
        {"region": "GB-ENG", "day": "2013-12-18", "temp_mean_c": "cold"},
        {"region": "GB-ENG", "day": "2013-12-18", "temp_mean_c": 99.0},  # outside -90..60
        {"region": "GB-ENG", "day": "2013-12-18", "temperature_c": 3.0},  # not the contract's name
        {"region": "england", "day": "2013-12-18", "temp_mean_c": 3.0},
        {"region": "GB-ENG", "day": "18/12/2013", "temp_mean_c": 3.0},
    ],
)
def test_invalid_values_are_refused_with_the_field(value: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WeatherDay.model_validate(value)


@given(
    lo=st.floats(min_value=-60, max_value=40, allow_nan=False),
    span=st.floats(min_value=0, max_value=20, allow_nan=False),
)
def test_without_a_mean_it_is_the_middle_of_min_and_max(lo: float, span: float) -> None:
    value = {"region": "*", "day": "2014-01-01", "temp_min_c": lo, "temp_max_c": lo + span}
    w = WeatherDay.model_validate(value)
    assert w.temp_mean_c == pytest.approx(lo + span / 2)
    assert w.temp_min_c is not None and w.temp_max_c is not None
    assert w.temp_min_c <= w.temp_mean_c <= w.temp_max_c
