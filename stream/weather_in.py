"""The weather follower: the `weather` topic's daily temperatures per region, known to every worker.

Every worker reads the whole `weather` topic (all partitions, no consumer group, from the
beginning, then follows it) into one in-memory ``baselines.weather.Temperatures`` that the
worker's engine judges with (``Engine.use_weather``), the way ``stream/registry.py`` follows
`customers`. Values are ``meterwatch.contracts.WeatherDay`` (key: region); a customer takes
its record's ``region``'s series, else the ``*`` series. An undecodable value is logged with
its offset and skipped (the publisher, ``meterwatch publish-weather``, validates what it
sends; every worker reads the topic, so a dead letter would be written once per worker).

A day's temperature is needed only when the day leaves the late window (7 days after it),
so a feed published daily gives the stream the backtest's judgement; the worker's readings
ingest waits until the follower has caught up with the topic at start (``ready``). A
temperature that arrives after its day was learned is kept for the rules but not learned.

>>> import datetime as dt
>>> f = WeatherFollower.__new__(WeatherFollower); f.temps = Temperatures({}); f.records_seen = 0
>>> f.apply_raw(b"*", b'{"region": "*", "day": "2013-12-18", "temp_mean_c": -3.5}')
>>> f.apply_raw(b"*", b'{"region": "*", "day": "2013-12-19", "temp_mean_c": "cold"}')
>>> f.temps.series(None) == {dt.date(2013, 12, 18).toordinal(): -3.5}, f.records_seen
(True, 2)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from baselines.weather import Temperatures
from meterwatch.connections import kafka_client_kwargs
from meterwatch.contracts import WeatherDay
from meterwatch.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["WeatherFollower"]


class WeatherFollower:
    """Tails the whole `weather` topic into ``temps``; ``ready`` once caught up with the end
    offsets seen at start."""

    def __init__(self, settings: Settings, temps: Temperatures | None = None) -> None:
        self.settings = settings
        self.temps = temps if temps is not None else Temperatures({})
        self.ready = asyncio.Event()
        self.records_seen = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="meterwatch-weather")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def apply_raw(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one record (an undecodable one is logged and skipped)."""
        self.records_seen += 1
        if value is None:
            return
        try:
            w = WeatherDay.model_validate_json(value)
        except ValidationError as exc:
            log.error("undecodable weather record (key %r): %s", key, exc.errors()[0].get("msg"))
            return
        self.temps.apply(w.region, w.day.toordinal(), w.temp_mean_c)

    async def _run(self) -> None:
        topic = self.settings.topic_weather
        while True:
            consumer = AIOKafkaConsumer(
                topic,
                **kafka_client_kwargs(self.settings),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                client_id=f"{self.settings.app_id}-weather",
            )
            try:
                await consumer.start()
                tps = sorted(consumer.assignment())
                if not tps:  # no weather topic (yet): no feed, the rules judge as without weather
                    self.ready.set()
                    await asyncio.sleep(5.0)
                    continue
                await self._follow(consumer, tps)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("weather follower failed; restarting in 1 s")
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def _follow(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if end[tp] > 0}
        while True:
            if not pending and not self.ready.is_set():
                log.info("weather ready: %d region-days", len(self.temps))
                self.ready.set()
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, msgs in batch.items():
                for m in msgs:
                    self.apply_raw(m.key, m.value)
                if tp in pending and msgs and msgs[-1].offset + 1 >= end[tp]:
                    pending.discard(tp)
            for tp in list(pending):  # a tail of deleted or aborted records
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
