"""Money on a profile: which tariff plan prices which day, and the bill figures of an open cycle.

The bill maths is :mod:`baselines.tariffs` (pure, plain values in); this module
feeds it from a :class:`~baselines.profile.Profile`: the open cycle's days, the
engine's projection, the stored closed cycles (for the tariff year's kWh of
annual tiers) and last year's same-period cycle.

**Which plan** (``baselines.plans``, re-exported here): the registry's plan, else
its tariff's default; a change applies from the next billing cycle; last year's
same-period cycle is priced "as billed then" under the plan in force then.

**Which days.** The bill of the open cycle counts its days through a given day:
open days as measured (any coverage), final days from the ring, and the final
kWh the ring does not hold (partial days, days before the ring) spread evenly
over the days without a value, so the days add up to the cycle's kWh.

**Cost.** Figures are computed when an alert fires, once per customer-day for the
snapshot, and by the money rules only past a cheap bound (``cost_upper_bound``,
``rest_upper_bound``). What stays the same for a whole cycle (the tariff year's kWh
before the cycle, last year's bills) is cached on the profile (``money_cache``).

>>> import datetime as dt
>>> from baselines.customer import CustomerConfig
>>> from baselines.profile import OpenCycle, Profile
>>> t = Tariffs.default({"residential": "cn-js-residential"})
>>> p, cust = Profile.new("c"), CustomerConfig("c")
>>> jul = dt.date(2024, 7, 1).toordinal()
>>> p.open_cycles.append(OpenCycle(jul, jul + 31, 100.0, 10.0))
>>> p.final_start, p.final_days, p.newest_day = jul, [10.0] * 10, jul + 10
>>> f = cycle_figures(p, cust, t, 0, jul + 9, 310.0)
>>> f.plan_id, f.to_date.total, f.projected.total
('cn-js-residential', Decimal('52.83'), Decimal('163.77'))
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from baselines.baseline_stats import project_cycle
from baselines.customer import CustomerConfig
from baselines.cycle_book import cycle_to_date, same_period_figures
from baselines.cycles import same_period
from baselines.plans import Tariffs, note_plan, plan_on
from baselines.profile import Profile
from baselines.tariffs import (
    Bill,
    BillFigures,
    DayUse,
    NoPriceError,
    PartMeasured,
    Plan,
    bill_figures,
    money_from_figures,
    same_period_cost_at_today_prices,
    same_period_cost_then,
    tier_kwh_before,
)
from baselines.tariffs.compiled import CompiledPlan
from baselines.tou_days import SplitWh, cycle_split, is_tou
from meterwatch.contracts import Money, MoneyNow

# last year's same-period cycle must be this well covered to be priced (as the same-period rules)
MIN_SAME_PERIOD_COVERAGE = 0.9

__all__ = ["Tariffs", "alert_money", "cycle_figures", "note_plan", "plan_on", "snapshot_money"]


# ---------------------------------------------------------------------------------- the days
def cycle_days(p: Profile, index: int, through: int) -> list[float]:
    """kWh of each day of the open cycle ``index`` from its start through the day ``through``.

    Open days count as measured; final days come from the ring; the final kWh the ring
    does not hold (partial days, days before the ring) is spread over the days without a
    value, so the days add up to the cycle's kWh through ``through``.

    >>> from baselines.profile import OpenCycle, OpenDay
    >>> p = Profile.new("c"); p.open_cycles.append(OpenCycle(10, 40, 9.0, 2.0))
    >>> p.final_start, p.final_days = 10, [4.0, None, 1.0]   # day 11 partial: 4 kWh not in the ring
    >>> p.open_days[13] = OpenDay(2.5, 3600.0, 1, 1800, None, 0.0)
    >>> cycle_days(p, 0, 13), cycle_days(p, 0, 12)
    ([4.0, 4.0, 1.0, 2.5], [4.0, 4.0, 1.0])
    """
    c = p.open_cycles[index]
    hi = min(through, c.end - 1)
    if hi < c.start:
        return []
    out: list[float] = []
    missing: list[int] = []
    known = 0.0
    ring, ds = p.final_days, p.final_start
    opened = p.open_days
    for i, d in enumerate(range(c.start, hi + 1)):
        acc = opened.get(d)
        if acc is not None:
            out.append(acc.kwh)
            continue
        v = ring[d - ds] if ds is not None and 0 <= d - ds < len(ring) else None
        if v is None:
            missing.append(i)
            out.append(0.0)
        else:
            out.append(v)
            known += v
    rest = c.kwh - known
    if missing and rest > 0.0005:
        share = rest / len(missing)
        for i in missing:
            out[i] = share
    return out


def tou_cycle_wh(
    p: Profile, index: int, through: int, plan: Plan, customer: CustomerConfig
) -> tuple[list[int], list[SplitWh | None]]:
    """The days of :func:`cycle_days` in whole Wh, with each day's measured Wh per TOU period
    (``baselines.tou_days.cycle_split``: the kWh are those of :func:`cycle_days`; only their
    split is added)."""
    return cycle_split(p, p.open_cycles[index].start, cycle_days(p, index, through), plan, customer.tz)


def tou_cycle_days(
    p: Profile, index: int, through: int, plan: Plan, customer: CustomerConfig
) -> list[DayUse]:
    """:func:`tou_cycle_wh` as the bill's day uses (kWh; a measured day as ``{period: kWh}``, a
    partly measured one as :class:`~baselines.tariffs.PartMeasured`); the same bill.

    >>> import datetime as dt
    >>> from baselines.profile import OpenCycle
    >>> zj = Tariffs.default().plan("cn-zj-residential-tou")
    >>> p = Profile.new("c"); s = dt.date(2024, 3, 1).toordinal()
    >>> p.open_cycles.append(OpenCycle(s, s + 31, 13.0, 2.0))
    >>> p.final_start, p.final_days, p.tou_days = s, [10.0, None], {s: (7000, 3000), s + 1: (2000, 1000)}
    >>> tou_cycle_days(p, 0, s + 1, zj, CustomerConfig("c"))
    [{'peak': 7.0, 'valley': 3.0}, {'peak': 2.0, 'valley': 1.0}]
    """
    wh, split = tou_cycle_wh(p, index, through, plan, customer)
    out: list[DayUse] = []
    for w, parts in zip(wh, split, strict=True):
        if parts is None:
            out.append(w / 1000)
        else:
            named = {k: x / 1000 for k, x in parts.items()}
            out.append(named if sum(parts.values()) == w else PartMeasured(w / 1000, named))
    return out


# ---------------------------------------------------------------------------------- figures
def _same_period_bills(
    p: Profile, customer: CustomerConfig, tariffs: Tariffs, plan: Plan, start: int, end: int, today: int
) -> tuple[Bill | None, Bill] | None:
    """Last year's same-period cycle: as billed then, and at ``today``'s prices (None: not known enough)."""
    sp = same_period_figures(p, start, end)
    if sp is None or sp[1] < MIN_SAME_PERIOD_COVERAGE:
        return None
    s1, e1 = same_period(dt.date.fromordinal(start), dt.date.fromordinal(end))
    closed = [(c.start, c.end, c.kwh) for c in p.closed_cycles]
    then_plan = plan_on(p, customer, tariffs, s1.toordinal()) or plan
    m = customer.cycle_months
    then: Bill | None
    try:
        before = tier_kwh_before(then_plan, s1, closed)
        then = same_period_cost_then(then_plan, s1, e1, sp[0], tier_kwh_before=before, cycle_months=m)
    except NoPriceError:
        then = None  # no price was in force then
    try:
        before = tier_kwh_before(plan, s1, closed)
        now = same_period_cost_at_today_prices(
            plan, s1, e1, sp[0], today, tier_kwh_before=before, cycle_months=m
        )
    except NoPriceError:
        return None
    return then, now


def _cache(p: Profile) -> dict[str, Any]:
    cache = p.money_cache
    if cache is None:
        cache = p.money_cache = {}
    return cache


def tier_before_cycle(p: Profile, plan: Plan, index: int) -> float:
    """The tier period's kWh before the open cycle ``index`` (annual tiers; else 0), cached.

    >>> from baselines.profile import ClosedCycleT, OpenCycle
    >>> p = Profile.new("c"); js = Tariffs.default().plan("cn-js-residential")
    >>> jan = dt.date(2024, 1, 1).toordinal()
    >>> p.closed_cycles.append(ClosedCycleT(jan, jan + 31, 310.0, 1.0))
    >>> p.open_cycles.append(OpenCycle(jan + 31, jan + 60, 0.0, 0.0))
    >>> tier_before_cycle(p, js, 0)
    310.0
    """
    return tier_facts(p, plan, index)[0]


def tier_facts(p: Profile, plan: Plan, index: int) -> tuple[float, tuple[int | None, ...] | None]:
    """(the tier period's kWh before the open cycle ``index``, the tier limits in Wh when one price
    version and one tier period span the whole cycle, else None); cached per cycle.

    The limits are ``()`` when no price is in force in the whole cycle (no money, nothing to warn).
    """
    c = p.open_cycles[index]
    last = p.closed_cycles[-1] if p.closed_cycles else None
    key = (c.start, plan.id, len(p.closed_cycles), last)
    cache = _cache(p)
    hit = cache.get("tier")
    if hit is not None and hit[0] == key:
        out: tuple[float, tuple[int | None, ...] | None] = hit[1]
        return out
    cp = plan.compiled
    before = 0.0
    if cp.tier_period == "year":
        ys = cp.year_start_of(c.start)  # only the cycles that overlap the year so far count (Wh sums)
        within = [(x.start, x.end, x.kwh) for x in p.closed_cycles if x.end > ys and x.start < c.start]
        before = tier_kwh_before(plan, c.start, within)
    out = (before, cycle_tier_limits(plan, c.start, c.end))
    cache["tier"] = (key, out)
    return out


def cycle_tier_limits(plan: Plan, start: int, end: int) -> tuple[int | None, ...] | None:
    """The tier limits in Wh of the cycle ``[start, end)`` (ordinals) when one price version and one
    tier period span it, else None; ``()`` when no price is in force in it (``tier_facts``).

    >>> js = Tariffs.default().plan("cn-js-residential")
    >>> jan, feb = dt.date(2024, 1, 1).toordinal(), dt.date(2024, 2, 1).toordinal()
    >>> cycle_tier_limits(js, jan, feb), cycle_tier_limits(js, jan - 10, feb)  # the second: a new year
    ((2760000, 4800000, None), None)
    """
    cp = plan.compiled
    key = (id(cp), start, end)
    hit = _LIMITS.get(key)
    if hit is not None and hit[0] is cp:  # (the compiled plan kept: its id cannot be reused meanwhile)
        return hit[1]
    out = _cycle_tier_limits(cp, start, end)
    if len(_LIMITS) >= _LIMITS_MAX:
        _LIMITS.clear()
    _LIMITS[key] = (cp, out)
    return out


# cycle_tier_limits' answers, per compiled plan and cycle: a pure function of them, and the customers of
# one read day share their cycles (a new cycle's first evaluations look the limits up: tier_crossing)
_LIMITS: dict[tuple[int, int, int], tuple[CompiledPlan, tuple[int | None, ...] | None]] = {}
_LIMITS_MAX = 4096


def _cycle_tier_limits(cp: CompiledPlan, start: int, end: int) -> tuple[int | None, ...] | None:
    cut = (cp.tier_period == "year" and cp.next_year_start(start) < end) or any(
        start < s < end for s in cp.starts
    )
    if cut:
        return None
    try:
        return cp.versions[cp.version_index(start)].tier_limits
    except NoPriceError:
        return ()


def same_period_bills(
    p: Profile, customer: CustomerConfig, tariffs: Tariffs, plan: Plan, index: int, today: int
) -> tuple[Bill | None, Bill] | None:
    """Last year's bills of the open cycle ``index`` (as billed then, at ``today``'s prices), cached.

    They change only with the cycle, the closed cycles, the plans and the price version of
    ``today``; the key holds all of them.
    """
    c = p.open_cycles[index]
    try:
        version = plan.compiled.version_index(today)
    except NoPriceError:
        version = -1
    last = p.closed_cycles[-1] if p.closed_cycles else None
    key = (
        c.start,
        c.end,
        plan.id,
        version,
        len(p.closed_cycles),
        last,
        customer.cycle_months,
        tuple(p.plans),
    )
    cache = _cache(p)
    hit = cache.get("same_period")
    if hit is not None and hit[0] == key:
        bills: tuple[Bill | None, Bill] | None = hit[1]
        return bills
    bills = _same_period_bills(p, customer, tariffs, plan, c.start, c.end, today)
    cache["same_period"] = (key, bills)
    return bills


def cycle_figures(
    p: Profile,
    customer: CustomerConfig,
    tariffs: Tariffs,
    index: int,
    through: int,
    projected_kwh: float | None,
) -> BillFigures | None:
    """The bill figures of the open cycle ``index`` through the day ``through`` (None: no plan or price).

    ``projected_kwh``: the engine's projection of the cycle's total (None: no projection).
    """
    c = p.open_cycles[index]
    plan = plan_on(p, customer, tariffs, c.start)
    if plan is None:
        return None
    days: list[float] = []
    days_wh = None
    if is_tou(plan):
        days_wh = tou_cycle_wh(p, index, through, plan, customer)
        today = c.start + max(len(days_wh[0]) - 1, 0)
    else:
        days = cycle_days(p, index, through)
        today = c.start + max(len(days) - 1, 0)
    try:
        before = tier_before_cycle(p, plan, index)
        bills = same_period_bills(p, customer, tariffs, plan, index, today)
        return bill_figures(
            plan,
            cycle_start=c.start,
            cycle_end=c.end,
            days_so_far=days,
            days_wh=days_wh,
            projected_kwh=projected_kwh,
            cycle_months=customer.cycle_months,
            tier_kwh_before_cycle=before,
            same_period_bills=bills,
        )
    except NoPriceError:
        return None  # the plan had no price in force in this cycle


def money_of(f: BillFigures, budget: Decimal | None = None) -> Money:
    """The alert's ``money`` from bill figures (with the tier period's start and the budget).

    >>> import datetime as dt
    >>> from baselines.tariffs import bill_figures, default_catalogue
    >>> js = default_catalogue().plan("cn-js-residential")
    >>> jul, aug = dt.date(2024, 7, 1), dt.date(2024, 8, 1)
    >>> f = bill_figures(js, cycle_start=jul, cycle_end=aug, days_so_far=[10.0])
    >>> m = money_of(f, Decimal("200")); m.tier.period_start, m.budget
    (datetime.date(2024, 1, 1), Decimal('200'))
    """
    m = money_from_figures(f)
    upd: dict[str, Any] = {}
    if m.tier is not None and f.tier is not None:
        upd["tier"] = m.tier.model_copy(update={"period_start": f.tier.period_start})
    if budget is not None:
        upd["budget"] = budget
    return m.model_copy(update=upd) if upd else m


def alert_money(
    p: Profile, customer: CustomerConfig, tariffs: Tariffs, index: int, through: int, min_day_coverage: float
) -> Money | None:
    """The ``money`` of an alert on the open cycle ``index``, as of the day ``through``."""
    proj = project_cycle(p, index, through, min_day_coverage)
    f = cycle_figures(p, customer, tariffs, index, through, None if proj is None else proj[0])
    if f is None:
        return None
    b = customer.budget
    return money_of(f, b.amount if b is not None and b.currency == f.currency else None)


def snapshot_money(
    p: Profile, customer: CustomerConfig, tariffs: Tariffs, min_day_coverage: float
) -> MoneyNow | None:
    """The running cycle's bill figures as of the newest complete day (cached on the profile).

    The key holds the cycle's kWh through that day, so a late reading refreshes it.
    """
    if not p.open_cycles or p.newest_day is None:
        return None
    index = len(p.open_cycles) - 1
    c = p.open_cycles[index]
    through = min(p.evaluated_day if p.evaluated_day is not None else p.newest_day - 1, c.end - 1)
    upto_wh = round(cycle_to_date(p, index, through) * 1000) if through >= c.start else 0
    plan = plan_on(p, customer, tariffs, c.start)
    last = p.closed_cycles[-1] if p.closed_cycles else None
    key = (
        c.start,
        through,
        upto_wh,
        None if plan is None else plan.id,
        customer.budget,
        customer.cycle_months,
        p.weekday_factors,
        len(p.closed_cycles),
        last,
    )
    cache = _cache(p)
    hit = cache.get("snapshot")
    if hit is not None and hit[0] == key:
        out: MoneyNow | None = hit[1]
        return out
    out = None
    if plan is not None:
        proj = project_cycle(p, index, through, min_day_coverage) if through >= c.start else None
        f = cycle_figures(p, customer, tariffs, index, through, None if proj is None else proj[0])
        out = None if f is None else _money_now(f, sum(cycle_days(p, index, through)), customer)
    cache["snapshot"] = (key, out)
    return out


def _money_now(f: BillFigures, kwh: float, customer: CustomerConfig) -> MoneyNow:
    m = money_of(f)
    today_prices = f.same_period_today_prices
    at_current = None if today_prices is None else today_prices.total
    budget = (
        customer.budget if customer.budget is not None and customer.budget.currency == f.currency else None
    )
    return MoneyNow(
        plan_id=f.plan_id,
        currency=f.currency,
        as_of=f.as_of,
        kwh_to_date=round(kwh, 3),
        to_date=m.to_date,
        projected=m.projected,
        same_period=m.same_period,
        same_period_at_current_prices=at_current,
        extra_vs_same_period=m.extra_vs_same_period,
        extra_at_current_prices=None
        if m.projected is None or at_current is None
        else m.projected - at_current,
        tier=m.tier,
        next_tier_kwh_to_go=None if f.next_tier is None else float(f.next_tier.kwh_to_go),
        budget=budget,
    )


# ---------------------------------------------------------------------------------- cheap bounds
def cost_upper_bound(tariffs: Tariffs, plan: Plan, kwh: float, days: int) -> float:
    """A cost no bill of ``kwh`` over ``days`` days can exceed (the money rules' cheap exit).

    >>> t = Tariffs.default(); js = t.plan("cn-js-residential")
    >>> round(cost_upper_bound(t, js, 100.0, 30), 2)
    82.91
    """
    per_kwh, per_day = tariffs.max_prices(plan.id)
    return kwh * per_kwh + days * per_day + 0.01 * 8  # + half a cent per line, generously


def next_limit(limits: tuple[int | None, ...], period_kwh: float, scale: int = 1) -> tuple[float, int | None]:
    """(the tier period's kWh where the next tier starts, its number); ``(inf, None)`` in the top tier.

    ``limits``: the tier limits in Wh (per month for monthly tiers, times ``scale`` = the
    cycle's months).

    >>> next_limit((2760000, 4800000, None), 2000.0), next_limit((2760000, 4800000, None), 9e3)
    ((2760.0, 2), (inf, None))
    """
    wh = round(period_kwh * 1000)
    for k, limit in enumerate(limits):
        if limit is None:
            break
        if wh <= limit * scale:
            return limit * scale / 1000, k + 2
    return float("inf"), None


def rest_upper_bound(p: Profile, as_of: int, end: int) -> float:
    """kWh that no projection of the days after ``as_of`` to ``end`` (exclusive) can exceed.

    The projection is the recent level (a median of the last 7 days, each divided by its
    weekday factor) times the weekday factors of the remaining days; so it is at most the
    largest recent day / the smallest factor x the largest factor x the days left. The
    days looked at (every open day, the ring's last 7) hold the 7 days through ``as_of``.

    >>> from baselines.profile import OpenDay
    >>> p = Profile.new("c"); p.final_start, p.final_days = 10, [4.0, 6.0, None]
    >>> p.open_days[13] = OpenDay(5.0, 86400.0, 1, 86400, None, 0.0)
    >>> rest_upper_bound(p, 13, 20)
    36.0
    """
    n = end - as_of - 1
    if n <= 0:
        return 0.0
    top = max((acc.kwh for acc in p.open_days.values()), default=0.0)
    tail = [v for v in p.final_days[-7:] if v is not None]
    if tail:
        top = max(top, max(tail))
    wf = p.weekday_factors
    return top / min(wf) * max(wf) * n
