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
  ``tier_crossing``), in interleaved rounds; the best round of each is reported.
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


def bench_money(sample: float, rounds: int) -> None:
    """The backtest's throughput without money (reference) and with a plan for every household."""
    t = _daily_table(sample)
    configs: dict[str, Tariffs | None] = {
        "no plan (reference)": None,
        "uk-london-standard": Tariffs.default({"residential": "uk-london-standard"}),
        "cn-js-residential": Tariffs.default({"residential": "cn-js-residential"}),
    }
    best: dict[str, float] = {}
    rows = alerts = 0
    for _ in range(rounds):
        for name, tariffs in configs.items():
            t0 = time.perf_counter()
            res = run_table(t, tariffs=tariffs)
            el = time.perf_counter() - t0
            best[name] = min(best.get(name, el), el)
            rows, alerts = res.rows, len(res.alerts)
            print(f"  {name:<22} {el:7.2f} s {alerts} alerts", flush=True)
    ref = best["no plan (reference)"]
    for name, el in best.items():
        print(
            f"daily backtest {name:<22} {rows:,} rows {rows / el:>10,.0f} rows/s "
            f"= {ref / el:5.3f} x the throughput without a plan (best of {rounds})"
        )


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
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the money comparison")
    ap.add_argument("--tou", type=int, metavar="N", help="only the time-of-use comparison on N readings")
    a = ap.parse_args(argv)
    print(machine())
    if a.tou:
        bench_tou(a.tou, a.rounds)
        return 0
    if a.money:
        bench_money(a.money, a.rounds)
        return 0
    if not a.daily_only:
        bench_interval(a.readings or (100_000 if a.quick else 400_000))
    bench_daily(a.sample if a.sample is not None else (0.1 if a.quick else 1.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
