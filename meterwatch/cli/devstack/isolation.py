"""Private corners of a long-lived shared stack (tests, benchmarks) and their removal.

:func:`isolated_settings` gives a ``Settings`` copy whose topics, consumer groups (worker
``app_id``, its ``-ingest`` group, the notifier's group), Redis prefix and data dir all carry
one unique tag ``t<hex>-``; :func:`cleanup` removes everything with that tag: topics (Faust's
internal ones too), consumer groups and Redis keys, so a dev stack that lives for weeks
does not fill up with test leftovers.

>>> from meterwatch.settings import Settings
>>> s = isolated_settings(Settings(), "/tmp/x")
>>> tag = prefix_of(s)
>>> s.app_id.startswith(tag) and s.notifier_group_id.startswith(tag) and s.topic_alerts.startswith(tag)
True
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from meterwatch.connections import kafka_client_kwargs, redis_sync_client
from meterwatch.settings import Settings

TOPIC_FIELDS = (
    "topic_readings",
    "topic_customers",
    "topic_dlq",
    "topic_alerts",
    "topic_history",
    "topic_features",
    "topic_segments",
    "topic_weather",
)


def isolated_settings(base: Settings, data_dir: os.PathLike[str] | str) -> Settings:
    """A copy of ``base`` with unique topics, consumer groups, Redis prefix and data dir."""
    tag = f"t{uuid.uuid4().hex[:10]}-"
    update: dict[str, Any] = {f: f"{tag}{getattr(base, f)}" for f in TOPIC_FIELDS}
    update.update(
        redis_prefix=f"mw{tag[:-1]}:",
        app_id=f"{tag}{base.app_id}",
        notifier_group_id=f"{tag}{base.notifier_group_id}",
        data_dir=data_dir,
    )
    return base.model_copy(update=update)


def prefix_of(settings: Settings) -> str:
    """The tag of an isolated ``Settings`` (``t<hex>-``)."""
    return settings.topic_readings.split("-", 1)[0] + "-"


async def list_groups(settings: Settings) -> list[str]:
    """The consumer groups the broker knows."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings), client_id="meterwatch-cleanup")
    await admin.start()
    try:
        return sorted(str(g[0]) for g in await admin.list_consumer_groups())
    finally:
        await admin.close()


async def delete_groups(settings: Settings, names: list[str]) -> dict[str, int]:
    """Delete consumer groups; returns the Kafka error code per group (0 = deleted).

    A group with active members is not deleted (error 68, NON_EMPTY_GROUP).
    """
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.protocol.admin import DeleteGroupsRequest

    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings), client_id="meterwatch-cleanup")
    await admin.start()
    codes: dict[str, int] = {}
    try:
        for name in names:
            node = await admin.find_coordinator(name)
            # aiokafka 0.14 has the DeleteGroups request but no admin method for it
            resp = await admin._send_request(DeleteGroupsRequest([name]), node)
            for group_id, code in resp.results:
                codes[str(group_id)] = int(code)
    finally:
        await admin.close()
    return codes


async def drop_prefixed(settings: Settings, prefixes: tuple[str, ...], wait_s: float = 30.0) -> None:
    """Delete every topic and consumer group whose name starts with one of ``prefixes``.

    Returns once the broker no longer lists the topics (at most ``wait_s`` later).
    """
    from meterwatch.topics import delete_topics, list_topics

    groups = [g for g in await list_groups(settings) if g.startswith(prefixes)]
    if groups:
        await delete_groups(settings, groups)
    topics = [n for n in await list_topics(settings) if n.startswith(prefixes)]
    if topics:
        await delete_topics(settings, topics)
        await _until_gone(settings, prefixes, wait_s)


async def _until_gone(settings: Settings, prefixes: tuple[str, ...], wait_s: float) -> None:
    """Topic deletion reaches the metadata asynchronously: wait (bounded) until none is listed."""
    import asyncio

    from meterwatch.topics import list_topics

    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while loop.time() < deadline:
        if not [n for n in await list_topics(settings) if n.startswith(prefixes)]:
            return
        await asyncio.sleep(0.2)


def delete_redis_keys(settings: Settings) -> int:
    """Delete the keys under ``settings.redis_prefix``; returns how many."""
    client = redis_sync_client(settings, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{settings.redis_prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
        return len(keys)
    finally:
        client.close()


def cleanup(settings: Settings) -> None:
    """Best effort: remove an isolated ``Settings``' topics, consumer groups and Redis keys."""
    import redis

    from meterwatch.cli.devstack.procs import run_async

    try:
        run_async(lambda: drop_prefixed(settings, (prefix_of(settings),), wait_s=10.0))
    except Exception:  # noqa: S110 - cleanup must not mask the tests' outcome
        pass
    try:
        delete_redis_keys(settings)
    except redis.RedisError:
        pass
