"""The forwarding stages (customers_in, history_in, segments_in, parked) under ``agent.test_context()``."""

from __future__ import annotations

import json

from meterwatch.contracts import DeadLetter
from stream.envelope import Envelope, Source
from stream.produce import partition_for
from stream.worker import Worker

from .conftest import MemoryOutputs, dumps, reading, record


def forwarded(worker: Worker, out: MemoryOutputs) -> list[tuple[int, Envelope]]:
    return [(p, Envelope.model_validate_json(v or b"")) for p, _, v in out.take(worker.ctx.names.by_customer)]


async def test_customers_in_forwards_records_and_tombstones_and_rejects_bad_records(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    worker, out = stage_worker
    async with worker.agents["customers_in"].test_context() as agent:
        await agent.put(dumps(record("c1", ["m1"], read_day=12)), key=b"c1", wait=False)
        await agent.put(None, key=b"c2", wait=False)
        await agent.put(b'{"customer_id": "c3", "phone": "12345"}', key=b"c3")
    envs = forwarded(worker, out)
    assert [(p, e.kind, e.customer_id) for p, e in envs] == [
        (partition_for(b"c1", 4), "customer", "c1"),
        (partition_for(b"c2", 4), "customer_deleted", "c2"),
    ]
    assert envs[0][1].customer is not None and envs[0][1].customer.read_day == 12
    (letter,) = [DeadLetter.model_validate_json(v or b"") for _, _, v in out.records[worker.ctx.names.dlq]]
    assert (letter.error.code, letter.error.field, letter.source.topic) == (
        "schema",
        "phone",
        worker.ctx.names.customers,
    )
    assert out.flushes >= 1  # delivered before the batch is acknowledged


async def test_history_in_sends_one_envelope_per_customer_run_with_its_source(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    worker, out = stage_worker
    rows = [
        {"customer_id": "c1", "day": "2024-05-01", "kwh": 5.0},
        {"customer_id": "c1", "day": "2024-05-02", "kwh": 6.0},
        {"customer_id": "c2", "day": "2024-05-01", "kwh": 7.0},
    ]
    # one batch of exactly these four events, however slow the machine (the fixture's 1 ms
    # window split them under load)
    worker.ctx.batch_max, worker.ctx.batch_within_s = 4, 60.0
    async with worker.agents["history_in"].test_context() as agent:
        for row in rows:
            await agent.put(dumps(row), wait=False)
        await agent.put(b'{"customer_id": "c1", "kwh": 1}')
    envs = [e for _, e in forwarded(worker, out)]
    assert [(e.customer_id, [r.kwh for r in e.history or []]) for e in envs] == [
        ("c1", [5.0, 6.0]),
        ("c2", [7.0]),
    ]
    assert envs[0].src == Source(t=worker.ctx.names.history, p=0, o=0)  # the run's first row
    assert envs[1].src == Source(t=worker.ctx.names.history, p=0, o=2)
    assert [json.loads(v or b"")["error"]["code"] for _, _, v in out.records[worker.ctx.names.dlq]] == [
        "schema"
    ]


async def test_segments_in_forwards_assignments_and_skips_garbage(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    worker, out = stage_worker
    async with worker.agents["segments_in"].test_context() as agent:
        await agent.put(b"not json", wait=False)
        await agent.put(dumps({"customer_id": "c1", "segment": {"id": 2, "label": "x"}, "model_version": 3}))
    ((p, env),) = forwarded(worker, out)
    assert (p, env.kind, env.segment and env.segment.segment.id) == (partition_for(b"c1", 4), "segment", 2)


async def test_parked_readings_leave_when_their_meter_appears_or_expire(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    worker, out = stage_worker
    ctx = worker.ctx
    ctx.settings = ctx.settings.model_copy(update={"unknown_meter_wait_s": 3600.0})

    def parked(meter: str, offset: int) -> bytes:
        r = reading(meter, "2024-05-01T00:30:00+00:00")
        src = Source(t=ctx.names.readings, p=1, o=offset)
        return Envelope.model_validate(
            {"kind": "reading", "customer_id": "", "reading": r, "src": src}
        ).dumps()

    async with worker.agents["parked"].test_context() as agent:
        await agent.put(parked("m1", 10), timestamp=1.0)  # long expired: parked in 1970
        await agent.put(parked("m2", 11))  # waits
        await agent.put(parked("m3", 12))  # keeps waiting
        assert forwarded(worker, out) == []
        ctx.index.apply("c2", ["m2"])
        await worker.parked.retry()
    ((p, env),) = forwarded(worker, out)
    assert (p, env.customer_id, env.parked, env.src) == (
        partition_for(b"c2", 4),
        "c2",
        True,
        Source(t=ctx.names.readings, p=1, o=11),
    )
    letters = [DeadLetter.model_validate_json(v or b"") for _, _, v in out.records[ctx.names.dlq]]
    assert [(d.error.code, d.source.offset) for d in letters] == [("unknown_meter", 10)]
    assert "waited 3600 s" in letters[0].error.message
    assert [e[1].reading and e[1].reading.meter_id for e in worker.parked.parked] == ["m3"]
