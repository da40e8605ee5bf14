"""The read model's snapshot JSON written without pydantic is the pydantic model's JSON, byte for byte.

With money: customers on a tiered plan (annual and monthly tiers), on a flat plan, with a
budget (in the plan's currency or not), with no plan, and with a default plan for their tariff.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow.parquet as pq
import pytest
from pydantic import TypeAdapter

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.plans import Tariffs
from baselines.profile import ClosedCycleT, Profile
from baselines.readings import Reading
from baselines.views import cycles_json, money_json, snapshot_json
from meterwatch.contracts import BaselineSnapshot, Budget, ClosedCycle, SegmentRef

from .helpers import sample_data

NOWS = (
    dt.datetime(2014, 3, 5, 12, tzinfo=dt.UTC),
    dt.datetime(2014, 3, 5, 12, 0, 1, 250, tzinfo=dt.UTC),
)


# (tariff_plan, budget) by customer index modulo 6: no plan; tiered (annual) with a budget;
# flat with a budget; tiered (monthly); tiered with a budget in another currency (ignored); no plan
PLANS: tuple[tuple[str | None, Budget | None], ...] = (
    (None, None),
    ("cn-js-residential", Budget(amount=60, currency="CNY")),
    ("uk-london-standard", Budget(amount=30, currency="GBP")),
    ("cn-fj-residential-monthly", None),
    ("cn-js-residential", Budget(amount=30, currency="GBP")),
    (None, Budget(amount=40, currency="GBP")),
)
ENGINES = {
    "shipped catalogue, no default plan": lambda: Engine(),
    "a default plan for residential customers": lambda: Engine(
        tariffs=Tariffs.default({"residential": "uk-london-standard"})
    ),
}


def _sample_profiles(eng: Engine | None = None) -> list[tuple[Profile, CustomerConfig, SegmentRef | None]]:
    t = pq.read_table(sample_data() / "lcl_london_daily" / "lcl_daily_kwh.parquet")
    rows = t.select(["LCLid", "day", "energy_sum"]).to_pylist()
    by_id: dict[str, list[tuple[dt.date, float]]] = {}
    for r in rows:
        if r["energy_sum"] is not None:
            by_id.setdefault(str(r["LCLid"]), []).append((r["day"], float(r["energy_sum"])))
    eng = eng or Engine()
    out = []
    for i, (cid, days) in enumerate(sorted(by_id.items())[:40]):
        plan, budget = PLANS[i % len(PLANS)]
        cust = CustomerConfig(
            cid,
            read_day=1 + i % 28,
            manager_id=f"mgr-{i % 3}" if i % 2 else None,
            tariff_plan=plan,
            budget=budget,
        )
        p = Profile.new(cid)
        for day, kwh in sorted(days):
            eng.process_inplace(
                p, Reading.daily(day, kwh * (4.0 if i % 5 == 0 and day.day > 20 else 1.0)), cust
            )
        seg = SegmentRef(id=i % 4, label="steady", kind="ordinary") if i % 3 else None
        out.append((p, cust, seg))
    return out


@pytest.mark.parametrize("engine", list(ENGINES))
def test_sample_profiles_give_the_same_bytes(engine: str) -> None:
    eng = ENGINES[engine]()
    checked = 0
    money: dict[str, int] = {"none": 0, "tier": 0, "flat": 0, "budget": 0}
    for p, cust, seg in _sample_profiles(eng):
        for now in NOWS:
            parts = eng.snapshot_parts(p, cust, seg, now, cycles=False)
            body = snapshot_json(parts, cycles_json(p))
            snap = eng.snapshot(p, cust, seg, now)
            assert body == snap.model_dump_json().encode()
            # the worker's way: the money's JSON kept with its figures, spliced in
            spliced = snapshot_json({**parts, "money": None}, cycles_json(p), money_json(p, parts["money"]))
            assert spliced == body
            checked += len(p.closed_cycles)
            m = snap.money
            money["none" if m is None else "tier" if m.tier is not None else "flat"] += 1
            money["budget"] += 1 if m is not None and m.budget is not None else 0
    assert checked >= 100, "the sample must have closed cycles for the comparison to mean anything"
    # every kind of money occurred (the default plan gives money to the customers without one)
    assert money["tier"] >= 10 and money["flat"] >= 10 and money["budget"] >= 10, money
    assert (money["none"] >= 10) == (engine == "shipped catalogue, no default plan"), money


@pytest.mark.parametrize(
    "change",
    [
        {"customer_id": 'x"cycles":[]'},  # the marker inside a string is escaped: not replaced
        {"manager_id": 'gérant "cycles":[] \n'},
        {"reasons": [{"code": '"cycles":[]', "message": "m", "numbers": {"cycles": '"cycles":[]'}}]},
        {
            "money": {
                "plan_id": '"cycles":[]',
                "currency": "CNY",
                "as_of": "2014-03-04",
                "kwh_to_date": 1.5,
                "to_date": "0.75",
            }
        },
    ],
)
def test_only_the_cycles_list_is_replaced(change: dict[str, Any]) -> None:
    eng = Engine()
    p, cust, seg = _sample_profiles()[1]
    assert p.closed_cycles and cust.tariff_plan is not None
    parts = {**eng.snapshot_parts(p, cust, seg, NOWS[0], cycles=False), **change}
    assert parts["money"] is not None
    full = {
        **parts,
        "baseline": {
            **parts["baseline"],
            "cycles": eng.snapshot_parts(p, cust, seg, NOWS[0])["baseline"]["cycles"],
        },
    }
    assert (
        snapshot_json(parts, cycles_json(p))
        == BaselineSnapshot.model_validate(full).model_dump_json().encode()
    )


@pytest.mark.parametrize(
    "kwh", [250, 250.0, 0.1 + 0.2, 1.5e-05, 0.00049, 1e16, 123456789012.345, float("inf")]
)
@pytest.mark.parametrize("coverage", [1, 0.9333, 1e-05])
def test_cycle_figures_are_spelled_as_the_model_spells_them(kwh: float, coverage: float) -> None:
    p = Profile.new("c")
    p.closed_cycles.append(ClosedCycleT(738886, 738917, kwh, coverage))
    p.closed_cycles.append(ClosedCycleT(738917, 738946, 300.25, 1.0))
    expected = TypeAdapter(list[ClosedCycle]).dump_json(
        [
            ClosedCycle(
                start=dt.date.fromordinal(c.start),
                end=dt.date.fromordinal(c.end - 1),
                kwh=round(c.kwh, 3),
                coverage=c.coverage,
            )
            for c in p.closed_cycles
        ]
    )
    assert cycles_json(p) == expected


def test_the_money_spliced_in_after_every_reading_is_the_models() -> None:
    # customers on each kind of plan, a snapshot after every reading as the worker writes it:
    # the money's JSON comes from the cache while its figures stand and is written afresh when
    # they change (a new day, a late reading, a cycle closing); always the model's bytes
    t = pq.read_table(sample_data() / "lcl_london_daily" / "lcl_daily_kwh.parquet")
    rows = [r for r in t.select(["LCLid", "day", "energy_sum"]).to_pylist() if r["energy_sum"] is not None]
    ids = sorted({str(r["LCLid"]) for r in rows})[:6]
    eng = Engine()
    hits = writes = 0
    for i, cid in enumerate(ids):
        plan, budget = PLANS[(i + 1) % len(PLANS)]
        cust = CustomerConfig(cid, read_day=1 + 5 * i, tariff_plan=plan, budget=budget)
        p = Profile.new(cid)
        days = sorted((r["day"], float(r["energy_sum"])) for r in rows if str(r["LCLid"]) == cid)[:150]
        for k, (day, kwh) in enumerate(days):
            eng.process_inplace(p, Reading.daily(day, kwh), cust)
            if k % 9 == 4 and k > 20:  # now and then a late reading of an earlier day
                eng.process_inplace(p, Reading.daily(days[k - 3][0], 0.5), cust)
            now = dt.datetime.combine(day, dt.time(23), tzinfo=dt.UTC)
            for _ in range(2):  # the second: from the cache
                parts = eng.snapshot_parts(p, cust, None, now, cycles=False)
                cached = (p.money_cache or {}).get("snapshot_json")
                money = money_json(p, parts["money"])
                hits += 1 if cached is not None and cached[1] is money else 0
                writes += 1 if money is not None else 0
                body = snapshot_json({**parts, "money": None}, cycles_json(p), money)
                assert body == eng.snapshot(p, cust, None, now).model_dump_json().encode()
    assert writes >= 500 and hits >= writes // 2  # money was written, and mostly from the cache
