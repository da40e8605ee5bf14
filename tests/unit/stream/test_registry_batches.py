"""Registry records in batches (issue #12): customers_in groups a consumer batch per by-customer
partition, the profile stage applies a group record by record, in order, with readings."""

from __future__ import annotations

from typing import Any

import orjson

from meterwatch.contracts import CustomerRecord
from stream import customers_group
from stream.produce import partition_for
from stream.worker import Worker

from .conftest import MemoryOutputs, dumps, reading, record, registry_batch
from .test_profiles import P, group, letters, stored

# customer ids whose by-customer partition (of 4) is P: a whole batch lands on one partition
ON_P = [c for c in (f"k{i}" for i in range(200)) if partition_for(c.encode(), 4) == P][:6]


def customers_on(worker: Worker, out: MemoryOutputs) -> list[tuple[int, bytes]]:
    """customers_in's messages (partition, value), taken from the outputs."""
    return [(p, v or b"") for p, _, v in out.take(worker.ctx.names.by_customer)]


def stored_record(worker: Worker, cid: str) -> dict[str, Any] | None:
    raw = worker.wapp.customers_table.data.get(cid.encode())
    return None if raw is None else dict(orjson.loads(raw))


async def apply(worker: Worker, msgs: list[tuple[int, bytes]]) -> None:
    """The by-customer messages through the profile agent, all in one batch."""
    worker.ctx.batch_max, worker.ctx.batch_within_s = len(msgs), 60.0
    async with worker.agents["profiles"].test_context() as agent:
        for i, (p, v) in enumerate(msgs):
            await agent.put(v, partition=p, wait=i == len(msgs) - 1)


async def test_a_batch_of_valid_invalid_tombstone_and_resent_records_is_applied_in_order(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    worker, out = stage_worker
    a, b, c, d = ON_P[:4]
    registry_batch(worker, (b.encode(), dumps(record(b, ["mb"]))))
    await apply(worker, customers_on(worker, out))
    assert stored_record(worker, b) is not None
    batch: list[tuple[bytes, bytes | None]] = [
        (a.encode(), dumps(record(a, ["ma"], read_day=3))),
        (b"bad", b'{"customer_id": "bad", "phone": "12345"}'),  # schema
        (b"plan", dumps(record("plan", ["mp"], tariff_plan="no-such-plan"))),
        (b"region", dumps(record("region", ["mr"], region="GB-XX"))),
        (b.encode(), None),  # tombstone of a stored customer
        (a.encode(), dumps(record(a, ["ma"], read_day=20))),  # re-sent, changed: the last one wins
        (c.encode(), dumps(record(c, ["mc"]))),
        (c.encode(), None),  # registered and deleted in the same batch
        (d.encode(), None),
        (d.encode(), dumps(record(d, ["md"], read_day=7))),  # deleted, then registered again
    ]
    registry_batch(worker, *batch, first_offset=10)
    msgs = customers_on(worker, out)
    assert len(msgs) == 1 and customers_group.is_group(msgs[0][1])  # one message for the partition
    assert [(e.error.code, e.source.offset) for e in letters(worker, out)] == [
        ("schema", 11),
        ("unknown_tariff_plan", 12),
        ("schema", 13),
    ]
    await apply(worker, msgs)
    rec_a, rec_d = stored_record(worker, a), stored_record(worker, d)
    assert rec_a is not None and rec_a["read_day"] == 20
    assert rec_d is not None and rec_d["read_day"] == 7
    assert stored_record(worker, b) is None and stored_record(worker, c) is None
    changelog = [(k, v) for _, k, v in out.records[worker.ctx.names.customers_changelog]]
    assert (b.encode(), None) in changelog and (c.encode(), None) in changelog
    last = {k: v for k, v in changelog}  # what compaction keeps equals the table
    assert {k: v for k, v in last.items() if v is not None} == dict(worker.wapp.customers_table.data.items())
    assert CustomerRecord.model_validate_json(last[a.encode()] or b"").read_day == 20
    assert worker.ctx.metrics.counters["customers_deleted"] == 3

    # the same batch delivered again (a crash before the commit): the same tables
    before = dict(worker.wapp.customers_table.data.items())
    registry_batch(worker, *batch, first_offset=10)
    await apply(worker, customers_on(worker, out))
    assert dict(worker.wapp.customers_table.data.items()) == before


async def test_a_reading_after_its_record_in_the_same_batch_sees_it_and_one_before_waits(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    worker, out = stage_worker
    a, b = ON_P[:2]
    registry_batch(worker, (a.encode(), dumps(record(a, ["ma"]))), (b.encode(), dumps(record(b, ["mb"]))))
    (registry,) = customers_on(worker, out)
    early = group(worker, (a, 1, reading("ma", "2024-05-02T00:30:00Z")))  # before a's record
    late = group(worker, (b, 2, reading("mb", "2024-05-02T00:30:00Z")))  # after b's record
    await apply(worker, [(P, early), registry, (P, late)])
    assert worker.ctx.metrics.counters["awaiting_registry"] == 1  # a's reading waited ...
    assert worker.ctx.metrics.counters["readings_processed"] == 2  # ... and both were folded
    for cid in (a, b):
        value = stored(worker, cid)
        assert value["p"] is not None and not value.get("q"), value


async def test_a_reading_after_a_deletion_in_the_same_batch_waits_and_is_not_folded(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    worker, out = stage_worker
    a = ON_P[0]
    registry_batch(worker, (a.encode(), dumps(record(a, ["ma"]))))
    await apply(worker, customers_on(worker, out))
    registry_batch(worker, (a.encode(), None))
    (tombstone,) = customers_on(worker, out)
    after = group(worker, (a, 5, reading("ma", "2024-05-02T00:30:00Z")))
    await apply(worker, [tombstone, (P, after)])
    assert stored_record(worker, a) is None
    assert worker.ctx.metrics.counters.get("readings_processed", 0) == 0
    value = stored(worker, a)  # only what came after the deletion: the reading, held
    assert value["p"] is None and len(value["q"]) == 1
