"""The same-period basis shared by ``same_period_reached`` and ``projected_over_same_period``.

Both rules compare the cycle with the same cycle one year earlier (同期), and
both need it known, covered enough and large enough to judge against, and lived
in by the same occupant (``baselines.occupancy``).

>>> from baselines.customer import CustomerConfig
>>> from baselines.profile import OpenCycle, Profile
>>> from baselines.rules.config import RulesConfig
>>> p = Profile.new("c"); p.open_cycles.append(OpenCycle(738886, 738917, 0.0, 0.0))
>>> cfg = RulesConfig(); rs = cfg.resolve("residential", None)
>>> ctx = RuleContext(p, cfg, rs, CustomerConfig("c"), None, 0.0, None, 738890, 0)
>>> same_period_basis(ctx, "same_period_reached", ctx.cycle, rs.same_period_reached)
'baselines.sufficiency.no_same_period'
"""

from __future__ import annotations

import datetime as dt

from baselines.cycle_book import same_period_figures
from baselines.occupancy import NEW_OCCUPANT, compared_with_previous_occupant, one_year_on
from baselines.profile import OpenCycle
from baselines.rules.config import ProjectedOverSamePeriod, SamePeriodReached
from baselines.rules.context import RuleContext

NO_SAME_PERIOD = "baselines.sufficiency.no_same_period"
SAME_PERIOD_COVERAGE = "baselines.sufficiency.same_period_coverage"
SAME_PERIOD_TOO_SMALL = "baselines.sufficiency.same_period_too_small"


# the same-period cycle to judge against: (its whole kWh, a partly covered one scaled up; its coverage)
# (a plain tuple, not a NamedTuple: built on most evaluations, and a NamedTuple costs a Python call)
SamePeriodBasis = tuple[float, float]


def same_period_basis(
    ctx: RuleContext, rule: str, cycle: OpenCycle, cfg: SamePeriodReached | ProjectedOverSamePeriod
) -> SamePeriodBasis | str:
    """The basis for ``cycle``, or the ``baselines.sufficiency.*`` code why not (recorded for ``rule``).

    >>> from baselines.customer import CustomerConfig
    >>> from baselines.profile import ClosedCycleT, Profile
    >>> from baselines.rules.config import RulesConfig
    >>> p = Profile.new("c"); p.open_cycles.append(OpenCycle(738886, 738917, 0.0, 0.0))
    >>> p.closed_cycles.append(ClosedCycleT(738521, 738552, 300.0, 0.95))
    >>> cfg = RulesConfig(); rs = cfg.resolve("residential", None)
    >>> ctx = RuleContext(p, cfg, rs, CustomerConfig("c"), None, 0.0, None, 738890, 0)
    >>> kwh, coverage = same_period_basis(ctx, "same_period_reached", ctx.cycle, rs.same_period_reached)
    >>> round(kwh, 1), coverage
    (315.8, 0.95)
    """
    occ = ctx.customer.occupant_since
    if occ is not None and compared_with_previous_occupant(ctx.profile, cycle.start, cycle.end, occ):
        ctx.skip(
            rule,
            NEW_OCCUPANT,
            occupant_since=dt.date.fromordinal(occ).isoformat(),
            comparable_from=one_year_on(occ).isoformat(),
        )
        return NEW_OCCUPANT
    sp = same_period_figures(ctx.profile, cycle.start, cycle.end)
    if sp is None:
        ctx.skip(rule, NO_SAME_PERIOD)
        return NO_SAME_PERIOD
    sp_kwh, sp_cov = sp
    # judge against the whole same-period cycle: scale a partly covered one (>= the minimum
    # coverage) up to its full length, so a constant level cannot "reach" it early
    sp_kwh = sp_kwh / sp_cov if 0 < sp_cov < 1 else sp_kwh
    if sp_cov < cfg.min_same_period_coverage:
        ctx.skip(rule, SAME_PERIOD_COVERAGE, coverage=round(sp_cov, 3), needed=cfg.min_same_period_coverage)
        return SAME_PERIOD_COVERAGE
    if sp_kwh < cfg.min_same_period_kwh:
        ctx.skip(rule, SAME_PERIOD_TOO_SMALL, same_period_kwh=round(sp_kwh, 2))
        return SAME_PERIOD_TOO_SMALL
    return sp_kwh, sp_cov
