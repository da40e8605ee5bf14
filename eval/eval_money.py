"""The money rules on real London households (called by ``eval_london.py --money``; docs/money.md).

On the households as they are (no surge injected), three backtests over the same table:

1. without money (the reference: what eval_london.py's figures are made of);
2. every household on the annual-tier example plan (``cn-js-residential``): the
   ``tier_crossing`` volume per 100 customer-cycles, whether the other rules still
   raise exactly the same alerts, and how many of their customer-facing alerts a tier
   warning earlier in the same cycle made manager-only (one customer-facing alert per
   cycle);
3. every household on the London plan (``uk-london-standard``) with a budget of 1.2x
   its median cycle cost (full calendar months): the solicited ``budget_projected`` /
   ``budget_reached`` per 100 customer-cycles, and the check that the unsolicited
   alerts (ids and customer-facing flags) are exactly those of run 1.

    python eval/eval_money.py --sample 0.05          # 5 % of the households (about a minute)
    python eval/eval_money.py --json money.json      # all households, figures also as JSON

The customer-facing alerts of the other rules differ under the tier plan by design:
``tier_crossing`` is moderated like the others (one unsolicited customer-facing alert
per customer and cycle), so a tier warning earlier in a cycle makes a later alert
manager-only, and a later sudden excursion at ``escalation_factor`` x the tier
warning's level is told as ``sudden_increase_escalation``. The figures count both.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "eval"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import pyarrow as pa  # noqa: E402

from baselines.plans import Tariffs  # noqa: E402
from baselines.rules import SOLICITED_RULES  # noqa: E402
from baselines.tariffs import NoPriceError, bill, default_catalogue  # noqa: E402
from meterwatch.cli.feed import run_table  # noqa: E402
from meterwatch.contracts import CustomerRecord  # noqa: E402

EPOCH = dt.date(1970, 1, 1)

TIER_PLAN, BUDGET_PLAN, BUDGET_FACTOR = "cn-js-residential", "uk-london-standard", 1.2


def median_cycle_costs(table: Any, plan_id: str) -> dict[str, float]:
    """Each household's median bill of a full billing cycle (a calendar month with every day known).

    >>> import pyarrow as pa
    >>> t = pa.table({"LCLid": ["h"] * 31, "day": list(range(16071, 16102)), "energy_sum": [10.0] * 31})
    >>> median_cycle_costs(t, "uk-london-standard")   # January 2014: 310 x 0.154 + 31 x 0.18
    {'h': 53.32}
    """
    plan = default_catalogue().plan(plan_id)
    ids = table.column("LCLid").cast(pa.string()).to_pylist()
    days = table.column("day").cast(pa.int32()).to_pylist()
    kwh = table.column("energy_sum").cast(pa.float64()).to_pylist()
    months: dict[tuple[str, int, int], dict[int, float]] = defaultdict(dict)
    for cid, d, v in zip(ids, days, kwh, strict=True):
        if v is not None and v == v:
            date = EPOCH + dt.timedelta(days=d)
            months[(cid, date.year, date.month)][date.day] = v
    costs: dict[str, list[float]] = defaultdict(list)
    for (cid, y, m), by_day in months.items():
        first = dt.date(y, m, 1)
        n = ((first + dt.timedelta(days=32)).replace(day=1) - first).days
        if len(by_day) == n:
            try:
                costs[cid].append(float(bill(plan, first, [by_day[i + 1] for i in range(n)]).total))
            except NoPriceError:
                continue
    return {cid: round(statistics.median(c), 2) for cid, c in costs.items()}


def _per100(n: int, cycles: int) -> float:
    return round(100.0 * n / max(1, cycles), 2)


def evaluate_money(table: Any, quiet: bool = True) -> dict[str, Any]:
    """The money rules on the households of ``table`` as they are (see the module docstring)."""
    t0 = time.perf_counter()
    ref = run_table(table)
    cc = ref.customer_cycles
    base = {(a.alert_id, a.customer_facing) for a in ref.alerts}
    tier = run_table(table, tariffs=Tariffs.default(dict.fromkeys(("residential",), TIER_PLAN)))
    crossings = [a for a in tier.alerts if a.rule == "tier_crossing"]
    others = [a for a in tier.alerts if a.rule != "tier_crossing"]
    ref_ids, other_ids = {a.alert_id for a in ref.alerts}, {a.alert_id for a in others}
    displaced = {a.alert_id for a in ref.alerts if a.customer_facing} - {
        a.alert_id for a in others if a.customer_facing
    }
    budgets = median_cycle_costs(table, BUDGET_PLAN)
    amount = {cid: round(BUDGET_FACTOR * c, 2) for cid, c in budgets.items()}
    customers = {
        cid: CustomerRecord(customer_id=cid, tariff_plan=BUDGET_PLAN, budget={"amount": b, "currency": "GBP"})
        for cid, b in amount.items()
    }
    bud = run_table(table, customers=customers, tariffs=Tariffs.default())
    solicited = [a for a in bud.alerts if a.solicited]
    unsolicited = {(a.alert_id, a.customer_facing) for a in bud.alerts if not a.solicited}
    out: dict[str, Any] = {
        "households": ref.customers,
        "customer_cycles": cc,
        "tier_plan": TIER_PLAN,
        "tier_crossing": len(crossings),
        "tier_crossing_per_100_cycles": _per100(len(crossings), cc),
        "tier_crossing_customer_facing": sum(a.customer_facing for a in crossings),
        "tier_households": len({a.customer_id for a in crossings}),
        "tier_other_alerts_same_ids": other_ids == ref_ids,
        "tier_other_alerts_only_without": len(ref_ids - other_ids),
        "tier_other_alerts_only_with": sorted({a.rule for a in others if a.alert_id not in ref_ids}),
        "tier_other_alerts_only_with_count": len(other_ids - ref_ids),
        "tier_displaced_customer_facing": len(displaced),
        "unsolicited_customer_facing_per_100_cycles": _per100(len({x for x in base if x[1]}), cc),
        "with_tier_unsolicited_customer_facing_per_100_cycles": _per100(
            sum(a.customer_facing for a in tier.alerts), cc
        ),
        "budget_plan": BUDGET_PLAN,
        "budget_households": len(amount),
        "budget_customer_cycles": bud.customer_cycles,
        "budget": {r: sum(a.rule == r for a in solicited) for r in SOLICITED_RULES},
        "budget_per_100_cycles": {
            r: _per100(sum(a.rule == r for a in solicited), bud.customer_cycles) for r in SOLICITED_RULES
        },
        "budget_households_alerted": len({a.customer_id for a in solicited}),
        "budget_unsolicited_unchanged": unsolicited == base,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if not quiet:
        print(money_markdown(out))
    return out


def money_markdown(out: dict[str, Any]) -> str:
    b, bp = out["budget"], out["budget_per_100_cycles"]
    return "\n".join(
        [
            f"money rules on {out['households']} households as they are, {out['customer_cycles']} "
            f"customer-cycles, {out['seconds']} s",
            "",
            "| figure | value |",
            "|---|---|",
            f"| tier_crossing ({out['tier_plan']} for every household) per 100 customer-cycles | "
            f"{out['tier_crossing_per_100_cycles']:.2f} ({out['tier_crossing']} alerts, "
            f"{out['tier_crossing_customer_facing']} customer-facing, {out['tier_households']} households) |",
            "| the other rules' alerts under the plan: only without money / only with the plan (rules) | "
            f"{out['tier_other_alerts_only_without']} / {out['tier_other_alerts_only_with_count']} "
            f"({', '.join(out['tier_other_alerts_only_with']) or '-'}) |",
            f"| customer-facing alerts of the other rules made manager-only by a tier warning earlier in the "
            f"cycle | {out['tier_displaced_customer_facing']} |",
            f"| unsolicited customer-facing per 100 customer-cycles: without money / with the tier plan | "
            f"{out['unsolicited_customer_facing_per_100_cycles']:.2f} / "
            f"{out['with_tier_unsolicited_customer_facing_per_100_cycles']:.2f} |",
            f"| budget alerts, budget 1.2x median cycle cost ({out['budget_plan']}, "
            f"{out['budget_households']} households): budget_projected / budget_reached per 100 "
            "customer-cycles | "
            f"{bp['budget_projected']:.2f} / {bp['budget_reached']:.2f} ({b['budget_projected']} / "
            f"{b['budget_reached']}; {out['budget_households_alerted']} households) |",
            f"| unsolicited alerts with budgets = without money (ids and customer-facing) | "
            f"{out['budget_unsolicited_unchanged']} |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    from eval.eval_london import load  # eval/eval_london.py, beside this script (the same households)

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=float, default=1.0, help="share of households to use (1 = all)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the household sample")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    a = ap.parse_args(argv)
    out = evaluate_money(load(a.sample, a.seed), quiet=False)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
