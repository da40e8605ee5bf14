"""Rule configuration: every rule's parameters (per tariff and per segment) and the profile's window sizes.

``RulesConfig.default`` holds every rule's parameters; ``by_tariff`` and
``by_segment`` hold partial overrides (nested dicts) applied in that order:
default <- tariff <- segment.

>>> cfg = RulesConfig(by_tariff={"commercial": {"sudden_increase": {"factor": 4}}},
...                   by_segment={2: {"sudden_increase": {"customer_facing": False}}})
>>> rs = cfg.resolve("commercial", 2)
>>> rs.sudden_increase.factor, rs.sudden_increase.customer_facing
(4.0, False)
>>> cfg.resolve("residential", None).sudden_increase.factor
3.0
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from baselines.readings import MAX_RATING_KW
from meterwatch.contracts import Severity

RULES = (
    "same_period_reached",
    "projected_over_same_period",
    "sudden_increase",
    "sudden_increase_escalation",  # part of sudden_increase's parameters (escalation, escalation_factor)
    "sustained_drop",
    "tier_crossing",
    "budget_projected",  # the two alerts of the budget rule (solicited)
    "budget_reached",
)
#: rules whose alerts the customer asked for (counted apart from unsolicited alerts)
SOLICITED_RULES = ("budget_projected", "budget_reached")


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    customer_facing: bool = False
    severity: Severity = "warning"


class SamePeriodReached(_Rule):
    """Cycle-to-date >= ``factor`` x the whole same-period cycle (the source documents' rule).

    Manager-facing by default. ``max_elapsed_fraction`` < 1 keeps only the
    informative case (reached while part of the cycle is still to come); 1.0 is
    the literal rule.
    """

    severity: Severity = "info"
    factor: float = Field(1.0, gt=0)
    min_same_period_coverage: float = Field(0.9, ge=0, le=1)
    max_elapsed_fraction: float = Field(0.85, gt=0, le=1)
    min_same_period_kwh: float = Field(10.0, ge=0)


class ProjectedOverSamePeriod(_Rule):
    """Projected cycle total >= ``factor`` x the same-period cycle (Opower-style high-usage alert).

    The projection uses the customer's recent robust daily level and own
    weekday shape. Fires only when it held for ``persistence_days`` consecutive
    evaluations, the excess is at least ``min_excess_kwh``, the recent level
    is ``z_min`` robust standard deviations above the same-period daily level,
    and the recent level is at least ``min_recent_ratio`` x the customer's own
    baseline of the weeks before (the rise is new, not a year-old habit that
    would otherwise be re-announced every cycle).
    """

    customer_facing: bool = True
    factor: float = Field(1.3, gt=0)
    min_same_period_coverage: float = Field(0.9, ge=0, le=1)
    min_days_elapsed: int = Field(7, ge=1)
    persistence_days: int = Field(3, ge=1)
    min_excess_kwh: float = Field(60.0, ge=0)
    z_min: float = Field(4.0, ge=0)
    min_same_period_kwh: float = Field(10.0, ge=0)
    min_recent_ratio: float = Field(1.5, ge=0)


class GradedStep(BaseModel):
    """Graded evidence: the newest ``days`` complete days all at >= ``ratio`` x expected.

    A jump that large and that steady needs fewer days than the ``ignore_top +
    1``-of-``window_days`` window; every other condition of the rule holds
    (own spikes, excess, sudden against the week before), with ``z_min`` as the
    robust score asked of the lowest of those days.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: int = Field(ge=1, le=14)
    ratio: float = Field(gt=1)
    z_min: float = Field(ge=0)
    beyond_own_max: bool = False  # also above every earlier day of the ring (not only the p95 day)
    prior_min_jump: float | None = Field(None, gt=1)  # x the week before (default: the rule's)


class SuddenIncrease(_Rule):
    """Recent daily use >= ``factor`` x the customer's own baseline.

    ``recent`` is the ``ignore_top + 1``-th largest of the last ``window_days``
    complete days (a single noisy day cannot fire it). Because daily use is
    noisy, a genuine ``factor``-fold jump measures anywhere from about 0.75x to
    1.3x of ``factor``; the rule fires at ``factor x tolerance`` so that it
    catches the jump it is named after. Also required: a robust z-score
    (``(recent - expected) / (1.4826 MAD)``) of at least ``z_min``, an excess
    of at least ``min_excess_kwh_per_day``, and that it is *sudden*: the recent
    level is at least ``prior_min_jump`` x the median of the ``prior_days`` days
    before the window (a level that has been high for a while was either
    alerted already or is the customer's normal, e.g. winter heating). With
    ``beyond_own_spikes`` the recent level must also exceed the customer's own
    95th-percentile day of the baseline window (spikes included): a household
    that has such days regularly is not surprised by them. With
    ``seasonal_adjust`` the expected level is raised by the customer's own
    seasonal rise of last year (same weeks, one year earlier), never lowered;
    and lowered to the household's level of the week before the window when
    that is lower than its 8-week median, but not below ``recent_floor`` x the
    median (a jump from a quiet week counts; a return from a holiday does not).

    ``escalation``: when the customer already had a customer-facing alert this
    cycle (from any rule), a new excursion that meets every condition above
    (so it is sudden against the week before it) and whose level is at least
    ``escalation_factor`` x the recent daily level behind that earlier alert
    fires ``sudden_increase_escalation`` (its own alert id, customer-facing, at
    most once per cycle): a small alert early in the cycle must not silence a
    much larger surge later in it.

    ``graded`` (issue #15, graded evidence): a larger, steadier jump needs fewer
    days. Each step fires on its newest ``days`` days alone when all of them
    are at >= ``ratio`` x expected with a robust score >= ``z_min`` (and the
    tests above); default: 2 days at 5x, z >= 8, above every earlier day of the
    ring and 4x the week before, so a 6x surge is told on its second day
    instead of its fourth. Steps must ask at least ``factor x tolerance``.
    """

    customer_facing: bool = True
    factor: float = Field(3.0, gt=1)
    tolerance: float = Field(0.7, gt=0, le=1)
    critical_factor: float = Field(5.0, gt=1)
    window_days: int = Field(5, ge=1, le=14)
    ignore_top: int = Field(3, ge=0)
    z_min: float = Field(3.0, ge=0)
    min_excess_kwh_per_day: float = Field(2.0, ge=0)
    min_baseline_days: int = Field(14, ge=3)
    beyond_own_spikes: bool = True
    seasonal_adjust: bool = True
    prior_days: int = Field(7, ge=0, le=28)
    prior_min_jump: float = Field(1.7, gt=1)
    recent_floor: float = Field(0.6, gt=0, le=1)
    escalation: bool = True
    escalation_factor: float = Field(2.0, gt=1)
    graded: tuple[GradedStep, ...] = (
        GradedStep(days=2, ratio=5.0, z_min=8.0, beyond_own_max=True, prior_min_jump=4.0),
    )

    @model_validator(mode="after")
    def _graded_at_least_the_window(self) -> SuddenIncrease:
        # the rule's cheap exit (newest days all below the window's trigger) must stay exact
        for step in self.graded:
            if step.ratio < self.factor * self.tolerance:
                raise ValueError(
                    f"graded step ratio {step.ratio} is below factor x tolerance "
                    f"({self.factor * self.tolerance:.3g})"
                )
            if step.days > self.window_days:
                raise ValueError(f"graded step days {step.days} exceed window_days {self.window_days}")
            if step.prior_min_jump is not None and not self.prior_days:
                raise ValueError("a graded step's prior_min_jump needs prior_days > 0")
        return self


class SustainedDrop(_Rule):
    """Near-zero or far-below-baseline use for ``days`` days (vacancy, meter fault, tenant gone).

    A day is low at or below ``max(near_zero_kwh, fraction x baseline)``; of the
    last ``days`` days at least ``min_present`` must be known and all but
    ``exception_days`` of them low.
    """

    days: int = Field(14, ge=3, le=40)
    min_present: int = Field(12, ge=1)
    exception_days: int = Field(1, ge=0)
    fraction: float = Field(0.25, gt=0, lt=1)
    near_zero_kwh: float = Field(0.2, ge=0)
    min_baseline_kwh: float = Field(1.0, ge=0)
    min_baseline_days: int = Field(14, ge=3)


class TierCrossing(_Rule):
    """The customer is projected to pass into a higher tier (阶梯) within the current cycle.

    Needs a plan with tiers. Warns before the day of the crossing, with the price step
    and the date, at most once per tier and tier period (tariff year, or cycle for
    monthly tiers) and once per cycle; moderated like the others (one customer-facing
    alert per cycle). ``min_days_elapsed``: days of the cycle before it may fire.
    """

    customer_facing: bool = True
    min_days_elapsed: int = Field(1, ge=1)


class BudgetRule(_Rule):
    """The customer's own budget per cycle (registry ``budget``): SOLICITED alerts.

    ``budget_reached`` when the cost to date reaches the budget; ``budget_projected``
    when the projected cycle cost reaches it for ``persistence_days`` evaluations in a
    row, from day ``min_days_elapsed`` of the cycle (``projected: false`` turns it off).
    Each at most once per cycle; they neither take nor need the cycle's one
    customer-facing (unsolicited) alert.
    """

    customer_facing: bool = True
    projected: bool = True
    min_days_elapsed: int = Field(5, ge=1)
    persistence_days: int = Field(2, ge=1)


class MoneyRules(BaseModel):
    """How money changes alerts: an alert whose like-for-like extra cost (projected cycle cost
    minus last year's at today's prices) reaches ``critical_extra`` of its currency is raised
    one step (info -> warning -> critical; rules about increases only; never lowered)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    critical_extra: dict[str, Decimal] = Field(
        default_factory=lambda: {"CNY": Decimal(150), "GBP": Decimal(30)}
    )


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    same_period_reached: SamePeriodReached = Field(default_factory=SamePeriodReached)
    projected_over_same_period: ProjectedOverSamePeriod = Field(default_factory=ProjectedOverSamePeriod)
    sudden_increase: SuddenIncrease = Field(default_factory=SuddenIncrease)
    sustained_drop: SustainedDrop = Field(default_factory=SustainedDrop)
    tier_crossing: TierCrossing = Field(default_factory=TierCrossing)
    budget: BudgetRule = Field(default_factory=BudgetRule)
    money: MoneyRules = Field(default_factory=MoneyRules)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


class RulesConfig(BaseModel):
    """All rule parameters plus the profile's window sizes."""

    model_config = ConfigDict(extra="forbid")

    default: RuleSet = Field(default_factory=RuleSet)
    by_tariff: dict[str, dict[str, Any]] = Field(default_factory=dict)
    by_segment: dict[int, dict[str, Any]] = Field(default_factory=dict)
    late_window_days: int = Field(7, ge=0, le=60)
    ring_days: int = Field(56, ge=14, le=400)
    min_day_coverage: float = Field(0.9, ge=0, le=1)
    flag_z: float = Field(3.5, gt=0)
    flag_hi_ratio: float = Field(1.6, gt=1)
    flag_lo_ratio: float = Field(0.4, gt=0, lt=1)
    level_shift_days: int = Field(28, ge=7)
    level_shift_share: float = Field(0.75, gt=0.5, le=1)
    register_reset_fraction: float = Field(0.1, gt=0, lt=1)
    # the meter rating (kW) of a customer whose record gives none: per tariff, else the default
    default_max_kw: float = Field(100.0, gt=0, le=MAX_RATING_KW)
    max_kw_by_tariff: dict[str, Annotated[float, Field(gt=0, le=MAX_RATING_KW)]] = Field(
        default_factory=lambda: {"residential": 100.0, "commercial": 1000.0, "industrial": 20000.0}
    )
    _cache: dict[tuple[str, int | None], RuleSet] = PrivateAttr(default_factory=dict)

    def max_kw(self, customer_max_kw: float | None, tariff: str) -> float:
        """The meter rating that bounds a customer's readings: its own, else its tariff's, else the default.

        >>> cfg = RulesConfig()
        >>> cfg.max_kw(None, "commercial"), cfg.max_kw(None, "other"), cfg.max_kw(45.0, "commercial")
        (1000.0, 100.0, 45.0)
        """
        if customer_max_kw is not None:
            return customer_max_kw
        return self.max_kw_by_tariff.get(tariff, self.default_max_kw)

    def resolve(self, tariff: str, segment_id: int | None) -> RuleSet:
        """The rule set for a tariff and segment (cached).

        >>> cfg = RulesConfig(by_tariff={"commercial": {"sustained_drop": {"days": 20}}})
        >>> rs = cfg.resolve("commercial", 4)
        >>> rs.sustained_drop.days, rs is cfg.resolve("commercial", 4)
        (20, True)
        """
        key = (tariff, segment_id)
        rs = self._cache.get(key)
        if rs is None:
            data = self.default.model_dump()
            if tariff in self.by_tariff:
                data = _merge(data, self.by_tariff[tariff])
            if segment_id is not None and segment_id in self.by_segment:
                data = _merge(data, self.by_segment[segment_id])
            rs = RuleSet.model_validate(data)
            self._cache[key] = rs
        return rs
