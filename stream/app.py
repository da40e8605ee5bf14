"""The Faust application of the worker: agents, tables, and what runs beside them.

Data flow (one process may run every agent; several processes share the partitions)::

    meter-readings ─ingest─┬─> meter-readings.dlq            (invalid JSON/schema, unknown meter)
     (key meter)           ├─> <app>-parked ─parked─> ...     (unknown meter, policy "wait")
                           └─> <app>-by-customer              (re-keyed: one message per
                                                               partition and batch)
    (ingest is a plain aiokafka consumer, group <app>-ingest: stream/ingest.py; the
    other stages are Faust agents of group <app>)
    customers ────customers_in─> <app>-by-customer            (records and tombstones)
    history ──────history_in──> <app>-by-customer             (bootstrap rows)
    segment-assignments ─segments_in─> <app>-by-customer
    <app>-by-customer ─profiles─┬─> tables `customers`, `profiles` (RocksDB + changelog)
                                ├─> alerts                      (key customer)
                                ├─> segment-features ─segmenter─> segment-assignments
                                └─> Redis read model            (batched, pipelined)

Every customer's state lives on exactly one partition of ``<app>-by-customer``;
the tables are co-partitioned with it. The profile agent consumes in batches
(``take_events``), keeps decoded state in memory between batches (dropped on
rebalance), and writes each changed customer once per batch; every stage waits
until its batch's outputs (re-keyed readings, changelog, dead letters) are
delivered before it acknowledges or commits the batch. Processing is idempotent
(a per-partition source watermark and the domain's own de-duplication recognise
redelivered readings; fired alerts are remembered; alert ids are deterministic),
so redelivery after a crash or rebalance changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import weakref
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

import faust
import orjson
from faust.streams import _current_event
from faust.types import TP, EventT
from pydantic import ValidationError
from redis.asyncio import Redis

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from baselines.rules import RulesConfig
from meterwatch.contracts import (
    Alert,
    CustomerRecord,
    DeadLetterError,
    HistoryRow,
    MeterReading,
    SegmentAssignment,
    SegmentRef,
)
from meterwatch.keys import Keys
from meterwatch.settings import Settings
from stream import workbench
from stream.decode import decode_customer, decode_history, decode_reading, make_dead_letter
from stream.envelope import Envelope, FeaturesEvent, Source
from stream.ingest import RawIngest
from stream.metrics import MetricsServer, WorkerMetrics
from stream.produce import BatchProducer, DeliveryFailed, partition_for
from stream.readmodel import ReadModelWriter
from stream.registry import MeterIndex, RegistryFollower

log = logging.getLogger(__name__)

Event = EventT[Any]
_JSON_OPTS = orjson.OPT_NON_STR_KEYS
_READINGS_HEAD = b'{"kind":"readings"'
MAX_PENDING_PER_CUSTOMER = 5000
READINGS_PER_MESSAGE = 1000  # ~0.2 MB per by-customer message, far below the broker's 1 MB limit
FEATURES_EVERY_DAYS = 7
SEGMENTER_CHECKPOINT_S = 5.0
_MEMBER_PREFIX = b"m:"  # segmenter table: b"m:" + customer_id -> segment id the model counts it in
MIN_BASELINE_DAYS = 7


def _use_event(event: Event) -> None:
    """Make ``event`` the current event of this task, so table reads/writes go to its partition.

    Faust picks a table's partition from the "current event". When a batch
    from ``take_events`` spans partitions, the agent sets it per partition.
    """
    _current_event.set(weakref.ref(event))


class CustomerState:
    """One customer's decoded state, cached between batches on its partition."""

    __slots__ = ("config", "customer_id", "features_day", "pending", "profile", "record", "segment", "src_hw")

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        self.record: CustomerRecord | None = None
        self.config: CustomerConfig | None = None
        self.profile: Profile | None = None
        self.segment: SegmentRef | None = None
        self.features_day = -1
        # readings that reached the customer's partition before its registry record did
        # (the meter index is global and can be ahead of this partition): applied on arrival
        self.pending: list[str] = []
        # per partition of meter-readings: the highest source offset applied to this customer.
        # Kept with the profile (same table value), so after a crash the redelivered readings
        # are recognised as such, also those older than the domain's late window.
        self.src_hw: dict[int, int] = {}


def load_engine(settings: Settings) -> Engine:
    """The domain engine, configured from settings (``rules_file``: JSON of RulesConfig)."""
    if settings.rules_file is not None:
        rules = RulesConfig.model_validate_json(settings.rules_file.read_bytes())
    else:
        rules = RulesConfig(late_window_days=settings.late_window_days)
    return Engine(rules, clock=_now)


class Pipeline:
    """Builds the Faust app for one worker process from :class:`Settings`."""

    def __init__(
        self,
        settings: Settings,
        *,
        instance: str = "w0",
        metrics_port: int | None = None,
        engine: Engine | None = None,
        batch_max: int = 2000,
        batch_within_s: float = 0.05,
    ) -> None:
        self.settings = settings
        self.instance = instance
        self.metrics_port = settings.worker_metrics_port if metrics_port is None else metrics_port
        self.engine = engine if engine is not None else load_engine(settings)
        self.batch_max = batch_max
        self.batch_within_s = batch_within_s
        self.keys = Keys(settings.redis_prefix)
        self.metrics = WorkerMetrics()
        self.index = MeterIndex()
        self.registry = RegistryFollower(settings, self.index)
        self.readmodel: ReadModelWriter | None = None
        self.metrics_server: MetricsServer | None = None
        self._redis: Redis | None = None
        self._cache: dict[int, dict[str, CustomerState]] = defaultdict(dict)
        self._parked: deque[tuple[Event, Envelope, float]] = deque()
        self._parked_retried = 0.0
        self._positions: dict[TP, int] = {}
        self._segmenter: Any = None
        self._segments_written = 0.0
        self._segmenter_saved = 0.0
        self.log_level = logging.INFO
        self.app = self._build_app()
        self.out = BatchProducer(self.app)
        self._by_customer_name = self.by_customer.get_topic_name()
        self._readings_name = self.readings_topic.get_topic_name()
        self._parked_name = self.parked_topic.get_topic_name()
        self._dlq_name = settings.topic_dlq
        self._dlq_partitions = 1  # looked up at start
        self.ingest: RawIngest | None = None
        self._profiles_changelog = self.profiles_table.changelog_topic.get_topic_name()
        self._customers_changelog = self.customers_table.changelog_topic.get_topic_name()
        self._features_name = settings.topic_features
        self.out.set_partitions(self._by_customer_name, settings.readings_partitions)
        self.out.set_partitions(self._features_name, 1)
        self.out.set_partitions(self._parked_name, settings.readings_partitions)

    # ------------------------------------------------------------------ app & topics
    def _build_app(self) -> faust.App:
        s = self.settings
        brokers = [f"kafka://{b.strip()}" for b in s.kafka_bootstrap.split(",") if b.strip()]
        datadir = s.tables_dir / self.instance
        datadir.mkdir(parents=True, exist_ok=True)
        app = faust.App(
            s.app_id,
            env={},
            broker=brokers,
            broker_client_id=f"{s.app_id}-{self.instance}",
            store="rocksdb://",
            datadir=str(datadir),
            key_serializer="raw",
            value_serializer="raw",
            topic_partitions=s.readings_partitions,
            topic_replication_factor=1,
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
        )
        parts = s.readings_partitions
        self.readings_topic = app.topic(s.topic_readings)
        self.customers_topic = app.topic(s.topic_customers)
        self.history_topic = app.topic(s.topic_history)
        self.segments_topic = app.topic(s.topic_segments)
        self.features_topic = app.topic(s.topic_features)
        self.alerts_topic = app.topic(s.topic_alerts)
        self.dlq_topic = app.topic(s.topic_dlq)
        self.by_customer = app.topic(f"{s.app_id}-by-customer", internal=True, partitions=parts)
        self.parked_topic = app.topic(f"{s.app_id}-parked", internal=True, partitions=parts)
        changelog_cfg = {"cleanup.policy": "compact", "retention.ms": s.changelog_retention_ms}
        table_kw: dict[str, Any] = {
            "key_type": bytes,  # bytes -> the "raw" codec: no pickle, we write JSON ourselves
            "value_type": bytes,
            "extra_topic_configs": changelog_cfg,
            "options": {"driver": "rocksdict"},
        }
        self.customers_table = app.Table("customers", partitions=parts, **table_kw)
        self.profiles_table = app.Table("profiles", partitions=parts, **table_kw)
        self.segmenter_table = app.Table("segmenter", partitions=1, **table_kw)

        app.agent(self.parked_topic, name="parked")(self._parked_agent)
        app.agent(self.customers_topic, name="customers_in")(self._customers_agent)
        app.agent(self.history_topic, name="history_in")(self._history_agent)
        app.agent(self.segments_topic, name="segments_in")(self._segments_agent)
        app.agent(self.by_customer, name="profiles")(self._profiles_agent)
        app.agent(self.features_topic, name="segmenter")(self._segmenter_agent)
        app.timer(1.0, name="housekeeping")(self._housekeeping)
        app.task(self._startup)
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        app.on_before_shutdown.connect(self._shutdown)
        return app

    # ------------------------------------------------------------------ lifecycle
    async def _startup(self) -> None:
        from meterwatch.logs import MaskingFilter

        for h in logging.getLogger().handlers:
            h.addFilter(MaskingFilter())
        # mode's logging setup leaves the root logger at DEBUG: every library's debug
        # call then builds a LogRecord (measured: ~5 % of the worker's time). Set it here.
        logging.getLogger().setLevel(self.log_level)
        self._redis = Redis.from_url(self.settings.redis_url)
        self.readmodel = ReadModelWriter(self._redis, self.keys, self.settings.readmodel_flush_ms)
        await self.readmodel.start()
        await self.registry.start()
        self._dlq_partitions = await self.out.partitions(self._dlq_name)
        s = self.settings
        self.ingest = RawIngest(
            bootstrap=s.kafka_bootstrap,
            topic=s.topic_readings,
            group_id=f"{s.app_id}-ingest",
            client_id=f"{s.app_id}-ingest-{self.instance}",
            process=self._ingest_batch,
            deliver=self._deliver,
            ready=self.registry.ready,
            batch_max=self.batch_max,
        )
        await self.ingest.start()
        if self.metrics_port:
            self.metrics_server = MetricsServer(self.settings, self.metrics, self.instance, self.metrics_port)
            try:
                await self.metrics_server.start()
            except OSError as exc:
                log.error("worker metrics port %d unavailable: %s", self.metrics_port, exc)
                self.metrics_server = None

    async def _shutdown(self, *args: Any, **kwargs: Any) -> None:
        if self.ingest is not None:
            await self.ingest.stop()  # its last batch delivered and committed, the group left
        await self.registry.stop()
        if self.readmodel is not None:
            await self.readmodel.stop()
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        if self._redis is not None:
            await self._redis.aclose()

    async def _on_revoked(self, sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        by_customer = self.by_customer.get_topic_name()
        for tp in revoked:
            if tp.topic == by_customer:
                self._cache.pop(tp.partition, None)
            self._positions.pop(tp, None)
        if any(tp.topic == self.parked_topic.get_topic_name() for tp in revoked):
            self._parked = deque(e for e in self._parked if e[0].message.tp not in revoked)
        if any(tp.topic == self.settings.topic_features for tp in revoked):
            self._segmenter = None

    # ------------------------------------------------------------------ helpers
    def _dead_letter(
        self, error: DeadLetterError, raw: bytes | None, topic: str, partition: int, offset: int
    ) -> None:
        dl = make_dead_letter(error, raw, topic, partition, offset)
        # batched with the other outputs: delivered before the source offset is acknowledged
        self.out.add(self._dlq_name, offset % self._dlq_partitions, None, dl.model_dump_json().encode())
        self.metrics.inc_labelled("dlq", error.code)

    def _dead_letter_env(self, env: Envelope, code: str, message: str, field: str | None = None) -> None:
        src = env.src or Source(t=self.by_customer.get_topic_name(), p=-1, o=-1)
        raw: bytes | None
        if env.raw is not None:
            raw = env.raw.encode()
        elif env.reading is not None:
            raw = env.reading.model_dump_json(exclude_none=True).encode()
        else:
            raw = env.dumps()
        self._dead_letter(DeadLetterError(code=code, message=message, field=field), raw, src.t, src.p, src.o)

    async def _deliver(self) -> None:
        """Deliver every batched output; a worker that cannot deliver stops at once.

        Stopping hard matters: Faust acknowledges a batch from ``take_events`` even when
        the agent raises, and a graceful stop commits acknowledged offsets, so the
        outputs of the failed batch would be lost. Exiting without a commit lets the
        replacement process redo the batch from the last committed offsets.
        """
        try:
            await self.out.flush()
        except DeliveryFailed:
            log.critical("outputs could not be delivered; exiting without committing", exc_info=True)
            logging.shutdown()
            os._exit(75)  # EX_TEMPFAIL: a supervisor restarts the worker

    def _track(self, event: Event) -> None:
        m = event.message
        self._positions[m.tp] = m.offset + 1

    def _forward(self, env: Envelope) -> None:
        self.out.add_keyed(self._by_customer_name, env.customer_id.encode(), env.dumps())

    # ------------------------------------------------------------------ ingest
    def _ingest_batch(self, records: Sequence[Any]) -> None:
        """Validate, resolve the customer and re-key a batch of readings.

        The readings of one batch that belong to one partition of ``<app>-by-customer`` travel
        as one message (kind ``readings``, at most READINGS_PER_MESSAGE items of
        ``[customer_id, source partition, source offset, reading]``): the profile stage then
        pays Faust's per-event cost once per group instead of once per reading.
        """
        wait = self.settings.unknown_meter_policy == "wait"
        nparts = self.settings.readings_partitions
        groups: dict[int, list[bytes]] = defaultdict(list)
        for m in records:  # aiokafka ConsumerRecords of meter-readings (see stream.ingest)
            self.metrics.inc("readings_in")
            raw: bytes | None = m.value
            try:
                r = decode_reading(raw)
                if isinstance(r, DeadLetterError):
                    self._dead_letter(r, raw, m.topic, m.partition, m.offset)
                    continue
                cid = self.index.resolve(r.meter_id, r.customer_id)
                if cid is None:
                    if wait:
                        src = Source(t=m.topic, p=m.partition, o=m.offset)
                        park = Envelope(kind="reading", customer_id="", reading=r, src=src, raw=raw_str(raw))
                        self.out.add_keyed(self._parked_name, r.meter_id.encode(), park.dumps())
                        self.metrics.inc("parked")
                    else:
                        self._dead_letter(unknown_error(r), raw, m.topic, m.partition, m.offset)
                    continue
                # grouped per customer partition; the validated original JSON is spliced in as is
                assert raw is not None
                groups[partition_for(cid.encode(), nparts)].append(
                    b"[%b,%d,%d,%b]" % (orjson.dumps(cid), m.partition, m.offset, raw)
                )
            except Exception as exc:  # nothing in the input may crash the worker
                log.exception("ingest failed on %s[%d]@%d", m.topic, m.partition, m.offset)
                self._dead_letter(
                    DeadLetterError(code="processing_error", message=f"{type(exc).__name__}: {exc}"[:300]),
                    raw,
                    m.topic,
                    m.partition,
                    m.offset,
                )
        if groups:
            topic = orjson.dumps(self._readings_name)
            for part, items in groups.items():
                for i in range(0, len(items), READINGS_PER_MESSAGE):
                    body = b'{"kind":"readings","t":%b,"items":[%b]}' % (
                        topic,
                        b",".join(items[i : i + READINGS_PER_MESSAGE]),
                    )
                    self.out.add(self._by_customer_name, part, None, body)

    # ------------------------------------------------------------------ parked (unknown meters)
    async def _parked_agent(self, stream: Any) -> AsyncIterator[None]:
        async for event in stream.noack().events():
            try:
                env = Envelope.model_validate_json(event.value)
            except ValidationError:
                log.error("undecodable parked message at %s@%d", event.message.tp, event.message.offset)
                await stream.ack(event)
                continue
            deadline = event.message.timestamp + self.settings.unknown_meter_wait_s
            self._parked.append((event, env, deadline))
            # Retry at once only when this reading can leave now, and at most every 50 ms (each
            # retry waits for its outputs' delivery); the rest goes with the next retry or the
            # 1 s housekeeping.
            r = env.reading
            now = time.monotonic()
            if r is not None and self.index.resolve(r.meter_id, r.customer_id) is not None:
                if now - self._parked_retried >= 0.05:
                    self._parked_retried = now
                    await self._retry_parked()
            yield None

    async def _retry_parked(self) -> None:
        """Forward parked readings whose meter is now known; dead-letter the expired ones.

        A parked event is acknowledged only after what it produced is queued on the producer.
        """
        if not self._parked:
            await self._deliver()
            return
        done: list[Event] = []
        now = time.time()
        keep: deque[tuple[Event, Envelope, float]] = deque()
        for event, env, deadline in self._parked:
            r = env.reading
            assert r is not None
            cid = self.index.resolve(r.meter_id, r.customer_id)
            if cid is not None:
                self._forward(env.model_copy(update={"customer_id": cid, "raw": None, "parked": True}))
                self.metrics.inc("unparked")
            elif now >= deadline:
                err = unknown_error(r)
                err = err.model_copy(
                    update={"message": f"{err.message}; waited {self.settings.unknown_meter_wait_s:g} s"}
                )
                self._dead_letter_env(env, err.code, err.message, err.field)
            else:
                keep.append((event, env, deadline))
                continue
            done.append(event)
        self._parked = keep
        self.metrics.set_gauge("parked_readings", len(keep))
        await self._deliver()
        for event in done:
            event.ack()

    # ------------------------------------------------------------------ forwarding agents
    async def _customers_agent(self, stream: Any) -> AsyncIterator[None]:
        async for events in stream.take_events(self.batch_max, within=self.batch_within_s):
            for event in events:
                self._customer_event(event)
            await self._deliver()
            yield None

    def _customer_event(self, event: Event) -> None:
        m = event.message
        self._track(event)
        try:
            if event.value is None:
                if m.key:
                    cid = bytes(m.key).decode("utf-8", "replace")
                    self._forward(Envelope(kind="customer_deleted", customer_id=cid))
                    self.metrics.inc("customer_tombstones")
                return
            rec = decode_customer(event.value)
            if isinstance(rec, DeadLetterError):
                self._dead_letter(rec, event.value, m.topic, m.partition, m.offset)
                return
            self.metrics.inc("customer_records")
            self._forward(Envelope(kind="customer", customer_id=rec.customer_id, customer=rec))
        except Exception as exc:
            log.exception("customers_in failed at %s@%d", m.tp, m.offset)
            self._dead_letter(
                DeadLetterError(code="processing_error", message=str(exc)[:300]),
                event.value,
                m.topic,
                m.partition,
                m.offset,
            )

    async def _history_agent(self, stream: Any) -> AsyncIterator[None]:
        async for events in stream.take_events(self.batch_max, within=self.batch_within_s):
            run: list[HistoryRow] = []
            for event in events:
                m = event.message
                self._track(event)
                row = decode_history(event.value)
                if isinstance(row, DeadLetterError):
                    self._dead_letter(row, event.value, m.topic, m.partition, m.offset)
                    continue
                self.metrics.inc("history_rows")
                if run and run[-1].customer_id != row.customer_id:
                    self._forward(Envelope(kind="history", customer_id=run[-1].customer_id, history=run))
                    run = []
                run.append(row)
            if run:
                self._forward(Envelope(kind="history", customer_id=run[-1].customer_id, history=run))
            await self._deliver()
            yield None

    async def _segments_agent(self, stream: Any) -> AsyncIterator[None]:
        # batched: delivery is awaited once per batch (one round trip), not once per assignment
        async for events in stream.take_events(self.batch_max, within=self.batch_within_s):
            for event in events:
                self._track(event)
                try:
                    a = SegmentAssignment.model_validate_json(event.value or b"")
                except ValidationError:
                    m = event.message
                    log.error("undecodable segment assignment at %s@%d", m.tp, m.offset)
                    continue
                self._forward(Envelope(kind="segment", customer_id=a.customer_id, segment=a))
            await self._deliver()
            yield None

    # ------------------------------------------------------------------ profiles (the core)
    async def _profiles_agent(self, stream: Any) -> AsyncIterator[None]:
        async for events in stream.take_events(self.batch_max, within=self.batch_within_s):
            by_part: dict[int, list[Event]] = defaultdict(list)
            for event in events:
                by_part[event.message.partition].append(event)
            for partition, evs in by_part.items():
                self._profiles_partition(partition, evs)
            await self._deliver()  # changelog, features: delivered before the batch is acknowledged
            yield None

    def _state(self, partition: int, cid: str) -> CustomerState:
        cache = self._cache[partition]
        st = cache.get(cid)
        if st is not None:
            return st
        st = CustomerState(cid)
        key = cid.encode()
        rec_raw = self.customers_table.get(key)
        if rec_raw is not None:
            st.record = CustomerRecord.model_validate_json(rec_raw)
            st.config = CustomerConfig.from_record(st.record)
        prof_raw = self.profiles_table.get(key)
        if prof_raw is not None:
            d = orjson.loads(prof_raw)
            st.profile = Profile.from_dict(d["p"]) if d.get("p") is not None else None
            st.segment = SegmentRef.model_validate(d["s"]) if d.get("s") else None
            st.features_day = int(d.get("f", -1))
            st.pending = list(d.get("q", ()))
            st.src_hw = {int(k): int(v) for k, v in d.get("o", {}).items()}
        cache[cid] = st
        return st

    def _profiles_partition(self, partition: int, events: list[Event]) -> None:
        _use_event(events[-1])
        dirty: dict[str, CustomerState] = {}
        deleted: set[str] = set()
        for event in events:
            self._track(event)
            if event.value is not None and event.value.startswith(_READINGS_HEAD):
                self._apply_readings(partition, event, dirty, deleted)
                continue
            try:
                env = Envelope.model_validate_json(event.value)
            except ValidationError:
                self.metrics.inc("internal_invalid")
                log.error("undecodable by-customer message at %s@%d", event.message.tp, event.message.offset)
                continue
            try:
                self._apply(partition, env, dirty, deleted, event.value)
            except Exception as exc:
                log.exception("processing %s for customer %s failed", env.kind, env.customer_id)
                if env.kind == "reading":
                    self._dead_letter_env(env, "processing_error", f"{type(exc).__name__}: {exc}"[:300])
                else:
                    self.metrics.inc_labelled("errors", env.kind)
        for cid in deleted:
            key = cid.encode()
            if key in self.customers_table:
                del self.customers_table[key]
            if key in self.profiles_table:
                del self.profiles_table[key]
        for cid, st in dirty.items():
            if cid in deleted:
                continue
            value: dict[str, Any] = {
                "p": st.profile.to_dict() if st.profile is not None else None,
                "s": st.segment.model_dump() if st.segment is not None else None,
                "f": st.features_day,
            }
            if st.pending:
                value["q"] = st.pending
            if st.src_hw:
                value["o"] = st.src_hw
            body = orjson.dumps(value, option=_JSON_OPTS)
            self._table_put(self.profiles_table, self._profiles_changelog, partition, cid.encode(), body)

    def _apply_readings(
        self, partition: int, event: Event, dirty: dict[str, CustomerState], deleted: set[str]
    ) -> None:
        """A ``readings`` group from ingest: each item is applied as its own reading envelope."""
        try:
            group = orjson.loads(event.value)
            topic = group["t"]
            items = group["items"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.metrics.inc("internal_invalid")
            log.error("undecodable readings group at %s@%d", event.message.tp, event.message.offset)
            return
        for item in items:
            try:
                cid, p, o, body = item
                env = Envelope(
                    kind="reading",
                    customer_id=cid,
                    reading=MeterReading.model_validate(body),
                    src=Source(t=topic, p=p, o=o),
                )
            except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
                self.metrics.inc("internal_invalid")
                log.error("undecodable reading in group at %s@%d", event.message.tp, event.message.offset)
                continue
            try:
                self._apply(partition, env, dirty, deleted)
            except Exception as exc:
                log.exception("processing a reading for customer %s failed", cid)
                self._dead_letter_env(env, "processing_error", f"{type(exc).__name__}: {exc}"[:300])

    def _table_put(self, table: Any, changelog: str, partition: int, key: bytes, body: bytes) -> None:
        """What ``Table.__setitem__`` does, minus Faust's per-record producer overhead.

        The value goes to the local RocksDB partition of the current event and, batched,
        to the table's changelog partition (the same number, as Faust does).
        """
        table.data[key] = body
        self.out.add(changelog, partition, key, body)

    def _apply(
        self,
        partition: int,
        env: Envelope,
        dirty: dict[str, CustomerState],
        deleted: set[str],
        raw: bytes | None = None,
    ) -> None:
        cid = env.customer_id
        rm = self.readmodel
        if env.kind == "reading":
            st = self._state(partition, cid)
            if st.config is None:
                if len(st.pending) >= MAX_PENDING_PER_CUSTOMER:
                    assert env.reading is not None
                    self._dead_letter_env(env, *_unknown_args(env.reading))
                    return
                st.pending.append((raw or env.dumps()).decode())
                dirty[cid] = st
                self.metrics.inc("awaiting_registry")
                return
            self._process_reading(st, env, dirty)
        elif env.kind == "customer":
            assert env.customer is not None
            st = self._state(partition, cid)
            st.record = env.customer
            self.metrics.inc("customers_applied")
            st.config = CustomerConfig.from_record(env.customer)
            body = env.customer.model_dump_json().encode()
            self._table_put(self.customers_table, self._customers_changelog, partition, cid.encode(), body)
            deleted.discard(cid)
            if st.pending:
                waiting, st.pending = st.pending, []
                dirty[cid] = st
                for item in waiting:
                    self._process_reading(st, Envelope.model_validate_json(item), dirty)
            if rm is not None:
                rm.put_customer(cid, body)
            if st.profile is not None:
                # registry facts (tariff, arrears, occupancy) are segment features too
                self._send_features(st)
                self._mark_snapshot(st)
        elif env.kind == "customer_deleted":
            st = self._state(partition, cid)
            for item in st.pending:
                orphan = Envelope.model_validate_json(item)
                assert orphan.reading is not None
                self._dead_letter_env(orphan, *_unknown_args(orphan.reading))
            # always: the segmenter may count the customer although its assignment has not
            # come back yet (it keeps its own membership; forgetting an unknown id is a no-op)
            self._send_features(st, forget=True)
            workbench.segment_changed(rm, cid, st.segment, None)
            self._cache[partition].pop(cid, None)
            dirty.pop(cid, None)
            deleted.add(cid)
            self.metrics.inc("customers_deleted")
            if rm is not None:
                rm.put_customer(cid, None)
        elif env.kind == "history":
            st = self._state(partition, cid)
            rows = env.history or []
            config = st.config or CustomerConfig.default(cid)
            prof = st.profile or Profile.new(cid)
            st.profile = workbench.load_history(rm, self.engine, cid, prof, rows, config)
            dirty[cid] = st
            self.metrics.inc("history_applied", len(rows))
            if st.config is not None:
                self._send_features(st)
                self._mark_snapshot(st)
        elif env.kind == "segment":
            assert env.segment is not None
            st = self._state(partition, cid)
            if st.config is None:
                return  # deleted meanwhile
            workbench.segment_changed(rm, cid, st.segment, env.segment.segment)
            st.segment = env.segment.segment
            dirty[cid] = st
            self.metrics.inc("segment_assignments")
            self._mark_snapshot(st)

    def _process_reading(self, st: CustomerState, env: Envelope, dirty: dict[str, CustomerState]) -> None:
        r = env.reading
        assert r is not None
        if st.profile is None:
            st.profile = Profile.new(st.customer_id)
        # The cached profile is owned by this partition's state: update it in place.
        src = env.src
        part = src.p if src is not None and not env.parked and src.t == self._readings_name else None
        redelivered = False
        if part is not None:
            assert src is not None
            hw = st.src_hw.get(part, -1)
            redelivered = src.o <= hw
            if not redelivered:
                st.src_hw[part] = src.o
                dirty[st.customer_id] = st
        assert st.config is not None  # readings wait in st.pending until the registry record arrives
        wb_mark = workbench.before(st.profile)
        res = self.engine.process_inplace(
            st.profile, Reading.from_contract(r), st.config, segment=st.segment or SegmentRef()
        )
        if res.rejected is not None:
            if redelivered:
                # seen before the crash/rebalance: counted or dead-lettered then, not again now
                # (without the watermark, a replay older than the late window reads as "too late")
                self.metrics.inc_labelled("duplicates", "redelivered")
                return
            self._dead_letter_env(env, res.rejected.code, res.rejected.message or res.rejected.code)
            return
        if res.duplicate:
            self.metrics.inc_labelled("duplicates", "reading")
            return
        dirty[st.customer_id] = st
        self.metrics.inc("readings_processed")
        workbench.after(self.readmodel, st.customer_id, wb_mark, st.profile, self.engine.rules)
        key = st.customer_id.encode()
        for alert in res.alerts:
            self._emit_alert(key, alert)
        # Segments describe long-term habits: features go to the segmenter once the customer
        # has a baseline, then at most once per FEATURES_EVERY_DAYS days of data.
        day = int(r.ts.timestamp() // 86400)
        if day >= st.features_day + FEATURES_EVERY_DAYS and st.profile.baseline_days >= MIN_BASELINE_DAYS:
            self._send_features(st, day=day)
        self._mark_snapshot(st)

    def _emit_alert(self, key: bytes, alert: Alert) -> None:
        self.alerts_topic.send_soon(key=key, value=alert.to_json())
        self.metrics.inc_labelled("alerts", alert.rule)
        if self.readmodel is not None:
            self.readmodel.add_alert(alert)

    def _send_features(self, st: CustomerState, *, day: int | None = None, forget: bool = False) -> None:
        cur = st.segment.id if st.segment is not None else None
        if forget:
            fe = FeaturesEvent(customer_id=st.customer_id, features={}, ts=_now(), current=cur, forget=True)
        else:
            if st.profile is None or st.config is None:
                return
            feats = self.engine.segment_features(st.profile, st.config)
            if not feats:
                return
            if day is not None:
                st.features_day = day
            fe = FeaturesEvent(customer_id=st.customer_id, features=feats, ts=_now(), current=cur)
        self.out.add(self._features_name, 0, st.customer_id.encode(), fe.model_dump_json().encode())
        self.metrics.inc("features_sent")

    def _mark_snapshot(self, st: CustomerState) -> None:
        if self.readmodel is None or st.profile is None or st.config is None:
            return
        engine = self.engine

        def thunk() -> bytes | None:
            if st.profile is None or st.config is None:
                return None
            snap = engine.snapshot(st.profile, st.config, st.segment or SegmentRef(), _now())
            snap = snap.model_copy(update={"processed_at": _now()})
            return bytes(snap.model_dump_json().encode())

        self.readmodel.mark_snapshot(st.customer_id, thunk)

    # ------------------------------------------------------------------ segmenter (single partition)
    def _load_segmenter(self) -> Any:
        from baselines.segments import Segmenter, SegmenterConfig

        raw = self.segmenter_table.get(b"model")
        if raw is not None:
            try:
                d = orjson.loads(raw)
                seg = Segmenter.from_dict(d)
                if d.get("state_version", 1) >= 2:  # membership is stored per customer
                    seg.set_members(
                        {
                            bytes(k[len(_MEMBER_PREFIX) :]).decode(): int(v)
                            for k, v in self.segmenter_table.items()
                            if bytes(k).startswith(_MEMBER_PREFIX)
                        }
                    )
                return seg
            except Exception:
                log.exception("segmenter state unreadable; starting a new model")
        return Segmenter(SegmenterConfig(max_segments=self.settings.max_segments))

    async def _segmenter_agent(self, stream: Any) -> AsyncIterator[None]:
        async for events in stream.take_events(1000, within=0.2):
            _use_event(events[-1])
            if self._segmenter is None:
                self._segmenter = self._load_segmenter()
            seg = self._segmenter
            out: list[Any] = []
            for event in events:
                self._track(event)
                try:
                    fe = FeaturesEvent.model_validate_json(event.value or b"")
                except ValidationError:
                    log.error("undecodable features at %s@%d", event.message.tp, event.message.offset)
                    continue
                try:
                    if fe.forget:
                        seg.forget(fe.current, fe.customer_id)
                    else:
                        out.extend(seg.observe(fe.customer_id, fe.features, current=fe.current))
                except Exception:
                    log.exception("segmenter failed on %s", fe.customer_id)
            now = time.monotonic()
            members = seg.take_member_changes()
            for cid, k in members.items():
                # membership (who is counted where) is stored per customer, not in the model
                # value, which would grow with the population
                mkey = _MEMBER_PREFIX + cid.encode()
                if k is None:
                    if mkey in self.segmenter_table:
                        del self.segmenter_table[mkey]
                else:
                    self.segmenter_table[mkey] = b"%d" % k
            if out or members or now - self._segmenter_saved >= SEGMENTER_CHECKPOINT_S:
                # The model is a statistical summary: it is checkpointed to its changelog when it
                # hands out assignments and at most every few seconds otherwise (to_dict is not
                # free); a crash may lose the learning of the last seconds, never an assignment.
                self.segmenter_table[b"model"] = orjson.dumps(seg.to_dict(members=False), option=_JSON_OPTS)
                self._segmenter_saved = now
            for a in out:
                c = a.to_contract()
                self.segments_topic.send_soon(key=c.customer_id.encode(), value=c.model_dump_json().encode())
            self.metrics.inc("segment_changes", len(out))
            if self.readmodel is not None and (out or members or now - self._segments_written > 1.0):
                self._segments_written = now
                summaries = [s.model_dump() for s in seg.summaries()]
                self.readmodel.set_segments(orjson.dumps(summaries, option=_JSON_OPTS))
            yield None

    # ------------------------------------------------------------------ housekeeping
    async def _housekeeping(self) -> None:
        await self._retry_parked()
        lag_in = lag_internal = 0
        consumer = self.app.consumer
        internal = self.by_customer.get_topic_name()
        if self.ingest is not None:
            lag_in = self.ingest.lag()
        for tp, pos in list(self._positions.items()):
            try:
                hw = consumer.highwater(tp)
            except Exception:  # partition no longer assigned
                hw = None
            if hw is None:
                continue
            if tp.topic == internal:
                lag_internal += max(hw - pos, 0)
        self.metrics.set_gauge("consumer_lag", lag_in)
        self.metrics.set_gauge("internal_lag", lag_internal)
        self.metrics.set_gauge("cached_customers", sum(len(c) for c in self._cache.values()))
        self.metrics.set_gauge("meter_index_customers", len(self.index))
        if self.readmodel is not None:
            self.readmodel.incr_metrics(self.metrics.deltas())
            self.readmodel.set_metrics(
                {f"consumer_lag:{self.instance}": lag_in, f"internal_lag:{self.instance}": lag_internal}
            )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def raw_str(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return raw.decode("utf-8", "replace")


def unknown_error(r: MeterReading) -> DeadLetterError:
    code, message, field = _unknown_args(r)
    return DeadLetterError(code=code, message=message, field=field)


def _unknown_args(r: MeterReading) -> tuple[str, str, str]:
    if r.customer_id is not None:
        return "unknown_customer", f"customer {r.customer_id!r} is not in the registry", "customer_id"
    return "unknown_meter", f"meter {r.meter_id!r} belongs to no customer in the registry", "meter_id"


def internal_topic_specs(settings: Settings) -> list[Any]:
    """The worker's own topics (re-keyed stream, parked readings, table changelogs).

    Created before Faust starts: a topic Faust creates while the group forms is
    missing from the first assignment, and its partitions would stay unassigned.
    Changelogs are compacted and never deleted by time (``changelog_retention_ms``,
    default -1), so recovery cannot lose segments it is reading (faust #651).
    """
    from meterwatch.topics import TopicSpec

    parts = settings.readings_partitions
    compact = {"cleanup.policy": "compact", "retention.ms": str(settings.changelog_retention_ms)}
    app_id = settings.app_id
    return [
        TopicSpec(name=f"{app_id}-by-customer", partitions=parts),
        TopicSpec(name=f"{app_id}-parked", partitions=parts),
        TopicSpec(name=f"{app_id}-customers-changelog", partitions=parts, configs=compact),
        TopicSpec(name=f"{app_id}-profiles-changelog", partitions=parts, configs=compact),
        TopicSpec(name=f"{app_id}-segmenter-changelog", partitions=1, configs=compact),
    ]


async def prepare_topics(settings: Settings) -> list[str]:
    """Create every topic the worker reads or writes (idempotent); returns the names created."""
    from meterwatch.topics import create_topics, topic_specs

    return await create_topics(settings, topic_specs(settings) + internal_topic_specs(settings))


def create_app(settings: Settings, **kwargs: Any) -> faust.App:
    """The configured Faust app (see :class:`Pipeline` for the keyword arguments)."""
    return Pipeline(settings, **kwargs).app


def run_worker(pipeline: Pipeline, loglevel: str = "info") -> int:
    """Run the pipeline's app in this process until SIGTERM/SIGINT (blocking)."""
    from faust.worker import Worker

    # mode maps unknown level names to DEBUG (e.g. "warning"): give it the number
    level = logging.getLevelName(loglevel.upper())
    pipeline.log_level = level if isinstance(level, int) else logging.INFO
    worker = Worker(
        pipeline.app,
        loglevel=level if isinstance(level, int) else logging.INFO,
        quiet=True,
        redirect_stdouts=False,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
