"""The alert index across customers and the alert lifecycle, in Redis (docs/workbench.md).

Written by the worker (a new alert enters ``open``) in the same pipeline as the
per-customer alert mirror, and by the API (acknowledge, record an outcome).
Keys (``meterwatch.keys.Keys``):

* ``aix:{status}:all`` and ``aix:{status}:m:{manager_id}``: ZSETs of alert ids per
  lifecycle status, scored by ``triggered_by`` (epoch seconds);
* ``aix:owner``: HASH alert_id -> customer_id (where the body is);
* ``alst:{alert_id}``: HASH, the lifecycle state (absent: open, never touched);
* ``alhist:{alert_id}``: LIST of JSON lifecycle events, oldest first;
* ``ev:alerts``: pub/sub channel of new alerts and lifecycle changes.

Both writers use Lua scripts, so a status lives in exactly one status index:
the worker adds an alert to ``open`` only when it has no lifecycle state yet
(a redelivered alert never reopens an acknowledged one; ``ZADD`` of the same
deterministic id changes nothing), and publishes only when the alert is new to
the index.

>>> STATUSES
('open', 'acknowledged', 'resolved')
>>> event_json("alert", "a1", "c1", "m1", "open", rule="sudden_increase")
b'{"type":"alert","alert_id":"a1","customer_id":"c1","manager_id":"m1","status":"open","rule":"sudden_increase"}'
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from meterwatch.keys import Keys

log = logging.getLogger(__name__)

STATUSES = ("open", "acknowledged", "resolved")
INDEX_VERSION = "1"
UNASSIGNED = None  # alerts without a manager are indexed under "all" only

# KEYS: owner, state, open:all, open:m:{mid} (or open:all again)
# ARGV: alert_id, customer_id, score, event json, channel
_INDEX_LUA = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local added = redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
if KEYS[4] ~= KEYS[3] then redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1]) end
if added == 1 and ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[4]) end
return added
"""


def event_json(
    kind: str, alert_id: str, customer_id: str, manager_id: str | None, status: str, **extra: Any
) -> bytes:
    """A pub/sub event on ``Keys.alert_events``."""
    return orjson.dumps(
        {
            "type": kind,
            "alert_id": alert_id,
            "customer_id": customer_id,
            "manager_id": manager_id,
            "status": status,
            **extra,
        }
    )


class AlertIndexer:
    """Queues the index writes of new alerts on a pipeline (the worker's read-model flush)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.keys = keys
        self._script = redis.register_script(_INDEX_LUA)

    async def queue(
        self,
        pipe: Pipeline,
        alert_id: str,
        customer_id: str,
        manager_id: str | None,
        triggered_epoch: float,
        rule: str,
        severity: str,
        publish: bool = True,
    ) -> None:
        """Queue one alert's index entry (one Lua call) on ``pipe``."""
        k = self.keys
        all_key = k.alert_index("open")
        mgr_key = k.alert_index("open", manager_id) if manager_id else all_key
        event = event_json("alert", alert_id, customer_id, manager_id, "open", rule=rule, severity=severity)
        await self._script(
            keys=[k.alert_owner, k.alert_state(alert_id), all_key, mgr_key],
            args=[alert_id, customer_id, f"{triggered_epoch:.3f}", event, k.alert_events if publish else ""],
            client=pipe,
        )


async def backfill(redis: Redis, keys: Keys, batch: int = 500) -> int:
    """Index every alert already mirrored in Redis (``alertbody:*``); returns how many were seen.

    Idempotent (the same script as the worker's, without publishing). Sets
    ``Keys.alert_index_version`` when done, so it runs once per deployment.
    """
    indexer = AlertIndexer(redis, keys)
    seen = 0
    prefix = keys.alert_bodies("")
    async for name in redis.scan_iter(match=prefix + "*", count=1000):
        raw_bodies = await redis.hvals(name)
        pipe = redis.pipeline(transaction=False)
        n = 0
        for raw in raw_bodies:
            try:
                a = orjson.loads(raw)
                ts = _epoch(a["triggered_by"])
                await indexer.queue(
                    pipe,
                    str(a["alert_id"]),
                    str(a["customer_id"]),
                    a.get("manager_id") or None,
                    ts,
                    str(a.get("rule", "")),
                    str(a.get("severity", "")),
                    publish=False,
                )
                n += 1
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                log.warning("alert index backfill: unreadable alert body in %s", name)
            if n >= batch:
                await pipe.execute()
                seen += n
                n = 0
                pipe = redis.pipeline(transaction=False)
        if n:
            await pipe.execute()
            seen += n
    await redis.set(keys.alert_index_version, INDEX_VERSION)
    return seen


def _epoch(value: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
