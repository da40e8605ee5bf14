"""The Redis read-model writer against the real Redis of the stack."""

from __future__ import annotations

import datetime as dt
import doctest
import importlib
import json
from typing import Any

import pytest
from redis.asyncio import Redis

from meterwatch.contracts import Alert
from meterwatch.keys import Keys
from meterwatch.settings import Settings
from stream import readmodel
from stream.readmodel import ReadModelWriter

pytestmark = [pytest.mark.integration]


def alert(cid: str, n: int) -> Alert:
    ts = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=n)
    return Alert.model_validate(
        {
            "alert_id": f"{cid}-a{n:04d}",
            "customer_id": cid,
            "rule": "sudden_increase",
            "cycle": {"start": "2024-01-01", "end": "2024-01-31"},
            "observed": {"ratio": 4.0},
            "triggered_by": ts.isoformat(),
            "created_at": ts.isoformat(),
            "explanation": {"zh-CN": "用电量突增", "en": "Usage jumped"},
        }
    )


async def test_alerts_are_bounded_to_the_newest_200_in_zset_and_hash(
    mw_settings: Settings, redis_client: Any
) -> None:
    keys = Keys(mw_settings.redis_prefix)
    w = ReadModelWriter(redis_client, keys, flush_ms=50)
    for n in range(150):
        w.add_alert(alert("c1", n))
    await w.flush()
    for n in range(150, 205):
        w.add_alert(alert("c1", n))
    w.add_alert(alert("c2", 1))
    await w.flush()
    ids = [x.decode() for x in await redis_client.zrange(keys.alerts("c1"), 0, -1)]
    assert len(ids) == 200 and ids[0] == "c1-a0005" and ids[-1] == "c1-a0204"
    assert sorted(x.decode() for x in await redis_client.hkeys(keys.alert_bodies("c1"))) == ids
    body = Alert.model_validate_json(await redis_client.hget(keys.alert_bodies("c1"), "c1-a0204"))
    assert body.triggered_by == alert("c1", 204).triggered_by
    assert await redis_client.zcard(keys.alerts("c2")) == 1
    assert float(await redis_client.get(keys.heartbeat)) > 0


async def test_the_newest_state_is_written_and_deletes_win(mw_settings: Settings, redis_client: Any) -> None:
    keys = Keys(mw_settings.redis_prefix)
    w = ReadModelWriter(redis_client, keys)
    w.put_state("c1", b'{"v":2,"tag":"old"}')
    w.put_state("c1", b'{"v":2,"tag":"new"}')
    w.put_customer("c1", b'{"customer_id": "c1"}')
    await redis_client.set(keys.baseline("c1"), b'{"by": "an earlier worker"}')
    await w.flush()
    assert await redis_client.get(keys.state("c1")) == b'{"v":2,"tag":"new"}'
    assert await redis_client.get(keys.customer("c1")) == b'{"customer_id": "c1"}'
    w.put_state("c1", b'{"v":2,"tag":"later"}')
    w.put_customer("c1", None)  # tombstone after a pending state: every key of the customer goes
    await w.flush()
    assert await redis_client.exists(keys.state("c1"), keys.baseline("c1"), keys.customer("c1")) == 0
    w.put_customer("c1", None)
    w.put_state("c1", b'{"v":2,"tag":"again"}')  # a state after the tombstone: the customer is back
    await w.flush()
    assert await redis_client.get(keys.state("c1")) == b'{"v":2,"tag":"again"}'


async def test_many_states_and_records_in_one_flush_are_all_written(
    mw_settings: Settings, redis_client: Any
) -> None:
    # more keys than one MSET / DEL command takes, and more commands than one pipeline chunk:
    # every key lands, tombstones delete theirs
    keys = Keys(mw_settings.redis_prefix)
    w = ReadModelWriter(redis_client, keys)
    n = 2 * readmodel._MSET_KEYS + 37
    for i in range(n):
        cid = f"c{i:04d}"
        w.put_state(cid, json.dumps({"customer_id": cid}).encode())
        w.put_customer(cid, json.dumps({"customer_id": cid}).encode())
    await w.flush()
    got = await redis_client.mget([keys.state(f"c{i:04d}") for i in range(n)])
    assert [json.loads(v) for v in got] == [{"customer_id": f"c{i:04d}"} for i in range(n)]
    assert sum(1 for v in await redis_client.mget([keys.customer(f"c{i:04d}") for i in range(n)]) if v) == n
    for i in range(0, n, 2):
        w.put_customer(f"c{i:04d}", None)
    await w.flush()
    left = await redis_client.mget([keys.customer(f"c{i:04d}") for i in range(n)])
    assert [i for i, v in enumerate(left) if v is not None] == list(range(1, n, 2))
    states = await redis_client.mget([keys.state(f"c{i:04d}") for i in range(n)])
    assert [i for i, v in enumerate(states) if v is not None] == list(range(1, n, 2))


async def test_redis_down_keeps_pending_writes_for_the_next_flush(
    mw_settings: Settings, redis_client: Any
) -> None:
    keys = Keys(mw_settings.redis_prefix)
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    w = ReadModelWriter(dead, keys)
    w.put_state("c9", b'{"v": 1}')
    w.put_state("c7", b'{"v": 1}')
    w.add_alert(alert("c9", 1))
    w.incr_metrics({"readings_processed": 5})
    assert await w.flush() == 0
    assert w.flush_errors == 1 and w.pending >= 3
    # a newer state marked while Redis was down wins over the restored one
    w.put_state("c9", b'{"v": 2}')
    w.redis = redis_client
    w._trim = redis_client.register_script(w._trim.script)
    await w.flush()
    await dead.aclose()
    assert await redis_client.mget(keys.state("c9"), keys.state("c7")) == [b'{"v": 2}', b'{"v": 1}']
    assert await redis_client.zcard(keys.alerts("c9")) == 1
    assert await redis_client.hget(keys.metrics("worker"), "readings_processed") == b"5"


async def test_a_customer_deleted_during_a_failed_flush_gets_no_state_back(
    mw_settings: Settings, redis_client: Any
) -> None:
    keys = Keys(mw_settings.redis_prefix)
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    w = ReadModelWriter(dead, keys)
    take = w.workbench.take

    def take_then_delete() -> Any:  # the tombstone arrives while this flush is under way
        w.put_customer("c8", None)
        return take()

    w.workbench.take = take_then_delete  # type: ignore[method-assign]
    w.put_state("c8", b'{"v": 1}')
    assert await w.flush() == 0 and w.flush_errors == 1
    w.workbench.take = take  # type: ignore[method-assign]
    w.redis = redis_client
    w._trim = redis_client.register_script(w._trim.script)
    await redis_client.set(keys.state("c8"), b'{"v": 0}')  # what an earlier flush wrote
    await redis_client.set(keys.baseline("c8"), b'{"v": 0}')  # what an earlier worker wrote
    await w.flush()
    await dead.aclose()
    assert await redis_client.exists(keys.state("c8"), keys.baseline("c8"), keys.customer("c8")) == 0


async def test_exact_counters_are_replaced_per_partition_and_summed(
    mw_settings: Settings, redis_client: Any
) -> None:
    """A restarted or rebalanced worker publishes a partition's recovered value: it replaces, never adds."""
    keys = Keys(mw_settings.redis_prefix)
    crashed = ReadModelWriter(redis_client, keys, partitions=4)
    crashed.set_partition_counters(0, {"readings_processed": 100})
    crashed.set_partition_counters(3, {"readings_processed": 50, "duplicates:reading": 2})
    crashed.incr_metrics({"readings_in": 150})
    await crashed.flush()
    # the crash lost the last 10 of partition 0's readings; the new owner applies them again
    successor = ReadModelWriter(redis_client, keys, partitions=4)
    successor.set_partition_counters(0, {"readings_processed": 90})
    successor.set_partition_counters(0, {"readings_processed": 100})
    await successor.flush()
    counts = await redis_client.hgetall(keys.metrics("worker"))
    assert counts[b"readings_processed"] == b"150" and counts[b"duplicates:reading"] == b"2"
    assert counts[b"readings_in"] == b"150"


@pytest.mark.parametrize(
    "module",
    [
        "stream.decode",
        "stream.envelope",
        "stream.registry",
        "stream.metrics",
        "stream.produce",
        "stream.state",
        "stream.plausibility",
        "stream.deadletters",
        "stream.readings_group",
    ],
)
def test_doctests_of_stream_modules(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
