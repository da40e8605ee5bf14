"""``projected_over_same_period``: at the current pace the cycle will clearly exceed the same cycle last year.

The projection is the cycle so far plus the customer's recent 7-day level times
their weekday factors for the days still to come. The condition must hold
``persistence_days`` evaluations in a row (``Profile.streaks``). Parameters:
``baselines.rules.config.ProjectedOverSamePeriod``.
"""

from __future__ import annotations

from baselines.alerts import Finding, Numbers
from baselines.cycle_book import same_period_days
from baselines.profile import Profile
from baselines.rules.config import ProjectedOverSamePeriod
from baselines.rules.context import RuleContext, rounded
from baselines.rules.same_period import SAME_PERIOD_TOO_SMALL, SamePeriodBasis, same_period_basis
from baselines.stats import robust_sigma
from meterwatch.contracts import Observed

RULE = "projected_over_same_period"


def check(ctx: RuleContext) -> tuple[Finding, ...]:
    """The finding, once the projection held ``persistence_days`` evaluations (see the module docstring).

    >>> from baselines.customer import CustomerConfig
    >>> from baselines.profile import ClosedCycleT, OpenCycle, Profile
    >>> from baselines.rules.config import RulesConfig
    >>> p = Profile.new("c"); p.newest_day = 738900
    >>> p.open_cycles.append(OpenCycle(738886, 738917, 0.0, 0.0))
    >>> p.closed_cycles.append(ClosedCycleT(738521, 738552, 300.0, 1.0))
    >>> cfg = RulesConfig(); rs = cfg.resolve("residential", None)
    >>> ctx = RuleContext(p, cfg, rs, CustomerConfig("c"), None, 0.0, None, 738888, 0)
    >>> check(ctx), p.reasons[RULE][0]
    ((), 'baselines.sufficiency.too_few_days_in_cycle')
    """
    cfg = ctx.rules.projected_over_same_period
    p = ctx.profile
    c = ctx.cycle
    if p.fired.get(RULE) == c.start:
        return ()
    inputs = _inputs(ctx, cfg)
    if inputs is None:
        return ()
    (sp_kwh, sp_cov), elapsed, (projected, ctd, level) = inputs
    sp_daily = sp_kwh / same_period_days(c.start, c.end)
    base = p.baseline_median
    z = (level - sp_daily) / robust_sigma(p.baseline_mad, base if base is not None else sp_daily)
    ok = (
        projected >= cfg.factor * sp_kwh
        and projected - sp_kwh >= cfg.min_excess_kwh
        and z >= cfg.z_min
        and (base is None or level >= cfg.min_recent_ratio * base)
    )
    if not _persisted(p, cfg, ok):
        return ()
    ratio = projected / sp_kwh
    observed = Observed(
        cycle_to_date_kwh=round(ctd, 3),
        same_period_kwh=round(sp_kwh, 3),
        baseline_daily_kwh=rounded(base),
        recent_daily_kwh=round(level, 3),
        projected_cycle_kwh=round(projected, 3),
        ratio=round(ratio, 3),
    )
    expl = {"projected": projected, "sp": sp_kwh, "ratio": ratio}
    numbers: Numbers = {"z": round(z, 2), "same_period_coverage": round(sp_cov, 3), "days_elapsed": elapsed}
    return (Finding(RULE, c, cfg.severity, cfg.customer_facing, observed, expl, numbers),)


def _inputs(
    ctx: RuleContext, cfg: ProjectedOverSamePeriod
) -> tuple[SamePeriodBasis, int, tuple[float, float, float]] | None:
    """(same-period basis, days elapsed, projection), or ``None`` (reason recorded) when not judgeable."""
    p = ctx.profile
    c = ctx.cycle
    basis = same_period_basis(ctx, RULE, c, cfg)
    if isinstance(basis, str):
        if basis != SAME_PERIOD_TOO_SMALL:  # a too small same period keeps the streak (as it always did)
            p.streaks.pop(RULE, None)
        return None
    elapsed = ctx.as_of - c.start + 1
    if elapsed < cfg.min_days_elapsed:
        ctx.skip(
            RULE, "baselines.sufficiency.too_few_days_in_cycle", days=elapsed, needed=cfg.min_days_elapsed
        )
        p.streaks.pop(RULE, None)
        return None
    proj = ctx.projection()
    if proj is None:
        ctx.skip(RULE, "baselines.sufficiency.recent_days_missing")
        p.streaks.pop(RULE, None)
        return None
    p.reasons.pop(RULE, None)  # evaluated: no reason to show
    return basis, elapsed, proj


def _persisted(p: Profile, cfg: ProjectedOverSamePeriod, ok: bool) -> bool:
    """Count the evaluations in a row that ``ok`` held; True (and restart) at ``persistence_days``."""
    if not ok:
        p.streaks.pop(RULE, None)
        return False
    k = p.streaks.get(RULE, 0) + 1
    p.streaks[RULE] = k
    if k < cfg.persistence_days:
        return False
    p.streaks.pop(RULE, None)
    return True
