"""Kafka topic administration: the topics of CONTRACTS.md with explicit settings.

Every service creates or verifies its topics the same way, through ``create_topics``
(``ensure_topics`` for the topics of CONTRACTS.md, optionally only some of them): what
is missing is created with the partition count and configuration of its spec; what
exists is verified, and a topic with another partition count (or a ``delete`` topic
where a ``compact`` one is expected) is a ``TopicMismatchError`` that says what to do
(typically: the topic was auto-created by a client that ran before the topics were
created). Nothing in meterwatch relies on the broker's auto-creation; the local
broker has it turned off (deploy/kafka/server.properties.tmpl).
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

from meterwatch.connections import kafka_client_kwargs
from meterwatch.settings import Settings

_TOPIC_ALREADY_EXISTS = 36
_BAD_REPLICATION = 38  # INVALID_REPLICATION_FACTOR
_RETRIABLE = {3, 5, 6, 7, 41}  # unknown topic, leader not available, not leader, timeout, not controller


class TopicSpec(BaseModel):
    name: str
    partitions: int = Field(ge=1)
    replication: int = Field(default=1, ge=1)
    configs: dict[str, str] = Field(default_factory=dict)
    #: the MW_ variable that sets ``partitions`` (named in a mismatch error), if there is one
    partitions_setting: str = ""


class TopicInfo(BaseModel):
    name: str
    partitions: int
    configs: dict[str, str]


class TopicAdminError(RuntimeError):
    pass


class TopicMismatchError(TopicAdminError):
    """An existing topic differs from its spec in a way that breaks meterwatch (says what to do)."""


def mismatch_message(spec: TopicSpec, info: TopicInfo, bootstrap: str) -> str | None:
    """Why the existing topic ``info`` cannot serve as ``spec`` (and what to do), or None.

    >>> spec = TopicSpec(name="alerts", partitions=4, partitions_setting="MW_ALERTS_PARTITIONS")
    >>> print(mismatch_message(spec, TopicInfo(name="alerts", partitions=1, configs={}), "k:9092"))
    ... # doctest: +NORMALIZE_WHITESPACE
    topic 'alerts' has 1 partition(s) but meterwatch expects 4 (MW_ALERTS_PARTITIONS). It was
    probably auto-created by a client that ran before the topics were created. While nothing uses
    it, delete it (kafka-topics.sh --bootstrap-server k:9092 --delete --topic alerts) and start
    again, so that it is created with 4 partitions; or set MW_ALERTS_PARTITIONS=1 to use it as it is.
    >>> mismatch_message(spec, TopicInfo(name="alerts", partitions=4, configs={}), "k:9092") is None
    True
    """
    if info.partitions != spec.partitions:
        setting = f" ({spec.partitions_setting})" if spec.partitions_setting else ""
        keep = (
            f"; or set {spec.partitions_setting}={info.partitions} to use it as it is"
            if spec.partitions_setting
            else ""
        )
        return (
            f"topic {spec.name!r} has {info.partitions} partition(s) but meterwatch expects "
            f"{spec.partitions}{setting}. It was probably auto-created by a client that ran before the "
            f"topics were created. While nothing uses it, delete it (kafka-topics.sh --bootstrap-server "
            f"{bootstrap} --delete --topic {spec.name}) and start again, so that it is created with "
            f"{spec.partitions} partitions{keep}."
        )
    want, have = spec.configs.get("cleanup.policy"), info.configs.get("cleanup.policy")
    if want and have is not None and set(want.split(",")) != set(have.split(",")):
        return (
            f"topic {spec.name!r} has cleanup.policy={have} but meterwatch expects {want}. It was "
            f"probably auto-created by a client that ran before the topics were created. Change it "
            f"(kafka-configs.sh --bootstrap-server {bootstrap} --alter --entity-type topics --entity-name "
            f"{spec.name} --add-config cleanup.policy={want}) or delete the topic and start again."
        )
    return None


def replicated(settings: Settings, specs: list[TopicSpec]) -> list[TopicSpec]:
    """``specs`` with ``MW_TOPIC_REPLICATION`` replicas and ``MW_TOPIC_MIN_INSYNC_REPLICAS`` (if set).

    >>> s = Settings(topic_replication=3, topic_min_insync_replicas=2)
    >>> [(t.replication, t.configs) for t in replicated(s, [TopicSpec(name="a", partitions=1)])]
    [(3, {'min.insync.replicas': '2'})]
    """
    isr = {"min.insync.replicas": str(settings.topic_min_insync_replicas)}
    return [
        spec.model_copy(
            update={
                "replication": settings.topic_replication,
                "configs": {**spec.configs, **isr} if settings.topic_min_insync_replicas else spec.configs,
            }
        )
        for spec in specs
    ]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics meterwatch needs, named, sized and replicated from ``settings``."""
    return replicated(settings, _topic_specs(settings))


def _topic_specs(settings: Settings) -> list[TopicSpec]:
    return [
        TopicSpec(
            name=settings.topic_readings,
            partitions=settings.readings_partitions,
            partitions_setting="MW_READINGS_PARTITIONS",
        ),
        TopicSpec(
            name=settings.topic_customers,
            partitions=settings.customers_partitions,
            configs={"cleanup.policy": "compact", "min.compaction.lag.ms": "0"},
            partitions_setting="MW_CUSTOMERS_PARTITIONS",
        ),
        TopicSpec(
            name=settings.topic_dlq,
            partitions=1,
            configs={"retention.ms": str(settings.dlq_retention_ms), "cleanup.policy": "delete"},
        ),
        TopicSpec(
            name=settings.topic_alerts,
            partitions=settings.alerts_partitions,
            partitions_setting="MW_ALERTS_PARTITIONS",
        ),
        TopicSpec(
            name=settings.topic_history,
            partitions=settings.readings_partitions,
            configs={"retention.ms": str(settings.changelog_retention_ms)},
            partitions_setting="MW_READINGS_PARTITIONS",
        ),
        TopicSpec(name=settings.topic_features, partitions=1),
        TopicSpec(
            name=settings.topic_segments,
            partitions=settings.readings_partitions,
            partitions_setting="MW_READINGS_PARTITIONS",
        ),
        TopicSpec(
            name=settings.topic_weather,
            partitions=1,
            configs={"retention.ms": str(settings.weather_retention_ms), "cleanup.policy": "delete"},
        ),
    ]


@contextlib.asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[object]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        **kafka_client_kwargs(settings), client_id="meterwatch-admin", request_timeout_ms=15000
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
    """Create the missing topics of ``specs`` and verify the existing ones; return the names created.

    Idempotent. Raises ``TopicMismatchError`` (with what to do) when an existing topic has
    another partition count or cleanup policy than its spec.
    """
    async with admin_client(settings) as admin:
        existing = set(await admin.list_topics())  # type: ignore[attr-defined]
        await _verify_existing(admin, [s for s in specs if s.name in existing], settings.kafka_bootstrap)
        created = await _create_missing(admin, [s for s in specs if s.name not in existing], timeout_s)
        # a topic created concurrently by another service is verified too
        raced = [s for s in specs if s.name not in existing and s.name not in created]
        await _verify_existing(admin, raced, settings.kafka_bootstrap)
        await _wait_for_leaders(admin, specs, timeout_s)
    return created


async def _verify_existing(admin: Any, specs: list[TopicSpec], bootstrap: str) -> None:
    if not specs:
        return
    infos = await _describe(admin, [s.name for s in specs])
    problems = [
        msg
        for s in specs
        if s.name in infos and (msg := mismatch_message(s, infos[s.name], bootstrap)) is not None
    ]
    if problems:
        raise TopicMismatchError("\n".join(problems))


async def _create_missing(admin: Any, missing: list[TopicSpec], timeout_s: float) -> list[str]:
    from aiokafka.admin import NewTopic

    created: list[str] = []
    if not missing:
        return created
    resp = await admin.create_topics(
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
            hint = " (MW_TOPIC_REPLICATION is more than the brokers)" if code == _BAD_REPLICATION else ""
            raise TopicAdminError(f"creating topic {name!r} failed: error {code} {message}{hint}")
    return created


async def _wait_for_leaders(admin: Any, specs: list[TopicSpec], timeout_s: float) -> None:
    """Wait until every partition has a leader, so producers can write at once."""
    want = {s.name: s.partitions for s in specs}
    if not want:
        return
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        meta = await admin.describe_topics(list(want))
        ready = {
            t["topic"]
            for t in meta
            if t["error_code"] == 0
            and len(t["partitions"]) >= want.get(t["topic"], 1)
            and all(p["error_code"] == 0 and p["leader"] >= 0 for p in t["partitions"])
        }
        if ready >= set(want):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TopicAdminError(f"topics without leaders after {timeout_s}s: {sorted(set(want) - ready)}")
        await asyncio.sleep(0.1)


async def ensure_topics(settings: Settings, names: list[str] | None = None) -> list[str]:
    """Create meterwatch's topics (CONTRACTS.md; only ``names`` if given) if missing, verify the others.

    Returns the names created; raises ``TopicMismatchError`` for an existing topic that does not fit.
    """
    specs = topic_specs(settings)
    if names is not None:
        unknown = set(names) - {s.name for s in specs}
        if unknown:
            raise ValueError(f"not topics of meterwatch: {sorted(unknown)}")
        specs = [s for s in specs if s.name in names]
    return await create_topics(settings, specs)


async def delete_topics(settings: Settings, names: list[str]) -> None:
    """Delete topics (unknown names are ignored)."""
    async with admin_client(settings) as admin:
        existing = set(await admin.list_topics())  # type: ignore[attr-defined]
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)  # type: ignore[attr-defined]


async def delete_consumer_groups(settings: Settings, groups: list[str]) -> dict[str, int]:
    """Delete consumer groups that have no members (tests and benchmarks clean up after themselves).

    Returns the broker's error code per group (0 = deleted; 69 = no such group; 68 = not empty).
    aiokafka's admin client has no call for it yet, so the request is sent to the coordinator.
    """
    from aiokafka.protocol.admin import DeleteGroupsRequest

    out: dict[str, int] = {}
    async with admin_client(settings) as admin:
        for group in groups:
            node = await admin.find_coordinator(group)  # type: ignore[attr-defined]
            resp = await admin._send_request_to_node(node, DeleteGroupsRequest([group]))  # type: ignore[attr-defined]
            out.update({str(g): int(code) for g, code in resp.results})
    return out


async def describe_topics(settings: Settings, names: list[str]) -> dict[str, TopicInfo]:
    """Partition counts and effective configuration of ``names``, as the broker reports them."""
    async with admin_client(settings) as admin:
        return await _describe(admin, names)


async def _describe(admin: Any, names: list[str]) -> dict[str, TopicInfo]:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    out: dict[str, TopicInfo] = {}
    meta = await admin.describe_topics(names)
    partitions = {t["topic"]: len(t["partitions"]) for t in meta if t["error_code"] == 0}
    if not partitions:
        return out
    responses = await admin.describe_configs(
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
        consumer = AIOKafkaConsumer(**kafka_client_kwargs(settings), enable_auto_commit=False)
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
