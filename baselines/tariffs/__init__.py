"""Money: tariff plans, bill maths and currency formatting (pure domain; docs/money.md).

Modules: :mod:`~baselines.tariffs.catalogue` (the versioned plan file),
:mod:`~baselines.tariffs.bill` (the cost of days of consumption, line by line),
:mod:`~baselines.tariffs.cycle` (cost to date, projection, same period),
:mod:`~baselines.tariffs.tiers` (tier now, next tier, crossing),
:mod:`~baselines.tariffs.figures` (all figures in one call; the alert's Money),
:mod:`~baselines.tariffs.tou` (interval readings to TOU periods),
:mod:`~baselines.tariffs.fmt` (Babel formatting).

>>> import datetime as dt
>>> plan = default_catalogue().plan("cn-js-residential")
>>> format_amount(cost_to_date(plan, dt.date(2024, 7, 1), [10.0] * 10).total, plan.currency, "zh-CN")
'52.83元'
"""

from baselines.tariffs.bill import Bill, BillLine, Day, DayUse, PartMeasured, bill
from baselines.tariffs.catalogue import (
    Catalogue,
    Plan,
    PriceVersion,
    UnknownPlanError,
    catalogue_or_default,
    default_catalogue,
    load_catalogue,
)
from baselines.tariffs.compiled import NoPriceError
from baselines.tariffs.cycle import (
    Cycle,
    cost_to_date,
    kwh_between,
    projected_cycle_cost,
    same_period_cost_at_today_prices,
    same_period_cost_then,
    tariff_year_kwh,
    tier_kwh_before,
)
from baselines.tariffs.figures import BillFigures, bill_figures, money_from_figures, same_period_figures
from baselines.tariffs.fmt import format_amount, money_clause
from baselines.tariffs.tiers import (
    NextTier,
    TierCrossing,
    TierStatus,
    next_tier,
    tier_crossing_in_cycle,
    tier_status,
)
from baselines.tariffs.tou import day_uses, split_intervals

__all__ = [
    "Bill",
    "BillFigures",
    "BillLine",
    "Catalogue",
    "Cycle",
    "Day",
    "DayUse",
    "NextTier",
    "NoPriceError",
    "PartMeasured",
    "Plan",
    "PriceVersion",
    "TierCrossing",
    "TierStatus",
    "UnknownPlanError",
    "bill",
    "bill_figures",
    "catalogue_or_default",
    "cost_to_date",
    "day_uses",
    "default_catalogue",
    "format_amount",
    "kwh_between",
    "load_catalogue",
    "money_clause",
    "money_from_figures",
    "next_tier",
    "projected_cycle_cost",
    "same_period_cost_at_today_prices",
    "same_period_cost_then",
    "same_period_figures",
    "split_intervals",
    "tariff_year_kwh",
    "tier_crossing_in_cycle",
    "tier_kwh_before",
    "tier_status",
]
