"""Live inbox streams (SSE): one Redis pub/sub connection per replica, fanned out in-process.

A stream used to hold a Redis connection of its own (a pub/sub per stream), taken from
the pool that also serves sending: about 100 streams of one manager token emptied
redis-py's pool (100) and sending stalled. Now every replica has ONE pub/sub connection
(``InboxHub``, its own client: SSE has its own connection budget), pattern-subscribed to
every manager's inbox channel; each stream registers a bounded in-process queue. The
number of streams is capped per token (``MW_NOTIFIER_SSE_MAX_PER_TOKEN``, 429 over it)
and per replica (``MW_NOTIFIER_SSE_MAX_STREAMS``, 503 over it).

A stream whose queue overflows (a client that does not read), or that may have missed
messages while the hub reconnected to Redis, is marked for a resync: it replays the
inbox from its last event id (the ``inbox:{manager}`` ZSET), so no item is lost.

>>> hub = InboxHub("redis://127.0.0.1:1/0", "mw:n:inboxch:", max_streams=3, max_per_token=2)
>>> a, b = hub.open("m1", "tok1"), hub.open("m1", "tok1")
>>> try:
...     hub.open("m1", "tok1")
... except StreamLimitError as e:
...     print(e.status, e.message)
429 at most 2 live inbox streams per token (MW_NOTIFIER_SSE_MAX_PER_TOKEN); close one, or read the JSON inbox
>>> c = hub.open("m2", "tok2")
>>> try:
...     hub.open("m2", "tok3")
... except StreamLimitError as e:
...     print(e.status, e.message[:44])
503 this replica serves at most 3 live inbox str
>>> a.release(); a.release(); hub.total   # release is idempotent
2
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("meterwatch.notifier.sse")


class StreamLimitError(Exception):
    """Too many live streams: 429 (this token) or 503 (this replica), with a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(eq=False)
class Subscription:
    """One live stream's place at the hub: a bounded queue of inbox item JSON."""

    hub: InboxHub
    manager_id: str
    token_id: str
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(maxsize=256))
    resync: bool = False  # messages may have been missed: replay from the inbox ZSET
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.hub._release(self)


class InboxHub:
    """The replica's one pub/sub connection and the registry of live streams."""

    def __init__(
        self,
        redis_url: str,
        channel_prefix: str,
        max_streams: int,
        max_per_token: int,
        client_name: str = "meterwatch-notifier-sse",
        connect: Callable[..., Redis] | None = None,  # meterwatch.connections.redis_client(settings)
    ) -> None:
        self.redis_url = redis_url
        self._connect = connect or functools.partial(Redis.from_url, redis_url)
        self.channel_prefix = channel_prefix
        self.max_streams = max_streams
        self.max_per_token = max_per_token
        self.client_name = client_name
        self.total = 0
        self.up = False  # subscribed and reading
        self._subs: dict[str, set[Subscription]] = {}
        self._per_token: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    # --- streams -------------------------------------------------------------------------
    def open(self, manager_id: str, token_id: str) -> Subscription:
        """Register a stream (raises ``StreamLimitError`` over a cap); starts the hub if needed."""
        if self.max_per_token > 0 and self._per_token.get(token_id, 0) >= self.max_per_token:
            raise StreamLimitError(
                429,
                f"at most {self.max_per_token} live inbox streams per token "
                "(MW_NOTIFIER_SSE_MAX_PER_TOKEN); close one, or read the JSON inbox",
            )
        if self.max_streams > 0 and self.total >= self.max_streams:
            raise StreamLimitError(
                503,
                f"this replica serves at most {self.max_streams} live inbox streams "
                "(MW_NOTIFIER_SSE_MAX_STREAMS); retry later",
            )
        sub = Subscription(self, manager_id, token_id)
        self._subs.setdefault(manager_id, set()).add(sub)
        self._per_token[token_id] = self._per_token.get(token_id, 0) + 1
        self.total += 1
        return sub

    def _release(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.manager_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.manager_id]
        left = self._per_token.get(sub.token_id, 1) - 1
        if left > 0:
            self._per_token[sub.token_id] = left
        else:
            self._per_token.pop(sub.token_id, None)
        self.total -= 1

    def dispatch(self, channel: str, data: str) -> None:
        """Hand one published inbox item to the streams of its manager."""
        if not channel.startswith(self.channel_prefix):
            return
        for sub in list(self._subs.get(channel[len(self.channel_prefix) :], ())):
            try:
                sub.queue.put_nowait(data)
            except asyncio.QueueFull:  # a client that does not read: drop, and replay later
                _drain(sub.queue)
                sub.resync = True

    # --- the one connection ----------------------------------------------------------------
    def start(self) -> None:
        """Start the pub/sub reader (in the app's lifespan)."""
        if self._task is None or self._task.done():
            self._stop.clear()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="notifier-sse-hub")

    async def _run(self) -> None:
        pause = 0.2
        pattern = _glob_escape(self.channel_prefix) + "*"
        while not self._stop.is_set():
            redis = self._connect(
                decode_responses=True,
                max_connections=1,
                client_name=self.client_name,
                socket_connect_timeout=2.0,
                health_check_interval=15,
            )
            pubsub = redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(pattern)
                self._mark_up()
                pause = 0.2
                while not self._stop.is_set():
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is not None and msg.get("type") == "pmessage":
                        self.dispatch(str(msg["channel"]), str(msg["data"]))
            except (RedisError, OSError) as e:
                if self.up:
                    log.warning("inbox streams: redis unavailable (%s); reconnecting", type(e).__name__)
                self.up = False
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(RedisError, OSError):
                    await redis.aclose()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=pause)
            pause = min(5.0, pause * 2)
        self.up = False

    def _mark_up(self) -> None:
        self.up = True
        # messages published while not subscribed were missed: every stream replays what is newer
        for subs in self._subs.values():
            for sub in subs:
                sub.resync = True

    async def aclose(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, timeout=5)


def _drain(q: asyncio.Queue[str]) -> None:
    while True:
        try:
            q.get_nowait()
        except asyncio.QueueEmpty:
            return


def _glob_escape(text: str) -> str:
    """Escape Redis glob characters, so that a key prefix matches itself only.

    >>> _glob_escape("mw[1]:n:inboxch:*")
    'mw\\\\[1\\\\]:n:inboxch:\\\\*'
    """
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)
