"""Issue #10 item 4: a register that wraps at 10**digits is counted across the wrap; resets stay resets."""

from __future__ import annotations

import datetime as dt

import pytest

from baselines.customer import CustomerConfig
from baselines.cycle_book import cycle_to_date
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from meterwatch.contracts import CustomerRecord

T0 = dt.datetime(2024, 1, 10, 6, tzinfo=dt.UTC).timestamp()
FIVE = CustomerConfig.from_record(CustomerRecord(customer_id="c1", timezone="UTC", register_digits=5))


def booked(p: Profile) -> float:
    """All kWh the profile holds: open days and every cycle's final days."""
    return sum(cycle_to_date(p, i) for i in range(len(p.open_cycles))) + sum(c.kwh for c in p.closed_cycles)


def reads(cust: CustomerConfig, *points: tuple[float, float, bool]) -> tuple[Profile, list[object]]:
    """Register reads (hours after T0, register kWh, estimated); the profile and each reading's outcome."""
    eng, p = Engine(), Profile.new("c1")
    outcomes: list[object] = []
    for hours, v, est in points:
        res = eng.process_inplace(p, Reading("register", T0 + hours * 3600, v, estimated=est), cust)
        outcomes.append(res.rejected.code if res.rejected else ("duplicate" if res.duplicate else "ok"))
    return p, outcomes


def test_the_issues_example_99995_to_3_books_the_8_kwh_across_the_wrap() -> None:
    p, outcomes = reads(FIVE, (0, 99990.0, False), (24, 99995.0, False), (48, 3.0, False))
    assert outcomes == ["ok", "ok", "ok"]
    assert booked(p) == pytest.approx(5.0 + 8.0)
    assert p.register_read == (T0 + 48 * 3600, 3.0)
    code, numbers = p.reasons["_register"]
    assert code == "baselines.readings.register_rollover"
    assert (
        numbers["kwh"] == pytest.approx(8.0) and numbers["previous_kwh"] == 99995.0 and numbers["digits"] == 5
    )
    # and it goes on counting from the new register value
    p2, _ = reads(FIVE, (0, 99995.0, False), (24, 3.0, False), (48, 10.0, False))
    assert booked(p2) == pytest.approx(15.0)


def test_without_a_register_width_the_wrap_is_still_a_meter_reset() -> None:
    p, outcomes = reads(CustomerConfig("c1", timezone="UTC"), (0, 99995.0, False), (24, 3.0, False))
    assert outcomes == ["ok", "ok"]
    assert booked(p) == 0.0 and p.reasons["_register"][0] == "baselines.readings.meter_reset"


def test_a_real_reset_is_still_detected() -> None:
    # 50,002 kWh across a wrap in one hour is beyond a 100 kW meter: the new meter starts near zero
    p, outcomes = reads(FIVE, (0, 50000.0, False), (1, 2.0, False), (25, 12.0, False))
    assert outcomes == ["ok", "ok", "ok"]
    assert p.reasons["_register"][0] == "baselines.readings.meter_reset"
    assert booked(p) == pytest.approx(10.0)


def test_an_implausible_wrap_that_is_no_reset_is_rejected() -> None:
    p, outcomes = reads(FIVE, (0, 99995.0, False), (1, 90000.0, False))
    assert outcomes == ["ok", "baselines.readings.register_backwards"]
    assert p.register_read == (T0, 99995.0) and "_register" not in p.reasons


def test_the_wrap_is_bounded_by_the_customers_own_rating() -> None:
    small = CustomerConfig("c1", timezone="UTC", register_digits=5, max_kw=5.0)
    # 8 kWh in one hour is more than a 5 kW meter measures: not a wrap; back to 3 is a reset
    p, _ = reads(small, (0, 99995.0, False), (1, 3.0, False))
    assert p.reasons["_register"][0] == "baselines.readings.meter_reset" and booked(p) == 0.0
    p, _ = reads(small, (0, 99995.0, False), (2, 3.0, False))  # 8 kWh in two hours: 4 kW, a wrap
    assert p.reasons["_register"][0] == "baselines.readings.register_rollover" and booked(p) == pytest.approx(
        8.0
    )


def test_an_estimated_read_across_the_wrap_is_provisional_until_the_actual_one() -> None:
    p, outcomes = reads(FIVE, (0, 99995.0, False), (12, 1.0, True))
    assert outcomes == ["ok", "ok"] and booked(p) == 0.0 and p.register_estimate == (T0 + 12 * 3600, 1.0)
    p, outcomes = reads(FIVE, (0, 99995.0, False), (12, 1.0, True), (24, 3.0, False))
    assert outcomes == ["ok", "ok", "ok"]
    assert booked(p) == pytest.approx(8.0) and p.register_estimate is None


def test_the_register_width_comes_from_the_record() -> None:
    with pytest.raises(ValueError, match="register_digits"):
        CustomerConfig("c1", register_digits=3)
    assert CustomerConfig.from_record(CustomerRecord(customer_id="c1")).register_digits is None
