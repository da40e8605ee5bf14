"""Where a customer stands in the tiers: the tier now, the next tier, a crossing this cycle.

The *tier period* is the tariff year (annual tiers) or the billing cycle
(monthly tiers, limits x ``cycle_months``). The customer is in tier ``k`` while
the period's consumption is at most tier ``k``'s limit: the kWh past the limit
are the first ones charged in tier ``k + 1``. Limits and surcharges are those of
the price version in force on the day asked about.

>>> import datetime as dt
>>> from baselines.tariffs.catalogue import default_catalogue
>>> js = default_catalogue().plan("cn-js-residential")
>>> st = tier_status(js, dt.date(2024, 7, 10), 2900.0)
>>> st.tier, st.tiers, str(st.next_at_kwh), str(st.price_step), st.period_end
(2, 3, '4800', '0.25', datetime.date(2025, 1, 1))
>>> nt = next_tier(js, dt.date(2024, 7, 10), 2700.0, 10.0)
>>> nt.tier, str(nt.at_kwh), str(nt.kwh_to_go), nt.on
(2, '2760', '60', datetime.date(2024, 7, 17))
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from baselines.tariffs.bill import Day, DayUse, bill_wh, cut_days, day_wh, ordinal, units_decimal
from baselines.tariffs.compiled import CompiledPlan, CompiledVersion, kwh_to_wh
from baselines.tariffs.cycle import projected_rest

if TYPE_CHECKING:
    from baselines.tariffs.catalogue import Plan

TierPeriod = Literal["cycle", "year"]


@dataclass(frozen=True, slots=True)
class TierStatus:
    """The tier the customer is in on a day."""

    period: TierPeriod
    period_start: dt.date
    period_end: dt.date  # exclusive
    period_kwh: Decimal  # consumption of the tier period so far
    tier: int  # 1-based
    tiers: int
    surcharge: Decimal  # per kWh, of the current tier
    next_at_kwh: Decimal | None  # period consumption where the next tier starts (None: top tier)
    price_step: Decimal | None  # next tier's surcharge minus the current one's, per kWh


@dataclass(frozen=True, slots=True)
class NextTier:
    """Where the next tier starts, and when at a given pace."""

    tier: int  # the next tier's number
    at_kwh: Decimal  # period consumption where it starts
    kwh_to_go: Decimal
    on: dt.date | None  # first day whose consumption passes at_kwh at the pace (None: not this period)
    price_step: Decimal  # per kWh


@dataclass(frozen=True, slots=True)
class TierCrossing:
    """A projected passage into a higher tier inside the current cycle."""

    period: TierPeriod
    from_tier: int
    to_tier: int
    at_kwh: Decimal  # period consumption where ``to_tier`` starts
    on: dt.date  # the day whose consumption passes it
    price_step: Decimal  # surcharge of to_tier minus that of from_tier, per kWh


def _tier_of(v: CompiledVersion, wh: int, scale: int) -> int:
    """0-based tier of the period consumption ``wh``."""
    for k, limit in enumerate(v.tier_limits):
        if limit is None or wh <= limit * scale:
            return k
    return len(v.tier_limits) - 1


def _bounds(cp: CompiledPlan, o: int, period_start: Day | None, period_end: Day | None) -> tuple[int, int]:
    if cp.tier_period == "year":
        return cp.year_start_of(o), cp.next_year_start(o)
    if period_start is None or period_end is None:
        raise ValueError("monthly (cycle) tiers: give the cycle as period_start and period_end")
    return ordinal(period_start), ordinal(period_end)


def tier_status(
    plan: Plan,
    on: Day,
    period_kwh: float,
    *,
    period_start: Day | None = None,
    period_end: Day | None = None,
    cycle_months: int = 1,
) -> TierStatus | None:
    """The tier on ``on`` given the tier period's consumption so far (None: the plan has no tiers).

    For monthly tiers give the billing cycle as ``period_start``/``period_end``.
    """
    cp = plan.compiled
    if cp.tier_period == "none":
        return None
    o = ordinal(on)
    ps, pe = _bounds(cp, o, period_start, period_end)
    v = cp.versions[cp.version_index(o)]
    scale = cycle_months if cp.tier_period == "cycle" else 1
    wh = kwh_to_wh(period_kwh)
    k = _tier_of(v, wh, scale)
    limit = v.tier_limits[k]
    nxt = None if limit is None else v.tier_surcharges[k + 1] - v.tier_surcharges[k]
    return TierStatus(
        period=cp.tier_period,  # type: ignore[arg-type]
        period_start=dt.date.fromordinal(ps),
        period_end=dt.date.fromordinal(pe),
        period_kwh=units_decimal(wh, -3),
        tier=k + 1,
        tiers=len(v.tier_limits),
        surcharge=units_decimal(v.tier_surcharges[k], -6),
        next_at_kwh=None if limit is None else units_decimal(limit * scale, -3),
        price_step=None if nxt is None else units_decimal(nxt, -6),
    )


def next_tier(
    plan: Plan,
    on: Day,
    period_kwh: float,
    pace_kwh_per_day: float,
    *,
    period_start: Day | None = None,
    period_end: Day | None = None,
    cycle_months: int = 1,
) -> NextTier | None:
    """Where the next tier starts and the day the pace reaches it (None: no tiers, or top tier).

    ``period_kwh`` includes the day ``on``; from the next day on, every day adds
    ``pace_kwh_per_day``. ``on`` of the result is None when the pace is 0 or the
    tier period (tariff year or cycle) ends first.
    """
    st = tier_status(
        plan, on, period_kwh, period_start=period_start, period_end=period_end, cycle_months=cycle_months
    )
    return None if st is None else next_from_status(st, on, period_kwh, pace_kwh_per_day)


def next_from_status(st: TierStatus, on: Day, period_kwh: float, pace_kwh_per_day: float) -> NextTier | None:
    """:func:`next_tier` from a :class:`TierStatus` already computed for ``on`` and ``period_kwh``."""
    if st.next_at_kwh is None or st.price_step is None:
        return None
    limit_wh, now_wh, pace = (
        kwh_to_wh(float(st.next_at_kwh)),
        kwh_to_wh(period_kwh),
        kwh_to_wh(pace_kwh_per_day),
    )
    when: dt.date | None = None
    if pace > 0:
        j = (limit_wh - now_wh) // pace + 1
        day = ordinal(on) + j
        when = dt.date.fromordinal(day) if day < st.period_end.toordinal() else None
    return NextTier(
        tier=st.tier + 1,
        at_kwh=st.next_at_kwh,
        kwh_to_go=units_decimal(limit_wh - now_wh, -3),
        on=when,
        price_step=st.price_step,
    )


def tier_crossing_in_cycle(
    plan: Plan,
    cycle_start: Day,
    cycle_end: Day,
    days_so_far: Sequence[DayUse],
    projected_kwh: float,
    *,
    tier_kwh_before: float = 0.0,
    cycle_months: int = 1,
) -> TierCrossing | None:
    """The first passage into a higher tier on a remaining day of the cycle, at the projected pace.

    The remaining kWh (``projected_kwh`` minus the consumption so far) are spread
    evenly over the remaining days, as in :func:`~baselines.tariffs.cycle.projected_cycle_cost`.
    None when the plan has no tiers or the projection stays in the current tier.

    >>> import datetime as dt
    >>> from baselines.tariffs.catalogue import default_catalogue
    >>> js = default_catalogue().plan("cn-js-residential")
    >>> x = tier_crossing_in_cycle(js, dt.date(2024, 7, 1), dt.date(2024, 8, 1), [10.0] * 10, 310.0,
    ...                            tier_kwh_before=2600.0)
    >>> x.from_tier, x.to_tier, str(x.at_kwh), x.on, str(x.price_step)
    (1, 2, '2760', datetime.date(2024, 7, 17), '0.05')
    """
    cp = plan.compiled
    if cp.tier_period == "none":
        return None
    start, end = ordinal(cycle_start), ordinal(cycle_end)
    wh, split = day_wh(days_so_far)
    so_far = bill_wh(
        cp, start, wh, split, tier_before_wh=kwh_to_wh(tier_kwh_before), cycle_months=cycle_months
    )
    rest = projected_rest(start, end, wh, projected_kwh)
    return crossing_in_rest(plan, start + len(wh), rest, so_far.tier_period_wh_end, cycle_months)


def crossing_in_rest(
    plan: Plan, first: int, rest: Sequence[int], period_wh: int, cycle_months: int
) -> TierCrossing | None:
    """The first tier passage on the days ``first, first + 1, ...`` adding ``rest`` Wh to ``period_wh``."""
    cp = plan.compiled
    if cp.tier_period == "none":
        return None
    c = period_wh
    scale = cycle_months if cp.tier_period == "cycle" else 1
    cuts = cut_days(cp, first, first + len(rest), False)
    for a, b in itertools.pairwise(cuts):
        v = cp.versions[cp.version_index(a)]
        if cp.tier_period == "year" and cp.year_start_of(a) == a:
            c = 0
        k_before = _tier_of(v, c, scale)
        limit = v.tier_limits[k_before]
        if limit is None:  # top tier: nothing to cross in this segment
            c += sum(rest[a - first : b - first])
            continue
        hi = limit * scale
        for o in range(a, b):
            c += rest[o - first]
            if c > hi:
                k_after = _tier_of(v, c, scale)
                top = v.tier_limits[k_after - 1]
                assert top is not None  # a tier below the top one has a limit
                return TierCrossing(
                    period=cp.tier_period,  # type: ignore[arg-type]
                    from_tier=k_before + 1,
                    to_tier=k_after + 1,
                    at_kwh=units_decimal(top * scale, -3),
                    on=dt.date.fromordinal(o),
                    price_step=units_decimal(v.tier_surcharges[k_after] - v.tier_surcharges[k_before], -6),
                )
    return None
