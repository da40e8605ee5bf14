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

from baselines.tariffs.bill import Bill, Day, DayUse, bill_wh, day_wh, ordinal
from baselines.tariffs.compiled import NoPriceError, kwh_to_wh
from baselines.tariffs.cycle import (
    Cycle,
    as_of_day,
    projected_bill_wh,
    projected_rest,
    same_period_cost_at_today_prices,
    same_period_cost_then,
    tier_kwh_before,
)
from baselines.tariffs.tiers import (
    NextTier,
    TierCrossing,
    TierStatus,
    crossing_in_rest,
    next_from_status,
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


def same_period_figures(
    plan: Plan,
    same_period: Cycle,
    today: Day,
    closed_cycles: Iterable[Cycle] = (),
    *,
    cycle_months: int = 1,
) -> tuple[Bill | None, Bill]:
    """Last year's cycle as billed then (None: the plan had no price then) and at ``today``'s prices.

    Both depend only on the cycle, the history and the price version of
    ``today``: a caller may compute them once per cycle (and again when a new
    price version starts).
    """
    s, e, kwh = same_period
    before = tier_kwh_before(plan, s, closed_cycles)
    try:
        then: Bill | None = same_period_cost_then(
            plan, s, e, kwh, tier_kwh_before=before, cycle_months=cycle_months
        )
    except NoPriceError:
        then = None  # the plan had no price then: no "as billed" figure
    now = same_period_cost_at_today_prices(
        plan, s, e, kwh, today, tier_kwh_before=before, cycle_months=cycle_months
    )
    return then, now


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
    tier_kwh_before_cycle: float | None = None,
    same_period_bills: tuple[Bill | None, Bill] | None = None,
) -> BillFigures:
    """Every bill figure of the open cycle ``[cycle_start, cycle_end)`` after ``days_so_far``.

    ``closed_cycles``: the stored cycle history (for annual tiers, the tariff
    year's consumption before this cycle, and before last year's cycle);
    ``same_period``: last year's same-period cycle ``(start, end, kWh)``.
    The pace (for the next tier's date) is that of the projection over the
    remaining days, or without a projection the average so far.

    What stays the same for the whole cycle may be passed in instead of being
    recomputed every day: ``tier_kwh_before_cycle`` (:func:`tier_kwh_before`
    of the cycle start) and ``same_period_bills`` (:func:`same_period_figures`).

    (Over 60 lines with its docstring and ten keyword parameters: one figure per line.)
    """
    cp = plan.compiled
    start, end = ordinal(cycle_start), ordinal(cycle_end)
    as_of = as_of_day(start, days_so_far)
    cycles = closed_cycles if isinstance(closed_cycles, list | tuple) else list(closed_cycles)
    before = tier_kwh_before(plan, start, cycles) if tier_kwh_before_cycle is None else tier_kwh_before_cycle
    before_wh = kwh_to_wh(before)
    wh, split = day_wh(days_so_far)
    to_date = bill_wh(cp, start, wh, split, tier_before_wh=before_wh, cycle_months=cycle_months)
    projected = crossing = None
    if projected_kwh is not None:
        rest = projected_rest(start, end, wh, projected_kwh)
        projected = projected_bill_wh(plan, start, wh, split, rest, before_wh, cycle_months)
        crossing = crossing_in_rest(plan, start + len(wh), rest, to_date.tier_period_wh_end, cycle_months)
    then = today = None
    if same_period_bills is not None:
        then, today = same_period_bills
    elif same_period is not None:
        then, today = same_period_figures(plan, same_period, as_of, cycles, cycle_months=cycle_months)
    period_kwh = to_date.tier_period_wh_end / 1000
    elapsed = len(wh)
    pace = _pace(to_date.wh / 1000, elapsed, end - start - elapsed, projected_kwh)
    tier = nxt = None
    if cp.tier_period != "none":
        tier = tier_status(
            plan, as_of, period_kwh, period_start=start, period_end=end, cycle_months=cycle_months
        )
        nxt = None if tier is None else next_from_status(tier, as_of, period_kwh, pace)
    return BillFigures(
        plan_id=plan.id,
        currency=plan.currency,
        as_of=as_of,
        to_date=to_date,
        projected=projected,
        same_period_then=then,
        same_period_today_prices=today,
        tier=tier,
        next_tier=nxt,
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
