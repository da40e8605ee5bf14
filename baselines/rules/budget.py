"""``budget``: the customer's own budget per billing cycle (SOLICITED alerts).

The customer (or their manager, or ops) sets a budget in money (registry field
``budget``; ``PUT /v1/customers/{id}/budget``; SMS reply "预算200" / "BUDGET 200").
Two alerts, each at most once per cycle:

* ``budget_reached``: the cost to date of the cycle reaches the budget;
* ``budget_projected``: the projected cycle cost reaches it (for
  ``persistence_days`` evaluations in a row, from day ``min_days_elapsed``),
  while the cost to date is still below it.

They carry ``solicited: true`` and are counted apart from unsolicited alerts;
they neither take nor need the cycle's one customer-facing alert. A budget in
another currency than the plan's, or a customer without a plan, is recorded as
a reason (baseline snapshot), not alerted. Cost: once per customer-day for
customers with a budget, and the bill figures only past a cheap upper bound.
Parameters: ``baselines.rules.config.BudgetRule``.
"""

from __future__ import annotations

from baselines.alerts import Finding, Numbers
from baselines.billing import cost_upper_bound, cycle_figures, money_of, plan_on
from baselines.cycle_book import cycle_to_date
from baselines.profile import Profile
from baselines.rules.config import BudgetRule
from baselines.rules.context import RuleContext
from meterwatch.contracts import Budget, Money, Observed

RULE = "budget"  # the rule set's entry and the reasons' key
PROJECTED = "budget_projected"
REACHED = "budget_reached"


def check(ctx: RuleContext) -> tuple[Finding, ...]:
    """The budget finding of the day, if any (see the module docstring).

    (Over 60 lines with its runnable example; the code itself is about 25.)

    >>> import datetime as dt
    >>> from baselines.billing import Tariffs
    >>> from baselines.customer import CustomerConfig
    >>> from baselines.profile import OpenCycle, Profile
    >>> from baselines.rules.config import RulesConfig
    >>> from meterwatch.contracts import Budget
    >>> jul = dt.date(2024, 7, 1).toordinal()
    >>> p = Profile.new("c"); p.newest_day = jul + 10
    >>> p.open_cycles.append(OpenCycle(jul, jul + 31, 100.0, 10.0))
    >>> p.final_start, p.final_days = jul - 20, [10.0] * 30
    >>> cfg = RulesConfig(); rs = cfg.resolve("residential", None)
    >>> cust = CustomerConfig("c", tariff_plan="cn-js-residential", budget=Budget(amount=50, currency="CNY"))
    >>> ctx = RuleContext(p, cfg, rs, cust, None, 0.0, None, jul + 9, 0, tariffs=Tariffs.default())
    >>> [(f.rule, f.solicited, str(f.money.to_date)) for f in check(ctx)]
    [('budget_reached', True, '52.83')]
    """
    b = ctx.customer.budget
    tariffs = ctx.tariffs
    if b is None or tariffs is None:
        return ()
    p, c = ctx.profile, ctx.cycle
    if p.fired.get(REACHED) == c.start:
        return ()
    plan = plan_on(p, ctx.customer, tariffs, c.start)
    if plan is None:
        ctx.skip(RULE, "baselines.money.no_tariff_plan")
        return ()
    if plan.currency != b.currency:
        ctx.skip(RULE, "baselines.money.budget_currency", budget=b.currency, plan=plan.currency)
        return ()
    p.reasons.pop(RULE, None)
    cfg = ctx.rules.budget
    proj = ctx.projection()
    projected = None if proj is None else proj[0]
    ctd = proj[1] if proj is not None else cycle_to_date(p, ctx.cycle_index, ctx.as_of)
    elapsed = ctx.as_of - c.start + 1
    want = cfg.projected and p.fired.get(PROJECTED) != c.start and projected is not None
    want = want and elapsed >= cfg.min_days_elapsed
    bound_kwh, days = (max(ctd, projected or 0.0), c.end - c.start) if want else (ctd, elapsed)
    if cost_upper_bound(tariffs, plan, bound_kwh, days) < float(b.amount):
        p.streaks.pop(PROJECTED, None)
        return ()
    f = cycle_figures(p, ctx.customer, tariffs, ctx.cycle_index, ctx.as_of, projected)
    if f is None:
        return ()
    money = money_of(f, b.amount)
    observed = Observed(
        cycle_to_date_kwh=round(ctd, 3),
        projected_cycle_kwh=None if projected is None else round(projected, 3),
        recent_daily_kwh=None if proj is None else round(proj[2], 3),
    )
    if money.to_date >= b.amount:
        p.streaks.pop(PROJECTED, None)
        return (_finding(ctx, REACHED, cfg, observed, money, b),)
    if not want or money.projected is None or money.projected < b.amount:
        p.streaks.pop(PROJECTED, None)
        return ()
    if not _persisted(p, cfg):
        return ()
    return (_finding(ctx, PROJECTED, cfg, observed, money, b),)


def _persisted(p: Profile, cfg: BudgetRule) -> bool:
    """Count the evaluations in a row the projection reached the budget; True at ``persistence_days``."""
    k = p.streaks.get(PROJECTED, 0) + 1
    if k < cfg.persistence_days:
        p.streaks[PROJECTED] = k
        return False
    p.streaks.pop(PROJECTED, None)
    return True


def _finding(
    ctx: RuleContext, rule: str, cfg: BudgetRule, observed: Observed, money: Money, b: Budget
) -> Finding:
    numbers: Numbers = {
        "budget": float(b.amount),
        "currency": b.currency,
        "to_date": float(money.to_date),
        "projected": None if money.projected is None else float(money.projected),
    }
    return Finding(
        rule, ctx.cycle, cfg.severity, cfg.customer_facing, observed, {}, numbers, money=money, solicited=True
    )
