"""The Kafka side: consume `alerts`, record each alert durably, then commit.

An offset is committed only after the batch is recorded in Redis. While Redis
is down the same batch is retried (with backoff) and nothing is committed, so
the alerts wait in Kafka; a crash before the commit redelivers the batch, and
the ingest script's SET NX on the alert id makes the redelivery harmless.
A message that is not a valid Alert is recorded in the `rejected` list with a
reason (and counted), then committed: it can never become valid by retrying.

Before consuming, the consumer creates the alerts topic or verifies it (partition count,
``meterwatch.topics``): a topic auto-created with the wrong partition count is reported
(log + ``/readyz``) with what to do, and not consumed. While consuming, the broker is
probed every ``MW_NOTIFIER_KAFKA_PROBE_S`` seconds (a metadata request), so readiness
turns false during an outage instead of trusting a consumer that merely started once.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from redis.exceptions import RedisError

from meterwatch.connections import kafka_client_kwargs
from meterwatch.contracts import Alert
from meterwatch.settings import Settings
from meterwatch.topics import TopicAdminError, TopicMismatchError, ensure_topics
from notifier.clock import Clock
from notifier.routing import ingest_alerts
from notifier.store import Store

log = logging.getLogger("meterwatch.notifier.consumer")

MAX_ALERT_BYTES = 256 * 1024


def _raw_text(v: bytes | None) -> tuple[str, str]:
    if v is None:
        return "", "text"
    try:
        return v.decode("utf-8"), "text"
    except UnicodeDecodeError:
        return base64.b64encode(v).decode(), "base64"


class AlertConsumer:
    def __init__(
        self, store: Store, settings: Settings, clock: Clock, on_recorded: Callable[[], None] | None = None
    ) -> None:
        self.on_recorded = on_recorded
        self.store = store
        self.s = settings
        self.clock = clock
        self.consumer: AIOKafkaConsumer | None = None
        self.connected = False  # started, and the last broker probe answered
        self.problem = "not started yet"  # why not connected (for /readyz and the logs)
        self.processed = 0
        self.redis_retries = 0  # batches that waited in Kafka because Redis was down

    def _make(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            self.s.topic_alerts,
            **kafka_client_kwargs(self.s),
            group_id=self.s.notifier_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=500,
            client_id="meterwatch-notifier",
        )

    async def run(self, stop: asyncio.Event) -> None:
        pause = 0.5
        while not stop.is_set():
            if not await self._topics_ready():
                await self._pause(stop, self.s.notifier_topic_recheck_s)
                continue
            consumer = self._make()
            watch: asyncio.Task[None] | None = None
            try:
                await consumer.start()
                self.consumer, pause = consumer, 0.5
                self._up()
                log.info("consuming %s as group %s", self.s.topic_alerts, self.s.notifier_group_id)
                # probed beside the loop: a commit or fetch stuck in an outage must not hide it
                watch = asyncio.create_task(self._watch(consumer), name="notifier-kafka-probe")
                await self._loop(consumer, stop)
            except KafkaError as e:
                self._down(f"kafka unavailable: {e}")
                log.warning("kafka unavailable (%s); retrying in %.1fs", e, pause)
            except Exception as e:
                # nothing may kill the consumer: the uncommitted batch is read again after a pause
                self._down(f"consumer failed: {type(e).__name__}")
                log.exception("consumer failed; restarting in %.1fs", pause)
            finally:
                self.connected = False
                if watch is not None:
                    watch.cancel()
                    await asyncio.gather(watch, return_exceptions=True)
                try:
                    await consumer.stop()
                except Exception:  # stopping a half-started consumer may fail; nothing to recover
                    log.debug("consumer stop failed", exc_info=True)
            await self._pause(stop, pause)
            pause = min(10.0, pause * 2)
        self._down("stopped")

    @staticmethod
    async def _pause(stop: asyncio.Event, seconds: float) -> None:
        if not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=seconds)
            except TimeoutError:
                pass

    def _up(self) -> None:
        self.connected, self.problem = True, ""

    def _down(self, problem: str) -> None:
        self.connected, self.problem = False, problem

    async def _topics_ready(self) -> bool:
        """Create the alerts topic if missing, or verify it; False (with the reason) if it cannot be used."""
        try:
            await ensure_topics(self.s, [self.s.topic_alerts])
            return True
        except TopicMismatchError as e:
            self._down(str(e))
            log.error("cannot consume: %s", e)
        except (KafkaError, TopicAdminError, OSError) as e:
            self._down(f"kafka unavailable: {e}")
            log.warning("kafka unavailable (%s); retrying", e)
        return False

    async def _watch(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            await asyncio.sleep(self.s.notifier_kafka_probe_s)
            await self._probe(consumer)

    async def _probe(self, consumer: AIOKafkaConsumer) -> None:
        """A metadata round trip to the broker: readiness follows what it answers."""
        timeout = max(1.0, self.s.notifier_kafka_probe_s)
        try:
            await asyncio.wait_for(consumer.topics(), timeout=timeout)
        except (KafkaError, OSError, TimeoutError) as e:
            if self.connected:
                log.warning("kafka unreachable (%s); alerts wait in Kafka", type(e).__name__)
            self._down(f"kafka unreachable: {type(e).__name__}: {e}"[:300])
            return
        if not self.connected:
            log.info("kafka reachable again")
        self._up()

    async def _loop(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            if not batches:
                continue
            records = [r for rs in batches.values() for r in rs]
            if not await self._record_until_done(records, stop):
                return  # stopping before it was recorded: no commit; the batch is redelivered
            if self.on_recorded is not None:
                self.on_recorded()
            offsets = {tp: rs[-1].offset + 1 for tp, rs in batches.items() if rs}
            await consumer.commit(offsets)
            self.processed += len(records)

    async def _record_until_done(self, records: list[ConsumerRecord[Any, Any]], stop: asyncio.Event) -> bool:
        """Record the batch in Redis, retrying while Redis is down (never skipping ahead)."""
        pause = 0.2
        while not stop.is_set():
            try:
                await self.record(records)
                return True
            except (RedisError, OSError) as e:
                self.redis_retries += 1
                log.warning("redis unavailable (%s); %d alerts wait in Kafka", type(e).__name__, len(records))
                try:
                    await asyncio.wait_for(stop.wait(), timeout=pause)
                except TimeoutError:
                    pass
                pause = min(5.0, pause * 2)
        return False

    async def record(self, records: list[ConsumerRecord[Any, Any]]) -> None:
        alerts: list[Alert] = []
        for r in records:
            value: bytes | None = r.value
            try:
                if value is None:
                    raise ValueError("empty message")
                if len(value) > MAX_ALERT_BYTES:
                    raise ValueError(f"message larger than {MAX_ALERT_BYTES} bytes")
                alerts.append(Alert.model_validate_json(value))
            except (ValidationError, ValueError) as e:
                raw, enc = _raw_text(value[:MAX_ALERT_BYTES] if value else None)
                await self.store.reject(
                    {
                        "error": {"code": "invalid_alert", "message": str(e)[:2000]},
                        "received_at": self.clock.now().isoformat(),
                        "source": {"topic": r.topic, "partition": r.partition, "offset": r.offset},
                        "raw": raw,
                        "raw_encoding": enc,
                    }
                )
                log.warning("rejected message %s[%d]@%d: invalid alert", r.topic, r.partition, r.offset)
        # de-duplicate inside the batch (the script would too; this saves round trips)
        uniq = list({a.alert_id: a for a in alerts}.values())
        if uniq:
            for res, a in zip(
                await ingest_alerts(uniq, self.store, self.s, self.clock.now()), uniq, strict=True
            ):
                if "error" in res:
                    await self.store.reject(
                        {
                            "error": {"code": "unroutable_alert", "message": res["error"][:2000]},
                            "received_at": self.clock.now().isoformat(),
                            "source": {"topic": self.s.topic_alerts},
                            "raw": a.model_dump_json(by_alias=True),
                            "raw_encoding": "text",
                        }
                    )

    async def lag(self) -> int | None:
        c = self.consumer
        if c is None or not self.connected:
            return None
        total = 0
        parts: set[TopicPartition] = c.assignment()
        if not parts:
            return 0
        ends = await c.end_offsets(list(parts))
        for tp in parts:
            pos = await c.position(tp)
            total += max(0, ends[tp] - pos)
        return total


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
