"""Hand-made profiles for the unit tests of the domain modules (plain functions, no fixtures)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from baselines.baseline_stats import recompute
from baselines.customer import CustomerConfig
from baselines.cycle_book import cycle_index, ensure_cycles
from baselines.profile import DAILY_GRANULARITY_S, ClosedCycleT, OpenDay, Profile
from baselines.rules.config import RulesConfig
from baselines.rules.context import RuleContext
from meterwatch.contracts import SegmentRef

CUST = CustomerConfig("c1", timezone="UTC", manager_id="m1", meter_ids=("mtr1",))
JAN_2023 = dt.date(2023, 1, 1).toordinal()
JAN_2024 = dt.date(2024, 1, 1).toordinal()
FEB_2024 = dt.date(2024, 2, 1).toordinal()


def day_acc(kwh: float) -> OpenDay:
    """A complete open day holding a daily total."""
    return OpenDay(kwh, float(DAILY_GRANULARITY_S), 1, DAILY_GRANULARITY_S, None, 0.0)


def craft(
    ring: Sequence[float | None],
    open_days: Sequence[float] = (),
    *,
    last_ring_day: int,
    cycle_kwh: float = 0.0,
    customer: CustomerConfig = CUST,
) -> Profile:
    """A profile whose final days end on ``last_ring_day``, followed by ``open_days``.

    The statistics are computed from the ring (no flags); the open cycle that
    holds the newest day gets ``cycle_kwh`` of final days.
    """
    p = Profile.new(customer.customer_id)
    p.final_start = last_ring_day - len(ring) + 1
    p.final_days = list(ring)
    recompute(p)
    for i, v in enumerate(open_days):
        p.open_days[last_ring_day + 1 + i] = day_acc(v)
    p.newest_day = last_ring_day + len(open_days)
    ensure_cycles(p, p.newest_day, customer)
    c = p.open_cycles[-1]
    p.open_cycles[-1] = c._replace(kwh=cycle_kwh)
    return p


def closed(start: int, end: int, kwh: float, coverage: float = 1.0) -> ClosedCycleT:
    """A closed cycle ``[start, end)``."""
    return ClosedCycleT(start, end, kwh, coverage)


def context(
    p: Profile,
    as_of: int | None = None,
    *,
    rules: RulesConfig | None = None,
    customer: CustomerConfig = CUST,
    segment: SegmentRef | None = None,
    ts: float = 1_704_153_600.0,
) -> RuleContext:
    """The context of an evaluation as of ``as_of`` (default: the newest day)."""
    cfg = rules if rules is not None else RulesConfig()
    day = as_of if as_of is not None else p.newest_day
    assert day is not None
    rs = cfg.resolve(customer.tariff, segment.id if segment is not None else None)
    return RuleContext(p, cfg, rs, customer, segment, ts, None, day, cycle_index(p, day))
