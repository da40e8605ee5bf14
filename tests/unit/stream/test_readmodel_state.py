"""What the profile stage hands the read model: each changed customer's stored state, no snapshot."""

from __future__ import annotations

import datetime as dt

from redis.asyncio import Redis

from baselines.customer import CustomerConfig
from baselines.readview import snapshot_from_state
from meterwatch.contracts import CustomerRecord
from meterwatch.keys import Keys
from stream.envelope import Envelope
from stream.readmodel import ReadModelWriter
from stream.worker import Worker

from .conftest import NOW, MemoryOutputs, record
from .test_profiles import P, customer_env, group, half_hours


async def test_the_read_model_gets_the_stored_bytes_of_each_changed_customer_and_deletes_win(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    worker, _ = stage_worker
    never = Redis.from_url("redis://127.0.0.1:1/0")  # not flushed here: what is pending is checked
    rm = worker.ctx.readmodel = ReadModelWriter(never, Keys("t:"))
    rs = half_hours("m1", dt.date(2024, 5, 1), 6)
    async with worker.agents["profiles"].test_context() as agent:
        await agent.put(customer_env("c1", ["m1"], tariff_plan="cn-js-residential"), partition=P)
        await agent.put(customer_env("c2", ["m2"]), partition=P)  # a record, no reading: no profile
        await agent.put(group(worker, *[("c1", 10 + i, r) for i, r in enumerate(rs)]), partition=P)
    table = worker.wapp.profiles_table.data
    assert rm._states == {"c1": table[b"c1"]}  # the very bytes stored in RocksDB, c2 has nothing to show
    st = worker.profiles.cache[P]["c1"]
    assert st.profile is not None and st.config is not None
    rec = CustomerRecord.model_validate(record("c1", ["m1"], tariff_plan="cn-js-residential"))
    assert CustomerConfig.from_record(rec) == st.config
    built = snapshot_from_state(worker.ctx.engine, rm._states["c1"], rec.model_dump_json(), NOW)
    assert built == worker.ctx.engine.snapshot(st.profile, st.config, None, NOW).model_dump_json().encode()

    async with worker.agents["profiles"].test_context() as agent:
        await agent.put(Envelope(kind="customer_deleted", customer_id="c1").dumps(), partition=P)
    assert "c1" not in rm._states and "c1" in rm._deleted_baselines and rm._customers["c1"] is None
    await never.aclose()
