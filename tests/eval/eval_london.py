"""Evaluation of the alert rules on real London households with injected surges.

    python tests/eval/eval_london.py                 # all 3,500 households (a few minutes)
    python tests/eval/eval_london.py --sample 0.1    # a 10 % sample of households

Method: take ../shared/data/lcl_london_daily, choose a random ``--share`` (5 %)
of the households with a fixed ``--seed``; in each, from a day in the middle of
a billing cycle (day 8-22 of a calendar month; read day 1, Europe/London) with
at least 60 days of history before it, multiply the daily kWh by a multiplier
(x1.5, x2, x3, x4, x6, assigned in turn) for 7-60 days. Run the backtest (the
same engine as the stream) over all households and report, per rule:

* recall per multiplier: share of injected households with an alert of that rule
  within 7 days of the onset (and, in brackets, at any time during the surge);
* the median days from onset to alert (0 = the onset day itself);
* alerts per 100 customer-cycles on the untouched households (false-alert rate;
  the data are real and unlabelled, so some of these are real events).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from baselines.backtest import run_table  # noqa: E402
from baselines.rules import RULES, RulesConfig  # noqa: E402

MULTIPLIERS = (1.5, 2.0, 3.0, 4.0, 6.0)
SAME_PERIOD_RULES = ("same_period_reached", "projected_over_same_period")
EPOCH = dt.date(1970, 1, 1)


def shared_data() -> Path:
    env = os.environ.get("MW_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def load(sample: float, seed: int) -> Any:
    t = pq.read_table(shared_data() / "lcl_london_daily" / "lcl_daily_kwh.parquet")
    if sample < 1.0:
        ids = sorted(set(t.column("LCLid").combine_chunks().dictionary.to_pylist()))
        rng = np.random.default_rng(seed + 1)
        keep = sorted(rng.choice(ids, size=max(1, int(len(ids) * sample)), replace=False).tolist())
        t = t.filter(pc.is_in(t.column("LCLid").cast(pa.string()), value_set=pa.array(keep)))
    return t


def inject(table: Any, share: float, seed: int) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Multiply a surge into a random share of households; return the new table and the truth."""
    rng = np.random.default_rng(seed)
    ids_col = table.column("LCLid").cast(pa.string()).to_numpy(zero_copy_only=False)
    days = table.column("day").cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
    kwh = table.column("energy_sum").cast(pa.float64()).to_numpy(zero_copy_only=False).copy()
    ids = sorted(set(ids_col.tolist()))
    chosen = sorted(rng.choice(ids, size=max(1, round(len(ids) * share)), replace=False).tolist())
    truth: dict[str, dict[str, Any]] = {}
    order = np.argsort(ids_col, kind="stable")
    sorted_ids = ids_col[order]
    for k, cid in enumerate(chosen):
        lo = np.searchsorted(sorted_ids, cid, side="left")
        hi = np.searchsorted(sorted_ids, cid, side="right")
        rows = order[lo:hi]
        d = days[rows]
        first, last = int(d.min()), int(d.max())
        # candidate onsets: mid-cycle days with >= 60 days before and >= 7 days after, in a live
        # household (median of the 28 days before >= 0.5 kWh: x6 of an empty flat is still nothing)
        by_day = dict(zip(d.tolist(), kwh[rows].tolist(), strict=True))
        cands = []
        for x in range(first + 60, last - 7):
            if not 8 <= (EPOCH + dt.timedelta(days=x)).day <= 22:
                continue
            before = [by_day[y] for y in range(x - 28, x) if y in by_day]
            if len(before) >= 20 and float(np.median(before)) >= 0.5:
                cands.append(x)
        if not cands:
            continue
        onset = int(rng.choice(cands))
        mult = MULTIPLIERS[k % len(MULTIPLIERS)]
        dur = int(rng.integers(7, 61))
        sel = rows[(d >= onset) & (d < onset + dur)]
        kwh[sel] *= mult
        # same-period rules can only judge with a same-period cycle a year before
        truth[cid] = {"onset": onset, "mult": mult, "dur": dur, "has_year": onset - first >= 400}
    new = table.set_column(
        table.column_names.index("energy_sum"), "energy_sum", pa.array(kwh, type=pa.float64())
    )
    return new, truth


def evaluate(
    sample: float, share: float, seed: int, rules: RulesConfig | None, quiet: bool
) -> dict[str, Any]:
    t0 = time.perf_counter()
    table = load(sample, seed)
    table, truth = inject(table, share, seed)
    res = run_table(table, rules=rules)
    elapsed = time.perf_counter() - t0
    by_cust: dict[str, list[tuple[str, int, bool]]] = defaultdict(list)
    for a in res.alerts:
        day = (a.triggered_by.date() - dt.timedelta(days=1) - EPOCH).days
        by_cust[a.customer_id].append((a.rule, day, a.customer_facing))
    untouched = [c for c in res.cycles_by_customer if c not in truth]
    cc_untouched = sum(res.cycles_by_customer[c] for c in untouched)
    out: dict[str, Any] = {
        "seed": seed,
        "share": share,
        "sample": sample,
        "households": res.customers,
        "injected": len(truth),
        "untouched_customer_cycles": cc_untouched,
        "rows": res.rows,
        "seconds": round(elapsed, 1),
        "rules": {},
    }
    untouched_set = set(untouched)
    for rule in (*RULES, "customer_facing"):
        rec7: dict[float, list[bool]] = defaultdict(list)
        rec_any: dict[float, list[bool]] = defaultdict(list)
        delays: dict[float, list[int]] = defaultdict(list)
        for cid, tr in truth.items():
            if rule in SAME_PERIOD_RULES and not tr["has_year"]:
                continue
            hits = [
                day - tr["onset"]
                for r, day, cf in by_cust.get(cid, [])
                if (r == rule or (rule == "customer_facing" and cf))
                and tr["onset"] <= day < tr["onset"] + tr["dur"]
            ]
            first = min(hits) if hits else None
            rec7[tr["mult"]].append(first is not None and first <= 7)
            rec_any[tr["mult"]].append(first is not None)
            if first is not None:
                delays[tr["mult"]].append(first)
        false = sum(
            1
            for cid in untouched_set
            for r, _, cf in by_cust.get(cid, [])
            if r == rule or (rule == "customer_facing" and cf)
        )
        out["rules"][rule] = {
            "recall_7d": {m: _share(rec7[m]) for m in MULTIPLIERS},
            "recall_any": {m: _share(rec_any[m]) for m in MULTIPLIERS},
            "n": {m: len(rec7[m]) for m in MULTIPLIERS},
            "median_delay_days": {
                m: (statistics.median(delays[m]) if delays[m] else None) for m in MULTIPLIERS
            },
            "false_per_100_cycles": round(100.0 * false / max(1, cc_untouched), 2),
        }
    if not quiet:
        print(markdown(out))
    return out


def _share(xs: list[bool]) -> float | None:
    return round(100.0 * sum(xs) / len(xs), 1) if xs else None


def markdown(out: dict[str, Any]) -> str:
    ms = [f"x{m:g}" for m in MULTIPLIERS]
    lines = [
        f"seed {out['seed']}, {out['households']} households ({out['injected']} with a surge), "
        f"{out['untouched_customer_cycles']} untouched customer-cycles, {out['rows']:,} rows, "
        f"{out['seconds']} s",
        "",
        "Recall within 7 days of onset (in brackets: at any time during the surge), median days from",
        "onset to alert, and alerts per 100 customer-cycles on the untouched households:",
        "",
        "| rule | " + " | ".join(ms) + " | median days " + "/".join(ms) + " | alerts/100 untouched cycles |",
        "|---|" + "---|" * len(ms) + "---|---|",
    ]
    for rule, r in out["rules"].items():
        cells = [
            "-" if r["recall_7d"][m] is None else f"{r['recall_7d'][m]:.0f}% ({r['recall_any'][m]:.0f}%)"
            for m in MULTIPLIERS
        ]
        dl = " / ".join(
            "-" if r["median_delay_days"][m] is None else f"{r['median_delay_days'][m]:g}"
            for m in MULTIPLIERS
        )
        lines.append(f"| {rule} | " + " | ".join(cells) + f" | {dl} | {r['false_per_100_cycles']:.2f} |")
    lines.append("")
    for rule in ("sudden_increase", "projected_over_same_period"):
        n = out["rules"][rule]["n"]
        lines.append(
            f"households per multiplier ({rule}): " + ", ".join(f"x{m:g}: {n[m]}" for m in MULTIPLIERS)
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--share", type=float, default=0.05, help="share of households with an injected surge")
    ap.add_argument("--sample", type=float, default=1.0, help="share of households to use (1 = all)")
    ap.add_argument("--rules", type=Path, help="RulesConfig JSON")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    a = ap.parse_args(argv)
    rules = RulesConfig.model_validate_json(a.rules.read_bytes()) if a.rules else None
    out = evaluate(a.sample, a.share, a.seed, rules, quiet=False)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
