"""The composition root of a worker process: build the app, the shared context and every stage.

``Worker(settings)`` wires the stages (one module each) to the Faust app of
stream/app.py and owns what runs beside them: the registry follower (meter
index), the ingest consumer, the batch producer, the Redis read model, the
metrics server and a 1 s housekeeping timer. ``run_worker`` runs it until
SIGTERM/SIGINT; ``wait_for_kafka`` lets ``meterwatch worker`` wait for the broker.

A unit test builds ``Worker(settings, store="memory://", out=<memory outputs>)``
and drives each stage's agent with ``agent.test_context()`` (no broker, no disk).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from aiokafka.errors import KafkaError
from redis.asyncio import Redis

from baselines.engine import Engine
from baselines.readview import load_engine
from baselines.weather import Temperatures
from meterwatch.connections import kafka_security, redis_client
from meterwatch.keys import Keys
from meterwatch.logs import MaskingFilter, install_repeat_filter
from meterwatch.settings import Settings
from meterwatch.topics import TopicAdminError
from stream.app import build_app, prepare_topics
from stream.context import StageContext, utc_now
from stream.customers_in import CustomersInStage
from stream.deadletters import DeadLetters
from stream.history_in import HistoryInStage
from stream.ingest import IngestStage
from stream.metrics import MetricsServer, WorkerMetrics
from stream.parked import ParkedStage
from stream.produce import BatchProducer, Outputs, new_producer
from stream.profiles import ProfileStage
from stream.rawconsumer import RawIngest
from stream.readmodel import ReadModelWriter
from stream.registry import MeterIndex, RegistryFollower
from stream.segmenter import SegmenterStage
from stream.segments_in import SegmentsInStage
from stream.weather_in import WeatherFollower

log = logging.getLogger(__name__)

__all__ = ["Worker", "load_engine", "run_worker", "wait_for_kafka"]

# counters whose Redis value is the exact per-partition truth (stream/state.py), not increments
EXACT_COUNTERS = frozenset({"readings_processed", "duplicates:reading"})


class Worker:
    """One worker process: the Faust app with every stage wired in."""

    def __init__(
        self,
        settings: Settings,
        *,
        instance: str = "w0",
        metrics_port: int | None = None,
        engine: Engine | None = None,
        batch_max: int = 2000,
        batch_within_s: float = 0.05,
        store: str = "rocksdb://",
        out: Outputs | None = None,
        clock: Callable[[], Any] = utc_now,
    ) -> None:
        self.settings = settings
        self.instance = instance
        self.metrics_port = settings.worker_metrics_port if metrics_port is None else metrics_port
        self.log_level = logging.INFO
        self.wapp = build_app(settings, instance, store=store)
        self.app = self.wapp.app
        names = self.wapp.names
        self.producer: BatchProducer | None = None
        if out is None:
            client_id = f"{settings.app_id}-{instance}"
            self.producer = BatchProducer(
                factory=lambda: new_producer(settings.kafka_bootstrap, client_id, **kafka_security(settings))
            )
            out = self.producer
        out.set_partitions(names.by_customer, settings.readings_partitions)
        out.set_partitions(names.parked, settings.readings_partitions)
        out.set_partitions(names.features, 1)
        metrics = WorkerMetrics()
        self.ctx = StageContext(
            settings=settings,
            engine=engine if engine is not None else load_engine(settings, clock),
            out=out,
            metrics=metrics,
            dead=DeadLetters(out, metrics, names.dlq, names.by_customer, clock),
            index=MeterIndex(settings.reading_max_kw),
            names=names,
            clock=clock,
            batch_max=batch_max,
            batch_within_s=batch_within_s,
        )
        self.ingest = IngestStage(self.ctx)
        self.parked = ParkedStage(self.ctx, self.ingest)
        self.profiles = ProfileStage(self.ctx, self.wapp.customers_table, self.wapp.profiles_table)
        self.segmenter = SegmenterStage(self.ctx, self.wapp.segmenter_table)
        self.registry = RegistryFollower(settings, self.ctx.index)
        # the weather feed (stream/weather_in.py): empty until the follower fills it, and without
        # a `weather` topic it stays empty: the rules judge as without weather
        eng = self.ctx.engine
        temps = eng.weather if eng.weather is not None else Temperatures({})
        eng.use_weather(temps)
        self.weather = WeatherFollower(settings, temps)
        self._inputs_ready = asyncio.Event()
        self._ready_task: asyncio.Task[None] | None = None
        self.agents = self._wire()
        self.raw_ingest: RawIngest | None = None
        self.metrics_server: MetricsServer | None = None
        self._redis: Redis | None = None

    def _wire(self) -> dict[str, Any]:
        """Register every Faust stage; returns the agents by name."""
        app, topics = self.app, self.wapp.topics
        stages: dict[str, Callable[[Any], Any]] = {
            "parked": self.parked.agent,
            "customers_in": CustomersInStage(self.ctx).agent,
            "history_in": HistoryInStage(self.ctx).agent,
            "segments_in": SegmentsInStage(self.ctx).agent,
            "profiles": self.profiles.agent,
            "segmenter": self.segmenter.agent,
        }
        agents = {name: app.agent(topics[name], name=name)(fn) for name, fn in stages.items()}
        app.timer(1.0, name="housekeeping")(self.housekeeping)
        app.task(self._startup)
        # mode types a signal handler with mypy_extensions arg kinds over an unbound TypeVar that
        # no coroutine method matches: the signal is used untyped (its call is documented below)
        revoked_signal: Any = app.on_partitions_revoked
        revoked_signal.connect(self._on_revoked)
        app.on_before_shutdown.connect(self._shutdown)
        return agents

    # ------------------------------------------------------------------ lifecycle
    async def _startup(self) -> None:
        for h in logging.getLogger().handlers:
            h.addFilter(MaskingFilter())
        # an outage must not flood the log (aiokafka logs every failed connect): one line per
        # cause per MW_LOG_REPEAT_INTERVAL_S, with the count of the ones held back
        install_repeat_filter(self.settings.log_repeat_interval_s)
        # mode's logging setup leaves the root logger at DEBUG: every library's debug
        # call then builds a LogRecord (measured: ~5 % of the worker's time). Set it here.
        logging.getLogger().setLevel(self.log_level)
        s, ctx = self.settings, self.ctx
        if self.producer is not None:
            await self.producer.start()
        self._redis = redis_client(s)
        ctx.readmodel = ReadModelWriter(
            self._redis, Keys(s.redis_prefix), s.readmodel_flush_ms, partitions=s.readings_partitions
        )
        await ctx.readmodel.start()
        await self.registry.start()
        await self.weather.start()
        self._ready_task = asyncio.create_task(self._wait_inputs(), name="meterwatch-inputs-ready")
        ctx.dead.partitions = await ctx.out.partitions(ctx.names.dlq)
        self.raw_ingest = RawIngest(
            bootstrap=s.kafka_bootstrap,
            topic=s.topic_readings,
            group_id=f"{s.app_id}-ingest",
            client_id=f"{s.app_id}-ingest-{self.instance}",
            process=self.ingest.process,
            deliver=ctx.deliver,
            ready=self._inputs_ready,
            batch_max=ctx.batch_max,
            security=kafka_security(s),
        )
        await self.raw_ingest.start()
        if self.metrics_port:
            self.metrics_server = MetricsServer(s, ctx.metrics, self.instance, self.metrics_port)
            try:
                await self.metrics_server.start()
            except OSError as exc:
                log.error("worker metrics port %d unavailable: %s", self.metrics_port, exc)
                self.metrics_server = None

    async def _wait_inputs(self) -> None:
        """Readings wait for the meter index and the weather to catch up with their topics."""
        await self.registry.ready.wait()
        await self.weather.ready.wait()
        self._inputs_ready.set()

    async def _shutdown(self, *args: Any, **kwargs: Any) -> None:
        if self.raw_ingest is not None:
            await self.raw_ingest.stop()  # its last batch delivered and committed, the group left
        await self.registry.stop()
        await self.weather.stop()
        if self._ready_task is not None:
            self._ready_task.cancel()
        if self.ctx.readmodel is not None:
            await self.ctx.readmodel.stop()
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        if self._redis is not None:
            await self._redis.aclose()
        if self.producer is not None:
            await self.producer.stop()

    async def _on_revoked(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """Faust's ``on_partitions_revoked`` signal: ``(app, revoked_topic_partitions)``."""
        revoked: set[Any] = set(args[0]) if args else set(kwargs.get("revoked", ()))
        names = self.ctx.names
        self.profiles.revoke({tp.partition for tp in revoked if tp.topic == names.by_customer})
        for tp in revoked:
            self.ctx.positions.pop(tp, None)
        if any(tp.topic == names.parked for tp in revoked):
            self.parked.forget(revoked)
        if any(tp.topic == names.features for tp in revoked):
            self.segmenter.revoke()

    async def housekeeping(self) -> None:
        """Every second: retry parked readings, update the gauges, mirror the counters to Redis."""
        await self.parked.retry()
        ctx, m = self.ctx, self.ctx.metrics
        lag_in = self.raw_ingest.lag() if self.raw_ingest is not None else 0
        lag_internal = 0
        for tp, pos in list(ctx.positions.items()):
            if tp.topic != ctx.names.by_customer:
                continue
            try:
                hw = self.app.consumer.highwater(tp)
            except Exception:  # partition no longer assigned
                hw = None
            if hw is not None:
                lag_internal += max(hw - pos, 0)
        m.set_gauge("consumer_lag", lag_in)
        m.set_gauge("internal_lag", lag_internal)
        m.set_gauge("cached_customers", sum(len(c) for c in self.profiles.cache.values()))
        m.set_gauge("meter_index_customers", len(ctx.index))
        if ctx.readmodel is not None:
            ctx.readmodel.incr_metrics(m.deltas(exclude=EXACT_COUNTERS))
            ctx.readmodel.set_metrics(
                {f"consumer_lag:{self.instance}": lag_in, f"internal_lag:{self.instance}": lag_internal}
            )


def run_worker(worker: Worker, loglevel: str = "info") -> int:
    """Run the worker's app in this process until SIGTERM/SIGINT (blocking)."""
    from faust.worker import Worker as FaustWorker

    # mode maps unknown level names to DEBUG (e.g. "warning"): give it the number
    level = logging.getLevelName(loglevel.upper())
    worker.log_level = level if isinstance(level, int) else logging.INFO
    fw = FaustWorker(worker.app, loglevel=worker.log_level, quiet=True, redirect_stdouts=False)
    try:
        fw.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


async def wait_for_kafka(
    settings: Settings,
    wait_s: float | None,
    *,
    out: TextIO = sys.stderr,
    retry_s: float = 2.0,
    remind_s: float = 60.0,
) -> bool:
    """Create the worker's topics, waiting for Kafka (one line, not a traceback) up to ``wait_s``.

    Returns False when ``wait_s`` expired (None: wait as long as it takes).
    """
    started = time.monotonic()
    told = -remind_s
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # aiokafka logs every failed connection attempt
    try:
        while True:
            try:
                await prepare_topics(settings)
                return True
            except (KafkaError, OSError, TimeoutError, TopicAdminError) as exc:
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
            waited = time.monotonic() - started
            if wait_s is not None and waited >= wait_s:
                print(
                    f"meterwatch worker: Kafka at {settings.kafka_bootstrap} not reachable after "
                    f"{waited:.0f} s ({reason}); giving up (--wait {wait_s:g})",
                    file=out,
                    flush=True,
                )
                return False
            if waited - told >= remind_s:
                told = waited
                print(
                    f"meterwatch worker: waiting for Kafka at {settings.kafka_bootstrap} ({reason}); "
                    f"retrying every {retry_s:g} s" + ("" if wait_s is None else f" for up to {wait_s:g} s"),
                    file=out,
                    flush=True,
                )
            await asyncio.sleep(retry_s if wait_s is None else max(0.0, min(retry_s, wait_s - waited)))
    finally:
        quiet.setLevel(level)
