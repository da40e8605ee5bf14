"""Live updates for the worklist: one Redis subscription per API process, fanned out to streams.

The worker publishes new alerts and the API publishes lifecycle changes on
``Keys.alert_events`` (``meterwatch.alertindex``). A process holds one pub/sub
connection however many browsers watch; each stream gets a bounded queue (a
slow browser loses the oldest events, never blocks the others) and the number
of streams is capped (``MW_WEB_SSE_MAX_STREAMS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import orjson
from redis.asyncio import Redis

log = logging.getLogger("meterwatch.api.events")

QUEUE_MAX = 100


class TooManyStreams(Exception):
    pass


class EventHub:
    def __init__(self, redis: Callable[[], Redis], channel: str, max_streams: int) -> None:
        self.redis = redis
        self.channel = channel
        self.max_streams = max_streams
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    @property
    def streams(self) -> int:
        return len(self._queues)

    def open(self) -> asyncio.Queue[dict[str, Any]]:
        if len(self._queues) >= self.max_streams:
            raise TooManyStreams
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_MAX)
        self._queues.add(q)
        if self._task is None or self._task.done():
            self.ready.clear()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="meterwatch-api-events")
        return q

    def close(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._queues.discard(q)

    def _fan_out(self, event: dict[str, Any]) -> None:
        for q in list(self._queues):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(event)

    async def _run(self) -> None:
        while True:
            pubsub = self.redis().pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    msg = await pubsub.get_message(timeout=5.0)
                    if msg is None:
                        continue
                    if msg["type"] == "subscribe":  # Redis confirmed: every later publish reaches us
                        self.ready.set()
                        continue
                    if msg["type"] != "message":
                        continue
                    try:
                        event = orjson.loads(msg["data"])
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(event, dict):
                        self._fan_out(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis gone: retry, streams stay open
                log.warning("alert events subscription lost (%s); retrying", exc)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
