"""Benchmarks of the domain engine and the backtest (prints figures; asserts nothing).

    python bench/bench_backtest.py            # interval stream + full London daily backtest
    python bench/bench_backtest.py --quick    # 100k readings, 10 % of the daily file
    python bench/bench_backtest.py --money 0.1   # only: the backtest without / with tariff plans

Figures are reported with a reference measured in the same run on the same
machine, because the machine is shared and absolute numbers drift:

* interval stream: real half-hourly London readings (lcl_london_halfhourly_2013;
  its naive ``tstp`` is taken as the UTC start of the half-hour) through
  ``Engine.process`` (copy per reading) and ``Engine.process_inplace``;
  reference = ``MeterReading.model_validate_json`` of the same messages (the
  parse the worker does for every message anyway).
* daily backtest: ``run_table`` over lcl_daily_kwh.parquet; reference = reading
  the same file with pyarrow and walking its rows as Python values.
* profile size: JSON bytes per customer after the run.
* ``--money SAMPLE``: ``run_table`` over a share of the daily file without a tariff
  plan (the reference) and with every household on the London plan (flat + standing
  charge) and on the annual-tier plan (``cn-js-residential``, which adds
  ``tier_crossing``), in interleaved rounds (``--rounds``, default 3; ``--plans`` to
  choose the plans; ``--chunk N``: the configurations take turns on every N households
  instead of the whole sample, so that load elsewhere hits them alike; one untimed turn
  of each on the first chunk first, so that one-time costs such as loading Babel's locale
  data do not count as throughput); the best round of each is reported, by CPU time
  of the process (``time.process_time``, the figure to read on a shared machine) and
  by wall clock.
* ``--tou N``: ``Engine.process_inplace`` of N real half-hourly readings for every
  household without a plan (the reference), on the Zhejiang peak/valley plan
  (``cn-zj-residential-tou``: priced from the measured periods) and on the
  Jiangsu annual-tier plan (the same tiers without time of use), alone and with
  one snapshot per customer-day (what the worker's read model adds); interleaved
  rounds, the best CPU time (``time.process_time``) of each; and the profile size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from baselines.customer import CustomerConfig  # noqa: E402
from baselines.engine import Engine  # noqa: E402
from baselines.plans import Tariffs  # noqa: E402
from baselines.profile import Profile  # noqa: E402
from baselines.readings import Reading  # noqa: E402
from meterwatch.cli.commands.backtest_cmds import default_jobs  # noqa: E402
from meterwatch.cli.feed import run_table  # noqa: E402
from meterwatch.cli.parallel import run_table_parallel  # noqa: E402
from meterwatch.contracts import MeterReading  # noqa: E402


def shared_data() -> Path:
    env = os.environ.get("MW_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def machine() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return (
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, "
        f"load average {load[0]:.1f} (shared machine)"
    )


def bench_interval(n: int) -> None:
    t = pq.read_table(shared_data() / "lcl_london_halfhourly_2013" / "lcl_hh_2013.parquet")
    t = t.slice(0, n)
    ids = t.column("LCLid").cast(pa.string()).to_pylist()
    ts = t.column("tstp").to_pylist()
    kwh = t.column("kwh").cast(pa.float64()).to_pylist()
    msgs = []
    for i, s, v in zip(ids, ts, kwh, strict=True):
        if v is None or v != v:
            continue
        stamp = s if isinstance(s, dt.datetime) else dt.datetime.fromisoformat(str(s))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.UTC)
        # tstp is the start of the half-hour; the contract's ts is the end
        end = stamp + dt.timedelta(minutes=30)
        msgs.append(json.dumps({"meter_id": i, "ts": end.isoformat(), "kwh": v}).encode())
    # reference: parse + validate every message
    t0 = time.perf_counter()
    parsed = [MeterReading.model_validate_json(m) for m in msgs]
    ref = time.perf_counter() - t0
    readings = [Reading.from_contract(r) for r in parsed]
    eng = Engine()
    custs = {c: CustomerConfig(c, timezone="Europe/London") for c in set(ids)}
    for mode in ("process", "process_inplace"):
        profiles = {c: Profile.new(c) for c in custs}
        alerts = 0
        t0 = time.perf_counter()
        if mode == "process":
            for r, cid in zip(readings, (m.meter_id for m in parsed), strict=True):
                res = eng.process(profiles[cid], r, custs[cid])
                profiles[cid] = res.profile
                alerts += len(res.alerts)
        else:
            for r, cid in zip(readings, (m.meter_id for m in parsed), strict=True):
                alerts += len(eng.process_inplace(profiles[cid], r, custs[cid]).alerts)
        el = time.perf_counter() - t0
        print(
            f"interval {mode:<16} {len(readings):>9,} readings {el:7.2f} s  {len(readings) / el:>10,.0f} /s  "
            f"= {el / ref:5.2f} x the parse+validate reference ({len(readings) / ref:,.0f} /s); "
            f"{alerts} alerts"
        )
    size = sum(len(json.dumps(p.to_dict(), separators=(",", ":"))) for p in profiles.values()) / len(profiles)
    print(f"interval profile size: {size:,.0f} bytes per customer (JSON, {len(profiles)} customers)")


def bench_daily(sample: float) -> None:
    path = shared_data() / "lcl_london_daily" / "lcl_daily_kwh.parquet"
    t0 = time.perf_counter()
    t = pq.read_table(path)
    if sample < 1.0:
        ids = sorted(set(t.column("LCLid").combine_chunks().dictionary.to_pylist()))
        keep = ids[: max(1, int(len(ids) * sample))]
        t = t.filter(pc.is_in(t.column("LCLid").cast(pa.string()), value_set=pa.array(keep)))
    n = 0
    for i, d, v in zip(
        t.column("LCLid").to_pylist(),
        t.column("day").to_pylist(),
        t.column("energy_sum").to_pylist(),
        strict=True,
    ):
        n += 1 if (i and d and v is not None) else 0
    ref = time.perf_counter() - t0
    t1, c1 = time.perf_counter(), time.process_time()
    res = run_table(t)
    el, cpu = time.perf_counter() - t1, time.process_time() - c1
    print(
        f"daily backtest {res.rows:>12,} rows {res.customers:,} customers {el:7.2f} s ({cpu:.2f} s CPU)  "
        f"{res.rows / el:>10,.0f} rows/s "
        f"= {el / ref:5.2f} x the read-and-walk reference ({ref:.2f} s); {len(res.alerts)} alerts"
    )
    jobs = default_jobs()
    t2 = time.perf_counter()
    par = run_table_parallel(t, jobs=jobs)
    el2 = time.perf_counter() - t2
    same = [a.to_json() for a in par.alerts] == [a.to_json() for a in res.alerts]
    print(
        f"daily backtest, {jobs} processes (meterwatch backtest's default) {el2:7.2f} s "
        f"= {el2 / ref:5.2f} x the reference; alerts the same as one process: {same}"
    )
    print(f"daily profile size: {res.profiles_bytes / max(1, res.customers):,.0f} bytes per customer (JSON)")


def _daily_table(sample: float) -> pa.Table:
    t = pq.read_table(shared_data() / "lcl_london_daily" / "lcl_daily_kwh.parquet")
    if sample < 1.0:
        ids = sorted(set(t.column("LCLid").combine_chunks().dictionary.to_pylist()))
        keep = ids[: max(1, int(len(ids) * sample))]
        t = t.filter(pc.is_in(t.column("LCLid").cast(pa.string()), value_set=pa.array(keep)))
    return t


def bench_money(sample: float, rounds: int, plans: list[str], chunk: int = 0) -> None:
    """The backtest's throughput without money (reference) and with a plan for every household.

    CPU time of this process (``time.process_time``: on a shared machine the wall clock
    swings with the other processes' load) and wall clock; best round of each. ``chunk``
    (households): the configurations take turns on each chunk of that many households,
    so that a burst of load elsewhere hits all of them alike; 0: whole sample per turn.
    """
    t = _daily_table(sample)
    configs: dict[str, Tariffs | None] = {"no plan (reference)": None}
    configs.update({plan: Tariffs.default({"residential": plan}) for plan in plans})
    ids = sorted(set(t.column("LCLid").cast(pa.string()).to_pylist()))
    step = chunk if chunk > 0 else len(ids)
    parts = [
        t.filter(pc.is_in(t.column("LCLid").cast(pa.string()), value_set=pa.array(ids[i : i + step])))
        for i in range(0, len(ids), step)
    ]
    best_cpu: dict[str, float] = {}
    best_wall: dict[str, float] = {}
    rows = 0
    for tariffs in configs.values():  # warm-up, untimed: one-time costs (Babel's CLDR data, first alerts)
        run_table(parts[0], tariffs=tariffs)
    for _ in range(rounds):
        cpu = dict.fromkeys(configs, 0.0)
        wall = dict.fromkeys(configs, 0.0)
        alerts = dict.fromkeys(configs, 0)
        rows = 0
        for part in parts:
            for name, tariffs in configs.items():
                c0, t0 = time.process_time(), time.perf_counter()
                res = run_table(part, tariffs=tariffs)
                cpu[name] += time.process_time() - c0
                wall[name] += time.perf_counter() - t0
                alerts[name] += len(res.alerts)
            rows += res.rows
        for name in configs:
            best_cpu[name] = min(best_cpu.get(name, cpu[name]), cpu[name])
            best_wall[name] = min(best_wall.get(name, wall[name]), wall[name])
            print(
                f"  {name:<26} cpu {cpu[name]:7.2f} s wall {wall[name]:7.2f} s {alerts[name]} alerts",
                flush=True,
            )
    ref_cpu, ref_wall = best_cpu["no plan (reference)"], best_wall["no plan (reference)"]
    for name, c in best_cpu.items():
        print(
            f"daily backtest {name:<26} {rows:,} rows cpu {c:6.2f} s {rows / c:>9,.0f} rows/s "
            f"= {ref_cpu / c:5.3f} x the throughput without a plan "
            f"(wall {ref_wall / best_wall[name]:5.3f} x; best of {rounds}"
            f"{f', turns per {chunk} households' if chunk else ''})"
        )
    print(machine())


def _hh_readings(n: int) -> tuple[list[str], list[Reading]]:
    t = pq.read_table(shared_data() / "lcl_london_halfhourly_2013" / "lcl_hh_2013.parquet").slice(0, n)
    ids, out = [], []
    for i, s, v in zip(
        t.column("LCLid").cast(pa.string()).to_pylist(),
        t.column("tstp").to_pylist(),
        t.column("kwh").cast(pa.float64()).to_pylist(),
        strict=True,
    ):
        if v is None or v != v:
            continue
        stamp = s if isinstance(s, dt.datetime) else dt.datetime.fromisoformat(str(s))
        end = (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)) + dt.timedelta(minutes=30)
        ids.append(i)
        out.append(Reading("interval", end.timestamp(), v, interval_s=1800))
    return ids, out


def _fold_tou(
    eng: Engine, plan: str | None, ids: list[str], rs: list[Reading], snapshots: bool
) -> tuple[float, dict[str, Profile]]:
    custs = {c: CustomerConfig(c, timezone="Europe/London", tariff_plan=plan) for c in set(ids)}
    profiles = {c: Profile.new(c) for c in custs}
    day = {c: -1 for c in custs}
    t0 = time.process_time()
    for cid, r in zip(ids, rs, strict=True):
        p = profiles[cid]
        eng.process_inplace(p, r, custs[cid])
        if snapshots and p.newest_day != day[cid]:  # the worker's read model: one snapshot a customer-day
            day[cid] = p.newest_day  # type: ignore[assignment]
            eng.snapshot(p, custs[cid], None, dt.datetime.fromtimestamp(r.ts, dt.UTC))
    return time.process_time() - t0, profiles


def bench_tou(n: int, rounds: int) -> None:
    """Half-hourly readings through the engine fold: no plan vs. a time-of-use plan (same run)."""
    ids, rs = _hh_readings(n)
    eng = Engine()
    plans = {"no plan (reference)": None, "cn-zj-residential-tou": "cn-zj-residential-tou"}
    plans["cn-js-residential"] = "cn-js-residential"
    for snapshots in (False, True):
        best: dict[str, float] = {}
        sizes: dict[str, tuple[float, float]] = {}
        for _ in range(rounds):
            for name, plan in plans.items():
                el, profiles = _fold_tou(eng, plan, ids, rs, snapshots)
                best[name] = min(best.get(name, el), el)
                dumps = [p.to_dict() for p in profiles.values()]
                size = sum(len(json.dumps(d, separators=(",", ":"))) for d in dumps) / len(dumps)
                tu = sum(len(json.dumps(d.get("tu", []), separators=(",", ":"))) for d in dumps if "tu" in d)
                sizes[name] = (size, tu / len(dumps))
        ref = best["no plan (reference)"]
        what = "fold + a snapshot per customer-day" if snapshots else "fold"
        for name, el in best.items():
            print(
                f"tou {what:<35} {name:<22} {len(rs):,} readings {len(rs) / el:>9,.0f} /s CPU "
                f"= {ref / el:5.3f} x the throughput without a plan (best of {rounds}); "
                f"profile {sizes[name][0]:,.0f} B/customer (tu {sizes[name][1]:,.0f} B)"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--readings", type=int, default=None, help="interval readings to use (default 400k)")
    ap.add_argument("--daily-only", action="store_true", help="only the daily backtest")
    ap.add_argument("--sample", type=float, default=None, help="share of the daily file's customers")
    ap.add_argument("--money", type=float, metavar="SAMPLE", help="only the money comparison on this share")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the money comparison")
    ap.add_argument(
        "--plans",
        default="uk-london-standard,cn-js-residential",
        help="comma-separated plan ids of the money comparison (every household on each in turn)",
    )
    ap.add_argument("--chunk", type=int, default=0, help="households per turn of the money comparison")
    ap.add_argument("--tou", type=int, metavar="N", help="only the time-of-use comparison on N readings")
    a = ap.parse_args(argv)
    print(machine())
    if a.tou:
        bench_tou(a.tou, a.rounds)
        return 0
    if a.money:
        bench_money(a.money, a.rounds, [x for x in a.plans.split(",") if x], a.chunk)
        return 0
    if not a.daily_only:
        bench_interval(a.readings or (100_000 if a.quick else 400_000))
    bench_daily(a.sample if a.sample is not None else (0.1 if a.quick else 1.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
