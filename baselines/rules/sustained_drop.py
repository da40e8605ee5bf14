"""``sustained_drop``: near-zero or far-below-baseline use for ``days`` days (vacancy, meter fault).

A day is low at or below ``max(near_zero_kwh, fraction x baseline)``; of the
last ``days`` days at least ``min_present`` must be known and all but
``exception_days`` of them low. Holidays and away days (``baselines.special_days``)
are judged as unknown days: a declared absence mutes the rule (skip reason
``baselines.calendar.away``), as does a holiday break (``baselines.calendar.holiday``).
With a weather feed and a sufficient temperature response (``baselines.weather``), a drop the
days' warmth explains (the baseline lowered by it, the days are not low) is no alert (skip
reason ``baselines.weather.explained``).
Parameters: ``baselines.rules.config.SustainedDrop``.
"""

from __future__ import annotations

from baselines.alerts import Finding
from baselines.rules.config import SustainedDrop
from baselines.rules.context import RuleContext
from baselines.stats import median, quantile_high
from meterwatch.contracts import Observed

RULE = "sustained_drop"


def check(ctx: RuleContext) -> tuple[Finding, ...]:
    """The finding, if the recent days stayed low (see the module docstring).

    >>> from baselines.customer import CustomerConfig
    >>> from baselines.profile import OpenCycle, Profile
    >>> from baselines.rules.config import RulesConfig
    >>> p = Profile.new("c"); p.newest_day = 738900
    >>> p.open_cycles.append(OpenCycle(738886, 738917, 0.0, 0.0))
    >>> p.baseline_median, p.baseline_days = 8.0, 40
    >>> p.final_start, p.final_days = 738886, [0.1] * 14
    >>> cfg = RulesConfig(); rs = cfg.resolve("residential", None)
    >>> ctx = RuleContext(p, cfg, rs, CustomerConfig("c"), None, 0.0, None, 738899, 0)
    >>> [(f.rule, f.observed.recent_daily_kwh) for f in check(ctx)]
    [('sustained_drop', 0.1)]
    """
    cfg = ctx.rules.sustained_drop
    p = ctx.profile
    c = ctx.cycle
    if p.fired.get(RULE) == c.start:
        return ()
    med = p.baseline_median
    if med is None or p.baseline_days < cfg.min_baseline_days:
        ctx.skip(
            RULE, "baselines.sufficiency.too_few_days", days=p.baseline_days, needed=cfg.min_baseline_days
        )
        return ()
    if med < cfg.min_baseline_kwh:
        ctx.skip(RULE, "baselines.sufficiency.baseline_too_low", baseline_kwh=round(med, 3))
        return ()
    thr = max(cfg.near_zero_kwh, cfg.fraction * med)
    # cheap exit: more recent high days than exceptions allowed
    high_days = 0
    for v in ctx.window(cfg.exception_days + 1):
        if v is not None and v > thr:
            high_days += 1
    if high_days > cfg.exception_days:
        p.reasons.pop(RULE, None)  # evaluated: no reason to show
        return ()
    window, special, masked = ctx.judged_window(cfg.days)  # holidays and away days: no evidence
    xs = [v for v in window if v is not None]
    if len(xs) < cfg.min_present:
        if masked and len(xs) + masked >= cfg.min_present:  # the days are there: holidays or away
            ctx.skip(RULE, f"baselines.calendar.{special}", special_days=masked, present=len(xs))
        else:
            ctx.skip(RULE, "baselines.sufficiency.recent_days_missing", present=len(xs))
        return ()
    p.reasons.pop(RULE, None)  # evaluated: no reason to show
    low = sum(1 for x in xs if x <= thr)
    if low < len(xs) - cfg.exception_days:
        return ()
    if ctx.temps is not None and _warmth_explains(ctx, cfg, med, xs):
        return ()
    return (_finding(ctx, cfg, med, xs),)


def _warmth_explains(ctx: RuleContext, cfg: SustainedDrop, med: float, xs: list[float]) -> bool:
    """Whether the days' warmth explains the drop (``baselines.weather``): judged against the
    baseline lowered by the kWh/day the temperatures explain (skip reason
    ``baselines.weather.explained``, with the numbers), the days are no longer low enough."""
    adj = ctx.weather_adjustment(cfg.days)
    if adj is None or adj.kwh >= 0.0:
        return False
    thr = max(cfg.near_zero_kwh, cfg.fraction * max(0.0, med + adj.kwh))
    if sum(1 for x in xs if x <= thr) >= len(xs) - cfg.exception_days:
        return False
    ctx.skip(
        RULE,
        "baselines.weather.explained",
        expected_extra_kwh=round(adj.kwh, 3),
        hdd=adj.hdd,
        baseline_hdd=adj.baseline_hdd,
        threshold_kwh=round(thr, 3),
    )
    return True


def _finding(ctx: RuleContext, cfg: SustainedDrop, med: float, xs: list[float]) -> Finding:
    recent = median(xs)
    observed = Observed(
        cycle_to_date_kwh=round(ctx.cycle_to_date(ctx.cycle_index), 3),
        baseline_daily_kwh=round(med, 3),
        recent_daily_kwh=round(recent, 3),
        ratio=round(recent / med, 3),
    )
    return Finding(
        RULE,
        ctx.cycle,
        cfg.severity,
        cfg.customer_facing,
        observed,
        {"recent": recent, "baseline": med, "days": float(cfg.days)},
        {"p80_kwh": round(quantile_high(xs, 0.8), 3), "days_present": len(xs), "days": cfg.days},
    )
