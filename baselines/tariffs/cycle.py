"""Bill figures of a billing cycle: cost to date, projection, same period last year.

Inputs are what the engine's profile holds: the open cycle's bounds
(``start``, exclusive ``end``) and its day uses so far (see
:mod:`baselines.tariffs.bill`), the engine's projected cycle kWh, and closed
cycles as ``(start, end_exclusive, kWh)`` (days as dates or ordinals).

A closed cycle known only by its total is taken as spread evenly over its days
(in whole Wh: day ``i`` of ``n`` gets ``floor((i+1)T/n) - floor(iT/n)``), both
to price it and to count the part of it inside a tariff year.

>>> import datetime as dt
>>> from baselines.tariffs.catalogue import default_catalogue
>>> js = default_catalogue().plan("cn-js-residential")
>>> s, e = dt.date(2024, 7, 1), dt.date(2024, 8, 1)
>>> cost_to_date(js, s, [10.0] * 10).total
Decimal('52.83')
>>> projected_cycle_cost(js, s, e, [10.0] * 10, 310.0).total
Decimal('163.77')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from baselines.tariffs.bill import Bill, Day, DayUse, bill_wh, day_wh, ordinal
from baselines.tariffs.compiled import kwh_to_wh

if TYPE_CHECKING:
    from baselines.tariffs.catalogue import Plan

Cycle = tuple[Day, Day, float]  # (start, end exclusive, kWh)


def spread_wh(total_wh: int, n: int) -> list[int]:
    """``total_wh`` over ``n`` days as evenly as whole Wh allow (the sum is exact).

    >>> spread_wh(10, 3)
    [3, 3, 4]
    """
    return [((i + 1) * total_wh) // n - (i * total_wh) // n for i in range(n)]


def part_wh(total_wh: int, n: int, lo: int, hi: int) -> int:
    """The Wh of days ``[lo, hi)`` of an even spread of ``total_wh`` over ``n`` days.

    >>> part_wh(10, 3, 1, 3), sum(spread_wh(10, 3)[1:3])
    (7, 7)
    """
    return (hi * total_wh) // n - (lo * total_wh) // n


def kwh_between(
    a: Day,
    b: Day,
    cycles: Iterable[Cycle] = (),
    open_start: Day | None = None,
    open_days: Sequence[DayUse] = (),
) -> float:
    """Consumption on the days ``[a, b)``: closed cycles (spread evenly) plus the open cycle's days.

    >>> import datetime as dt
    >>> closed = [(dt.date(2023, 12, 22), dt.date(2024, 1, 21), 300.0)]
    >>> kwh_between(dt.date(2024, 1, 1), dt.date(2024, 1, 11), closed)
    100.0
    """
    lo, hi = ordinal(a), ordinal(b)
    wh = 0
    for s, e, kwh in cycles:
        so = s if type(s) is int else s.toordinal()  # type: ignore[union-attr]
        eo = e if type(e) is int else e.toordinal()  # type: ignore[union-attr]
        if so < hi and eo > lo:
            x, y = max(lo, so), min(hi, eo)
            wh += part_wh(kwh_to_wh(kwh), eo - so, x - so, y - so)
    if open_start is not None and open_days:
        o = ordinal(open_start)
        totals, _ = day_wh(open_days)
        wh += sum(totals[max(lo - o, 0) : max(hi - o, 0)])
    return wh / 1000


def tier_kwh_before(plan: Plan, day: Day, cycles: Iterable[Cycle] = ()) -> float:
    """For annual tiers, the tariff year's consumption before ``day`` (from closed cycles); else 0.

    This is the ``tier_kwh_before`` of a bill or cycle that starts on ``day``
    (monthly tiers restart with every cycle).

    >>> import datetime as dt
    >>> from baselines.tariffs.catalogue import default_catalogue
    >>> js = default_catalogue().plan("cn-js-residential")
    >>> tier_kwh_before(js, dt.date(2024, 3, 1), [(dt.date(2024, 1, 1), dt.date(2024, 2, 1), 310.0),
    ...                                           (dt.date(2024, 2, 1), dt.date(2024, 3, 1), 290.0)])
    600.0
    """
    cp = plan.compiled
    if cp.tier_period != "year":
        return 0.0
    o = ordinal(day)
    return kwh_between(cp.year_start_of(o), o, cycles)


def tariff_year_kwh(
    plan: Plan,
    on: Day,
    cycles: Iterable[Cycle] = (),
    open_start: Day | None = None,
    open_days: Sequence[DayUse] = (),
) -> tuple[dt.date, float]:
    """The start of the tariff year containing ``on``, and its consumption up to ``on`` included.

    Closed cycles count pro rata of their days in the year, open days as they are.

    >>> import datetime as dt
    >>> from baselines.tariffs.catalogue import default_catalogue
    >>> js = default_catalogue().plan("cn-js-residential")
    >>> tariff_year_kwh(js, dt.date(2024, 1, 20), [(dt.date(2023, 12, 15), dt.date(2024, 1, 15), 310.0)],
    ...                 dt.date(2024, 1, 15), [10.0] * 6)
    (datetime.date(2024, 1, 1), 200.0)
    """
    o = ordinal(on)
    ys = plan.compiled.year_start_of(o)
    return dt.date.fromordinal(ys), kwh_between(ys, o + 1, cycles, open_start, open_days)


def cost_to_date(
    plan: Plan,
    cycle_start: Day,
    days_so_far: Sequence[DayUse],
    *,
    tier_kwh_before: float = 0.0,
    cycle_months: int = 1,
) -> Bill:
    """The bill of the open cycle's days so far (standing charge for those days only)."""
    wh, split = day_wh(days_so_far)
    return bill_wh(
        plan.compiled,
        ordinal(cycle_start),
        wh,
        split,
        tier_before_wh=kwh_to_wh(tier_kwh_before),
        cycle_months=cycle_months,
    )


def _projected_split(split: list[dict[str, int] | None], rest: list[int]) -> list[dict[str, int] | None]:
    """TOU split of projected days: the measured period shares of the days so far."""
    totals: dict[str, int] = {}
    for parts in split:
        for k, w in (parts or {}).items():
            totals[k] = totals.get(k, 0) + w
    whole = sum(totals.values())
    if not whole:
        return [None] * len(rest)
    names = list(totals)
    out: list[dict[str, int] | None] = []
    memo: dict[int, dict[str, int]] = {}  # the rest is spread evenly: two distinct values at most
    for w in rest:
        parts = memo.get(w)
        if parts is None:
            parts = {k: (w * totals[k]) // whole for k in names[:-1]}
            parts[names[-1]] = w - sum(parts.values())
            memo[w] = parts
        out.append(parts)
    return out


def projected_cycle_cost(
    plan: Plan,
    cycle_start: Day,
    cycle_end: Day,
    days_so_far: Sequence[DayUse],
    projected_kwh: float,
    *,
    tier_kwh_before: float = 0.0,
    cycle_months: int = 1,
) -> Bill:
    """The bill of the whole cycle if it ends at ``projected_kwh``.

    The days so far count as they are; the rest (``projected_kwh`` minus the
    consumption so far, at least 0) is spread evenly over the remaining days,
    which take the TOU shares measured so far (else the plan's fallback).
    """
    start, end = ordinal(cycle_start), ordinal(cycle_end)
    wh, split = day_wh(days_so_far)
    rest = projected_rest(start, end, wh, projected_kwh)
    return projected_bill_wh(plan, start, wh, split, rest, kwh_to_wh(tier_kwh_before), cycle_months)


def projected_rest(start: int, end: int, wh: Sequence[int], projected_kwh: float) -> list[int]:
    """Wh of each remaining day of the cycle ``[start, end)`` after the days ``wh``.

    >>> projected_rest(0, 5, [3000, 3000], 10.0)
    [1333, 1333, 1334]
    """
    n, k = end - start, len(wh)
    if k > n:
        raise ValueError(f"{k} days so far do not fit in a cycle of {n} days")
    return spread_wh(max(kwh_to_wh(projected_kwh) - sum(wh), 0), n - k) if n > k else []


def projected_bill_wh(
    plan: Plan,
    start: int,
    wh: list[int],
    split: list[dict[str, int] | None] | None,
    rest: list[int],
    tier_before_wh: int,
    cycle_months: int,
) -> Bill:
    """:func:`projected_cycle_cost` on integer input (days so far, then the remaining days' Wh)."""
    full_split = None if split is None else [*split, *_projected_split(split, rest)]
    return bill_wh(
        plan.compiled,
        start,
        [*wh, *rest],
        full_split,
        tier_before_wh=tier_before_wh,
        cycle_months=cycle_months,
    )


def _closed_cycle_bill(
    plan: Plan, start: Day, end: Day, kwh: float, tier_before: float, cycle_months: int, prices_on: int | None
) -> Bill:
    s, e = ordinal(start), ordinal(end)
    if e <= s:
        raise ValueError(f"empty cycle [{start}, {end})")
    return bill_wh(
        plan.compiled,
        s,
        spread_wh(kwh_to_wh(kwh), e - s),
        tier_before_wh=kwh_to_wh(tier_before),
        cycle_months=cycle_months,
        prices_on=prices_on,
    )


def same_period_cost_then(
    plan: Plan, start: Day, end: Day, kwh: float, *, tier_kwh_before: float = 0.0, cycle_months: int = 1
) -> Bill:
    """Last year's cycle ``[start, end)`` of ``kwh`` under the prices in force THEN (its bill as paid).

    >>> import datetime as dt
    >>> from baselines.tariffs.catalogue import default_catalogue
    >>> uk = default_catalogue().plan("uk-london-standard")
    >>> same_period_cost_then(uk, dt.date(2012, 12, 1), dt.date(2013, 1, 1), 310.0).total
    Decimal('49.60')
    """
    return _closed_cycle_bill(plan, start, end, kwh, tier_kwh_before, cycle_months, None)


def same_period_cost_at_today_prices(
    plan: Plan,
    start: Day,
    end: Day,
    kwh: float,
    today: Day,
    *,
    tier_kwh_before: float = 0.0,
    cycle_months: int = 1,
) -> Bill:
    """Last year's cycle priced like-for-like with the version in force on ``today``.

    Same days, same kWh, same tier position as then; only the prices are today's,
    so the difference to this cycle's cost is due to consumption, not to prices.

    >>> import datetime as dt
    >>> from baselines.tariffs.catalogue import default_catalogue
    >>> uk = default_catalogue().plan("uk-london-standard")
    >>> same_period_cost_at_today_prices(uk, dt.date(2012, 12, 1), dt.date(2013, 1, 1), 310.0,
    ...                                  dt.date(2013, 12, 15)).total
    Decimal('53.32')
    """
    return _closed_cycle_bill(plan, start, end, kwh, tier_kwh_before, cycle_months, ordinal(today))


def as_of_day(cycle_start: Day, days_so_far: Sequence[DayUse]) -> dt.date:
    """The last day counted so far (the cycle's first day when none is).

    >>> import datetime as dt
    >>> as_of_day(dt.date(2024, 1, 1), [1.0, 2.0])
    datetime.date(2024, 1, 2)
    """
    return dt.date.fromordinal(ordinal(cycle_start) + max(len(days_so_far) - 1, 0))
