"""CPU per read-model snapshot: the pydantic model's JSON vs the spliced JSON the worker writes.

    python bench/bench_snapshot.py                       # 120 customers, 3 interleaved rounds
    python bench/bench_snapshot.py --ref main            # also the snapshot code of a git ref

Profiles: the repository's London sample (data/sample), folded by the engine, the
customers spread over the money cases of ``tests/unit/baselines/test_snapshot_json.py``
(no plan, annual tiers with a budget, flat with a budget, monthly tiers, ...). Per round,
interleaved, the CPU time (``time.process_time``) per snapshot of:

* ``model``: ``Engine.snapshot(...).model_dump_json()``, every field through pydantic
  (the reference);
* ``spliced``: what the worker wrote before the view-on-read (and ``baselines.readview``
  builds): ``snapshot_parts(cycles=False)``, the finite-figure check, pydantic's JSON of
  the rest with the closed cycles' JSON spliced in;
* ``on_read``: what the Ops API does per read now: decode the stored state
  (``state:{id}``) and the registry record, then ``spliced`` on the fresh profile (no
  caches warm: the money and same-period figures computed again on every read);
* ``ref`` (with ``--ref``): ``baselines/views.py`` as of that git ref, called as that
  ref's worker called it (``snapshot`` of nested models, ``model_copy``, ``model_dump_json``).

Every way's bytes are checked equal first. Figures are ratios to ``model`` of the same round.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from baselines.customer import CustomerConfig  # noqa: E402
from baselines.engine import Engine  # noqa: E402
from baselines.profile import Profile  # noqa: E402
from baselines.readings import Reading  # noqa: E402
from baselines.readview import finite_snapshot, snapshot_from_state  # noqa: E402
from baselines.views import cycles_json, snapshot_json  # noqa: E402
from meterwatch.cli.sample_data import sample_dir  # noqa: E402
from meterwatch.contracts import Budget, CustomerRecord, SegmentRef  # noqa: E402

NOW = dt.datetime(2014, 3, 5, 12, tzinfo=dt.UTC)
PLANS: tuple[tuple[str | None, Budget | None], ...] = (
    (None, None),
    ("cn-js-residential", Budget(amount=60, currency="CNY")),
    ("uk-london-standard", Budget(amount=30, currency="GBP")),
    ("cn-fj-residential-monthly", None),
    ("cn-js-residential", None),
    ("uk-london-standard", None),
)
Case = tuple[Profile, CustomerConfig, SegmentRef]
Way = Callable[[Case], bytes]


def profiles(eng: Engine, n: int) -> list[Case]:
    t = pq.read_table(sample_dir() / "lcl_london_daily" / "lcl_daily_kwh.parquet")
    by_id: dict[str, list[tuple[dt.date, float]]] = {}
    for r in t.select(["LCLid", "day", "energy_sum"]).to_pylist():
        if r["energy_sum"] is not None:
            by_id.setdefault(str(r["LCLid"]), []).append((r["day"], float(r["energy_sum"])))
    out = []
    for i, (cid, days) in enumerate(sorted(by_id.items())[:n]):
        plan, budget = PLANS[i % len(PLANS)]
        cust = CustomerConfig(
            cid, read_day=1 + i % 28, manager_id=f"mgr-{i % 3}", tariff_plan=plan, budget=budget
        )
        p = Profile.new(cid)
        for day, kwh in sorted(days):
            eng.process_inplace(p, Reading.daily(day, kwh), cust)
        out.append((p, cust, SegmentRef(id=i % 4, label="steady", kind="ordinary")))
    return out


def ways(eng: Engine, ref: str | None) -> dict[str, Way]:
    def model(c: Case) -> bytes:
        return eng.snapshot(c[0], c[1], c[2], NOW).model_dump_json().encode()

    def spliced(c: Case) -> bytes:
        parts = eng.snapshot_parts(c[0], c[1], c[2], NOW, cycles=False)
        assert finite_snapshot(parts)
        return snapshot_json(parts, cycles_json(c[0]))

    stored: dict[str, tuple[bytes, bytes]] = {}

    def on_read(c: Case) -> bytes:
        cid = c[1].customer_id
        if cid not in stored:  # made once (in the bytes check), outside the timed rounds
            rec = CustomerRecord(
                customer_id=cid, meter_ids=["m"], read_day=c[1].read_day, manager_id=c[1].manager_id,
                tariff_plan=c[1].tariff_plan, budget=c[1].budget,
            )  # fmt: skip
            state = orjson.dumps({"v": 2, "p": c[0].to_dict(), "s": c[2].model_dump(), "f": -1})
            stored[cid] = state, rec.model_dump_json().encode()
        body = snapshot_from_state(eng, *stored[cid], NOW)
        assert body is not None
        return body

    out: dict[str, Way] = {"model": model, "spliced": spliced, "on_read": on_read}
    if ref is not None:
        src = subprocess.run(
            ["git", "show", f"{ref}:baselines/views.py"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
        path = Path(tempfile.mkdtemp()) / "views_at_ref.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location("views_at_ref", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)

        def at_ref(c: Case) -> bytes:
            snap = mod.snapshot(c[0], c[1], c[2], NOW, eng.rules, eng.tariffs)
            body: bytes = snap.model_copy(update={"processed_at": NOW}).model_dump_json().encode()
            return body

        out[f"ref {ref}"] = at_ref
    return out


def cpu_per_snapshot(way: Way, cases: list[Case], reps: int) -> float:
    c0 = time.process_time()
    for _ in range(reps):
        for c in cases:
            way(c)
    return (time.process_time() - c0) / (reps * len(cases))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=10, help="snapshots of every customer per way and round")
    ap.add_argument("--ref", help="also time baselines/views.py of this git ref (e.g. main)")
    a = ap.parse_args(argv)
    load = os.getloadavg()
    print(f"{platform.python_version()}, {os.cpu_count()} cores, load average {load[0]:.1f} (shared machine)")
    eng = Engine()
    cases = profiles(eng, a.customers)
    fns = ways(eng, a.ref)
    for name, fn in fns.items():  # the same bytes, and every cache warm
        assert all(fn(c) == fns["model"](c) for c in cases), f"{name}: not the model's bytes"
    cycles = sum(len(c[0].closed_cycles) for c in cases) / len(cases)
    with_money = sum(1 for c in cases if b'"money":' in fns["model"](c))
    print(
        f"{len(cases)} customers, {cycles:.1f} closed cycles each, {with_money} with money; same bytes: True"
    )
    for r in range(a.rounds):
        order = list(fns.items()) if r % 2 == 0 else list(fns.items())[::-1]
        us = {name: 1e6 * cpu_per_snapshot(fn, cases, a.reps) for name, fn in order}
        print(
            f"round {r + 1}: "
            + "; ".join(f"{n} {v:.0f} us ({v / us['model']:.2f}x model)" for n, v in us.items())
            + f"; load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
