"""Tests leave nothing behind on the long-lived dev stack: topics AND consumer groups go."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from meterwatch.cli.devstack import run_async
from meterwatch.cli.devstack.isolation import cleanup, isolated_settings, list_groups, prefix_of
from meterwatch.settings import Settings
from meterwatch.topics import ensure_topics, list_topics, topic_specs

pytestmark = pytest.mark.integration


async def _join_and_commit(settings: Settings, group: str) -> None:
    """What a worker or notifier leaves: a group with committed offsets (no member once stopped)."""
    topic = settings.topic_history
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"x", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        for _ in range(40):
            if await consumer.getmany(timeout_ms=500):
                break
        await consumer.commit()
    finally:
        await consumer.stop()


def _listing(settings: Settings, prefix: str) -> tuple[list[str], list[str]]:
    topics = [t for t in run_async(lambda: list_topics(settings)) if t.startswith(prefix)]
    groups = [g for g in run_async(lambda: list_groups(settings)) if g.startswith(prefix)]
    return topics, groups


def test_cleanup_removes_the_tests_topics_and_consumer_groups(stack: Settings, tmp_path: Path) -> None:
    mine = isolated_settings(stack, tmp_path / "a")
    other = isolated_settings(stack, tmp_path / "b")  # another test's: must survive
    try:
        for s in (mine, other):
            run_async(functools.partial(ensure_topics, s))
        # the groups a worker (app_id, app_id-ingest) and a notifier make
        for group in (mine.app_id, f"{mine.app_id}-ingest", mine.notifier_group_id, other.app_id):
            owner = mine if group.startswith(prefix_of(mine)) else other
            run_async(functools.partial(_join_and_commit, owner, group))
        before_topics, before_groups = _listing(stack, prefix_of(mine))
        assert sorted(before_topics) == sorted(spec.name for spec in topic_specs(mine))
        assert sorted(before_groups) == sorted([mine.app_id, f"{mine.app_id}-ingest", mine.notifier_group_id])
        cleanup(mine)
        assert _listing(stack, prefix_of(mine)) == ([], [])
        other_topics, other_groups = _listing(stack, prefix_of(other))
        assert sorted(other_topics) == sorted(spec.name for spec in topic_specs(other))
        assert other_groups == [other.app_id]
    finally:
        cleanup(other)
    assert _listing(stack, prefix_of(other)) == ([], [])
