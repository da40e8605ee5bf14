"""Per-token rate limit: counted in-process, synchronised to Redis in the background.

Shared by the Ops API and the notifier (each with its own Redis counters and limit).

Each token may make ``limit`` requests per fixed one-minute window (UTC minute),
shared by every API process through the Redis counter
``Keys.ratelimit(token_id, window)``. The request path never waits for Redis:
a process counts its own requests locally and a background task per token
adds them to the Redis counter with ``INCRBY`` — at once for the first request
of a burst, then every ``sync_s`` seconds while requests keep coming — and
learns the total of all processes in return. A request is
refused when ``total known from Redis + not yet synced local count >= limit``.

So one process enforces the limit exactly; several processes together may
admit, at worst, what the *other* processes served during the last ``sync_s``
(default 0.05 s) beyond the limit. If Redis is unreachable, counting goes on
locally and is synced when Redis is back.

>>> rl = RateLimiter(limit=2, sync=None)
>>> [rl.admit("tok", now=120.0) for _ in range(3)]
[0, 0, 60]
>>> rl.admit("tok", now=180.5)  # a new window
0
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("meterwatch.ratelimit")

WINDOW_S = 60

#: (token_id, window, count to add) -> the Redis total after adding
SyncFn = Callable[[str, int, int], Awaitable[int]]


@dataclass
class _Slot:
    window: int
    known_total: int = 0  # the Redis counter as last seen (includes our synced requests)
    pending: int = 0  # counted here, not yet added to Redis
    syncing: bool = False


class RateLimiter:
    """``limit`` requests per token and UTC minute; ``clock`` gives epoch seconds (tests inject one)."""

    def __init__(
        self,
        limit: int,
        sync: SyncFn | None,
        sync_s: float = 0.05,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limit = limit
        self.sync = sync
        self.sync_s = sync_s
        self.clock = clock
        self._slots: dict[str, _Slot] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def admit(self, token_id: str, now: float | None = None) -> int:
        """0 when the request may go on; else the seconds until the window ends (Retry-After)."""
        if self.limit <= 0:
            return 0
        now = self.clock() if now is None else now
        window = int(now // WINDOW_S)
        slot = self._slots.get(token_id)
        if slot is None or slot.window != window:
            if slot is not None and slot.pending and not slot.syncing and self.sync is not None:
                self._spawn(token_id, slot)  # flush the old window's tail
            if len(self._slots) > 50_000:
                self._slots = {k: s for k, s in self._slots.items() if s.window == window}
            slot = self._slots[token_id] = _Slot(window)
        if slot.known_total + slot.pending >= self.limit:
            return max(1, math.ceil((window + 1) * WINDOW_S - now))  # the window is over by then
        slot.pending += 1
        if self.sync is not None and not slot.syncing:
            self._spawn(token_id, slot)
        return 0

    def _spawn(self, token_id: str, slot: _Slot) -> None:
        slot.syncing = True
        task = asyncio.get_running_loop().create_task(self._sync(token_id, slot))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sync(self, token_id: str, slot: _Slot) -> None:
        """Add the slot's pending count to Redis; repeat every ``sync_s`` while requests keep coming."""
        assert self.sync is not None
        try:
            while slot.pending > 0:
                count = slot.pending
                try:
                    total = await self.sync(token_id, slot.window, count)
                except Exception as exc:  # Redis down: keep counting locally, retry on a later request
                    log.debug("rate-limit sync failed: %s", exc)
                    return
                slot.pending -= count
                slot.known_total = max(slot.known_total, total)
                if slot.pending > 0:
                    await asyncio.sleep(self.sync_s)
        finally:
            slot.syncing = False

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
