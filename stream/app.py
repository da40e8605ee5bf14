"""The worker's Faust app: built from Settings (``env={}``), its topics and its tables.

Data flow (one process may run every stage; several processes share the partitions)::

    meter-readings ─ingest─┬─> meter-readings.dlq            (invalid, implausible, unknown meter)
     (key meter)           ├─> <app>-parked ─parked─> ...     (unknown meter, policy "wait")
                           └─> <app>-by-customer              (re-keyed: one message per
                                                               partition and batch)
    (ingest runs on a plain aiokafka consumer, group <app>-ingest: stream/rawconsumer.py;
    the other stages are Faust agents of group <app>)
    customers ────customers_in─> <app>-by-customer            (records and tombstones)
    history ──────history_in──> <app>-by-customer             (bootstrap rows)
    segment-assignments ─segments_in─> <app>-by-customer
    <app>-by-customer ─profiles─┬─> tables `customers`, `profiles` (RocksDB + changelog)
                                ├─> alerts                      (key customer)
                                ├─> segment-features ─segmenter─> segment-assignments
                                └─> Redis read model            (batched, pipelined)

One module per stage (stream/<stage>.py); the composition root is stream/worker.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from meterwatch.connections import faust_broker_credentials
from meterwatch.settings import Settings
from meterwatch.topics import TopicSpec, create_topics, replicated, topic_specs
from stream.context import TopicNames
from stream.faust_internals import install_faust_fixes

__all__ = ["WorkerApp", "build_app", "internal_topic_specs", "prepare_topics"]


@dataclass(frozen=True)
class WorkerApp:
    """The Faust app and what the stages are wired to (faust's objects are untyped: ``Any``)."""

    app: faust.App
    topics: dict[str, Any]  # stage name -> the Faust topic it consumes
    customers_table: Any
    profiles_table: Any
    segmenter_table: Any
    names: TopicNames


def _faust_app(settings: Settings, instance: str, store: str, datadir: Path | None) -> faust.App:
    s = settings
    brokers = [f"kafka://{b.strip()}" for b in s.kafka_bootstrap.split(",") if b.strip()]
    extra: dict[str, Any] = {}
    if datadir is not None:
        datadir.mkdir(parents=True, exist_ok=True)
        extra["datadir"] = str(datadir)
    return faust.App(
        s.app_id,
        env={},  # stray environment variables cannot change the app
        broker=brokers,
        broker_client_id=f"{s.app_id}-{instance}",
        broker_credentials=faust_broker_credentials(s),  # SASL / TLS (None: PLAINTEXT)
        store=store,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=s.readings_partitions,
        topic_replication_factor=s.topic_replication,
        topic_disable_leader=True,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        stream_buffer_maxsize=16384,
        stream_recovery_delay=0.5,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_commit_interval=1.0,
        broker_max_poll_records=5000,
        consumer_max_fetch_size=4 * 1024 * 1024,
        producer_linger=0.005,
        producer_max_batch_size=512 * 1024,
        producer_acks=-1,
        web_enabled=False,
        processing_guarantee="at_least_once",
        **extra,
    )


def build_app(settings: Settings, instance: str = "w0", *, store: str = "rocksdb://") -> WorkerApp:
    """The app of one worker process; ``store="memory://"`` for unit tests (no disk, no broker)."""
    s = settings
    rocks = store.startswith("rocksdb")
    install_faust_fixes()  # a restart must not lose stream records (stream/faust_internals.py)
    app = _faust_app(s, instance, store, s.tables_dir / instance if rocks else None)
    parts = s.readings_partitions
    changelog_cfg: dict[str, Any] = {"cleanup.policy": "compact", "retention.ms": s.changelog_retention_ms}
    if s.topic_min_insync_replicas:
        changelog_cfg["min.insync.replicas"] = s.topic_min_insync_replicas
    table_kw: dict[str, Any] = {
        "key_type": bytes,  # bytes -> the "raw" codec: no pickle, we write JSON ourselves
        "value_type": bytes,
        "extra_topic_configs": changelog_cfg,
    }
    if rocks:
        table_kw["options"] = {"driver": "rocksdict"}
    customers = app.Table("customers", partitions=parts, **table_kw)
    profiles = app.Table("profiles", partitions=parts, **table_kw)
    segmenter = app.Table("segmenter", partitions=1, **table_kw)
    by_customer = app.topic(f"{s.app_id}-by-customer", internal=True, partitions=parts)
    parked = app.topic(f"{s.app_id}-parked", internal=True, partitions=parts)
    topics = {
        "parked": parked,
        "customers_in": app.topic(s.topic_customers),
        "history_in": app.topic(s.topic_history),
        "segments_in": app.topic(s.topic_segments),
        "profiles": by_customer,
        "segmenter": app.topic(s.topic_features),
    }
    names = TopicNames(
        readings=s.topic_readings,
        customers=s.topic_customers,
        history=s.topic_history,
        segments=s.topic_segments,
        features=s.topic_features,
        alerts=s.topic_alerts,
        dlq=s.topic_dlq,
        by_customer=by_customer.get_topic_name(),
        parked=parked.get_topic_name(),
        customers_changelog=customers.changelog_topic.get_topic_name(),
        profiles_changelog=profiles.changelog_topic.get_topic_name(),
        segmenter_changelog=segmenter.changelog_topic.get_topic_name(),
    )
    return WorkerApp(app, topics, customers, profiles, segmenter, names)


def internal_topic_specs(settings: Settings) -> list[TopicSpec]:
    """The worker's own topics (re-keyed stream, parked readings, table changelogs), replicated.

    Created before Faust starts: a topic Faust creates while the group forms is
    missing from the first assignment, and its partitions would stay unassigned.
    Changelogs are compacted and never deleted by time (``changelog_retention_ms``,
    default -1), so recovery cannot lose segments it is reading (faust #651).
    """
    parts = settings.readings_partitions
    compact = {"cleanup.policy": "compact", "retention.ms": str(settings.changelog_retention_ms)}
    app_id = settings.app_id
    specs = [
        TopicSpec(name=f"{app_id}-by-customer", partitions=parts),
        TopicSpec(name=f"{app_id}-parked", partitions=parts),
        TopicSpec(name=f"{app_id}-customers-changelog", partitions=parts, configs=compact),
        TopicSpec(name=f"{app_id}-profiles-changelog", partitions=parts, configs=compact),
        TopicSpec(name=f"{app_id}-segmenter-changelog", partitions=1, configs=compact),
    ]
    return replicated(settings, specs)  # MW_TOPIC_REPLICATION, MW_TOPIC_MIN_INSYNC_REPLICAS


async def prepare_topics(settings: Settings) -> list[str]:
    """Create every topic the worker reads or writes (idempotent); returns the names created."""
    return await create_topics(settings, topic_specs(settings) + internal_topic_specs(settings))
