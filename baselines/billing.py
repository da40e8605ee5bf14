"""Money on a profile: which tariff plan prices which day, and the bill figures of an open cycle.

The bill maths is :mod:`baselines.tariffs` (pure, plain values in); this module
feeds it from a :class:`~baselines.profile.Profile`: the open cycle's days, the
engine's projection, the stored closed cycles (for the tariff year's kWh of
annual tiers) and last year's same-period cycle.

**Which plan.** ``Tariffs`` is the catalogue plus a default plan per tariff
category (``MW_DEFAULT_TARIFF_PLANS``): a customer's plan is its registry
``tariff_plan``, else the default of its ``tariff``, else none (no money). A
plan change applies from the **start of the next billing cycle** after the
engine first sees it (as utilities apply a tariff change from the next meter
reading): no cycle is ever priced under two plans, and the open cycle keeps
the plan it started with. ``Profile.plans`` records ``(from_day, plan_id)``
(the first entry prices all earlier days); last year's same-period cycle is
priced "as billed then" under the plan the history says was in force then.

**Which days.** The bill of the open cycle counts its days through a given day:
open days as measured (any coverage), final days from the ring, and the final
kWh the ring does not hold (partial days, days before the ring) spread evenly
over the days without a value, so the days add up to the cycle's kWh.

**Cost.** Figures are computed when an alert fires, once per customer-day for the
snapshot, and by the money rules only past a cheap bound (``cost_upper_bound``,
``tier_limit_ahead``). What stays the same for a whole cycle (the tariff year's kWh
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from baselines.baseline_stats import project_cycle
from baselines.customer import CustomerConfig
from baselines.cycle_book import cycle_to_date, same_period_figures
from baselines.cycles import same_period
from baselines.profile import Profile
from baselines.tariffs import (
    Bill,
    BillFigures,
    Catalogue,
    NoPriceError,
    Plan,
    UnknownPlanError,
    bill_figures,
    default_catalogue,
    money_from_figures,
    same_period_cost_at_today_prices,
    same_period_cost_then,
    tier_kwh_before,
)
from meterwatch.contracts import Money, MoneyNow, MoneyTier

# plan changes kept in Profile.plans (changes are rare; the oldest entry prices all earlier days)
MAX_PLANS = 6
# last year's same-period cycle must be this well covered to be priced (as the same-period rules)
MIN_SAME_PERIOD_COVERAGE = 0.9
_NO_PLAN = ""


@dataclass(frozen=True)
class Tariffs:
    """The tariff catalogue and the default plan per tariff category (checked: every id exists).

    >>> t = Tariffs.default({"residential": "uk-london-standard"})
    >>> from baselines.customer import CustomerConfig
    >>> t.plan_id_for(CustomerConfig("c")), t.plan_id_for(CustomerConfig("c", tariff="commercial"))
    ('uk-london-standard', None)
    >>> Tariffs.default({"residential": "nope"})
    Traceback (most recent call last):
    ...
    baselines.tariffs.catalogue.UnknownPlanError: unknown tariff plan 'nope'
    """

    catalogue: Catalogue
    defaults: Mapping[str, str] = field(default_factory=dict)
    _plans: dict[str, Plan] = field(init=False, repr=False, compare=False)
    _bounds: dict[str, tuple[float, float]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plans = {p.id: p for p in self.catalogue.plans}
        for plan_id in self.defaults.values():
            if plan_id not in plans:
                raise UnknownPlanError(plan_id)
        object.__setattr__(self, "_plans", plans)
        object.__setattr__(self, "_bounds", {p.id: _price_bounds(p) for p in self.catalogue.plans})

    @classmethod
    def default(cls, defaults: Mapping[str, str] | None = None) -> Tariffs:
        """The shipped catalogue with ``defaults``."""
        return cls(default_catalogue(), dict(defaults or {}))

    def plan_id_for(self, customer: CustomerConfig) -> str | None:
        """The plan the registry names for ``customer`` now (its own, else its tariff's default)."""
        return customer.tariff_plan or self.defaults.get(customer.tariff)

    def plan(self, plan_id: str) -> Plan | None:
        """The plan ``plan_id`` (None: not in the catalogue)."""
        return self._plans.get(plan_id)

    def knows(self, plan_id: str) -> bool:
        """Whether the catalogue has ``plan_id`` (the registry path dead-letters unknown ones).

        >>> Tariffs.default().knows("cn-js-residential"), Tariffs.default().knows("x")
        (True, False)
        """
        return plan_id in self._plans

    def max_prices(self, plan_id: str) -> tuple[float, float]:
        """(highest price per kWh, tier surcharge included; highest standing charge per day) of any version."""
        return self._bounds[plan_id]


def _price_bounds(plan: Plan) -> tuple[float, float]:
    per_kwh = per_day = 0
    for v in plan.compiled.versions:
        energy = max((v.flat_price or 0, v.fallback_price or 0, *v.period_prices))
        per_kwh = max(per_kwh, energy + max(v.tier_surcharges))
        per_day = max(per_day, v.standing)
    return per_kwh / 1e6, per_day / 1e6


# ---------------------------------------------------------------------------------- plan history
def note_plan(p: Profile, customer: CustomerConfig, tariffs: Tariffs) -> None:
    """Record the customer's current plan in ``p.plans`` (the engine calls it once per evaluation day).

    The first plan seen prices every earlier day; a change applies from the end of the
    running cycle (a change seen again before then replaces the pending one).

    >>> from baselines.customer import CustomerConfig
    >>> from baselines.profile import OpenCycle, Profile
    >>> t, p = Tariffs.default(), Profile.new("c")
    >>> p.open_cycles.append(OpenCycle(100, 130, 0.0, 0.0))
    >>> note_plan(p, CustomerConfig("c", tariff_plan="cn-js-residential"), t)
    >>> note_plan(p, CustomerConfig("c", tariff_plan="cn-fj-residential-monthly"), t); p.plans
    [(0, 'cn-js-residential'), (130, 'cn-fj-residential-monthly')]
    >>> note_plan(p, CustomerConfig("c", tariff_plan="cn-js-residential"), t); p.plans
    [(0, 'cn-js-residential')]
    """
    plan_id = tariffs.plan_id_for(customer) or _NO_PLAN
    hist = p.plans
    if hist and hist[-1][1] == plan_id:
        return
    if not hist:
        if plan_id:
            hist.append((0, plan_id))
        return
    start = p.open_cycles[-1].end if p.open_cycles else 0
    if len(hist) > 1 and hist[-1][0] >= start:  # a change not in force yet: replaced
        hist.pop()
        if hist[-1][1] == plan_id:
            return
    hist.append((start, plan_id))
    del hist[:-MAX_PLANS]


def plan_on(p: Profile, customer: CustomerConfig, tariffs: Tariffs, day: int) -> Plan | None:
    """The plan pricing the day ``day`` (an ordinal): from the profile's history, else the current one.

    >>> from baselines.customer import CustomerConfig
    >>> p = Profile.new("c"); p.plans = [(0, "cn-js-residential"), (130, "uk-london-standard")]
    >>> t, cust = Tariffs.default(), CustomerConfig("c")
    >>> plan_on(p, cust, t, 129).id, plan_on(p, cust, t, 130).id, plan_on(Profile.new("c"), cust, t, 1)
    ('cn-js-residential', 'uk-london-standard', None)
    """
    hist = p.plans
    if not hist:
        plan_id = tariffs.plan_id_for(customer)
    else:
        plan_id = hist[0][1]
        for start, pid in hist:
            if start > day:
                break
            plan_id = pid
    return tariffs.plan(plan_id) if plan_id else None


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
    c = p.open_cycles[index]
    if plan.compiled.tier_period != "year":
        return 0.0
    last = p.closed_cycles[-1] if p.closed_cycles else None
    key = (c.start, plan.id, len(p.closed_cycles), last)
    cache = _cache(p)
    hit = cache.get("tier")
    if hit is not None and hit[0] == key:
        before: float = hit[1]
        return before
    before = tier_kwh_before(plan, c.start, [(x.start, x.end, x.kwh) for x in p.closed_cycles])
    cache["tier"] = (key, before)
    return before


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
    key = (c.start, c.end, plan.id, version, len(p.closed_cycles), last, customer.cycle_months, tuple(p.plans))
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
    >>> f = bill_figures(js, cycle_start=dt.date(2024, 7, 1), cycle_end=dt.date(2024, 8, 1), days_so_far=[10.0])
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
    budget = customer.budget if customer.budget is not None and customer.budget.currency == f.currency else None
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
        extra_at_current_prices=None if m.projected is None or at_current is None else m.projected - at_current,
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


def tier_limit_ahead(
    plan: Plan, start: int, end: int, as_of: int, period_kwh_now: float, cycle_months: int = 1
) -> float | None:
    """The tier period's kWh where the next tier starts, when one cut-free formula decides.

    None when the cycle ``[start, end)`` holds a price change or a tariff-year start (the
    caller computes the figures instead), or when the customer is in the top tier (``inf``
    then: nothing to cross). ``period_kwh_now``: the tier period's kWh through ``as_of``.

    >>> t = Tariffs.default(); js = t.plan("cn-js-residential")
    >>> import datetime as dt
    >>> jul = dt.date(2024, 7, 1).toordinal()
    >>> tier_limit_ahead(js, jul, jul + 31, jul + 9, 2000.0), tier_limit_ahead(js, jul, jul + 31, jul + 9, 9e3)
    (2760.0, inf)
    """
    cp = plan.compiled
    if cp.tier_period == "year" and cp.next_year_start(start) < end:
        return None
    if any(start < s < end for s in cp.starts):
        return None
    try:
        v = cp.versions[cp.version_index(as_of)]
    except NoPriceError:
        return float("inf")
    scale = cycle_months if cp.tier_period == "cycle" else 1
    wh = round(period_kwh_now * 1000)
    for limit in v.tier_limits:
        if limit is None:
            return float("inf")
        hi = limit * scale
        if wh <= hi:
            return hi / 1000
    return float("inf")
