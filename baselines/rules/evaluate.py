"""When the rules run, in which order, and how their findings become alerts.

After each folded reading: once the as-of day (the newest complete day) moves
on, every enabled rule is evaluated once, in the order of ``RULE_CHECKS``
(the order matters: a rule's alert moderates the next); between such
evaluations only ``same_period_reached`` is checked, and only when the reading
may have crossed its threshold. The money rules (``tier_crossing``, ``budget``)
run last, so that on one day the consumption rules take the cycle's one
customer-facing alert first; with a tariff catalogue the evaluator also records
the customer's plan (``baselines.billing.note_plan``) once per evaluation day, and a new
calendar (region, away periods, move-in: ``baselines.special_days``) re-derives the
ring's special days before that day's rules run. With a weather feed
(``baselines.weather.Temperatures``) the customer's temperature response learns the ring's new
final days (``baselines.weather_profile.absorb``) before that day's rules run, and the rules get
the region's temperatures (``RuleContext.temps``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from baselines.alerts import Finding, fire
from baselines.billing import Tariffs, note_plan
from baselines.customer import CustomerConfig
from baselines.cycle_book import cycle_index
from baselines.profile import Profile
from baselines.rules import (
    budget,
    projected_over_same_period,
    same_period_reached,
    sudden_increase,
    sustained_drop,
    tier_crossing,
)
from baselines.rules.config import RulesConfig, RuleSet, SamePeriodReached
from baselines.rules.context import Clock, RuleContext
from baselines.special_days import refresh_ring
from baselines.weather import Temperatures
from baselines.weather_profile import absorb
from meterwatch.contracts import Alert, SegmentRef

Check = Callable[[RuleContext], tuple[Finding, ...]]


class Plan(NamedTuple):
    """A resolved rule set, its enabled checks in order, and ``same_period_reached``'s parameters
    when that rule is enabled (checked between evaluations, on every reading)."""

    rules: RuleSet
    checks: tuple[Check, ...]
    live: SamePeriodReached | None


# (rule set attribute, check) in evaluation order
RULE_CHECKS: tuple[tuple[str, Check], ...] = (
    ("same_period_reached", same_period_reached.check),
    ("projected_over_same_period", projected_over_same_period.check),
    ("sudden_increase", sudden_increase.check),
    ("sustained_drop", sustained_drop.check),
    ("tier_crossing", tier_crossing.check),
    ("budget", budget.check),
)


class Evaluator:
    """Runs the rules of a ``RulesConfig`` on profiles; ``clock`` gives ``created_at`` of alerts;
    ``tariffs`` prices the alerts (None: no money, the money rules stay silent); ``weather``: the
    daily temperatures per region (None: no weather feed, the rules judge as without weather)."""

    __slots__ = ("_plans", "clock", "config", "tariffs", "weather")

    def __init__(
        self,
        config: RulesConfig,
        clock: Clock | None = None,
        tariffs: Tariffs | None = None,
        weather: Temperatures | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.tariffs = tariffs
        self.weather = weather
        # The ruleset cache. Why beside RulesConfig.resolve's own cache: this one is one dict
        # lookup per reading (no method call) and also holds the enabled checks, in order.
        self._plans: dict[tuple[str, int | None], Plan] = {}

    def plan(self, tariff: str, segment: SegmentRef | None) -> Plan:
        """The rule set for a tariff and segment, its enabled checks in order (cached).

        >>> plan = Evaluator(RulesConfig()).plan("residential", None)
        >>> plan.rules.sudden_increase.factor, len(plan.checks), plan.live is not None
        (3.0, 6, True)
        """
        key = (tariff, segment.id if segment is not None else None)
        plan = self._plans.get(key)
        if plan is None:
            rs = self.config.resolve(*key)
            checks = tuple(check for name, check in RULE_CHECKS if getattr(rs, name).enabled)
            live = rs.same_period_reached if rs.same_period_reached.enabled else None
            plan = self._plans[key] = Plan(rs, checks, live)
        return plan

    def after_reading(
        self, p: Profile, customer: CustomerConfig, segment: SegmentRef | None, ts: float, closes_newest: bool
    ) -> list[Alert]:
        """The alerts after a reading (at time ``ts``) was folded into ``p``; updates ``p``'s rule state.

        >>> import datetime as dt
        >>> from baselines.customer import CustomerConfig
        >>> from baselines.fold import fold_inplace
        >>> from baselines.late_window import DayLocator
        >>> from baselines.profile import Profile
        >>> from baselines.readings import Reading
        >>> ev, cfg, loc = Evaluator(RulesConfig()), RulesConfig(), DayLocator()
        >>> p, cust = Profile.new("c"), CustomerConfig("c")
        >>> out = fold_inplace(p, Reading.daily(dt.date(2024, 1, 1), 5.0), cust, cfg, loc)
        >>> ev.after_reading(p, cust, None, 0.0, out.closes_newest), p.evaluated_day == p.newest_day
        ([], True)
        """
        newest = p.newest_day
        assert newest is not None
        as_of = newest if closes_newest else newest - 1
        alerts: list[Alert] = []
        plan = self._plans.get((customer.tariff, segment.id if segment is not None else None))
        if plan is None:
            plan = self.plan(customer.tariff, segment)
        tariffs = self.tariffs
        if p.evaluated_day is None or as_of > p.evaluated_day:
            p.evaluated_day = as_of
            if customer.calendar_key != p.calendar_key:
                refresh_ring(p, customer)  # a new region, absence or occupant: the ring's special days
            if tariffs is not None:
                note_plan(p, customer, tariffs)
            temps = self.weather.series(customer.region) if self.weather is not None else None
            if temps is not None:
                absorb(p, temps)  # the temperature response learns the new final days
            ci = cycle_index(p, as_of)
            if ci >= 0:
                ctx = RuleContext(
                    p, self.config, plan.rules, customer, segment, ts, self.clock, as_of, ci, tariffs, temps
                )
                _run_checks(ctx, plan.checks, alerts)
        elif plan.live is not None and same_period_reached.may_fire_now(p, plan.live):
            last = len(p.open_cycles) - 1
            ctx = RuleContext(
                p, self.config, plan.rules, customer, segment, ts, self.clock, newest, last, tariffs
            )
            _fire_all(ctx, same_period_reached.check(ctx), alerts)
        return alerts


def _run_checks(ctx: RuleContext, checks: tuple[Check, ...], alerts: list[Alert]) -> None:
    """Run ``checks`` (enabled rules, in ``RULE_CHECKS`` order) on ``ctx``; append their alerts."""
    for check in checks:
        findings = check(ctx)
        if findings:  # most evaluations find nothing: no call
            _fire_all(ctx, findings, alerts)


def _fire_all(ctx: RuleContext, findings: tuple[Finding, ...], alerts: list[Alert]) -> None:
    """Fire each finding (in order: each one's moderation sees the ones before) into ``alerts``."""
    for f in findings:
        alerts.append(fire(ctx, f))
