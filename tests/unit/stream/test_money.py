"""Money in the worker: one catalogue per process, unknown plans dead-lettered, priced alerts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from baselines.tariffs import UnknownPlanError, default_catalogue
from meterwatch.contracts import Alert, DeadLetter
from meterwatch.settings import Settings
from stream.envelope import Envelope
from stream.worker import Worker, load_engine

from .conftest import NOW, MemoryOutputs, dumps, record
from .test_profiles import P, customer_env, group, half_hours


async def test_a_record_naming_an_unknown_tariff_plan_is_dead_lettered_and_a_known_one_forwarded(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    worker, out = stage_worker
    async with worker.agents["customers_in"].test_context() as agent:
        await agent.put(dumps(record("c1", ["m1"], tariff_plan="cn-js-residential")), key=b"c1", wait=False)
        await agent.put(dumps(record("c2", ["m2"], tariff_plan="no-such-plan")), key=b"c2")
    envs = [Envelope.model_validate_json(v or b"") for _, _, v in out.take(worker.ctx.names.by_customer)]
    assert [(e.customer_id, e.customer and e.customer.tariff_plan) for e in envs] == [
        ("c1", "cn-js-residential")
    ]
    (letter,) = [DeadLetter.model_validate_json(v or b"") for _, _, v in out.records[worker.ctx.names.dlq]]
    assert (letter.error.code, letter.error.field) == ("unknown_tariff_plan", "tariff_plan")
    assert "no-such-plan" in letter.error.message and json.loads(letter.raw)["customer_id"] == "c2"
    assert worker.ctx.metrics.labelled["dlq"]["unknown_tariff_plan"] == 1


def test_the_engine_gets_the_catalogue_file_and_the_default_plans(tmp_path: Path) -> None:
    cat = json.loads(default_catalogue().model_dump_json(by_alias=True))
    cat["plans"] = [dict(cat["plans"][0], id="my-plan")]
    path = tmp_path / "tariffs.json"
    path.write_text(json.dumps(cat))
    engine = load_engine(Settings(tariffs_file=path, default_tariff_plans={"residential": "my-plan"}))
    assert engine.tariffs.catalogue.ids() == ["my-plan"] and engine.tariffs.defaults == {
        "residential": "my-plan"
    }
    with pytest.raises(UnknownPlanError):
        load_engine(Settings(default_tariff_plans={"residential": "my-plan"}))  # not in the shipped one


async def test_alerts_carry_money_and_solicited_ones_are_counted_apart(settings: Settings) -> None:
    out = MemoryOutputs()
    worker = Worker(settings, store="memory://", out=out, clock=lambda: NOW, batch_within_s=0.001)
    budget = {"amount": 5, "currency": "CNY"}
    rows = half_hours("m1", dt.date(2024, 5, 2), 48)  # 12 kWh x 0.5283 = 6.34 CNY: over the budget
    async with worker.agents["profiles"].test_context() as agent:
        await agent.put(
            customer_env("c1", ["m1"], tariff_plan="cn-js-residential", budget=budget), partition=P
        )
        await agent.put(group(worker, *[("c1", i, r) for i, r in enumerate(rows)]), partition=P)
    alerts = [Alert.model_validate_json(v or b"") for _, _, v in out.records[worker.ctx.names.alerts]]
    assert [(a.rule, a.solicited) for a in alerts] == [("budget_reached", True)]
    money = alerts[0].money
    assert money is not None and str(money.to_date) == "6.34" and str(money.budget) == "5"
    assert worker.ctx.metrics.counters["alerts_solicited"] == 1


async def test_a_record_with_an_unknown_holiday_region_is_dead_lettered_with_the_field(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    worker, out = stage_worker
    away = [{"start": "2024-02-08", "end": "2024-02-18"}]
    async with worker.agents["customers_in"].test_context() as agent:
        await agent.put(dumps(record("c1", ["m1"], region="CN", away=away)), key=b"c1", wait=False)
        await agent.put(dumps(record("c2", ["m2"], region="XX")), key=b"c2")
    envs = [Envelope.model_validate_json(v or b"") for _, _, v in out.take(worker.ctx.names.by_customer)]
    assert [(e.customer_id, e.customer and e.customer.region) for e in envs] == [("c1", "CN")]
    assert envs[0].customer is not None and envs[0].customer.away[0].end == dt.date(2024, 2, 18)
    (letter,) = [DeadLetter.model_validate_json(v or b"") for _, _, v in out.records[worker.ctx.names.dlq]]
    assert letter.error.field == "region" and "XX" in letter.error.message, letter.error
