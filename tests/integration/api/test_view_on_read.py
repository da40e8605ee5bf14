"""The baseline built on read: the API builds the snapshot from the state the worker stores.

The worker writes each changed customer's stored state (``state:{id}``, the bytes of
``stream.state.encode_customer``) and its registry record (``customer:{id}``); the API
builds the snapshot from them (``api.snapshots``), else serves the ``baseline:{id}`` an
earlier worker wrote.
"""

from __future__ import annotations

import datetime as dt

import httpx
import orjson
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from baselines.readview import load_engine
from meterwatch.contracts import CustomerRecord, SegmentRef
from meterwatch.keys import Keys
from meterwatch.settings import Settings
from stream.readmodel import ReadModelWriter
from stream.state import CustomerState, encode_customer

from .conftest import ReadModel, Tokens, bearer

pytestmark = [pytest.mark.integration]

NOW = dt.datetime(2024, 5, 20, 9, 30, tzinfo=dt.UTC)
SEGMENT = SegmentRef(id=4, label="evening peakers", kind="premium")


def folded(engine: Engine, rec: CustomerRecord, days: int = 75) -> CustomerState:
    """A customer's state after ``days`` of daily readings (a closed cycle, money, a surge at the end)."""
    st = CustomerState(rec.customer_id)
    st.record, st.config = rec, CustomerConfig.from_record(rec)
    st.profile, st.segment = Profile.new(rec.customer_id), SEGMENT
    start = dt.date(2024, 3, 1)
    for d in range(days):
        kwh = 9.0 + (d % 7) * 0.35 + (30.0 if d >= days - 7 else 0.0)
        engine.process_inplace(st.profile, Reading.daily(start + dt.timedelta(days=d), kwh), st.config)
    return st


async def store(redis: Redis, keys: Keys, st: CustomerState) -> None:
    """What the worker's read model writes for the customer (``ReadModelWriter``, real Redis)."""
    assert st.record is not None
    w = ReadModelWriter(redis, keys)
    w.put_customer(st.customer_id, st.record.model_dump_json().encode())
    w.put_state(st.customer_id, encode_customer(st))
    await w.flush()


def at_now(app: FastAPI) -> None:
    app.state.runtime.snapshots.clock = lambda: NOW


async def test_the_snapshot_built_on_read_is_the_domains_snapshot_of_the_stored_state(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, redis: Redis, keys: Keys, api_settings: Settings
) -> None:
    engine = load_engine(api_settings)
    rec = CustomerRecord(
        customer_id="v1", manager_id="mgr-a", meter_ids=["m-v1"], tariff_plan="cn-js-residential"
    )
    st = folded(engine, rec)
    await store(redis, keys, st)
    assert st.profile is not None and st.config is not None
    want = engine.snapshot(st.profile, st.config, SEGMENT, NOW)  # the worker's in-memory profile
    assert want.money is not None and want.open_alerts and want.baseline.cycles  # a snapshot with everything
    at_now(app)

    r = await client.get("/v1/customers/v1/baseline", headers=bearer(tokens.ops))
    assert r.status_code == 200
    assert r.content == want.model_dump_json().encode()
    r = await client.get("/v1/customers/v1/baseline", headers=bearer(tokens.mgr_a))
    assert r.content == want.model_dump_json().encode()
    batch = await client.get("/v1/baselines?customer_id=v1&customer_id=nobody", headers=bearer(tokens.ops))
    assert batch.json() == {"baselines": [orjson.loads(r.content)], "missing": ["nobody"]}
    view = (await client.get("/v1/customers/v1", headers=bearer(tokens.ops))).json()
    assert view["segment"] == SEGMENT.model_dump() and view["open_alerts"] == want.open_alerts


async def test_a_manager_cannot_read_another_managers_customer_built_on_read(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, redis: Redis, keys: Keys, api_settings: Settings
) -> None:
    st = folded(
        load_engine(api_settings), CustomerRecord(customer_id="v2", manager_id="mgr-a", meter_ids=["m"])
    )
    await store(redis, keys, st)
    unknown = await client.get("/v1/customers/nobody/baseline", headers=bearer(tokens.mgr_b))
    for path in ("/v1/customers/v2/baseline", "/v1/customers/v2", "/v1/customers/v2/alerts"):
        r = await client.get(path, headers=bearer(tokens.mgr_b))
        assert r.status_code == 404, path
        assert r.json()["message"] == unknown.json()["message"].replace("nobody", "v2")
        assert (await client.get(path, headers=bearer(tokens.mgr_a))).status_code == 200, path
    batch = await client.get("/v1/baselines?customer_id=v2", headers=bearer(tokens.mgr_b))
    assert batch.json() == {"baselines": [], "missing": ["v2"]}


async def test_without_a_state_the_snapshot_of_an_earlier_worker_is_served_and_a_state_replaces_it(
    app: FastAPI, client: httpx.AsyncClient, tokens: Tokens, rm: ReadModel, redis: Redis, keys: Keys
) -> None:
    await rm.customer("v3", "mgr-a")
    old = await rm.baseline("v3", "mgr-a", kwh=33.3)
    r = await client.get("/v1/customers/v3/baseline", headers=bearer(tokens.mgr_a))
    assert r.status_code == 200 and r.content == old.model_dump_json().encode()

    st = folded(Engine(), CustomerRecord(customer_id="v3", manager_id="mgr-a", meter_ids=["m"]), days=20)
    await store(redis, keys, st)  # the upgraded worker: its state wins over the old snapshot
    at_now(app)
    got = (await client.get("/v1/customers/v3/baseline", headers=bearer(tokens.mgr_a))).json()
    assert got["processed_at"] == "2024-05-20T09:30:00Z" and got["cycle"]["cycle_to_date_kwh"] != 33.3


async def test_a_customer_never_seen_is_404_and_a_deleted_one_disappears(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis, keys: Keys, rm: ReadModel
) -> None:
    r = await client.get("/v1/customers/never/baseline", headers=bearer(tokens.ops))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    st = folded(Engine(), CustomerRecord(customer_id="v4", manager_id="mgr-a", meter_ids=["m"]), days=10)
    await store(redis, keys, st)
    await rm.baseline("v4", "mgr-a")  # and what an earlier worker left
    assert (await client.get("/v1/customers/v4/baseline", headers=bearer(tokens.ops))).status_code == 200

    w = ReadModelWriter(redis, keys)
    w.put_customer("v4", None)  # the tombstone, as the worker applies it
    await w.flush()
    for path in ("/v1/customers/v4/baseline", "/v1/customers/v4", "/v1/customers/v4/alerts"):
        assert (await client.get(path, headers=bearer(tokens.ops))).status_code == 404, path
    batch = await client.get("/v1/baselines?customer_id=v4", headers=bearer(tokens.ops))
    assert batch.json() == {"baselines": [], "missing": ["v4"]}


async def test_a_state_without_a_profile_or_unreadable_shows_no_snapshot(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis, keys: Keys, rm: ReadModel
) -> None:
    await rm.customer("v5", None)
    await redis.set(keys.state("v5"), b'{"v":2,"p":null,"s":null,"f":-1}')
    assert (await client.get("/v1/customers/v5/baseline", headers=bearer(tokens.ops))).status_code == 404
    await redis.set(keys.state("v5"), b'{"v":99}')  # a later version this API cannot read: no 500
    assert (await client.get("/v1/customers/v5/baseline", headers=bearer(tokens.ops))).status_code == 404
    assert (await client.get("/v1/customers/v5", headers=bearer(tokens.ops))).status_code == 200


async def test_segment_members_follow_the_state_over_an_earlier_workers_snapshot(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis, keys: Keys, rm: ReadModel
) -> None:
    from api.routes.members import backfill_members

    await rm.baseline("s1", "mgr-a")  # an earlier worker's snapshot: segment 2 (conftest)
    st = folded(Engine(), CustomerRecord(customer_id="s1", manager_id="mgr-a", meter_ids=["m"]), days=10)
    await store(redis, keys, st)  # the state names segment 4
    await rm.customer("s2", "mgr-a")
    await rm.baseline("s2", "mgr-a")  # no state yet: its snapshot decides
    assert await backfill_members(redis, keys) == 2
    assert await redis.zrange(keys.segment_members(SEGMENT.id or 0), 0, -1) == [b"s1"]
    assert await redis.zrange(keys.segment_members(2), 0, -1) == [b"s2"]
    await redis.zadd(keys.segment_members(2), {"s1": 0})  # stale: s1's state is in segment 4
    body = (await client.get("/v1/segments/2/customers", headers=bearer(tokens.mgr_a))).json()
    assert [m["customer_id"] for m in body["items"]] == ["s2"]
    body = (await client.get("/v1/segments/4/customers", headers=bearer(tokens.mgr_a))).json()
    assert [m["customer_id"] for m in body["items"]] == ["s1"]
    assert await redis.zrange(keys.segment_members(2), 0, -1) == [b"s2"]


async def test_a_state_that_cannot_be_built_is_404_and_spares_the_rest_of_a_batch(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis, keys: Keys, api_settings: Settings
) -> None:
    rec = CustomerRecord(customer_id="ok1", manager_id="mgr-a", meter_ids=["m"])
    st = folded(load_engine(api_settings), rec)
    await store(redis, keys, st)
    bad = folded(Engine(), CustomerRecord(customer_id="bad1", manager_id="mgr-a", meter_ids=["m"]), days=5)
    await store(redis, keys, bad)
    for body in (b'{"v":2,"p":"x"}', b'{"v":2,"p":{"v":2,"id":"bad1","co":[[5,1,1.0,1.0]]}}'):
        await redis.set(keys.state("bad1"), body)  # decodes, then fails in the domain
        r = await client.get("/v1/customers/bad1/baseline", headers=bearer(tokens.ops))
        assert r.status_code == 404, body
        for path in ("/v1/customers/bad1", "/v1/customers/bad1/daily"):  # the record and the days stay
            assert (await client.get(path, headers=bearer(tokens.ops))).status_code == 200, (path, body)
        r = await client.get("/v1/baselines?customer_id=ok1&customer_id=bad1", headers=bearer(tokens.ops))
        assert r.status_code == 200
        assert [b["customer_id"] for b in r.json()["baselines"]] == ["ok1"]
        assert r.json()["missing"] == ["bad1"]


async def test_a_snapshot_written_after_the_state_by_an_older_worker_is_served(
    client: httpx.AsyncClient, tokens: Tokens, redis: Redis, keys: Keys, rm: ReadModel
) -> None:
    from api.routes.members import backfill_members

    st = folded(Engine(), CustomerRecord(customer_id="r1", manager_id="mgr-a", meter_ids=["m"]), days=20)
    await store(redis, keys, st)  # this version's worker: state, segment 4
    rolled_back = await rm.baseline("r1", "mgr-a", kwh=44.4)  # then a worker of before: segment 2
    got = (await client.get("/v1/customers/r1/baseline", headers=bearer(tokens.ops))).content
    assert got == rolled_back.model_dump_json().encode()
    assert await backfill_members(redis, keys) == 1
    assert await redis.zrange(keys.segment_members(2), 0, -1) == [b"r1"]
    await store(redis, keys, st)  # this version again: its state write takes the old snapshot away
    assert await redis.get(keys.baseline("r1")) is None
    got_json = (await client.get("/v1/customers/r1/baseline", headers=bearer(tokens.ops))).json()
    assert got_json["cycle"]["cycle_to_date_kwh"] != 44.4 and got_json["segment"]["id"] == SEGMENT.id
