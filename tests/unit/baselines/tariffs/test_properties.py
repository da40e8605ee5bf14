"""Hypothesis properties of the bill maths, over every shipped plan.

* cost never decreases when one day's kWh grows;
* a bill split at any day: the two parts (the second one continuing the tier
  period where the first ended) have the same lines whose unrounded amounts add
  up exactly to the whole bill's, and rounded totals within 0.01 per line of the
  whole bill (each line is rounded once per bill);
* time of use: the period lines add up to the energy charge and the period kWh
  to the day's kWh; interval readings split into periods keep their kWh.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baselines.tariffs import Bill, Plan, bill, default_catalogue, split_intervals
from baselines.tariffs.bill import DayUse

CAT = default_catalogue()
PLANS = st.sampled_from(CAT.plans)
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KWH = st.floats(0.0, 60.0, allow_nan=False).map(lambda x: round(x, 3))
MEASURED = st.fixed_dictionaries({"peak": KWH, "valley": KWH})
DAY: st.SearchStrategy[DayUse] = st.one_of(st.none(), KWH, MEASURED)
START = st.dates(dt.date(2019, 7, 1), dt.date(2030, 12, 31))  # every shipped plan has prices then


def _amounts(b: Bill) -> dict[tuple[str, str, int], int]:
    out: dict[tuple[str, str, int], int] = defaultdict(int)
    for ln in b.lines:
        out[(ln.kind, ln.label, ln.price_micro)] += ln.amount_units
    return dict(out)


@SETTINGS
@given(
    plan=PLANS,
    start=START,
    days=st.lists(DAY, min_size=1, max_size=62),
    before=st.floats(0.0, 6000.0).map(lambda x: round(x, 3)),
    which=st.integers(0, 61),
    extra=st.floats(0.001, 500.0).map(lambda x: round(x, 3)),
    months=st.sampled_from([1, 2]),
)
def test_cost_is_non_decreasing_in_kwh(
    plan: Plan, start: dt.date, days: list[DayUse], before: float, which: int, extra: float, months: int
) -> None:
    i = which % len(days)
    more = list(days)
    d = days[i]
    more[i] = (d or 0.0) + extra if not isinstance(d, Mapping) else {**d, "peak": d["peak"] + extra}
    a = bill(plan, start, days, tier_kwh_before=before, cycle_months=months)
    b = bill(plan, start, more, tier_kwh_before=before, cycle_months=months)
    assert b.cents >= a.cents
    # every shipped price is > 0: one more Wh costs strictly more before rounding
    assert sum(ln.amount_units for ln in b.lines) > sum(ln.amount_units for ln in a.lines)


@SETTINGS
@given(
    plan=PLANS,
    start=START,
    days=st.lists(DAY, min_size=2, max_size=62),
    before=st.floats(0.0, 6000.0).map(lambda x: round(x, 3)),
    cut=st.integers(1, 61),
    months=st.sampled_from([1, 2]),
)
def test_a_bill_split_at_any_day_sums_to_the_whole(
    plan: Plan, start: dt.date, days: list[DayUse], before: float, cut: int, months: int
) -> None:
    k = cut % (len(days) - 1) + 1
    whole = bill(plan, start, days, tier_kwh_before=before, cycle_months=months)
    first = bill(plan, start, days[:k], tier_kwh_before=before, cycle_months=months)
    second = bill(
        plan,
        start + dt.timedelta(days=k),
        days[k:],
        tier_kwh_before=first.tier_period_wh_end / 1000,
        cycle_months=months,
    )
    parts: dict[tuple[str, str, int], int] = defaultdict(int)
    for b in (first, second):
        for key, amount in _amounts(b).items():
            parts[key] += amount
    assert dict(parts) == _amounts(whole)  # exact, line by line
    assert first.wh + second.wh == whole.wh
    assert second.tier_period_wh_end == whole.tier_period_wh_end
    assert abs(first.cents + second.cents - whole.cents) <= len(whole.lines)


@SETTINGS
@given(start=START, days=st.lists(DAY, min_size=1, max_size=40), before=st.floats(0.0, 6000.0))
def test_tou_parts_sum_to_the_total(start: dt.date, days: list[DayUse], before: float) -> None:
    zj = CAT.plan("cn-zj-residential-tou")
    b = bill(zj, start, days, tier_kwh_before=round(before, 3))
    energy = [ln for ln in b.lines if ln.kind == "energy"]
    assert {ln.label for ln in energy} <= {"peak", "valley"}
    assert sum(ln.qty_units for ln in energy) == b.wh * 10_000  # period kWh add up to the day kWh (EU)
    assert b.cents == sum(ln.cents for ln in b.lines)
    assert b.energy_cents() == sum(ln.cents for ln in energy)
    # each period line is exactly its kWh at its price
    for ln in energy:
        assert ln.amount_units == ln.qty_units * ln.price_micro
    # the tier lines cover exactly the kWh above the first limit of the tariff year
    assert sum(b.tier_wh) == b.wh


READING = st.tuples(
    st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC)),
    st.floats(0.0, 5.0, allow_nan=False),
    st.sampled_from([60, 900, 1800, 3600, 5400, 86400]),
)


@SETTINGS
@given(
    readings=st.lists(READING, min_size=1, max_size=30),
    tz=st.sampled_from(["Asia/Shanghai", "Europe/London", "America/New_York", "Asia/Kolkata"]),
)
def test_interval_split_keeps_every_kwh(readings: list[tuple[dt.datetime, float, int]], tz: str) -> None:
    zj = CAT.plan("cn-zj-residential-tou")
    out = split_intervals(zj, readings, tz)
    total = sum(v for parts in out.values() for v in parts.values())
    assert abs(total - sum(r[1] for r in readings)) <= 1e-9 * max(1.0, total)
    assert all(set(parts) <= {"peak", "valley"} for parts in out.values())
