"""Evaluation of the alert rules on real London households with injected surges.

    python eval/eval_london.py                 # all 3,500 households (a few minutes)
    python eval/eval_london.py --sample 0.1    # a 10 % sample of households
    python eval/eval_london.py --money         # also the money rules on the untouched households

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
  the data are real and unlabelled, so some of these are real events);
* the weather-confounded set (``eval/weather_sets.py``, from the temperatures of ``--weather``
  or the shared London file): surges with their onset in a cold snap, and the untouched
  electric-heating homes; ``--onset cold`` places every onset in a cold snap.

``--money`` (docs/money.md) adds, on the households as they are (no surge injected):
``tier_crossing`` per 100 customer-cycles under the annual-tier example plan
(``cn-js-residential``) applied to every household, and the other rules' alerts under
it (same ids; how many customer-facing ones the tier warning displaced); and the
budget alerts (solicited) per 100 customer-cycles with a budget of 1.2x each
household's median cycle cost under the London plan (``uk-london-standard``), with
the check that the unsolicited alerts are exactly those of the run without money.
``--tariff-plan ID`` runs the surge evaluation itself with every household on a plan.
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

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "eval"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from baselines.plans import Tariffs  # noqa: E402
from baselines.rules import RULES, RulesConfig  # noqa: E402
from baselines.weather import Temperatures  # noqa: E402
from eval import manager_digest, weather_sets  # noqa: E402  (eval/*.py, beside this script)
from meterwatch.cli.feed import run_table  # noqa: E402
from meterwatch.cli.weather_file import read_weather  # noqa: E402

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


ONSETS = ("habit", "any", "cold")
HABIT_WEEK_SHARE = 0.5  # the week before the onset >= this share of the 8-week median


def habit_onset(before: list[float], week_before: list[float]) -> bool:
    """Is the household living its usual habit at the onset (pre-onset data only)?

    ``before``: the known days of the 8 weeks before the onset; ``week_before``: those of the
    last 7 days before it. A surge is measured against the habit at the onset, so an onset
    inside an absence (the week before far below the household's 8-week median) is not a
    surge of the named size: x3 of a holiday week is a return from holiday.

    >>> habit_onset([10.0] * 56, [9.0] * 7), habit_onset([10.0] * 56, [3.0] * 7)
    (True, False)
    """
    if len(week_before) < 5 or len(before) < 40:
        return False
    return float(np.median(week_before)) >= HABIT_WEEK_SHARE * float(np.median(before))


def inject(
    table: Any, share: float, seed: int, onset: str = "habit", cold: set[int] | None = None
) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Multiply a surge into a random share of households; return the new table and the truth.

    ``onset="habit"`` (default) also requires that the household lives its usual habit at the
    onset (``habit_onset``); ``onset="any"`` is the earlier definition (live household only);
    ``onset="cold"``: as habit, and the onset starts a cold-snap week (epoch days ``cold``).
    """
    if onset not in ONSETS:
        raise ValueError(f"onset must be one of {ONSETS}, not {onset!r}")
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
            if len(before) < 20 or float(np.median(before)) < 0.5:
                continue
            if onset == "cold" and x not in (cold or ()):
                continue
            if onset != "any":
                weeks8 = [by_day[y] for y in range(x - 56, x) if y in by_day]
                week = [by_day[y] for y in range(x - 7, x) if y in by_day]
                if not habit_onset(weeks8, week):
                    continue
            cands.append(x)
        if not cands:
            continue
        x0 = int(rng.choice(cands))
        mult = MULTIPLIERS[k % len(MULTIPLIERS)]
        dur = int(rng.integers(7, 61))
        sel = rows[(d >= x0) & (d < x0 + dur)]
        kwh[sel] *= mult
        pre8 = [by_day[y] for y in range(x0 - 56, x0) if y in by_day]
        pre1 = [by_day[y] for y in range(x0 - 7, x0) if y in by_day]
        week_share = (
            round(float(np.median(pre1)) / float(np.median(pre8)), 3)
            if pre1 and pre8 and float(np.median(pre8)) > 0
            else None
        )
        # the level the injected series reached in its first week, against the household's habit:
        # multiplying real days also multiplies the quiet days that follow an onset (a household
        # that goes away the day after shows "x3" of almost nothing); for reporting only, never
        # for choosing onsets
        post = [by_day[y] * mult for y in range(x0, x0 + 7) if y in by_day]
        realised = (
            round(float(np.median(post)) / float(np.median(pre8)), 3)
            if len(post) >= 4 and pre8 and float(np.median(pre8)) > 0
            else None  # fewer than 4 days of data in the surge's first week
        )
        truth[cid] = {
            "onset": x0,
            "mult": mult,
            "dur": dur,
            "has_year": x0 - first >= 400,  # same-period rules need a cycle a year before
            "week_share": week_share,
            "realised": realised,
        }
    new = table.set_column(
        table.column_names.index("energy_sum"), "energy_sum", pa.array(kwh, type=pa.float64())
    )
    return new, truth


def evaluate(
    sample: float,
    share: float,
    seed: int,
    rules: RulesConfig | None,
    quiet: bool,
    onset: str = "habit",
) -> dict[str, Any]:
    """One seed's evaluation (``evaluate_seeds`` pools several)."""
    return evaluate_seeds(sample, share, [seed], rules, quiet, onset)


def _cycle_key(day: int) -> tuple[int, int]:
    """The billing cycle of an epoch day (read day 1, monthly: the calendar month)."""
    d = EPOCH + dt.timedelta(days=day)
    return d.year, d.month


FELL_BELOW = 2.0  # a surge whose injected first week stayed below 2x the habit "fell"
MISS_CLASSES = ("no_data", "fell", "already", "detector")


def evaluate_seeds(
    sample: float,
    share: float,
    seeds: list[int],
    rules: RulesConfig | None,
    quiet: bool,
    onset: str = "habit",
    tariffs: Tariffs | None = None,
    region: str | None = None,
    per_manager: int = 1500,
    weather: Temperatures | None = None,
    slice_temps: dict[int, float] | None = None,
) -> dict[str, Any]:
    """Inject, backtest and score for each seed; the figures pool all seeds' households
    (``region``: every household's public-holiday calendar, ``baselines.special_days``;
    ``weather``: daily temperatures, ``baselines.weather``; None: no weather).

    Also the manager items per 100 customer-cycles before and after the daily digest, for each
    policy of ``manager_digest.SCREEN`` (one manager per ``per_manager`` customers).

    Besides the recall per rule, each customer-facing miss of a surge is put in one class:
    ``no_data`` (fewer than 4 days of readings in the surge's first week), ``fell`` (the
    injected series stayed below 2x the household's habit in its first week: its own use fell
    after the onset), ``already`` (the customer already had a customer-facing alert earlier in
    the onset's billing cycle, so moderation allows only an escalation), or ``detector`` (the
    rules missed a surge that was there to see). ``slice_temps`` (epoch day -> mean C): the
    weather-confounded slices of ``weather_sets`` (and the cold snaps of ``onset="cold"``).
    """
    t0 = time.perf_counter()
    rule_names = (*RULES, "customer_facing")
    hits7: dict[str, dict[float, int]] = {r: defaultdict(int) for r in rule_names}
    hits_any: dict[str, dict[float, int]] = {r: defaultdict(int) for r in rule_names}
    n: dict[str, dict[float, int]] = {r: defaultdict(int) for r in rule_names}
    delays: dict[str, dict[float, list[int]]] = {r: defaultdict(list) for r in rule_names}
    false: dict[str, int] = defaultdict(int)
    classes: dict[str, dict[float, int]] = {c: defaultdict(int) for c in MISS_CLASSES}
    misses: list[dict[str, Any]] = []
    cc_untouched = cc_all = households = injected = rows = 0
    digest: dict[str, dict[str, int]] = {}
    sets = weather_sets.WeatherSets(slice_temps, MULTIPLIERS) if slice_temps else None
    for seed in seeds:
        raw = load(sample, seed)
        table, truth = inject(raw, share, seed, onset, sets.cold if sets else None)
        res = run_table(table, rules=rules, tariffs=tariffs, region=region, weather=weather)
        households += res.customers
        injected += len(truth)
        rows += res.rows
        cc_all += sum(res.cycles_by_customer.values())
        for size, suffix in ((per_manager, ""), (manager_digest.SMALL_MANAGER, manager_digest.SMALL_SUFFIX)):
            managers = manager_digest.assign_managers(res.cycles_by_customer, size)
            for name, policy in manager_digest.SCREEN:
                tally = manager_digest.tally(res.alerts, managers, policy)
                manager_digest.add(digest.setdefault(name + suffix, {}), tally)
        by_cust: dict[str, list[tuple[str, int, bool]]] = defaultdict(list)
        for a in res.alerts:
            day = (a.triggered_by.date() - dt.timedelta(days=1) - EPOCH).days
            by_cust[a.customer_id].append((a.rule, day, a.customer_facing and not a.solicited))
        if sets is not None:
            sets.add(raw, truth, by_cust, res.cycles_by_customer)
        untouched = [c for c in res.cycles_by_customer if c not in truth]
        cc_untouched += sum(res.cycles_by_customer[c] for c in untouched)
        for rule in rule_names:
            false[rule] += sum(
                1
                for cid in untouched
                for r, _, cf in by_cust.get(cid, [])
                if r == rule or (rule == "customer_facing" and cf)
            )
            for cid, tr in truth.items():
                if rule in SAME_PERIOD_RULES and not tr["has_year"]:
                    continue
                m = tr["mult"]
                hits = [
                    day - tr["onset"]
                    for r, day, cf in by_cust.get(cid, [])
                    if (r == rule or (rule == "customer_facing" and cf))
                    and tr["onset"] <= day < tr["onset"] + tr["dur"]
                ]
                first = min(hits) if hits else None
                n[rule][m] += 1
                hits7[rule][m] += first is not None and first <= 7
                hits_any[rule][m] += first is not None
                if first is not None:
                    delays[rule][m].append(first)
                if rule != "customer_facing" or (first is not None and first <= 7):
                    continue
                realised = tr.get("realised")
                onset_cycle = _cycle_key(tr["onset"])
                if realised is None:
                    cls = "no_data"
                elif realised < FELL_BELOW:
                    cls = "fell"
                elif any(
                    cf and d < tr["onset"] and _cycle_key(d) == onset_cycle
                    for _, d, cf in by_cust.get(cid, [])
                ):
                    cls = "already"
                else:
                    cls = "detector"
                classes[cls][m] += 1
                if m >= 3:
                    misses.append(
                        {
                            "customer_id": cid,
                            "seed": seed,
                            "class": cls,
                            **tr,
                            "onset_day": (EPOCH + dt.timedelta(days=tr["onset"])).isoformat(),
                            "first_alert_day": first,
                            "alerts_near": sorted(
                                (r, day - tr["onset"], cf)
                                for r, day, cf in by_cust.get(cid, [])
                                if tr["onset"] - 31 <= day < tr["onset"] + tr["dur"]
                            ),
                        }
                    )
    out: dict[str, Any] = {
        "seeds": list(seeds),
        "seed": seeds[0],
        "share": share,
        "onset": onset,
        "sample": sample,
        "households": households,
        "injected": injected,
        "untouched_customer_cycles": cc_untouched,
        "customer_cycles": cc_all,
        "customers_per_manager": per_manager,
        "manager_digest": digest,
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
        "rules": {},
    }
    for rule in rule_names:
        out["rules"][rule] = {
            "recall_7d": {m: _pct(hits7[rule][m], n[rule][m]) for m in MULTIPLIERS},
            "recall_any": {m: _pct(hits_any[rule][m], n[rule][m]) for m in MULTIPLIERS},
            "n": {m: n[rule][m] for m in MULTIPLIERS},
            "median_delay_days": {
                m: (statistics.median(delays[rule][m]) if delays[rule][m] else None) for m in MULTIPLIERS
            },
            "false_per_100_cycles": round(100.0 * false[rule] / max(1, cc_untouched), 2),
        }
    cf_n = n["customer_facing"]
    cf_hits = hits7["customer_facing"]
    out["customer_facing_misses"] = {
        "classes": {c: {m: classes[c][m] for m in MULTIPLIERS} for c in classes},
        "recall_7d_detectable": {
            m: _pct(cf_hits[m], cf_n[m] - classes["no_data"][m] - classes["fell"][m] - classes["already"][m])
            for m in MULTIPLIERS
        },
    }
    if sets is not None:
        out["weather_sets"] = sets.result()
    out["misses_x3_up"] = sorted(misses, key=lambda m: (m["mult"], m["class"], m["seed"], m["customer_id"]))
    if not quiet:
        print(markdown(out))
    return out


def _pct(k: int, total: int) -> float | None:
    """A share in percent, one decimal; None of nothing.

    >>> _pct(33, 35), _pct(0, 0)
    (94.3, None)
    """
    return round(100.0 * k / total, 1) if total else None


def markdown(out: dict[str, Any]) -> str:
    ms = [f"x{m:g}" for m in MULTIPLIERS]
    seeds = out.get("seeds", [out["seed"]])
    lines = [
        f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}, onset {out['onset']}, "
        f"share {out['share']:g}, {out['households']} household-runs ({out['injected']} with a surge), "
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
        nn = out["rules"][rule]["n"]
        lines.append(
            f"households per multiplier ({rule}): " + ", ".join(f"x{m:g}: {nn[m]}" for m in MULTIPLIERS)
        )
    cm = out.get("customer_facing_misses")
    if cm:
        cf = out["rules"]["customer_facing"]
        lines += [
            "",
            "Surges without a customer-facing alert within 7 days, by cause:",
            "",
            "| | " + " | ".join(ms) + " |",
            "|---|" + "---|" * len(ms),
            "| surges | " + " | ".join(str(cf["n"][m]) for m in MULTIPLIERS) + " |",
            "| no data: fewer than 4 days of readings in the surge's first week | "
            + " | ".join(str(cm["classes"]["no_data"][m]) for m in MULTIPLIERS)
            + " |",
            "| own use fell: the injected first week stayed below 2x the habit | "
            + " | ".join(str(cm["classes"]["fell"][m]) for m in MULTIPLIERS)
            + " |",
            "| customer already alerted earlier in that cycle (moderation) | "
            + " | ".join(str(cm["classes"]["already"][m]) for m in MULTIPLIERS)
            + " |",
            "| missed by the rules | "
            + " | ".join(str(cm["classes"]["detector"][m]) for m in MULTIPLIERS)
            + " |",
            "| recall within 7 days where the surge was there to see | "
            + " | ".join(
                "-" if cm["recall_7d_detectable"][m] is None else f"{cm['recall_7d_detectable'][m]:.0f}%"
                for m in MULTIPLIERS
            )
            + " |",
        ]
    if out.get("weather_sets"):
        lines += weather_sets.markdown(out["weather_sets"], MULTIPLIERS)
    if out.get("manager_digest"):
        lines += manager_digest.markdown(
            out["manager_digest"], out["customer_cycles"], out["customers_per_manager"]
        )
    misses = out.get("misses_x3_up", [])
    if misses:
        lines += ["", "x3 and above without a customer-facing alert within 7 days:"]
        for m in misses:
            near = ", ".join(f"{r}@{d:+d}{'*' if cf else ''}" for r, d, cf in m["alerts_near"]) or "-"
            lines.append(
                f"  [{m['class']}] {m['customer_id']} (seed {m['seed']}) x{m['mult']:g} "
                f"onset {m['onset_day']} "
                f"({m['dur']} d), week before {m['week_share']}x and first week {m['realised']}x the 8-week "
                f"median; alerts (day vs onset, * customer-facing): {near}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument(
        "--seeds",
        type=lambda v: [int(x) for x in v.split(",") if x.strip()],
        help="comma-separated seeds; their runs are pooled (overrides --seed)",
    )
    ap.add_argument("--share", type=float, default=0.05, help="share of households with an injected surge")
    ap.add_argument("--sample", type=float, default=1.0, help="share of households to use (1 = all)")
    ap.add_argument(
        "--onset",
        choices=ONSETS,
        default="habit",
        help="habit: onsets only where the household lives its usual habit (the week before >= half "
        "its 8-week median; pre-onset data only); any: the earlier definition (live household only); "
        "cold: as habit, in a cold snap (eval/weather_sets.py)",
    )
    ap.add_argument("--rules", type=Path, help="RulesConfig JSON")
    ap.add_argument(
        "--manager-customers",
        type=int,
        default=1500,
        help="customers per account manager for the manager digest figures (default 1500)",
    )
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--money", action="store_true", help="also the money rules (docs/money.md)")
    ap.add_argument(
        "--tariff-plan", metavar="ID", help="every household on this plan in the surge evaluation"
    )
    ap.add_argument("--region", help="every household's public-holiday calendar (e.g. GB-ENG); default: none")
    ap.add_argument(
        "--weather",
        type=Path,
        metavar="FILE",
        help="daily temperatures (region,day,temp_mean_c or the Dark Sky export, e.g. "
        "lcl_london_daily/weather_daily_darksky.csv of the shared data); default: no weather",
    )
    a = ap.parse_args(argv)
    weather = read_weather(a.weather) if a.weather else None
    # the weather-confounded slices use --weather, else the shared London file when there is one
    wfile = a.weather or shared_data() / "lcl_london_daily" / "weather_daily_darksky.csv"
    temps = (weather or read_weather(wfile)).series(None) if a.weather or wfile.exists() else None
    slice_temps = weather_sets.epoch_series(temps, EPOCH.toordinal()) or None
    if a.onset == "cold" and not slice_temps:
        ap.error("--onset cold needs temperatures (--weather FILE or the shared London weather file)")
    rules = RulesConfig.model_validate_json(a.rules.read_bytes()) if a.rules else None
    tariffs = Tariffs.default(dict.fromkeys(("residential",), a.tariff_plan)) if a.tariff_plan else None
    out = evaluate_seeds(
        a.sample,
        a.share,
        a.seeds or [a.seed],
        rules,
        quiet=False,
        onset=a.onset,
        tariffs=tariffs,
        region=a.region,
        per_manager=a.manager_customers,
        weather=weather,
        slice_temps=slice_temps,
    )
    if a.money:
        from eval.eval_money import evaluate_money  # eval/eval_money.py, beside this script

        out["money"] = evaluate_money(load(a.sample, (a.seeds or [a.seed])[0]), quiet=False)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
