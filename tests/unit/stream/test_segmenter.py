"""The segmenter stage under ``agent.test_context()``: model, membership and assignments are batch outputs.

The flaky kill -9 test (a restored segmenter counted 320 of 319 customers) came from
membership writes that went through Faust's own producer buffer, which a commit
could overtake. Here every table write must be an output of the batch (delivered
before the ack), in the segmenter table's changelog.
"""

from __future__ import annotations

import datetime as dt
import json
import random

from meterwatch.contracts import SegmentAssignment
from stream.envelope import FeaturesEvent
from stream.segmenter import MEMBER_PREFIX, MODEL_KEY
from stream.worker import Worker

from .conftest import MemoryOutputs

N = 310  # above the default warm-up (300 customers)


def features(cid: str, level: float, forget: bool = False, current: int | None = None) -> bytes:
    ts = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    feats = {} if forget else {"level_kwh_day": level, "variability": 0.2, "night_share": 0.3}
    return (
        FeaturesEvent(customer_id=cid, features=feats, ts=ts, forget=forget, current=current)
        .model_dump_json()
        .encode()
    )


async def test_membership_model_and_assignments_are_outputs_of_the_batch(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    worker, out = stage_worker
    names = worker.ctx.names
    rnd = random.Random(3)
    async with worker.agents["segmenter"].test_context() as agent:
        for i in range(N):
            await agent.put(
                features(f"c{i:03d}", (3.0, 9.0, 25.0)[i % 3] * rnd.uniform(0.9, 1.1)), wait=i == N - 1
            )
        changelog = {k: v for _, k, v in out.records[names.segmenter_changelog]}
        members = {k: v for k, v in changelog.items() if k is not None and k.startswith(MEMBER_PREFIX)}
        assert len(members) == N and MODEL_KEY in changelog
        assigned = [
            SegmentAssignment.model_validate_json(v or b"") for _, _, v in out.records[names.segments]
        ]
        assert {a.customer_id for a in assigned} == {f"c{i:03d}" for i in range(N)}
        assert all(k == a.customer_id.encode() for (_, k, _), a in zip(out.records[names.segments], assigned))
        segment_of_c001 = int(members[MEMBER_PREFIX + b"c001"] or b"-1")

        out.take(names.segmenter_changelog)
        # wait: leaving the context stops the agent, which under load could come before this batch
        await agent.put(features("c001", 0.0, forget=True, current=segment_of_c001), wait=True)
    # the deletion of c001's membership is a changelog tombstone of this batch, delivered before its ack
    assert (0, MEMBER_PREFIX + b"c001", None) in out.records[names.segmenter_changelog]
    assert MEMBER_PREFIX + b"c001" not in worker.wapp.segmenter_table.data
    model = worker.segmenter.model
    assert model is not None and sum(s.size for s in model.summaries()) == N - 1
    # a restored model counts what the table holds
    worker.segmenter.revoke()
    restored = worker.segmenter.load()
    assert sum(s.size for s in restored.summaries()) == N - 1
    assert out.flushes >= 2
    assert json.loads(worker.wapp.segmenter_table.data[MODEL_KEY])["state_version"] >= 2
