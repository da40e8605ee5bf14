"""The ingest stage without a broker: validation, placement, grouping."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from meterwatch.contracts import DeadLetter
from stream.produce import partition_for
from stream.worker import Worker

from .conftest import MemoryOutputs, dumps, reading


@dataclass
class Rec:
    """What the ingest stage reads of an aiokafka ConsumerRecord."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


def feed(worker: Worker, *values: bytes | None, partition: int = 0) -> None:
    topic = worker.ctx.names.readings
    worker.ingest.process([Rec(topic, partition, i, v) for i, v in enumerate(values)])


def dead(worker: Worker, out: MemoryOutputs) -> list[DeadLetter]:
    return [DeadLetter.model_validate_json(v or b"") for _, _, v in out.records[worker.ctx.names.dlq]]


def grouped(worker: Worker, out: MemoryOutputs) -> list[list[Any]]:
    items = []
    for _, _, v in out.records[worker.ctx.names.by_customer]:
        items += json.loads(v or b"")["items"]
    return items


@pytest.fixture
def ingest(stage_worker: tuple[Worker, MemoryOutputs]) -> tuple[Worker, MemoryOutputs]:
    worker, out = stage_worker
    worker.ctx.index.apply("c1", ["m1"])
    worker.ctx.index.apply("c2", ["m2"])
    return worker, out


def test_a_valid_reading_goes_to_its_customers_partition_with_its_source(ingest: Any) -> None:
    worker, out = ingest
    feed(worker, dumps(reading("m1", "2024-05-01T00:30:00+00:00")), partition=2)
    (part, key, value) = out.records[worker.ctx.names.by_customer][0]
    assert part == partition_for(b"c1", 4) and key is None
    group = json.loads(value or b"")
    assert group["kind"] == "readings" and group["t"] == worker.ctx.names.readings
    assert group["items"] == [["c1", 2, 0, reading("m1", "2024-05-01T00:30:00+00:00")]]
    assert dead(worker, out) == []


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"kwh": True}, "kwh", "not a boolean"),
        ({"kwh": "0.25"}, "kwh", "not a string"),
        ({"register_kwh": "12", "kwh": None}, "register_kwh", "not a string"),
        ({"ts": 1714523400}, "ts", "not a number"),
        ({"interval_s": "1800"}, "interval_s", "JSON integer"),
        ({"interval_s": 1800.0}, "interval_s", "JSON integer"),
    ],
)
def test_lax_types_are_dead_lettered_with_the_field(
    ingest: Any, change: dict[str, Any], field: str, says: str
) -> None:
    """Issue #10 item 6: ``"kwh": true`` was booked as 1 kWh; "0.25" and epoch ts were accepted."""
    worker, out = ingest
    body = {
        k: v for k, v in {**reading("m1", "2024-05-01T00:30:00+00:00"), **change}.items() if v is not None
    }
    feed(worker, dumps(body))
    (letter,) = dead(worker, out)
    assert (letter.error.code, letter.error.field) == ("schema", field)
    assert says in letter.error.message
    assert grouped(worker, out) == []


def test_unknown_meters_are_parked_or_dead_lettered_by_policy(ingest: Any) -> None:
    worker, out = ingest
    feed(worker, dumps(reading("m9", "2024-05-01T00:30:00+00:00")))
    (parked,) = out.values(worker.ctx.names.parked)
    assert parked["reading"]["meter_id"] == "m9" and parked["src"]["o"] == 0
    worker.ctx.settings = worker.ctx.settings.model_copy(update={"unknown_meter_policy": "dlq"})
    feed(
        worker,
        dumps(reading("m9", "2024-05-01T00:30:00+00:00")),
        dumps(reading("m9", "2024-05-01T01:00:00Z", customer_id="c9")),
    )
    assert [(d.error.code, d.error.field) for d in dead(worker, out)] == [
        ("unknown_meter", "meter_id"),
        ("unknown_customer", "customer_id"),
    ]


def test_garbage_never_stops_the_batch(ingest: Any) -> None:
    worker, out = ingest
    feed(worker, b"\xff\xfe", None, b"[1]", dumps(reading("m1", "2024-05-01T00:30:00+00:00")))
    assert [d.error.code for d in dead(worker, out)] == ["invalid_json", "empty", "schema"]
    assert len(grouped(worker, out)) == 1
    assert worker.ctx.metrics.counters["readings_in"] == 4
