"""Benchmark: the bill maths per call (µs), against the engine's own per-reading step, same run.

Usage:

    python bench/bench_tariffs.py [--rounds 5] [--seconds 0.2]

What it measures (median of ``--rounds`` rounds, each timing every case for
about ``--seconds``), for a customer in the middle of a 31-day cycle (15 days
so far, 24 closed cycles of history, last year's same-period cycle known):

* reference: ``Engine.process_inplace`` of one daily reading for a customer
  with two years of daily history (what the backtest and a daily-data worker
  pay per customer-day; interval data costs the engine 48 such steps a day);
* each public bill function, on the Jiangsu annual-tier plan, the Zhejiang
  peak/valley plan (15 measured days) and the UK flat + standing charge plan;
* ``bill_figures``: every figure of one customer-day; "daily" is what phase 2
  would call per customer per day, with what stays the same for a whole cycle
  (the tariff year's kWh before the cycle, last year's same-period bills from
  ``same_period_figures``) computed once per cycle and passed in; "everything"
  recomputes those too (the first day of a cycle);
* ``money_from_figures`` and ``format_amount`` (per alert or text, not per day).

Prints µs per call and the ratio to the reference. The machine is shared and
noisy: compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baselines.customer import CustomerConfig  # noqa: E402
from baselines.engine import Engine  # noqa: E402
from baselines.profile import Profile  # noqa: E402
from baselines.readings import Reading  # noqa: E402
from baselines.tariffs import (  # noqa: E402
    bill_figures,
    cost_to_date,
    default_catalogue,
    format_amount,
    money_from_figures,
    next_tier,
    projected_cycle_cost,
    same_period_cost_at_today_prices,
    same_period_cost_then,
    same_period_figures,
    tier_crossing_in_cycle,
    tier_kwh_before,
    tier_status,
)


def _daily(i: int) -> float:
    return round(8.0 + 3.0 * math.sin(i / 7.0) + 2.0 * math.sin(i / 58.0), 3)


def reference_case() -> Callable[[], object]:
    """One daily reading through the engine, continuing a two-year history."""
    eng, cust = Engine(), CustomerConfig("c1", read_day=1)
    p = Profile.new("c1")
    start = dt.date(2022, 1, 1)
    for i in range(730):
        eng.process_inplace(p, Reading.daily(start + dt.timedelta(days=i), _daily(i)), cust)
    state = {"i": 730}

    def step() -> object:
        i = state["i"]
        state["i"] = i + 1
        return eng.process_inplace(p, Reading.daily(start + dt.timedelta(days=i), _daily(i)), cust)

    return step


def cases() -> dict[str, Callable[[], object]]:
    cat = default_catalogue()
    js, zj, uk = (
        cat.plan("cn-js-residential"),
        cat.plan("cn-zj-residential-tou"),
        cat.plan("uk-london-standard"),
    )
    s, e = dt.date(2024, 7, 1), dt.date(2024, 8, 1)
    so_far = [_daily(i) for i in range(15)]
    measured = [{"peak": round(0.6 * x, 3), "valley": round(0.4 * x, 3)} for x in so_far]
    closed = []
    c = dt.date(2022, 7, 1)
    for i in range(24):
        nxt = dt.date(c.year + (c.month == 12), c.month % 12 + 1, 1)
        closed.append((c, nxt, 250.0 + 10 * (i % 7)))
        c = nxt
    sp = (dt.date(2023, 7, 1), dt.date(2023, 8, 1), 262.0)
    before = tier_kwh_before(js, s, closed)
    sp_bills = same_period_figures(js, sp, dt.date(2024, 7, 15), closed)
    fig = bill_figures(
        js,
        cycle_start=s,
        cycle_end=e,
        days_so_far=so_far,
        projected_kwh=280.0,
        closed_cycles=closed,
        same_period=sp,
    )
    uk_s, _uk_e = dt.date(2013, 11, 15), dt.date(2013, 12, 15)
    return {
        "cost_to_date (js, 15 days)": lambda: cost_to_date(js, s, so_far, tier_kwh_before=before),
        "cost_to_date (zj, 15 measured TOU days)": lambda: cost_to_date(
            zj, s, measured, tier_kwh_before=before
        ),
        "cost_to_date (uk, across a price change)": lambda: cost_to_date(uk, uk_s, so_far + so_far),
        "projected_cycle_cost (js)": lambda: projected_cycle_cost(
            js, s, e, so_far, 280.0, tier_kwh_before=before
        ),
        "same_period_cost_then (js)": lambda: same_period_cost_then(js, sp[0], sp[1], sp[2]),
        "same_period_cost_at_today_prices (js)": lambda: same_period_cost_at_today_prices(
            js, sp[0], sp[1], sp[2], dt.date(2024, 7, 15)
        ),
        "tier_kwh_before (24 closed cycles)": lambda: tier_kwh_before(js, s, closed),
        "tier_status (js)": lambda: tier_status(js, dt.date(2024, 7, 15), 1900.0),
        "next_tier (js)": lambda: next_tier(js, dt.date(2024, 7, 15), 1900.0, 9.0),
        "tier_crossing_in_cycle (js)": lambda: tier_crossing_in_cycle(
            js, s, e, so_far, 280.0, tier_kwh_before=before
        ),
        "bill_figures (js, everything)": lambda: bill_figures(
            js,
            cycle_start=s,
            cycle_end=e,
            days_so_far=so_far,
            projected_kwh=280.0,
            closed_cycles=closed,
            same_period=sp,
        ),
        "bill_figures (js, daily: cycle constants passed in)": lambda: bill_figures(
            js,
            cycle_start=s,
            cycle_end=e,
            days_so_far=so_far,
            projected_kwh=280.0,
            tier_kwh_before_cycle=before,
            same_period_bills=sp_bills,
        ),
        "same_period_figures (js, once per cycle)": lambda: same_period_figures(
            js, sp, dt.date(2024, 7, 15), closed
        ),
        "money_from_figures": lambda: money_from_figures(fig),
        "format_amount (zh-CN, CNY)": lambda: format_amount(fig.to_date.total, "CNY", "zh-CN"),
    }


def time_per_call(fn: Callable[[], object], seconds: float) -> float:
    """µs per call over about ``seconds`` (batches of calls, so timer overhead is negligible)."""
    n, total = 0, 0.0
    batch = 50
    while total < seconds:
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        total += time.perf_counter() - t0
        n += batch
    return total / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.2)
    args = ap.parse_args()
    ref = reference_case()
    todo = cases()
    results: dict[str, list[float]] = {"reference: Engine.process_inplace (1 daily reading)": []}
    for name in todo:
        results[name] = []
    for _ in range(args.rounds):
        results["reference: Engine.process_inplace (1 daily reading)"].append(
            time_per_call(ref, args.seconds)
        )
        for name, fn in todo.items():
            results[name].append(time_per_call(fn, args.seconds))
    ref_us = statistics.median(results["reference: Engine.process_inplace (1 daily reading)"])
    width = max(len(k) for k in results)
    print(f"{'case':<{width}}  {'µs/call':>9}  {'x reference':>11}")
    for name, xs in results.items():
        us = statistics.median(xs)
        print(f"{name:<{width}}  {us:9.1f}  {us / ref_us:11.2f}")


if __name__ == "__main__":
    main()
