"""The real broker and the real Redis of the local stack, through the shared fixtures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from meterwatch.cli.devstack import run_async
from meterwatch.settings import Settings
from meterwatch.topics import (
    TopicSpec,
    create_topics,
    describe_topics,
    ensure_topics,
    list_topics,
    topic_specs,
)

pytestmark = pytest.mark.integration


async def test_kafka_round_trip_keeps_key_value_and_partitioning(
    mw_settings: Settings, kafka_producer: Any, kafka_consume: Any
) -> None:
    topic = mw_settings.topic_readings
    sent = []
    for i in range(20):
        key = f"meter-{i % 5}".encode()
        value = json.dumps({"meter_id": key.decode(), "ts": f"2024-01-01T00:{i:02d}:00+00:00", "kwh": i / 10})
        md = await kafka_producer.send_and_wait(topic, value.encode(), key=key)
        sent.append((key, value.encode(), md.partition))
    got = await kafka_consume(topic, len(sent))
    assert sorted((r.key, r.value, r.partition) for r in got) == sorted(sent)
    # same key -> same partition (what per-meter ordering relies on)
    by_key: dict[bytes, set[int]] = {}
    for r in got:
        by_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(parts) == 1 for parts in by_key.values())
    # the keys spread over more than one of the topic's partitions
    assert len({r.partition for r in got}) > 1


async def test_topics_are_created_with_the_contract_configuration(mw_settings: Settings) -> None:
    specs = {s.name: s for s in topic_specs(mw_settings)}
    info = await describe_topics(mw_settings, list(specs))
    assert set(info) == set(specs)
    assert info[mw_settings.topic_readings].partitions == mw_settings.readings_partitions
    assert info[mw_settings.topic_customers].partitions == mw_settings.customers_partitions
    assert info[mw_settings.topic_alerts].partitions == mw_settings.alerts_partitions
    assert info[mw_settings.topic_history].partitions == mw_settings.readings_partitions
    assert info[mw_settings.topic_segments].partitions == mw_settings.readings_partitions
    assert info[mw_settings.topic_features].partitions == 1
    assert info[mw_settings.topic_customers].configs["cleanup.policy"] == "compact"
    assert info[mw_settings.topic_readings].configs["cleanup.policy"] == "delete"
    assert info[mw_settings.topic_dlq].configs["retention.ms"] == str(mw_settings.dlq_retention_ms)
    # the dlq keeps messages longer than the broker default (7 days)
    assert int(info[mw_settings.topic_dlq].configs["retention.ms"]) > 7 * 24 * 3600 * 1000


async def test_ensure_topics_is_idempotent_and_never_alters_existing(mw_settings: Settings) -> None:
    # the fixture already created them: a second call creates nothing
    assert await ensure_topics(mw_settings) == []
    # a concurrent caller racing on the same names is fine too
    results = await asyncio.gather(ensure_topics(mw_settings), ensure_topics(mw_settings))
    assert list(results) == [[], []]
    extra = TopicSpec(name=mw_settings.topic_readings + "-extra", partitions=3)
    assert await create_topics(mw_settings, [extra]) == [extra.name]
    assert await create_topics(mw_settings, [extra]) == []
    assert (await describe_topics(mw_settings, [extra.name]))[extra.name].partitions == 3


async def test_compacted_customers_topic_keeps_latest_per_key_semantics(
    mw_settings: Settings, kafka_producer: Any
) -> None:
    """Tombstones (null values) are accepted on the compacted topic and read back as None."""
    topic = mw_settings.topic_customers
    await kafka_producer.send_and_wait(topic, b'{"customer_id": "c1"}', key=b"c1")
    await kafka_producer.send_and_wait(topic, None, key=b"c1")
    md = await kafka_producer.send_and_wait(topic, b'{"customer_id": "c1", "v": 2}', key=b"c1")
    consumer = AIOKafkaConsumer(bootstrap_servers=mw_settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, md.partition)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        batch = await consumer.getmany(tp, timeout_ms=10000)
        values = [r.value for r in batch.get(tp, [])]
    finally:
        await consumer.stop()
    assert values == [b'{"customer_id": "c1"}', None, b'{"customer_id": "c1", "v": 2}']


async def test_tests_are_isolated_from_each_other(
    mw_settings: Settings, mw_settings_factory: Any, kafka_producer: Any, kafka_consume: Any
) -> None:
    other = mw_settings_factory()
    assert other.redis_prefix != mw_settings.redis_prefix
    assert other.app_id != mw_settings.app_id
    assert other.data_dir != mw_settings.data_dir
    topics = await list_topics(mw_settings)
    assert mw_settings.topic_readings in topics and other.topic_readings in topics
    await kafka_producer.send_and_wait(mw_settings.topic_readings, b"mine", key=b"m1")
    assert [r.value for r in await kafka_consume(mw_settings.topic_readings, 1)] == [b"mine"]
    assert await kafka_consume(other.topic_readings, 1, timeout_s=1.5) == []


async def test_redis_round_trip_with_prefix(mw_settings: Settings, redis_client: Any) -> None:
    key = f"{mw_settings.redis_prefix}baseline:c1"
    await redis_client.set(key, json.dumps({"daily_kwh": 7.5}))
    await redis_client.zadd(f"{mw_settings.redis_prefix}alerts:c1", {"a1": 1.0, "a2": 2.0})
    assert json.loads(await redis_client.get(key)) == {"daily_kwh": 7.5}
    assert await redis_client.zrevrange(f"{mw_settings.redis_prefix}alerts:c1", 0, -1) == [b"a2", b"a1"]
    info = await redis_client.info("server")
    assert int(info["tcp_port"]) == mw_settings.redis_port


def test_cli_dev_status_shows_both_services_and_topics(stack: Settings, mw_settings: Settings) -> None:
    env_py = "import os, sys; from meterwatch.cli import main; sys.exit(main(['dev', 'status', '--json']))"
    proc = subprocess.run(
        [sys.executable, "-c", env_py],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env_for(stack),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    st = json.loads(proc.stdout)
    assert st["kafka"]["answering"] is True
    assert st["kafka"]["address"] == stack.kafka_bootstrap
    assert st["redis"]["answering"] is True
    assert st["redis"]["address"] == stack.redis_url
    assert mw_settings.topic_readings in st["topics"]
    # the human-readable form names both services
    proc = subprocess.run(
        [sys.executable, "-c", env_py.replace(", '--json'", "")],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env_for(stack),
        check=False,
    )
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("kafka") and " up " in lines[0]
    assert lines[1].startswith("redis") and " up " in lines[1]


def test_run_async_works_inside_a_running_loop() -> None:
    async def outer() -> int:
        async def inner() -> int:
            await asyncio.sleep(0)
            return 41

        return run_async(inner) + 1

    assert asyncio.run(outer()) == 42


def _env_for(settings: Settings) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    env.update(
        MW_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        MW_REDIS_URL=settings.redis_url,
        MW_DATA_DIR=str(settings.data_dir),
        MW_KAFKA_CONTROLLER_PORT=str(settings.kafka_controller_port),
    )
    return env


def _non_loopback_ipv4() -> list[str]:
    import socket

    addrs: set[str] = set()
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            addrs.add(str(info[4][0]))
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.255", 9))  # no packet is sent: this only picks the outgoing interface
        addrs.add(s.getsockname()[0])
    return sorted(a for a in addrs if not a.startswith("127."))


def test_stack_listens_on_loopback_only(stack: Settings) -> None:
    from meterwatch.cli.devstack import port_open

    addrs = _non_loopback_ipv4()
    for addr in addrs:
        for port in (stack.kafka_port, stack.kafka_controller_port, stack.redis_port):
            assert not port_open(addr, port), f"{addr}:{port} answers from outside loopback"
    assert port_open("127.0.0.1", stack.kafka_port) and port_open("127.0.0.1", stack.redis_port)


def test_rendered_broker_config_is_single_node_loopback_under_data_dir(tmp_path: Any) -> None:
    from meterwatch.cli.devstack import render_kafka_config

    s = Settings(kafka_bootstrap="127.0.0.1:19555", kafka_controller_port=19556, data_dir=tmp_path)
    conf = dict(
        line.split("=", 1)
        for line in render_kafka_config(s).splitlines()
        if line and not line.startswith("#")
    )
    assert conf["listeners"] == "PLAINTEXT://127.0.0.1:19555,CONTROLLER://127.0.0.1:19556"
    assert conf["controller.quorum.voters"] == "1@127.0.0.1:19556"
    assert conf["process.roles"] == "broker,controller"
    assert conf["log.dirs"].startswith(str(tmp_path))
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor"):
        assert conf[key] == "1"
    assert conf["group.initial.rebalance.delay.ms"] == "0"


@pytest.mark.slow
async def test_broker_log_cleaner_compacts_a_compacted_topic(
    mw_settings: Settings, kafka_producer: Any
) -> None:
    """The broker's cleaner runs (what keeps `customers` = the latest record per key)."""
    topic = mw_settings.topic_customers + "-compaction"
    spec = TopicSpec(
        name=topic,
        partitions=1,
        configs={
            "cleanup.policy": "compact",
            "segment.ms": "100",
            "min.cleanable.dirty.ratio": "0.001",
            "min.compaction.lag.ms": "0",
        },
    )
    await create_topics(mw_settings, [spec])
    for v in range(5):
        await kafka_producer.send_and_wait(topic, f"v{v}".encode(), key=b"c1")
    await kafka_producer.send_and_wait(topic, b"only", key=b"c2")
    await asyncio.sleep(0.3)
    await kafka_producer.send_and_wait(topic, b"roll", key=b"c3")  # rolls the segment: the rest is cleanable

    async def read_all() -> list[tuple[bytes, bytes]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=mw_settings.kafka_bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            out: list[tuple[bytes, bytes]] = []
            while True:
                batch = await consumer.getmany(tp, timeout_ms=500)
                if not batch.get(tp):
                    return out
                out.extend((r.key, r.value) for r in batch[tp])
        finally:
            await consumer.stop()

    assert len(await read_all()) == 7
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    records = await read_all()
    while [k for k, _ in records].count(b"c1") > 1 and loop.time() < deadline:
        await asyncio.sleep(1)
        records = await read_all()
    c1 = [v for k, v in records if k == b"c1"]
    assert c1 == [b"v4"], records
    assert (b"c2", b"only") in records


async def test_consumer_lag_counts_what_a_group_has_not_committed(
    stack: Settings, mw_settings: Settings, kafka_producer: Any
) -> None:
    from aiokafka.structs import OffsetAndMetadata

    from meterwatch.topics import consumer_lag

    topic = mw_settings.topic_alerts
    for i in range(7):
        await kafka_producer.send_and_wait(topic, f"a{i}".encode(), key=b"k", partition=1)
    await kafka_producer.send_and_wait(topic, b"b", key=b"k", partition=2)
    group = f"{mw_settings.app_id}-lag"
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=mw_settings.kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.commit(
            {
                TopicPartition(topic, 1): OffsetAndMetadata(3, ""),
                TopicPartition(topic, 2): OffsetAndMetadata(1, ""),
            }
        )
    finally:
        await consumer.stop()
    (lag,) = await consumer_lag(mw_settings, [group])
    assert lag.group_id == group
    assert {(p.partition, p.committed, p.end, p.lag) for p in lag.partitions} == {(1, 3, 7, 4), (2, 1, 1, 0)}
    assert lag.total == 4 and lag.by_topic() == {topic: 4}
    # and the CLI shows it
    code = "import sys; from meterwatch.cli import main; sys.exit(main(['dev', 'status', '--lag', '--json']))"
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env_for(stack),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["consumer_lag"][group] == {topic: 4}, proc.stderr
