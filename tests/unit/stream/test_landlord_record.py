"""The registry's ``landlord`` field (issue #15, rented homes): kept on the record, or dead-lettered
with the field named when invalid; the landlord's number never appears in the logs."""

from __future__ import annotations

import logging

import pytest

from meterwatch.contracts import DeadLetter
from stream.envelope import Envelope
from stream.worker import Worker

from .conftest import MemoryOutputs, dumps, record

LANDLORD = {"name": "王先生", "phone": "+8613900139000"}


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"name": "王先生", "phone": "13900139000"}, "landlord.phone"),  # not E.164
        ({"name": "", "phone": "+8613900139000"}, "landlord.name"),
        ({"name": "x" * 65, "phone": "+8613900139000"}, "landlord.name"),
        ("王先生 13900139000", "landlord"),
    ],
)
async def test_an_invalid_landlord_is_dead_lettered_with_the_field_and_a_valid_one_forwarded(
    stage_worker: tuple[Worker, MemoryOutputs], caplog: pytest.LogCaptureFixture, bad: object, field: str
) -> None:
    worker, out = stage_worker
    caplog.set_level(logging.DEBUG)
    async with worker.agents["customers_in"].test_context() as agent:
        good = record("c1", ["m1"], occupancy="rented", landlord=LANDLORD)
        await agent.put(dumps(good), key=b"c1", wait=False)
        await agent.put(dumps(record("c2", ["m2"], occupancy="rented", landlord=bad)), key=b"c2")
    envs = [Envelope.model_validate_json(v or b"") for _, _, v in out.take(worker.ctx.names.by_customer)]
    assert [e.customer_id for e in envs] == ["c1"]
    assert envs[0].customer is not None and envs[0].customer.landlord is not None
    assert envs[0].customer.landlord.phone == LANDLORD["phone"]
    (letter,) = [DeadLetter.model_validate_json(v or b"") for _, _, v in out.records[worker.ctx.names.dlq]]
    assert (letter.error.code, letter.error.field) == ("schema", field), letter.error
    assert "13900139000" not in caplog.text
