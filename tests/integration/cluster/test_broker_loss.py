"""Three KRaft brokers, topics with 3 replicas and min.insync.replicas 2 (``MW_TOPIC_REPLICATION``,
``MW_TOPIC_MIN_INSYNC_REPLICAS``), one broker killed with SIGKILL mid-stream: nothing is lost.

The cluster is private to the test (``meterwatch.cli.devstack.cluster`` on free ports); Redis
is the shared stack's, under the test's own prefix. The worker runs as a ``meterwatch
worker`` process; half the readings go in before the kill, half after it (acks=all still
succeeds with two in-sync replicas). The surge must come out as exactly one alert, and
the baselines must reach the last reading.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.snapshots import Snapshots
from meterwatch.cli.devstack import run_async
from meterwatch.cli.devstack.cluster import Cluster, ClusterLayout, free_port
from meterwatch.cli.devstack.isolation import delete_redis_keys, isolated_settings
from meterwatch.connections import kafka_client_kwargs, redis_client
from meterwatch.contracts import Alert
from meterwatch.keys import Keys
from meterwatch.settings import Settings
from meterwatch.topics import ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(ClusterLayout.free(tmp_path / "cluster"))
    try:
        c.start_kafka()
        yield c
    finally:
        c.stop()


def _customer(cid: str, meter: str) -> dict[str, Any]:
    return {"customer_id": cid, "meter_ids": [meter], "name": cid, "phone": "+447700900123",
            "manager_id": "mgr-1", "read_day": 1, "timezone": "UTC", "language": "en",
            "sms_opt_in": True}  # fmt: skip


def _readings(meter: str, days: int, surge_from: int, factor: float, seed: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    for day in range(days):
        level = 8.0 * (1 + 0.15 * rnd.uniform(-1, 1)) * (factor if day >= surge_from else 1.0)
        for i in range(48):
            ts = T0 + dt.timedelta(days=day, minutes=30 * (i + 1))
            out.append({"meter_id": meter, "ts": ts.isoformat(), "kwh": round(level / 48, 5)})
    return out


async def _publish(s: Settings, topic: str, items: list[tuple[str, dict[str, Any]]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**kafka_client_kwargs(s), acks="all", enable_idempotence=True, linger_ms=20)
    await producer.start()
    try:
        futs = [await producer.send(topic, key=k.encode(), value=json.dumps(v).encode()) for k, v in items]
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


async def _alerts(s: Settings) -> list[Alert]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**kafka_client_kwargs(s), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(s.topic_alerts, p) for p in range(s.alerts_partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        batches = await consumer.getmany(*parts, timeout_ms=2000)
        return [Alert.model_validate_json(r.value) for recs in batches.values() for r in recs]
    finally:
        await consumer.stop()


async def _replication(s: Settings, topic: str) -> tuple[set[int], str]:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(**kafka_client_kwargs(s))
    await admin.start()
    try:
        (desc,) = await admin.describe_topics([topic])
        replicas = {len(p["replicas"]) for p in desc["partitions"]}
        (resp,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        configs = {c[0]: c[1] for c in resp.resources[0][4]}
        return replicas, str(configs.get("min.insync.replicas"))
    finally:
        await admin.close()


async def _wait(predicate: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last={last!r}")


async def test_a_broker_killed_mid_stream_loses_nothing(
    cluster: Cluster, stack: Settings, tmp_path: Path
) -> None:
    s = isolated_settings(stack, tmp_path / "mw-data").model_copy(
        update={
            "kafka_bootstrap": cluster.layout.bootstrap,
            "topic_replication": 3,
            "topic_min_insync_replicas": 2,
        }
    )
    run_async(lambda: ensure_topics(s))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    for name, value in s.model_dump(mode="json").items():
        if (
            value is not None
            and not name.endswith("_file")
            and not hasattr(getattr(s, name), "get_secret_value")
        ):
            env[f"MW_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        worker = subprocess.Popen(  # noqa: ASYNC220 - a child process for the test's lifetime
            [sys.executable, "-m", "meterwatch.cli", "worker", "--instance", "w0",
             "--metrics-port", str(free_port())],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    redis = redis_client(s)
    keys = Keys(s.redis_prefix)
    try:
        await _publish(s, s.topic_customers, [("c-surge", _customer("c-surge", "m-surge")),
                                              ("c-quiet", _customer("c-quiet", "m-quiet"))])  # fmt: skip
        surge = _readings("m-surge", 40, 32, 5.0, seed=2)
        quiet = _readings("m-quiet", 40, 99, 1.0, seed=1)
        half = 20 * 48
        await _publish(s, s.topic_readings, [(r["meter_id"], r) for r in surge[:half] + quiet[:half]])

        async def processed(n: int) -> int | None:
            assert worker.poll() is None, log.read_text()[-3000:]
            got = int(await redis.hget(keys.metrics("worker"), "readings_processed") or 0)
            return got if got >= n else None

        await _wait(lambda: processed(2 * half), 90, "the first half to be processed")
        cluster.kill9("kafka2")  # node 2: whatever it led moves to the others
        await _publish(s, s.topic_readings, [(r["meter_id"], r) for r in surge[half:] + quiet[half:]])
        await _wait(lambda: processed(len(surge) + len(quiet)), 120, "every reading after the broker loss")
        await asyncio.sleep(2)  # a duplicate folded twice would show now
        assert int(await redis.hget(keys.metrics("worker"), "readings_processed")) == len(surge) + len(quiet)
        for cid in ("c-surge", "c-quiet"):
            raw, _ = await Snapshots.for_settings(s).read(redis, cid)  # as the Ops API shows it
            assert raw is not None, cid
            snap = json.loads(raw)
            assert snap["as_of"].startswith("2024-04-10T00:00"), snap["as_of"]  # the last reading
        alerts = await _alerts(s)
        assert [(a.customer_id, a.rule) for a in alerts] == [("c-surge", "sudden_increase")]
        for topic in (s.topic_readings, f"{s.app_id}-profiles-changelog"):
            assert await _replication(s, topic) == ({3}, "2"), topic
    finally:
        await redis.aclose()
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=10)
        delete_redis_keys(s)
    assert "Traceback" not in log.read_text(errors="replace")
