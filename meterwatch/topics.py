"""Kafka topic administration: the topics of CONTRACTS.md with explicit settings.

``ensure_topics`` is idempotent (it creates what is missing and leaves the rest);
``describe_topics`` reads back partition counts and configuration, e.g. for tests
asserting the configuration as created.

>>> from meterwatch.settings import Settings
>>> specs = {t.name: t for t in topic_specs(Settings())}
>>> specs["customers"].configs["cleanup.policy"]
'compact'
>>> specs["meter-readings"].partitions == Settings().readings_partitions
True
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from meterwatch.settings import Settings

_TOPIC_ALREADY_EXISTS = 36
_RETRIABLE = {3, 5, 6, 7, 41}  # unknown topic, leader not available, not leader, timeout, not controller


class TopicSpec(BaseModel):
    name: str
    partitions: int = Field(ge=1)
    replication: int = Field(default=1, ge=1)
    configs: dict[str, str] = Field(default_factory=dict)


class TopicInfo(BaseModel):
    name: str
    partitions: int
    configs: dict[str, str]


class TopicAdminError(RuntimeError):
    pass


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics meterwatch needs, named and sized from ``settings``."""
    return [
        TopicSpec(name=settings.topic_readings, partitions=settings.readings_partitions),
        TopicSpec(
            name=settings.topic_customers,
            partitions=settings.customers_partitions,
            configs={"cleanup.policy": "compact", "min.compaction.lag.ms": "0"},
        ),
        TopicSpec(
            name=settings.topic_dlq,
            partitions=1,
            configs={"retention.ms": str(settings.dlq_retention_ms), "cleanup.policy": "delete"},
        ),
        TopicSpec(name=settings.topic_alerts, partitions=settings.alerts_partitions),
        TopicSpec(
            name=settings.topic_history,
            partitions=settings.readings_partitions,
            configs={"retention.ms": str(settings.changelog_retention_ms)},
        ),
        TopicSpec(name=settings.topic_features, partitions=1),
        TopicSpec(name=settings.topic_segments, partitions=settings.readings_partitions),
    ]


@contextlib.asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[object]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="meterwatch-admin", request_timeout_ms=15000
    )
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def list_topics(settings: Settings) -> list[str]:
    """Names of the topics on the broker, sorted (internal ``__`` topics left out)."""
    async with admin_client(settings) as admin:
        names: list[str] = await admin.list_topics()  # type: ignore[attr-defined]
    return sorted(n for n in names if not n.startswith("__"))


async def create_topics(settings: Settings, specs: list[TopicSpec], timeout_s: float = 30.0) -> list[str]:
    """Create the missing topics of ``specs``; return the names created. Idempotent."""
    from aiokafka.admin import NewTopic

    created: list[str] = []
    async with admin_client(settings) as admin:
        existing = set(await admin.list_topics())  # type: ignore[attr-defined]
        missing = [s for s in specs if s.name not in existing]
        if missing:
            resp = await admin.create_topics(  # type: ignore[attr-defined]
                [
                    NewTopic(
                        name=s.name,
                        num_partitions=s.partitions,
                        replication_factor=s.replication,
                        topic_configs=dict(s.configs),
                    )
                    for s in missing
                ],
                timeout_ms=int(timeout_s * 1000),
            )
            for err in resp.topic_errors:
                name, code = err[0], err[1]
                if code == 0:
                    created.append(name)
                elif code != _TOPIC_ALREADY_EXISTS:
                    message = err[2] if len(err) > 2 else ""
                    raise TopicAdminError(f"creating topic {name!r} failed: error {code} {message}")
        # wait until every partition has a leader, so producers can write at once
        want = {s.name: s.partitions for s in specs}
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            meta = await admin.describe_topics(list(want))  # type: ignore[attr-defined]
            ready = {
                t["topic"]
                for t in meta
                if t["error_code"] == 0
                and len(t["partitions"]) >= want.get(t["topic"], 1)
                and all(p["error_code"] == 0 and p["leader"] >= 0 for p in t["partitions"])
            }
            if ready >= set(want):
                break
            if asyncio.get_running_loop().time() > deadline:
                raise TopicAdminError(
                    f"topics without leaders after {timeout_s}s: {sorted(set(want) - ready)}"
                )
            await asyncio.sleep(0.1)
    return created


async def ensure_topics(settings: Settings) -> list[str]:
    """Create meterwatch's topics (CONTRACTS.md) if missing; return the names created."""
    return await create_topics(settings, topic_specs(settings))


async def delete_topics(settings: Settings, names: list[str]) -> None:
    """Delete topics (unknown names are ignored)."""
    async with admin_client(settings) as admin:
        existing = set(await admin.list_topics())  # type: ignore[attr-defined]
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)  # type: ignore[attr-defined]


async def describe_topics(settings: Settings, names: list[str]) -> dict[str, TopicInfo]:
    """Partition counts and effective configuration of ``names``, as the broker reports them."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    out: dict[str, TopicInfo] = {}
    async with admin_client(settings) as admin:
        meta = await admin.describe_topics(names)  # type: ignore[attr-defined]
        partitions = {t["topic"]: len(t["partitions"]) for t in meta if t["error_code"] == 0}
        responses = await admin.describe_configs(  # type: ignore[attr-defined]
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in names if n in partitions]
        )
        for resp in responses:
            for res in resp.resources:
                error_code, _msg, _rtype, rname, entries = res[0], res[1], res[2], res[3], res[4]
                if error_code != 0:
                    continue
                configs = {str(e[0]): "" if e[1] is None else str(e[1]) for e in entries}
                out[rname] = TopicInfo(name=rname, partitions=partitions[rname], configs=configs)
    return out


class PartitionLag(BaseModel):
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


class GroupLag(BaseModel):
    """How far a consumer group (a Faust app, the notifier) is behind on each topic."""

    group_id: str
    partitions: list[PartitionLag]

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)

    def by_topic(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.partitions:
            out[p.topic] = out.get(p.topic, 0) + p.lag
        return out


async def consumer_lag(settings: Settings, groups: list[str] | None = None) -> list[GroupLag]:
    """Committed offsets against the log end for every (or the given) consumer group, sorted by id."""
    from aiokafka import AIOKafkaConsumer

    async with admin_client(settings) as admin:
        if groups is None:
            groups = sorted({str(g[0]) for g in await admin.list_consumer_groups()})  # type: ignore[attr-defined]
        committed: dict[str, dict[Any, Any]] = {}
        for group in groups:
            try:
                committed[group] = await admin.list_consumer_group_offsets(group)  # type: ignore[attr-defined]
            except Exception:  # a group being deleted or rebalancing: report it without partitions
                committed[group] = {}
        existing = set(await admin.list_topics())  # type: ignore[attr-defined]
    # offsets of deleted topics (tests, old apps) have no log end any more
    committed = {g: {tp: om for tp, om in c.items() if tp.topic in existing} for g, c in committed.items()}
    partitions = sorted({tp for offsets in committed.values() for tp in offsets})
    ends: dict[Any, int] = {}
    if partitions:
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            ends = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()
    out = []
    for group in groups:
        rows = [
            PartitionLag(
                topic=tp.topic, partition=tp.partition, committed=om.offset, end=ends.get(tp, om.offset)
            )
            for tp, om in sorted(committed[group].items())
            if om.offset >= 0
        ]
        out.append(GroupLag(group_id=group, partitions=rows))
    return out
