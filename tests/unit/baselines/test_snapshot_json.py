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
from baselines.views import cycles_json, snapshot_json
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
