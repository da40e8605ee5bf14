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


async def test_snapshots_are_built_once_per_flush_and_deletes_win(
    mw_settings: Settings, redis_client: Any
) -> None:
    keys = Keys(mw_settings.redis_prefix)
    w = ReadModelWriter(redis_client, keys)
    calls: list[str] = []

    def thunk(tag: str) -> Any:
        def build() -> bytes:
            calls.append(tag)
            return json.dumps({"tag": tag}).encode()

        return build

    w.mark_snapshot("c1", thunk("old"))
    w.mark_snapshot("c1", thunk("new"))
    w.put_customer("c1", b'{"customer_id": "c1"}')
    await w.flush()
    assert calls == ["new"]
    assert json.loads(await redis_client.get(keys.baseline("c1"))) == {"tag": "new"}
    assert await redis_client.get(keys.customer("c1")) == b'{"customer_id": "c1"}'
    w.mark_snapshot("c1", thunk("later"))
    w.put_customer("c1", None)  # tombstone after a pending snapshot: both keys go
    await w.flush()
    assert await redis_client.exists(keys.baseline("c1"), keys.customer("c1")) == 0
    assert calls == ["new"]


async def test_many_snapshots_and_records_in_one_flush_are_all_written(
    mw_settings: Settings, redis_client: Any
) -> None:
    # more keys than one MSET / DEL command takes, and more commands than one pipeline chunk:
    # every key lands, a failing snapshot skips only itself, tombstones delete theirs
    keys = Keys(mw_settings.redis_prefix)
    w = ReadModelWriter(redis_client, keys)
    n = 2 * readmodel._MSET_KEYS + 37

    def body(cid: str) -> Any:
        def build() -> bytes:
            if cid == "c0013":
                raise ValueError("a bad snapshot")
            return json.dumps({"customer_id": cid}).encode()

        return build

    for i in range(n):
        cid = f"c{i:04d}"
        w.mark_snapshot(cid, body(cid))
        w.put_customer(cid, json.dumps({"customer_id": cid}).encode())
    await w.flush()
    got = await redis_client.mget([keys.baseline(f"c{i:04d}") for i in range(n)])
    assert [i for i, v in enumerate(got) if v is None] == [13]
    assert all(json.loads(v) == {"customer_id": f"c{i:04d}"} for i, v in enumerate(got) if v)
    assert sum(1 for v in await redis_client.mget([keys.customer(f"c{i:04d}") for i in range(n)]) if v) == n
    for i in range(0, n, 2):
        w.put_customer(f"c{i:04d}", None)
    await w.flush()
    left = await redis_client.mget([keys.customer(f"c{i:04d}") for i in range(n)])
    assert [i for i, v in enumerate(left) if v is not None] == list(range(1, n, 2))
    base = await redis_client.mget([keys.baseline(f"c{i:04d}") for i in range(n)])
    assert [i for i, v in enumerate(base) if v is not None] == [i for i in range(1, n, 2) if i != 13]


async def test_redis_down_keeps_pending_writes_for_the_next_flush(
    mw_settings: Settings, redis_client: Any
) -> None:
    keys = Keys(mw_settings.redis_prefix)
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    w = ReadModelWriter(dead, keys)
    w.mark_snapshot("c9", lambda: b'{"v": 1}')
    w.add_alert(alert("c9", 1))
    w.incr_metrics({"readings_processed": 5})
    assert await w.flush() == 0
    assert w.flush_errors == 1 and w.pending >= 2
    # a newer snapshot marked while Redis was down wins over the restored one
    w.mark_snapshot("c9", lambda: b'{"v": 2}')
    w.redis = redis_client
    w._trim = redis_client.register_script(w._trim.script)
    await w.flush()
    await dead.aclose()
    assert await redis_client.get(keys.baseline("c9")) == b'{"v": 2}'
    assert await redis_client.zcard(keys.alerts("c9")) == 1
    assert await redis_client.hget(keys.metrics("worker"), "readings_processed") == b"5"


async def test_a_customer_deleted_during_a_failed_flush_gets_no_baseline_back(
    mw_settings: Settings, redis_client: Any
) -> None:
    keys = Keys(mw_settings.redis_prefix)
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    w = ReadModelWriter(dead, keys)

    def build() -> bytes:  # the tombstone arrives while this flush is under way
        w.put_customer("c8", None)
        return b'{"v": 1}'

    w.mark_snapshot("c8", build)
    assert await w.flush() == 0 and w.flush_errors == 1
    w.redis = redis_client
    w._trim = redis_client.register_script(w._trim.script)
    await redis_client.set(keys.baseline("c8"), b'{"v": 0}')  # what an earlier flush wrote
    await w.flush()
    await dead.aclose()
    assert await redis_client.exists(keys.baseline("c8"), keys.customer("c8")) == 0


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
