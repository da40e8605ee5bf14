"""``tier_crossing``: at the current pace the customer passes into a higher tier within this cycle.

For plans with tiers (阶梯电价: annual, or monthly per billing cycle). The
projection is the engine's (the cycle so far plus the recent level for the days
to come, spread evenly as the bill maths does); the alert names the day the
tier period's consumption passes the limit, the new tier and the price step, and
is sent before that day. At most once per tier and tier period (the mark
``_tier<N>`` in ``Profile.fired`` holds the period's first day: old profiles
without it load unchanged) and once per cycle; moderated like the others.

Cost: once per customer-day, a cheap bound first (the tier limit ahead against
the tariff year's kWh before the cycle, cached per cycle, plus the projection);
the bill figures only when the bound says a crossing is possible. The bound runs on
every evaluation of every customer with tiers, so its common case (the next tier
further than any projection can reach) is one pass over the open days and the ring's
last week against what stays the same for the cycle, kept on the profile's
``money_cache`` (``_quick_exit``: it computes the same floats as ``_nothing_to_warn``
and says "nothing to warn" only where that does; else the full bound decides). Where it
says so it leaves a mark (``_Mark``, see ``_marked_out_of_reach``), armed with an allowance
(``_arm``: the kWh the fold may book, the largest day and the weekday factors' ratio it may
reach) so that most evaluations end at a few comparisons (``_armed``).
Parameters: ``baselines.rules.config.TierCrossing``.
"""

from __future__ import annotations

import math
from operator import attrgetter
from typing import NamedTuple

from baselines.alerts import Finding, Numbers
from baselines.billing import (
    cycle_figures,
    cycle_tier_limits,
    money_of,
    next_limit,
    plan_on,
    rest_upper_bound,
    tier_facts,
)
from baselines.cycle_book import cycle_to_date
from baselines.profile import ClosedCycleT, Profile
from baselines.rules.context import RuleContext, rounded
from baselines.tariffs import Plan
from baselines.tariffs.compiled import kwh_to_wh
from baselines.tariffs.cycle import part_wh
from meterwatch.contracts import Observed

RULE = "tier_crossing"
MARK = "_tier"  # + the tier number: Profile.fired key -> first day of the tier period it fired in
# the cheap exit's margin for float rounding of the cycle-to-date (1 Wh; the rounding is < 1e-6 Wh)
SLACK_KWH = 0.001
_KWH = attrgetter("kwh")
MEMO_WF = "tier_exit_wf"  # ... and of the weekday factors: (factors, smallest, largest)
MEMO = "tier_exit"  # Profile.money_cache key of the cheap exit's per-cycle facts (_quick_exit)


def check(ctx: RuleContext) -> tuple[Finding, ...]:
    """The finding, when the projection passes into a higher tier later in this cycle.

    >>> import datetime as dt
    >>> from baselines.billing import Tariffs
    >>> from baselines.customer import CustomerConfig
    >>> from baselines.profile import ClosedCycleT, OpenCycle, Profile
    >>> from baselines.rules.config import RulesConfig
    >>> jan, jul = dt.date(2024, 1, 1).toordinal(), dt.date(2024, 7, 1).toordinal()
    >>> p = Profile.new("c"); p.newest_day = jul + 10
    >>> p.closed_cycles.append(ClosedCycleT(jan, jul, 2600.0, 1.0))      # 2,600 kWh this year so far
    >>> p.open_cycles.append(OpenCycle(jul, jul + 31, 100.0, 10.0))
    >>> p.final_start, p.final_days = jul - 20, [10.0] * 30
    >>> cfg = RulesConfig(); rs = cfg.resolve("residential", None)
    >>> ctx = RuleContext(p, cfg, rs, CustomerConfig("c", tariff_plan="cn-js-residential"), None, 0.0, None,
    ...                   jul + 9, 0, tariffs=Tariffs.default())
    >>> [(f.rule, f.numbers["to_tier"], f.numbers["crossing_on"]) for f in check(ctx)]
    [('tier_crossing', 2, '2024-07-17')]
    >>> check(ctx)   # once per tier and tariff year
    ()
    """
    tariffs = ctx.tariffs
    if tariffs is None:
        return ()
    p = ctx.profile
    mk: _Mark | None = p.tier_mark
    if mk is not None:
        if _armed(ctx, mk):
            return ()  # what _marked_out_of_reach would say (see _arm), without its arithmetic
        if mk.epoch == p.money_epoch - 1 and _armed_over_close(ctx, mk):
            return ()  # the previous cycle closed: the armed mark with its kWh counted as booked
        if _marked_out_of_reach(ctx, mk):
            return ()  # what _quick_exit would say, without the plan and memo look-ups
    c = ctx.cycle
    if p.fired.get(RULE) == c.start:
        return ()
    plan = plan_on(p, ctx.customer, tariffs, c.start)
    if plan is None or plan.compiled.tier_period == "none":
        return ()
    if ctx.as_of - c.start + 1 < ctx.rules.tier_crossing.min_days_elapsed:
        return ()
    quick = _quick_exit(ctx, plan)
    if quick or (quick is False and _nothing_to_warn(ctx, plan)):
        return ()  # (None: the quick exit knows that the full bound says False)
    proj = ctx.projection()
    if proj is None:
        ctx.skip(RULE, "baselines.sufficiency.recent_days_missing")
        return ()
    p.reasons.pop(RULE, None)  # evaluated: no reason to show
    projected, ctd, level = proj
    if not _may_cross(ctx, plan, projected, ctd):
        return ()
    return _finding(ctx, plan, projected, ctd, level)


def _scale(ctx: RuleContext, plan: Plan) -> int:
    return ctx.customer.cycle_months if plan.compiled.tier_period == "cycle" else 1


def _period_start(ctx: RuleContext, plan: Plan, day: int) -> int:
    cp = plan.compiled
    return cp.year_start_of(day) if cp.tier_period == "year" else ctx.cycle.start


def _nothing_to_warn(ctx: RuleContext, plan: Plan) -> bool:
    """True when no projection can reach an unwarned next tier this cycle (the cheap exit).

    Decided only for a cycle inside one price version and one tier period (else False):
    the next tier was already warned of in this tier period, or it lies further than any
    projection can reach (``baselines.billing.rest_upper_bound``).
    """
    p = ctx.profile
    before, limits = tier_facts(p, plan, ctx.cycle_index)
    if limits is None:
        return False
    if not limits:
        return True  # no price in force in this cycle
    ctd = cycle_to_date(p, ctx.cycle_index, ctx.as_of)
    limit, tier = next_limit(limits, before + ctd, _scale(ctx, plan))
    if tier is None or p.fired.get(f"{MARK}{tier}") == _period_start(ctx, plan, ctx.as_of):
        return True
    return limit - before - ctd > rest_upper_bound(p, ctx.as_of, ctx.cycle.end)


class _Memo(NamedTuple):
    """The cheap exit's facts of one cycle (valid while its key fields match)."""

    start: int  # key: the cycle's first day,
    plan: Plan  # the plan pricing it,
    closed: int  # the number of closed cycles
    last: ClosedCycleT | None  # and the newest one (the key of ``tier_facts``)
    before: float  # the tier period's kWh before the cycle
    # (limit in Wh, limit in kWh) of each tier limit, scaled as ``next_limit`` does; None: no price
    steps: tuple[tuple[int, float], ...] | None


def _memo(ctx: RuleContext, plan: Plan) -> _Memo | None:
    """The cycle's ``_Memo`` (cached on ``money_cache``); None when a price change or a tier-period
    start cuts the cycle (``tier_facts`` gives no limits)."""
    p, c = ctx.profile, ctx.cycle
    closed = p.closed_cycles
    old: _Memo | None = None if p.money_cache is None else p.money_cache.get(MEMO)
    if old is not None and old.start == c.start and old.plan is plan and _one_more_closed(old, closed):
        # (the constructor, not _replace: its per-field look-ups cost more than the rest of the update)
        before = _before_plus(old, closed[-1], plan)
        m = _Memo(old.start, old.plan, len(closed), closed[-1], before, old.steps)
        p.money_cache[MEMO] = m  # type: ignore[index]
        return m
    if old is not None and _same_before(old, c.start, plan, closed):
        before, limits = old.before, cycle_tier_limits(plan, c.start, c.end)  # a cycle opened since
    else:
        before, limits = tier_facts(p, plan, ctx.cycle_index)
    if limits is None:
        return None
    steps: list[tuple[int, float]] = []
    scale = _scale(ctx, plan)
    for lim in limits:
        if lim is None:
            break
        steps.append((lim * scale, lim * scale / 1000))
    m = _Memo(
        c.start, plan, len(closed), closed[-1] if closed else None, before, tuple(steps) if limits else None
    )
    if p.money_cache is None:
        p.money_cache = {}
    p.money_cache[MEMO] = m
    return m


def _same_before(old: _Memo, start: int, plan: Plan, closed: list[ClosedCycleT]) -> bool:
    """Whether the memo's tier-period kWh before its cycle is that of the open cycle from ``start``
    too: the same plan and closed cycles (all of them end before either cycle: only the tariff-year
    start bounds the sum, in whole Wh) and the same tariff year (monthly tiers: 0 for every cycle)."""
    if old.plan is not plan or old.closed != len(closed) or old.last is not (closed[-1] if closed else None):
        return False
    cp = plan.compiled
    return cp.tier_period != "year" or cp.year_start_of(old.start) == cp.year_start_of(start)


def _one_more_closed(old: _Memo, closed: list[ClosedCycleT]) -> bool:
    """Whether the closed cycles are the memo's with one appended (a cycle closed since)."""
    n = len(closed)
    return n == old.closed + 1 and (closed[-2] if n > 1 else None) is old.last


def _before_plus(old: _Memo, new: ClosedCycleT, plan: Plan) -> float:
    """The memo's tier-period kWh before the cycle with the newly closed cycle's part added, in whole
    Wh as ``tier_kwh_before`` sums them (so the same float as recomputing from all closed cycles)."""
    cp = plan.compiled
    if cp.tier_period != "year":
        return old.before  # 0.0: monthly tiers restart with every cycle
    lo, hi = cp.year_start_of(old.start), old.start
    wh = round(old.before * 1000)  # exact: before is a whole number of Wh / 1000
    if new.start < hi and new.end > lo:
        n = new.end - new.start
        wh += part_wh(kwh_to_wh(new.kwh), n, max(lo, new.start) - new.start, min(hi, new.end) - new.start)
    return wh / 1000


def _quick_exit(ctx: RuleContext, plan: Plan) -> bool | None:
    """True only where ``_nothing_to_warn`` is True (the next tier out of reach, or none); None only where
    it is False (``_within_reach``); False: undecided.

    First the running bound (``_still_out_of_reach``: a few float operations), then the
    same bound as ``_nothing_to_warn`` (``_bound_exit``) with the cycle's tier facts from
    ``_memo``.
    """
    p, c = ctx.profile, ctx.cycle
    closed = p.closed_cycles
    cache = p.money_cache
    m: _Memo | None = None if cache is None else cache.get(MEMO)
    if (
        m is None
        or m.start != c.start
        or m.plan is not plan
        or m.closed != len(closed)
        or m.last is not (closed[-1] if closed else None)
    ):
        m = _memo(ctx, plan)
        if m is None:
            return False
        cache = p.money_cache
    assert cache is not None  # the memo is in it
    wf = p.weekday_factors
    w = cache.get(MEMO_WF)
    if w is None or w[0] is not wf:
        w = cache[MEMO_WF] = (wf, min(wf), max(wf))
    if m.steps is None:
        p.tier_mark = _Mark(m, c.start, c.end, ctx.tariffs, _epoch(p), m.before, math.inf, 0.0, 0.0, *w)
        return True  # no price in force in this cycle
    mk: _Mark | None = p.tier_mark
    if mk is not None and mk.end == c.end and _mark_holds(mk.memo, m):
        if _still_out_of_reach(p, mk, m.before, c.end - ctx.as_of - 1, w[1], w[2]):
            # still out of reach: the mark holds from now on with what changed (a closed cycle,
            # a plan change in the history, the factors), so the next evaluation ends at it
            # (_arm re-arms from the first 12 fields: the old allowance is not carried)
            head = (m, mk.start, mk.end, ctx.tariffs, _epoch(p), m.before, mk.limit, mk.total, mk.top)
            mk = _Mark(*head, wf, w[1], w[2])
            p.tier_mark = _arm(p, mk, ctx.as_of)
            return True
    return _bound_exit(ctx, m, w[1], w[2])


def _epoch(p: Profile) -> int:
    """The profile's ``money_epoch`` for a new mark; -1 (never current) without a plan history:
    ``plan_on`` then gives the customer record's plan, which the epoch does not follow."""
    return p.money_epoch if p.plans else -1


def _marked_out_of_reach(ctx: RuleContext, mk: _Mark) -> bool:
    """``_quick_exit``'s running bound where nothing it looks up changed since the mark: the cycle,
    the catalogue, and the profile's ``money_epoch`` (bumped wherever the closed cycles or the plan
    history change: so ``plan_on`` gives the marked plan and the tier period's kWh before the cycle
    is the mark's); the weekday factors' extremes are taken afresh when the factors changed.
    False: ``check`` goes the long way. It touches only the mark and the profile's own fields.
    (``_still_out_of_reach`` written out: this runs on almost every evaluation.)"""
    p, c = ctx.profile, ctx.cycle
    if mk.epoch != p.money_epoch or mk.end != c.end or mk.start != c.start or mk.tariffs is not ctx.tariffs:
        return False
    wf = p.weekday_factors
    if wf is not mk.wf:  # the factors are recomputed every few days
        mk = _Mark(*mk[:9], wf, min(wf), max(wf))  # unarmed: only _arm's result is kept
    n = c.end - ctx.as_of - 1
    peak = p.peak_kwh
    top = mk.top if mk.top >= peak else peak
    rest = (top + SLACK_KWH) / mk.low * mk.high * n if n > 0 else 0.0
    if mk.limit - mk.before - (mk.total + p.booked_kwh + 2 * SLACK_KWH) > rest:
        p.tier_mark = _arm(p, mk, ctx.as_of)
        return True
    return False


def _armed(ctx: RuleContext, mk: _Mark) -> bool:
    """The armed mark's test (see ``_arm``): a few comparisons, on almost every evaluation."""
    p = ctx.profile
    wf = p.weekday_factors
    return (
        p.booked_kwh < mk.allow
        and p.peak_kwh <= mk.cap
        and mk.since <= ctx.as_of < mk.end
        and mk.epoch == p.money_epoch
        and mk.tariffs is ctx.tariffs
        and (wf is mk.wf or max(wf) <= mk.ratio * min(wf))
    )


def _armed_over_close(ctx: RuleContext, mk: _Mark) -> bool:
    """``_armed`` where the only change since the mark is one more closed cycle (the previous cycle
    closing a week into this one): the money epoch moved by one (each close bumps it once; a plan
    change would bump it too), the cycle's memo is the mark's and the closed cycles are its own with
    one appended. That cycle's part of the tariff year adds ``delta`` to the tier period's kWh before
    this cycle: the gap to the same next tier shrinks by exactly that, which is what the fold booking
    ``delta`` more kWh would do, so the armed test holds with ``booked + delta`` (and 1 Wh more for the
    rounding of the difference). Where it does, the memo and the mark are carried over with the new
    epoch and ``delta`` taken off the allowance. False: ``check`` goes on as before."""
    p, c = ctx.profile, ctx.cycle
    m = mk.memo
    cache = p.money_cache
    closed = p.closed_cycles
    if (
        mk.epoch < 0
        or cache is None
        or cache.get(MEMO) is not m
        or mk.start != c.start
        or mk.end != c.end
        or mk.tariffs is not ctx.tariffs
        or not _one_more_closed(m, closed)
    ):
        return False
    before = _before_plus(m, closed[-1], m.plan)
    allow = mk.allow - (before - mk.before) - SLACK_KWH
    wf = p.weekday_factors
    if not (
        p.booked_kwh < allow
        and p.peak_kwh <= mk.cap
        and mk.since <= ctx.as_of < mk.end
        and (wf is mk.wf or max(wf) <= mk.ratio * min(wf))
    ):
        return False
    m = cache[MEMO] = _Memo(m.start, m.plan, len(closed), closed[-1], before, m.steps)
    head = (m, mk.start, mk.end, mk.tariffs, p.money_epoch, before, mk.limit, mk.total, mk.top)
    p.tier_mark = _Mark(*head, mk.wf, mk.low, mk.high, mk.since, allow, mk.cap, mk.ratio)
    return True


HEADROOM = 0.25  # of the weekday factors' ratio an armed mark allows for (see _arm)


def _arm(p: Profile, mk: _Mark, as_of: int) -> _Mark:
    """``mk`` armed for ``_armed`` from the evaluation of ``as_of`` on (unarmed where the bound
    does not hold now).

    ``_marked_out_of_reach`` says "out of reach" where ``limit - before - (total + booked +
    2 s) > (max(top, peak) + s) x high / low x days left`` (s = ``SLACK_KWH``). Of what that
    leaves free now, half goes to the booked kWh (``allow``) and half to the rest-of-cycle bound:
    the largest day may grow to ``cap`` and the factors' ratio to ``ratio`` (up to ``HEADROOM``
    above today's). While the fold stays inside those (and the cycle, the epoch, the catalogue are
    the mark's, with no fewer days gone), the bound holds: the days left only shrink. One more
    ``s`` is kept so that the rearranged sums cannot round the other way.
    """
    n = mk.end - as_of - 1
    top = mk.top if mk.top >= p.peak_kwh else p.peak_kwh
    r = mk.high / mk.low
    gap = mk.limit - mk.before - mk.total - 3 * SLACK_KWH
    head = mk[:12]  # the fields before ``since`` (a new tuple without _replace's per-field look-ups)
    if n <= 0:  # no day left: the rest-of-cycle bound is 0 whatever the largest day
        return _Mark(*head, as_of, gap, math.inf, math.inf)
    rest = (top + SLACK_KWH) * r * n
    free = gap - p.booked_kwh - rest
    if not free > 0:
        return _Mark(*head)  # not armed
    ratio = r * (1 + HEADROOM)
    cap = (rest + free / 2) / (ratio * n) - SLACK_KWH
    if cap < top:
        ratio, cap = r, (rest + free / 2) / (r * n) - SLACK_KWH
    return _Mark(*head, as_of, p.booked_kwh + free / 2, cap, ratio)


def _mark_holds(old: _Memo, m: _Memo) -> bool:
    """Whether a mark made under the memo ``old`` bounds the cycle of the memo ``m``: the same cycle,
    plan and tier limits, and the tier period's kWh before the cycle not lower (a cycle that closed
    since adds to it: the gap to the same next tier only shrinks)."""
    return old is m or (
        old.start == m.start and old.plan is m.plan and old.steps == m.steps and m.before >= old.before
    )


class _Mark(NamedTuple):
    """What ``_bound_exit`` saw when it last said "out of reach" (``Profile.tier_mark``, transient).

    From then on the fold adds every kWh it books to ``Profile.booked_kwh`` and keeps the
    largest open-day kWh it writes in ``Profile.peak_kwh`` (both reset here; ``inf`` after
    a change that is not a plain addition), so the cycle-to-date is at most ``total`` +
    booked and the largest day at most max(``top``, peak).
    """

    memo: _Memo  # made under this memo (see _mark_holds)
    start: int  # for this cycle (first day and end),
    end: int
    tariffs: object  # this catalogue
    epoch: int  # and this ``Profile.money_epoch`` (closed cycles and plan history; -1: none)
    before: float  # the memo's tier-period kWh before the cycle
    limit: float  # the next tier's limit in kWh (inf: in the top tier or no price in force)
    total: float  # the cycle's kWh then: closed part + every open day in the cycle
    top: float  # the largest open or last-week ring day then
    wf: tuple[float, ...]  # the weekday factors the extremes below are of
    low: float
    high: float
    # armed (``_arm``): from this as-of day on, while the fold's booked kWh < ``allow``, its peak
    # <= ``cap`` and the weekday factors' ratio <= ``ratio``, nothing to warn (-inf: not armed)
    since: int = 0
    allow: float = -math.inf
    cap: float = -math.inf
    ratio: float = -math.inf


assert _Mark._fields.index("since") == 12  # _arm's slice


def _still_out_of_reach(p: Profile, mk: _Mark, before: float, n: int, low: float, high: float) -> bool:
    """The bound of ``_bound_exit`` from the mark and the fold's running figures: True only where
    ``_bound_exit`` is True (both quantities only grow since the mark, by at most what the fold
    booked; 1 Wh slack each for float rounding and the ring's rounding to 1 Wh). ``before``: the
    tier period's kWh before the cycle now; ``low``, ``high``: the weekday factors' extremes now."""
    top = mk.top if mk.top >= p.peak_kwh else p.peak_kwh
    rest = (top + SLACK_KWH) / low * high * n if n > 0 else 0.0
    return mk.limit - before - (mk.total + p.booked_kwh + 2 * SLACK_KWH) > rest


def _bound_exit(ctx: RuleContext, m: _Memo, low: float, high: float) -> bool | None:
    """``_nothing_to_warn``'s bound from the memo, the open days summed by built-ins (C loops).

    A summation order may round differently, so the cycle-to-date is taken ``SLACK_KWH``
    higher for the gap and lower for the tier. It skips the check of the tier already
    warned of: where that alone makes the answer True, ``_nothing_to_warn`` says so.
    Where it says True it leaves a ``_Mark`` for ``_still_out_of_reach``; where the bound fails,
    ``_within_reach`` may tell that ``_nothing_to_warn`` fails too (None).
    """
    p, c = ctx.profile, ctx.cycle
    steps = m.steps
    assert steps is not None
    as_of, start = ctx.as_of, c.start
    days = p.open_days
    whole_summed = True  # total sums every open day (so it is also the cycle's whole total below)
    if not days:
        total = c.kwh
    elif start <= min(days) and max(days) <= as_of:  # every open day in the cycle so far
        total = sum(map(_KWH, days.values()), c.kwh)
    else:
        whole_summed = False
        total = sum((acc.kwh for d, acc in days.items() if start <= d <= as_of), c.kwh)
    top = max(max(map(_KWH, days.values()), default=0.0), max(filter(None, p.final_days[-7:]), default=0.0))
    before = m.before
    wh = round((before + total - SLACK_KWH) * 1000)
    limit = math.inf  # in the top tier
    for j, (lim_wh, lim_kwh) in enumerate(steps):
        if wh <= lim_wh:
            n = c.end - as_of - 1
            rest = top / low * high * n if n > 0 else 0.0
            if not lim_kwh - before - (total + SLACK_KWH) > rest:
                return _within_reach(ctx, m, j, before, total, rest)
            limit = lim_kwh
            break
    # out of reach: mark it, with every open day of the cycle (later days too) in the total; where the
    # total above already summed every open day (all in [start, as_of], as_of < end), the same sum
    end = c.end
    if days and not whole_summed:
        whole = sum((acc.kwh for d, acc in days.items() if start <= d < end), c.kwh)
    else:
        whole = total
    wf = p.weekday_factors
    p.booked_kwh = p.peak_kwh = 0.0
    mk = _Mark(m, start, end, ctx.tariffs, _epoch(p), before, limit, whole, top, wf, low, high)
    p.tier_mark = _arm(p, mk, as_of)
    return True


def _within_reach(
    ctx: RuleContext, m: _Memo, j: int, before: float, total: float, rest: float
) -> bool | None:
    """None where ``_nothing_to_warn`` is False for sure, else False (undecided), after ``_bound_exit``
    failed at the memo's step ``j``: its cycle-to-date ``total`` is within ``SLACK_KWH`` of
    ``cycle_to_date``'s and its ``rest`` is ``rest_upper_bound`` (the same days and factors), so
    ``_nothing_to_warn`` is False where the next tier is step ``j`` for a cycle-to-date anywhere in
    ``total`` +/- ``SLACK_KWH``, that tier was not warned of in this tier period, and the gap with the
    cycle-to-date taken ``SLACK_KWH`` lower is still within the rest of the cycle. Spares the customers
    near a tier the full bound's second pass over the open days."""
    steps = m.steps
    assert steps is not None
    lim_wh, lim_kwh = steps[j]
    if round((before + total + SLACK_KWH) * 1000) > lim_wh or lim_kwh - before - (total - SLACK_KWH) > rest:
        return False
    if ctx.profile.fired.get(f"{MARK}{j + 2}") == _period_start(ctx, m.plan, ctx.as_of):
        return False  # warned of already: nothing to warn
    return None


def _may_cross(ctx: RuleContext, plan: Plan, projected: float, ctd: float) -> bool:
    """False when the projection stays below the next tier's limit (no bill figures needed)."""
    before, limits = tier_facts(ctx.profile, plan, ctx.cycle_index)
    if limits is None:
        return True  # a price change or a tariff-year start in the cycle: the figures decide
    return before + projected > next_limit(limits, before + ctd, _scale(ctx, plan))[0]


def _finding(ctx: RuleContext, plan: Plan, projected: float, ctd: float, level: float) -> tuple[Finding, ...]:
    p, c = ctx.profile, ctx.cycle
    f = cycle_figures(p, ctx.customer, ctx.tariffs, ctx.cycle_index, ctx.as_of, projected)  # type: ignore[arg-type]
    if f is None or f.crossing is None:
        return ()
    x = f.crossing
    on = x.on.toordinal()
    period_start = _period_start(ctx, plan, on)
    mark = f"{MARK}{x.to_tier}"
    if p.fired.get(mark) == period_start:
        return ()
    p.fired[mark] = period_start
    money = money_of(f)
    if money.tier is not None:
        money = money.model_copy(
            update={
                "tier": money.tier.model_copy(
                    update={"next_on": x.on, "next_at_kwh": float(x.at_kwh), "price_step": x.price_step}
                )
            }
        )
    cfg = ctx.rules.tier_crossing
    observed = Observed(
        cycle_to_date_kwh=round(ctd, 3),
        baseline_daily_kwh=rounded(p.baseline_median),
        recent_daily_kwh=round(level, 3),
        projected_cycle_kwh=round(projected, 3),
    )
    period_kwh = None if f.tier is None else float(f.tier.period_kwh)
    explain = {
        "from_tier": float(x.from_tier),
        "to_tier": float(x.to_tier),
        "at_kwh": float(x.at_kwh),
        "on": float(on),
        "price_step": float(x.price_step),
    }
    numbers: Numbers = {
        "from_tier": x.from_tier,
        "to_tier": x.to_tier,
        "at_kwh": float(x.at_kwh),
        "crossing_on": x.on.isoformat(),
        "price_step": float(x.price_step),
        "period": x.period,
        "period_kwh": period_kwh,
        "plan": plan.id,
    }
    return (Finding(RULE, c, cfg.severity, cfg.customer_facing, observed, explain, numbers, money=money),)
