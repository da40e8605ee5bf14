"""The alert rules: configuration, the per-evaluation context, one module per rule.

* ``config``: ``RulesConfig`` (every rule's parameters per tariff and segment,
  and the profile's window sizes), ``RuleSet``, ``RULES`` (the rule names);
* ``context``: ``RuleContext``, what a rule reads, gathered once per evaluation;
* ``same_period``: the same-period basis shared by the two same-period rules;
* one module per rule, each with ``check(ctx) -> tuple[Finding, ...]``:
  ``same_period_reached``, ``projected_over_same_period``, ``sudden_increase``
  (with its escalation), ``sustained_drop``, and the money rules ``tier_crossing``
  and ``budget`` (``budget_projected`` / ``budget_reached``, solicited);
* ``evaluate``: when the rules run and in which order (``Evaluator``).

The alert texts (``explain``) live with the alert building in
``baselines.alerts`` and are re-exported here.

>>> RULES[0], explain("sustained_drop", {"days": 14, "recent": 0.1, "baseline": 8.0})["en"][:22]
('same_period_reached', 'For 14.0 days daily us')
"""

from baselines.alerts import explain
from baselines.rules.config import (
    RULES,
    SOLICITED_RULES,
    BudgetRule,
    MoneyRules,
    ProjectedOverSamePeriod,
    RulesConfig,
    RuleSet,
    SamePeriodReached,
    SuddenIncrease,
    SustainedDrop,
    TierCrossing,
)

__all__ = [
    "RULES",
    "SOLICITED_RULES",
    "BudgetRule",
    "MoneyRules",
    "ProjectedOverSamePeriod",
    "RuleSet",
    "RulesConfig",
    "SamePeriodReached",
    "SuddenIncrease",
    "SustainedDrop",
    "TierCrossing",
    "explain",
]
