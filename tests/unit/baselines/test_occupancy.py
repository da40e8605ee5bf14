"""Occupant changes (issue #15 item 3): a fresh baseline, no comparison with the previous occupant."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from meterwatch.contracts import Alert, CustomerRecord

from .helpers import feed_daily

START = dt.date(2023, 1, 1)
MOVE_IN = dt.date(2024, 3, 10)
END = dt.date(2024, 7, 31)
PLAIN = CustomerConfig("c1", timezone="UTC")
TENANT = dataclasses.replace(PLAIN, occupant_since=MOVE_IN.toordinal())


def series(before: float, after: float, move_in: dt.date = MOVE_IN, end: dt.date = END) -> list[float]:
    """A steady household (+-15 %, weekly pattern) at ``before`` kWh/day, ``after`` from ``move_in``."""
    n = (end - START).days + 1
    return [
        (before if START + dt.timedelta(days=i) < move_in else after) * (0.85 + 0.075 * (i % 5))
        for i in range(n)
    ]


def after_move_in(alerts: list[Alert], move_in: dt.date = MOVE_IN) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in alerts:
        if a.triggered_by.date() > move_in:
            out[a.rule] = out.get(a.rule, 0) + 1
    return out


def test_a_new_tenant_at_twice_the_use_is_told_every_cycle_without_the_move_in_and_never_with_it() -> None:
    vals = series(7.0, 15.4)
    _, plain = feed_daily(Engine(), PLAIN, START, vals)
    assert after_move_in(plain).get("same_period_reached", 0) >= 3, after_move_in(plain)
    p, tenant = feed_daily(Engine(), TENANT, START, vals)
    assert after_move_in(tenant) == {}
    code, numbers = p.reasons["same_period_reached"]
    assert code == "baselines.occupancy.new_occupant"
    assert numbers == {"occupant_since": "2024-03-10", "comparable_from": "2025-03-10"}


def test_the_baseline_learns_the_new_occupant_afresh() -> None:
    vals = series(7.0, 28.0, end=MOVE_IN + dt.timedelta(days=9))
    _, plain = feed_daily(Engine(), PLAIN, START, vals)
    assert after_move_in(plain).get("sudden_increase") == 1  # the move-in looks like a surge
    p, tenant = feed_daily(Engine(), TENANT, START, vals)
    assert after_move_in(tenant) == {} and p.calendar_key == TENANT.calendar_key
    # the ring's days before the move-in are kept but no longer count
    assert p.final_days and p.baseline_days < 10
    assert p.reasons["sudden_increase"][0] == "baselines.sufficiency.too_few_days"
    p, more = feed_daily(Engine(), TENANT, MOVE_IN + dt.timedelta(days=10), series(28.0, 28.0)[:40], p)
    assert more == [] and p.baseline_median is not None and p.baseline_median > 20.0
    assert Profile.from_dict(p.to_dict()).calendar_key == p.calendar_key


@settings(max_examples=20, deadline=None)
@given(
    before=st.floats(2.0, 20.0),
    mult=st.sampled_from([0.3, 0.5, 1.5, 2.2, 3.0, 4.0, 6.0]),
    move_in_day=st.integers(400, 470),
)
def test_one_occupant_change_raises_at_most_one_alert_per_rule(
    before: float, mult: float, move_in_day: int
) -> None:
    move_in = START + dt.timedelta(days=move_in_day)
    cust = dataclasses.replace(PLAIN, occupant_since=move_in.toordinal())
    _, alerts = feed_daily(Engine(), cust, START, series(before, before * mult, move_in))
    counts = after_move_in(alerts, move_in)
    assert all(n <= 1 for n in counts.values()), counts


def test_the_record_carries_the_move_in() -> None:
    rec = CustomerRecord(customer_id="c", occupant_since=MOVE_IN)
    assert CustomerConfig.from_record(rec).occupant_since == MOVE_IN.toordinal()


def test_a_corrected_move_in_day_applies_to_the_kept_days() -> None:
    vals = series(7.0, 7.0, end=MOVE_IN + dt.timedelta(days=20))
    late = dataclasses.replace(PLAIN, occupant_since=(MOVE_IN + dt.timedelta(days=10)).toordinal())
    p, _ = feed_daily(Engine(), late, START, vals)
    assert p.baseline_days <= 11
    p, _ = feed_daily(Engine(), TENANT, MOVE_IN + dt.timedelta(days=21), [7.0], p)  # the date corrected
    assert p.final_start is not None
    kept_before = MOVE_IN.toordinal() - p.final_start
    assert p.special_flags == (1 << kept_before) - 1 and p.baseline_days > 11
