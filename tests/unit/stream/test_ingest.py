"""The ingest stage without a broker: validation, plausibility, ownership, grouping (#10: 1, 2, 3, 6)."""

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
    worker.ctx.index.apply("c2", ["m2"], max_kw=10.0)
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


@pytest.mark.parametrize(
    ("ts", "code"),
    [("2099-01-01T00:00:00+00:00", "ts_in_future"), ("1970-01-01T00:30:00+00:00", "ts_too_old")],
)
def test_a_reading_outside_the_time_bounds_is_dead_lettered(ingest: Any, ts: str, code: str) -> None:
    """Issue #10 item 1: a reading dated 2099 was booked and poisoned the customer for good."""
    worker, out = ingest
    feed(worker, dumps(reading("m1", ts)), dumps(reading("m1", "2024-06-02T11:30:00+00:00")))
    (letter,) = dead(worker, out)
    assert (letter.error.code, letter.error.field) == (code, "ts")
    assert len(grouped(worker, out)) == 1  # now (the test clock) + 1 day is still accepted


def test_a_maximum_age_is_a_setting(ingest: Any) -> None:
    worker, out = ingest
    worker.ctx.settings = worker.ctx.settings.model_copy(update={"reading_max_age_days": 30})
    feed(
        worker,
        dumps(reading("m1", "2024-04-01T00:30:00+00:00")),
        dumps(reading("m1", "2024-05-15T00:30:00+00:00")),
    )
    assert [d.error.code for d in dead(worker, out)] == ["ts_too_old"]
    assert len(grouped(worker, out)) == 1


@pytest.mark.parametrize("kwh", [1e308, 1e12, 50.01])
def test_more_energy_than_the_meter_rating_allows_is_dead_lettered(ingest: Any, kwh: float) -> None:
    """Issue #10 item 2: 1e308 kWh overflowed the cycle total; 1e12 kWh in one half-hour was booked."""
    worker, out = ingest
    feed(worker, dumps(reading("m1", "2024-05-01T00:30:00+00:00", kwh=kwh)))
    (letter,) = dead(worker, out)
    assert (letter.error.code, letter.error.field) == ("kwh_implausible", "kwh")
    assert "100 kW" in letter.error.message  # MW_READING_MAX_KW, the default rating


def test_the_rating_comes_from_the_customer_record(ingest: Any) -> None:
    worker, out = ingest  # c2 has max_kw 10: 5 kWh per half-hour at most
    feed(
        worker,
        dumps(reading("m2", "2024-05-01T00:30:00+00:00", kwh=5.0)),
        dumps(reading("m2", "2024-05-01T01:00:00+00:00", kwh=5.5)),
        dumps(reading("m2", "2024-05-02T00:00:00+00:00", kwh=240.0, interval_s=86400)),
    )
    assert [d.error.code for d in dead(worker, out)] == ["kwh_implausible"]
    assert len(grouped(worker, out)) == 2


def test_a_reading_naming_another_customer_than_the_meters_owner_is_dead_lettered(ingest: Any) -> None:
    """Issue #10 item 3: it was booked to the customer it named."""
    worker, out = ingest
    feed(worker, dumps(reading("m1", "2024-05-01T00:30:00+00:00", customer_id="c2")))
    (letter,) = dead(worker, out)
    assert (letter.error.code, letter.error.field) == ("meter_customer_mismatch", "customer_id")
    assert "'c1'" in letter.error.message and "'c2'" in letter.error.message
    assert grouped(worker, out) == []
    feed(worker, dumps(reading("m1", "2024-05-01T00:30:00+00:00", customer_id="c1")))
    assert len(grouped(worker, out)) == 1  # naming the owner is fine


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
