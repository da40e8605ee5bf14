"""The registry's ``landlord`` field (issue #15, rented homes): kept on the record, or dead-lettered
with the field named when invalid; the landlord's number never appears in the logs."""

from __future__ import annotations

import logging

import pytest

from meterwatch.contracts import DeadLetter
from stream.worker import Worker

from .conftest import MemoryOutputs, dumps, forwarded_records, record, registry_batch

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
    good = record("c1", ["m1"], occupancy="rented", landlord=LANDLORD)
    bad_rec = record("c2", ["m2"], occupancy="rented", landlord=bad)
    registry_batch(worker, (b"c1", dumps(good)), (b"c2", dumps(bad_rec)))
    found = forwarded_records(worker, out)
    assert [cid for _, cid, _ in found] == ["c1"]
    rec = found[0][2]
    assert rec is not None and rec.landlord is not None
    assert rec.landlord.phone == LANDLORD["phone"]
    (letter,) = [DeadLetter.model_validate_json(v or b"") for _, _, v in out.records[worker.ctx.names.dlq]]
    assert (letter.error.code, letter.error.field) == ("schema", field), letter.error
    assert "13900139000" not in caplog.text
