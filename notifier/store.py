"""The notifier's durable state in Redis, changed only through atomic Lua scripts.

Keys (all under ``Keys.ns``, i.e. ``{prefix}n:``):

- ``alert:{alert_id}``  STRING, SET NX: the alert was recorded (value: its notification ids)
- ``notif:{nid}``       HASH: one notification (channel, status, reason, attempts, claim, ...);
                        ``inflight`` = the attempt sent whose outcome is not known yet
- ``hist:{nid}``        LIST: status history, JSON events
- ``due``               ZSET: notification ids scored by due time (epoch ms); a claimed id is
                        pushed ``lease`` ms into the future so a crashed replica's claim is retaken
- ``smscycle:{customer}:{cycle_start}`` counter of SMS per billing cycle
- ``smslast:{customer}``  epoch seconds of the last SMS reserved (min days between)
- ``smsllcycle:{landlord}:{cycle_start}`` / ``smslllast:{landlord}`` the same for the SMS to the
  landlord of a rented home (``{landlord}``: a digest of the number, ``notifier.landlord.landlord_key``)
- ``mgrhour:{manager}:{hour}`` pushes counted for the manager in that hour
- ``digestitems:{manager}:{hour}`` LIST of the alerts collapsed into that hour's digest
- ``ddigest:{manager}:{day}`` HASH alert_id -> Alert JSON: manager-only alerts held for the daily
  digest; ``ddigestclosed:{manager}:{day}`` set when that digest is made; ``ddigestdoc:{manager}:{day}``
  the digest as made (JSON); all three kept ``MW_MANAGER_DIGEST_KEEP_DAYS``
- ``inbox:{manager}``   ZSET of InboxItem JSON scored by epoch ms; ``inboxch:{manager}`` pub/sub
- ``consent:customer`` / ``consent:phone``  HASH id -> ``in:<epoch>`` | ``out:<epoch>``
- ``phoneidx``          HASH phone -> customer_id (for inbound STOP)
- ``manager:{id}``      STRING ManagerProfile JSON
- ``rejected``          LIST of rejected alert messages with a reason (bounded)

Counters go to ``Keys.metrics("notifier")`` (a HASH) from inside the scripts, so
they are cluster-wide across replicas.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, cast

from redis.asyncio import Redis

from meterwatch.contracts import CustomerRecord
from meterwatch.keys import Keys
from notifier import layout
from notifier.ids import iso
from notifier.policy import AlertPlan

_INGEST = """
local p = cjson.decode(ARGV[1])
local now_s = tonumber(p.now_s)
local ok = redis.call('SET', p.dedupe_key, p.nids, 'NX', 'EX', p.dedupe_ttl)
if not ok then
  redis.call('HINCRBY', p.metrics_key, 'alerts_duplicate', 1)
  return cjson.encode({duplicate = true, nids = redis.call('GET', p.dedupe_key)})
end
redis.call('HINCRBY', p.metrics_key, 'alerts_ingested', 1)
if p.solicited then redis.call('HINCRBY', p.metrics_key, 'alerts_solicited', 1) end
local result = {}
for _, n in ipairs(p.notifications) do
  local status = n.status
  local reason = n.reason or ''
  local extra = {}
  if n.sms_limit and (status == 'queued' or status == 'deferred' or status == 'held') then
    local L = n.sms_limit
    local c = tonumber(redis.call('GET', L.cycle_key) or '0')
    local last = redis.call('GET', L.last_key)
    if c >= tonumber(L.max_per_cycle) then
      status = 'suppressed'; reason = 'moderation.sms_per_cycle'
    elseif last and (now_s - tonumber(last)) < tonumber(L.min_gap_s) then
      status = 'suppressed'; reason = 'moderation.sms_min_days'
    else
      redis.call('INCR', L.cycle_key)
      redis.call('EXPIRE', L.cycle_key, L.cycle_ttl)
      if tonumber(L.min_gap_s) > 0 then
        redis.call('SET', L.last_key, tostring(now_s), 'EX', L.min_gap_s)
      end
    end
  end
  if n.digest then
    local D = n.digest
    local c = redis.call('INCR', D.count_key)
    if c == 1 then redis.call('EXPIRE', D.count_key, D.ttl) end
    if c > tonumber(D.threshold) then
      redis.call('RPUSH', D.items_key, D.item)
      redis.call('EXPIRE', D.items_key, D.ttl)
      if redis.call('HSETNX', D.notif_key, 'id', D.nid) == 1 then
        redis.call('HSET', D.notif_key, unpack(D.fields))
        redis.call('RPUSH', D.hist_key, cjson.encode({at = p.now_iso, status = 'queued', detail = 'digest'}))
        redis.call('ZADD', p.due_key, D.due_ms, D.nid)
        redis.call('HINCRBY', p.metrics_key, 'digests_created', 1)
      end
      status = 'digested'; reason = 'moderation.manager_digest'
      extra = {'digest_id', D.nid}
    end
  end
  if n.daily and redis.call('EXISTS', n.daily.closed_key) == 0 then
    local D = n.daily
    redis.call('HSET', D.items_key, D.alert_id, D.item)
    redis.call('EXPIRE', D.items_key, D.ttl)
    if redis.call('HSETNX', D.notif_key, 'id', D.nid) == 1 then
      redis.call('HSET', D.notif_key, unpack(D.fields))
      local ev = cjson.encode({at = p.now_iso, status = 'queued', detail = 'daily digest'})
      redis.call('RPUSH', D.hist_key, ev)
      redis.call('ZADD', p.due_key, D.due_ms, D.nid)
      redis.call('HINCRBY', p.metrics_key, 'daily_digests_created', 1)
    end
    status = 'held'; reason = 'moderation.manager_daily_digest'
    extra = {'digest_id', D.nid}
  end
  redis.call('HSET', n.key, unpack(n.fields))
  redis.call('HSET', n.key, 'status', status, 'reason', reason, unpack(extra))
  local detail = reason
  if detail == '' then detail = n.detail or '' end
  redis.call('RPUSH', n.hist_key, cjson.encode({at = p.now_iso, status = status, detail = detail}))
  if status == 'queued' or status == 'deferred' then
    redis.call('ZADD', p.due_key, n.due_ms, n.nid)
  end
  redis.call('HINCRBY', p.metrics_key, n.channel .. '_' .. status, 1)
  result[n.nid] = {status, reason}
end
if p.inbox then
  local I = p.inbox
  redis.call('ZADD', I.key, I.score, I.item)
  redis.call('ZREMRANGEBYRANK', I.key, 0, -(tonumber(I.max) + 1))
  redis.call('PUBLISH', I.channel, I.item)
end
return cjson.encode({duplicate = false, result = result})
"""

_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
  local tok = redis.call('HINCRBY', ARGV[4] .. id, 'claim', 1)
  table.insert(out, id)
  table.insert(out, tostring(tok))
end
return out
"""

# Right before a send: the claim must still be ours (a retake bumps the token); renew the lease;
# for an SMS, record the attempt as in flight (``inflight`` = attempt number) BEFORE it goes out,
# so whoever handles the notification next knows that its outcome must be reconciled first.
# KEYS: notif, due. ARGV: token, lease_until_ms, nid, attempt|'', now_ms.
_BEGIN = """
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then return 0 end
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'inflight', ARGV[4], 'inflight_at', ARGV[5]) end
return 1
"""

# The attempt in flight is settled (the gateway never got it, or cannot tell): forget it, if the
# claim is still ours. KEYS: notif. ARGV: token.
_SETTLE = """
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'inflight', 'inflight_at', 'checks')
return 1
"""

# The end of a handling: the attempt in flight is resolved (unless ARGV[7] = '1': outcome unknown).
# KEYS: notif, hist, due, metrics.
# ARGV: token, status, reason, event, next_due_ms|'', metrics ('|'-separated)|'', keep_inflight, k, v, ...
_COMPLETE = """
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then return 0 end
local nid = redis.call('HGET', KEYS[1], 'id')
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'reason', ARGV[3])
if ARGV[7] ~= '1' then redis.call('HDEL', KEYS[1], 'inflight', 'inflight_at', 'checks') end
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('RPUSH', KEYS[2], ARGV[4])
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[5], nid)
else
  redis.call('ZREM', KEYS[3], nid)
end
for m in string.gmatch(ARGV[6], '[^|]+') do redis.call('HINCRBY', KEYS[4], m, 1) end
return 1
"""

# Create one notification if it does not exist yet (escalations). KEYS: notif, hist, due, metrics.
# ARGV: nid, due_ms, event, metric, inbox_key|'', inbox_score, inbox_item, inbox_max, inbox_channel, k, v, ...
_CREATE = """
if redis.call('HSETNX', KEYS[1], 'id', ARGV[1]) == 0 then return 0 end
for i = 10, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
if ARGV[4] ~= '' then redis.call('HINCRBY', KEYS[4], ARGV[4], 1) end
if ARGV[5] ~= '' then
  redis.call('ZADD', ARGV[5], ARGV[6], ARGV[7])
  redis.call('ZREMRANGEBYRANK', ARGV[5], 0, -(tonumber(ARGV[8]) + 1))
  redis.call('PUBLISH', ARGV[9], ARGV[7])
end
return 1
"""

# Move a notification from one status set to another (release/cancel/receipt), guarded.
# KEYS: notif, hist, due, metrics. ARGV: allowed statuses (comma list), new status, reason, event,
# due_ms|'' (''=remove from due), metric|''
_TRANSITION = """
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return -1 end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == st then allowed = true end end
if not allowed then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'reason', ARGV[3])
redis.call('RPUSH', KEYS[2], ARGV[4])
local nid = redis.call('HGET', KEYS[1], 'id')
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[3], ARGV[5], nid) else redis.call('ZREM', KEYS[3], nid) end
if ARGV[6] ~= '' then redis.call('HINCRBY', KEYS[4], ARGV[6], 1) end
return 1
"""


# Close a daily digest and read its alerts in one step, so that an alert recorded after the
# digest was made is pushed at once instead of being held for it. KEYS: items, closed. ARGV: ttl_s.
_CLOSE_DAILY = """
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
return redis.call('HVALS', KEYS[1])
"""


def event(at: dt.datetime, status: str, detail: str = "") -> str:
    return json.dumps({"at": iso(at), "status": status, "detail": detail}, ensure_ascii=False)


class Store:
    """Typed access to the notifier's Redis state."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.r = redis
        self.k = keys
        self._ingest = redis.register_script(_INGEST)
        self._claim = redis.register_script(_CLAIM)
        self._complete = redis.register_script(_COMPLETE)
        self._begin = redis.register_script(_BEGIN)
        self._settle = redis.register_script(_SETTLE)
        self._create = redis.register_script(_CREATE)
        self._transition = redis.register_script(_TRANSITION)
        self._close_daily = redis.register_script(_CLOSE_DAILY)

    # --- key names (notifier.layout) ------------------------------------------------------------
    def notif_key(self, nid: str) -> str:
        return layout.notif_key(self.k, nid)

    def hist_key(self, nid: str) -> str:
        return layout.hist_key(self.k, nid)

    @property
    def due_key(self) -> str:
        return layout.due_key(self.k)

    @property
    def metrics_key(self) -> str:
        return self.k.metrics("notifier")

    def inbox_key(self, manager_id: str) -> str:
        return layout.inbox_key(self.k, manager_id)

    def inbox_channel(self, manager_id: str) -> str:
        return layout.inbox_channel(self.k, manager_id)

    def encode(
        self, plan: AlertPlan, dedupe_days: int, inbox_max: int, keep_days: int = 90
    ) -> dict[str, Any]:
        """The ingest script's argument for a routing decision (``notifier.layout.encode``)."""
        return layout.encode(plan, self.k, self.metrics_key, dedupe_days, inbox_max, keep_days)

    # --- reads --------------------------------------------------------------------------------
    async def customers(self, ids: list[str]) -> dict[str, CustomerRecord | None]:
        uniq = list(dict.fromkeys(ids))
        if not uniq:
            return {}
        raws = await self.r.mget([self.k.customer(i) for i in uniq])
        out: dict[str, CustomerRecord | None] = {}
        for cid, raw in zip(uniq, raws, strict=True):
            try:
                out[cid] = CustomerRecord.model_validate_json(raw) if raw else None
            except ValueError:
                out[cid] = None
        return out

    async def consent_overrides(self, customer_id: str, phone: str | None) -> list[str | None]:
        async with self.r.pipeline(transaction=False) as p:
            p.hget(self.k.ns("consent:customer"), customer_id)
            p.hget(self.k.ns("consent:phone"), phone or "-")
            res = await p.execute()
        return [cast("str | None", x) for x in res]

    async def consent_overrides_many(self, pairs: list[tuple[str, str | None]]) -> list[list[str | None]]:
        """``consent_overrides`` for many (customer_id, phone) pairs in one round trip."""
        if not pairs:
            return []
        async with self.r.pipeline(transaction=False) as p:
            for cid, phone in pairs:
                p.hget(self.k.ns("consent:customer"), cid)
                p.hget(self.k.ns("consent:phone"), phone or "-")
            res = await p.execute()
        return [[cast("str | None", res[i]), cast("str | None", res[i + 1])] for i in range(0, len(res), 2)]

    async def set_consent(
        self, customer_id: str | None, phone: str | None, opt_in: bool, now: dt.datetime
    ) -> None:
        v = f"{'in' if opt_in else 'out'}:{now.timestamp():.3f}"
        async with self.r.pipeline(transaction=True) as p:
            if customer_id:
                p.hset(self.k.ns("consent:customer"), customer_id, v)
            if phone:
                p.hset(self.k.ns("consent:phone"), phone, v)
            p.hincrby(self.metrics_key, "consent_opt_in" if opt_in else "consent_opt_out", 1)
            await p.execute()

    async def index_phones(self, pairs: dict[str, str]) -> None:
        if pairs:
            await self.r.hset(self.k.ns("phoneidx"), mapping=dict(pairs.items()))

    async def customer_by_phone(self, phone: str) -> str | None:
        v = await self.r.hget(self.k.ns("phoneidx"), phone)
        return cast("str | None", v)

    async def manager_profiles(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        uniq = list(dict.fromkeys(ids))
        if not uniq:
            return {}
        raws = await self.r.mget([self.k.ns(f"manager:{m}") for m in uniq])
        return {m: (json.loads(raw) if raw else {}) for m, raw in zip(uniq, raws, strict=True)}

    async def set_manager_profile(self, manager_id: str, profile_json: str) -> None:
        await self.r.set(self.k.ns(f"manager:{manager_id}"), profile_json)

    async def get(self, nid: str) -> dict[str, str] | None:
        h = await self.r.hgetall(self.notif_key(nid))
        return cast("dict[str, str]", h) if h else None

    async def history(self, nid: str) -> list[dict[str, Any]]:
        return [json.loads(x) for x in await self.r.lrange(self.hist_key(nid), 0, -1)]

    async def alert_nids(self, alert_id: str) -> list[str] | None:
        raw = await self.r.get(self.k.ns(f"alert:{alert_id}"))
        return cast("list[str]", json.loads(raw)) if raw else None

    async def close_daily(self, items_key: str, closed_key: str, ttl_s: int) -> list[str]:
        """Close a daily digest and read its alerts, atomically (later alerts of that day go out at once)."""
        return cast("list[str]", await self._close_daily(keys=[items_key, closed_key], args=[ttl_s]))

    async def daily_items(self, items_key: str) -> list[str]:
        """The alerts held for a daily digest (Alert JSON), without closing it."""
        return cast("list[str]", await self.r.hvals(items_key))

    async def digest_items(self, items_key: str) -> list[dict[str, Any]]:
        return [json.loads(x) for x in await self.r.lrange(items_key, 0, -1)]

    async def inbox(self, manager_id: str, limit: int, after_score: float | None = None) -> list[str]:
        if after_score is None:
            return cast("list[str]", await self.r.zrevrange(self.inbox_key(manager_id), 0, limit - 1))
        return cast(
            "list[str]",
            await self.r.zrangebyscore(self.inbox_key(manager_id), f"({after_score}", "+inf", 0, limit),
        )

    async def metrics(self) -> dict[str, int]:
        raw = await self.r.hgetall(self.metrics_key)
        return {str(k): int(v) for k, v in raw.items()}

    async def incr(self, field: str, by: int = 1) -> None:
        await self.r.hincrby(self.metrics_key, field, by)

    async def due_count(self) -> int:
        return int(await self.r.zcard(self.due_key))

    async def rejected(self, limit: int) -> list[dict[str, Any]]:
        return [json.loads(x) for x in await self.r.lrange(self.k.ns("rejected"), 0, limit - 1)]

    async def reject(self, record: dict[str, Any], max_len: int = 10_000) -> None:
        async with self.r.pipeline(transaction=True) as p:
            p.lpush(self.k.ns("rejected"), json.dumps(record, ensure_ascii=False))
            p.ltrim(self.k.ns("rejected"), 0, max_len - 1)
            p.hincrby(self.metrics_key, "alerts_rejected", 1)
            await p.execute()

    # --- atomic writes --------------------------------------------------------------------------
    async def ingest(self, plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run the ingest script for each plan, in one round trip. Idempotent per alert_id."""
        async with self.r.pipeline(transaction=False) as p:
            for plan in plans:
                await self._ingest(args=[json.dumps(plan, ensure_ascii=False)], client=p)
            res = await p.execute()
        return [cast("dict[str, Any]", json.loads(x)) for x in res]

    async def claim(self, now_ms: int, lease_ms: int, batch: int) -> list[tuple[str, str]]:
        flat = await self._claim(keys=[self.due_key], args=[now_ms, lease_ms, batch, self.k.ns("notif:")])
        return [(str(flat[i]), str(flat[i + 1])) for i in range(0, len(flat), 2)]

    async def begin(
        self, nid: str, token: str, lease_until_ms: int, attempt: int | None = None, now_ms: int = 0
    ) -> bool:
        """Fence before an external side effect: True when the claim is still ours (lease renewed).

        With ``attempt``, the attempt is recorded as in flight (durably, before the send).
        """
        res = await self._begin(
            keys=[self.notif_key(nid), self.due_key],
            args=[token, lease_until_ms, nid, "" if attempt is None else str(attempt), now_ms],
        )
        return bool(res)

    async def settle(self, nid: str, token: str) -> bool:
        """Forget the attempt in flight (its outcome was settled with the gateway) if the claim is ours."""
        return bool(await self._settle(keys=[self.notif_key(nid)], args=[token]))

    async def complete(
        self,
        nid: str,
        token: str,
        status: str,
        reason: str,
        at: dt.datetime,
        detail: str = "",
        next_due_ms: int | None = None,
        metric: str | list[str] = "",
        fields: dict[str, str] | None = None,
        keep_inflight: bool = False,
    ) -> bool:
        """Set the outcome if the claim is still ours; ``keep_inflight``: the attempt's outcome is unknown."""
        flat: list[str] = []
        for k, v in (fields or {}).items():
            flat += [k, v]
        res = await self._complete(
            keys=[self.notif_key(nid), self.hist_key(nid), self.due_key, self.metrics_key],
            args=[
                token,
                status,
                reason,
                event(at, status, detail or reason),
                "" if next_due_ms is None else str(next_due_ms),
                metric if isinstance(metric, str) else "|".join(metric),
                "1" if keep_inflight else "",
                *flat,
            ],
        )
        return bool(res)

    async def create(
        self,
        nid: str,
        fields: dict[str, str],
        due_ms: int,
        at: dt.datetime,
        detail: str,
        metric: str,
        inbox: tuple[str, float, str, int] | None = None,
    ) -> bool:
        """Create a notification once (HSETNX on its id); optionally add an inbox item."""
        flat: list[str] = []
        for k, v in fields.items():
            flat += [k, v]
        ib: list[str] = ["", "0", "", "0", ""]
        if inbox is not None:
            mgr, score, item, mx = inbox
            ib = [self.inbox_key(mgr), str(score), item, str(mx), self.inbox_channel(mgr)]
        res = await self._create(
            keys=[self.notif_key(nid), self.hist_key(nid), self.due_key, self.metrics_key],
            args=[nid, str(due_ms), event(at, fields.get("status", "queued"), detail), metric, *ib, *flat],
        )
        return bool(res)

    async def transition(
        self,
        nid: str,
        allowed: list[str],
        status: str,
        reason: str,
        at: dt.datetime,
        due_ms: int | None,
        metric: str = "",
        detail: str = "",
    ) -> int:
        """1 = done, 0 = not in an allowed status, -1 = unknown notification."""
        res = await self._transition(
            keys=[self.notif_key(nid), self.hist_key(nid), self.due_key, self.metrics_key],
            args=[
                ",".join(allowed),
                status,
                reason,
                event(at, status, detail or reason),
                "" if due_ms is None else str(due_ms),
                metric,
            ],
        )
        return int(res)

    async def add_inbox(self, manager_id: str, score: float, item: str, max_len: int) -> None:
        async with self.r.pipeline(transaction=True) as p:
            p.zadd(self.inbox_key(manager_id), {item: score})
            p.zremrangebyrank(self.inbox_key(manager_id), 0, -(max_len + 1))
            p.publish(self.inbox_channel(manager_id), item)
            await p.execute()
