"""All the bill figures of one customer on one day, in one call, and the alert's ``money`` value.

:func:`bill_figures` is what the engine calls per customer per day: from the
open cycle's day uses, the projection, the closed cycles and last year's
same-period cycle it gives the cost to date, the projected cycle cost, the
same-period cost (prices then, and today's prices), the tier and the next tier,
and a projected tier crossing in this cycle. :func:`money_from_figures` turns
them into the :class:`meterwatch.contracts.Money` an alert carries.

>>> import datetime as dt
>>> from baselines.tariffs.catalogue import default_catalogue
>>> js = default_catalogue().plan("cn-js-residential")
>>> f = bill_figures(js, cycle_start=dt.date(2024, 7, 1), cycle_end=dt.date(2024, 8, 1),
...                  days_so_far=[10.0] * 10, projected_kwh=310.0,
...                  closed_cycles=[(dt.date(2024, 1, 1), dt.date(2024, 7, 1), 2600.0),
...                                 (dt.date(2023, 7, 1), dt.date(2023, 8, 1), 93.0)],
...                  same_period=(dt.date(2023, 7, 1), dt.date(2023, 8, 1), 93.0))
>>> f.to_date.total, f.projected.total, f.same_period_then.total
(Decimal('52.83'), Decimal('171.27'), Decimal('49.13'))
>>> f.tier.tier, f.crossing.to_tier, f.crossing.on
(1, 2, datetime.date(2024, 7, 17))
>>> m = money_from_figures(f)
>>> m.extra_vs_same_period, m.tier.next_on
(Decimal('122.14'), datetime.date(2024, 7, 17))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from baselines.tariffs.bill import Bill, Day, DayUse, ordinal
from baselines.tariffs.compiled import NoPriceError
from baselines.tariffs.cycle import (
    Cycle,
    as_of_day,
    cost_to_date,
    projected_cycle_cost,
    same_period_cost_at_today_prices,
    same_period_cost_then,
    tier_kwh_before,
)
from baselines.tariffs.tiers import (
    NextTier,
    TierCrossing,
    TierStatus,
    next_tier,
    tier_crossing_in_cycle,
    tier_status,
)
from meterwatch.contracts import Money, MoneyTier

if TYPE_CHECKING:
    from baselines.tariffs.catalogue import Plan


@dataclass(frozen=True, slots=True)
class BillFigures:
    """A customer's bill figures on ``as_of``."""

    plan_id: str
    currency: str
    as_of: dt.date
    to_date: Bill
    projected: Bill | None
    same_period_then: Bill | None  # last year's cycle, prices then (None: no same period, or no price then)
    same_period_today_prices: Bill | None  # last year's cycle, prices of as_of
    tier: TierStatus | None
    next_tier: NextTier | None
    crossing: TierCrossing | None
    pace_kwh_per_day: float


def _pace(so_far_kwh: float, elapsed: int, remaining: int, projected_kwh: float | None) -> float:
    if projected_kwh is not None and remaining > 0:
        return max(projected_kwh - so_far_kwh, 0.0) / remaining
    return so_far_kwh / elapsed if elapsed else 0.0


def bill_figures(
    plan: Plan,
    *,
    cycle_start: Day,
    cycle_end: Day,
    days_so_far: Sequence[DayUse],
    projected_kwh: float | None = None,
    closed_cycles: Iterable[Cycle] = (),
    same_period: Cycle | None = None,
    cycle_months: int = 1,
) -> BillFigures:
    """Every bill figure of the open cycle ``[cycle_start, cycle_end)`` after ``days_so_far``.

    ``closed_cycles``: the stored cycle history (for annual tiers, the tariff
    year's consumption before this cycle, and before last year's cycle);
    ``same_period``: last year's same-period cycle ``(start, end, kWh)``.
    The pace (for the next tier's date) is that of the projection over the
    remaining days, or without a projection the average so far.
    """
    cycles = list(closed_cycles)
    as_of = as_of_day(cycle_start, days_so_far)
    before = tier_kwh_before(plan, cycle_start, cycles)
    to_date = cost_to_date(plan, cycle_start, days_so_far, tier_kwh_before=before, cycle_months=cycle_months)
    projected = crossing = None
    if projected_kwh is not None:
        projected = projected_cycle_cost(
            plan,
            cycle_start,
            cycle_end,
            days_so_far,
            projected_kwh,
            tier_kwh_before=before,
            cycle_months=cycle_months,
        )
        crossing = tier_crossing_in_cycle(
            plan,
            cycle_start,
            cycle_end,
            days_so_far,
            projected_kwh,
            tier_kwh_before=before,
            cycle_months=cycle_months,
        )
    then = today = None
    if same_period is not None:
        s, e, kwh = same_period
        sp_before = tier_kwh_before(plan, s, cycles)
        try:
            then = same_period_cost_then(
                plan, s, e, kwh, tier_kwh_before=sp_before, cycle_months=cycle_months
            )
        except NoPriceError:
            then = None  # the plan had no price then: no "as billed" figure
        today = same_period_cost_at_today_prices(
            plan, s, e, kwh, as_of, tier_kwh_before=sp_before, cycle_months=cycle_months
        )
    period_kwh = to_date.tier_period_wh_end / 1000
    bounds = {"period_start": cycle_start, "period_end": cycle_end, "cycle_months": cycle_months}
    elapsed = len(days_so_far)
    pace = _pace(
        to_date.wh / 1000, elapsed, ordinal(cycle_end) - ordinal(cycle_start) - elapsed, projected_kwh
    )
    return BillFigures(
        plan_id=plan.id,
        currency=plan.currency,
        as_of=as_of,
        to_date=to_date,
        projected=projected,
        same_period_then=then,
        same_period_today_prices=today,
        tier=tier_status(plan, as_of, period_kwh, **bounds),  # type: ignore[arg-type]
        next_tier=next_tier(plan, as_of, period_kwh, pace, **bounds),  # type: ignore[arg-type]
        crossing=crossing,
        pace_kwh_per_day=pace,
    )


def money_from_figures(f: BillFigures) -> Money:
    """The alert's ``money`` value from the bill figures (amounts as billed, 0.01)."""
    tier = None
    if f.tier is not None:
        tier = MoneyTier(
            index=f.tier.tier,
            count=f.tier.tiers,
            period=f.tier.period,
            period_kwh=float(f.tier.period_kwh),
            next_at_kwh=None if f.tier.next_at_kwh is None else float(f.tier.next_at_kwh),
            next_on=None if f.next_tier is None else f.next_tier.on,
            price_step=f.tier.price_step,
        )
    projected = None if f.projected is None else f.projected.total
    same = None if f.same_period_then is None else f.same_period_then.total
    return Money(
        currency=f.currency,
        to_date=f.to_date.total,
        projected=projected,
        same_period=same,
        extra_vs_same_period=None if projected is None or same is None else projected - same,
        tier=tier,
        same_period_at_current_prices=None
        if f.same_period_today_prices is None
        else f.same_period_today_prices.total,
    )
