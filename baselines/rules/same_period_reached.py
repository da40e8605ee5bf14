"""``same_period_reached``: the running cycle's use so far has reached the whole same cycle last year.

Judged on the running cycle up to the newest day, at every evaluation and
(with interval data) on the reading that crosses the threshold
(``may_fire_now``). Fires only while part of the cycle is still to come
(``max_elapsed_fraction``). Parameters: ``baselines.rules.config.SamePeriodReached``.
"""

from __future__ import annotations

from baselines.alerts import Finding
from baselines.cycle_book import cycle_to_date, same_period_figures
from baselines.profile import Profile
from baselines.rules.config import SamePeriodReached
from baselines.rules.context import RuleContext, rounded
from baselines.rules.same_period import same_period_basis
from meterwatch.contracts import Observed

RULE = "same_period_reached"


def may_fire_now(p: Profile, cfg: SamePeriodReached) -> bool:
    """Whether a reading between evaluations may have crossed the threshold.

    Why: with interval data this runs on every reading, so it answers from the
    profile alone (cached same-period figures, no context) and is False for
    almost every reading.

    >>> from baselines.rules.config import SamePeriodReached
    >>> may_fire_now(Profile.new("c"), SamePeriodReached())
    False
    """
    if not p.open_cycles:
        return False
    c = p.open_cycles[-1]
    if p.fired.get(RULE) == c.start:
        return False
    sp = same_period_figures(p, c.start, c.end)
    if sp is None:
        return False
    return cycle_to_date(p, len(p.open_cycles) - 1) >= cfg.factor * sp[0]


def check(ctx: RuleContext) -> tuple[Finding, ...]:
    """The finding, if the running cycle reached its same period (see the module docstring).

    >>> from baselines.customer import CustomerConfig
    >>> from baselines.profile import ClosedCycleT, OpenCycle, Profile
    >>> from baselines.rules.config import RulesConfig
    >>> p = Profile.new("c"); p.newest_day = 738900
    >>> p.open_cycles.append(OpenCycle(738886, 738917, 320.0, 14.0))       # Jan 2024, 320 kWh by the 15th
    >>> p.closed_cycles.append(ClosedCycleT(738521, 738552, 300.0, 1.0))   # Jan 2023: 300 kWh
    >>> cfg = RulesConfig(); rs = cfg.resolve("residential", None)
    >>> ctx = RuleContext(p, cfg, rs, CustomerConfig("c"), None, 0.0, None, 738899, 0)
    >>> [(f.rule, f.explain["days_left"]) for f in check(ctx)]
    [('same_period_reached', 16.0)]
    """
    cfg = ctx.rules.same_period_reached
    p = ctx.profile
    c = ctx.running_cycle
    if p.fired.get(RULE) == c.start:
        return ()
    basis = same_period_basis(ctx, RULE, c, cfg)
    if isinstance(basis, str):
        return ()
    sp_kwh, sp_cov = basis
    p.reasons.pop(RULE, None)  # evaluated: no reason to show
    ctd = ctx.cycle_to_date(ctx.running_index)
    if ctd < cfg.factor * sp_kwh:
        return ()
    total = c.end - c.start
    elapsed = min(total, ctx.newest - c.start + 1)
    if elapsed / total > cfg.max_elapsed_fraction:
        return ()
    observed = Observed(
        cycle_to_date_kwh=round(ctd, 3),
        same_period_kwh=round(sp_kwh, 3),
        baseline_daily_kwh=rounded(p.baseline_median),
        ratio=round(ctd / sp_kwh, 3),
    )
    days_left = float(c.end - 1 - ctx.newest)
    return (
        Finding(
            RULE,
            c,
            cfg.severity,
            cfg.customer_facing,
            observed,
            {"ctd": ctd, "sp": sp_kwh, "days_left": days_left},
            {"same_period_coverage": round(sp_cov, 3), "days_elapsed": elapsed, "cycle_days": total},
        ),
    )
