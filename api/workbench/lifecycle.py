"""The alert lifecycle: open -> acknowledged -> resolved, with who, when, outcome and note.

* acknowledge: open -> acknowledged (acknowledging twice, or a resolved alert: 409);
* record an outcome: ``no_answer`` is a call attempt: the alert is (or stays)
  acknowledged and ``attempts`` counts up, so the callback stays on the list; any
  other outcome resolves it (from open, it is acknowledged on the way). A resolved
  alert takes no further outcome (409).

State (``Keys.alert_state``: HASH ``status``, ``acknowledged_by/at``, ``outcome``,
``note``, ``outcome_by/at``, ``attempts``, ``updated_at``) and history
(``Keys.alert_history``: JSON events ``at, by, action, from, to, outcome, note``)
change in one Lua script together with the status index, so a concurrent
acknowledgement is decided by Redis, once. Who: a manager token's ``manager_id``,
or ``ops:<label or token id>``. Redis with AOF keeps them across restarts.

>>> allowed_from("ack", None), allowed_from("outcome", "no_answer"), target("outcome", "reached")
(('open',), ('open', 'acknowledged'), 'resolved')
>>> who_of(TokenRecord(token_id="t1", role="manager", manager_id="m7", created_at=NOW))
'm7'
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.deps import Caller
from api.errors import ApiError
from api.routes.customers import manager_of
from meterwatch.alertindex import event_json
from meterwatch.auth import TokenRecord

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)  # for the examples
HISTORY_KEPT = 200
NOTE_MAX = 1000

Outcome = Literal[
    "reached",
    "no_answer",
    "explained_appliance",
    "explained_new_occupant",
    "explained_weather",
    "explained_meter_fault",
    "explained_other",
]
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]


class OutcomeBody(BaseModel):
    """``POST /v1/alerts/{alert_id}/outcome``: what the customer said."""

    model_config = ConfigDict(extra="forbid")

    outcome: Outcome = Field(
        description=(
            "`reached` (talked to the customer), `no_answer` (a call attempt: the alert stays "
            "acknowledged), or what explains the use: `explained_appliance`, `explained_new_occupant`, "
            "`explained_weather`, `explained_meter_fault`, `explained_other`."
        )
    )
    note: Annotated[str, StringConstraints(max_length=NOTE_MAX, strip_whitespace=True)] = Field(
        default="", description="Free text for the next person (at most 1000 characters)."
    )


class LifecycleEvent(BaseModel):
    at: dt.datetime
    by: str
    action: Literal["ack", "outcome"]
    to: str
    from_: str | None = Field(default=None, alias="from")
    outcome: str | None = None
    note: str | None = None

    model_config = ConfigDict(populate_by_name=True)


class LifecycleView(BaseModel):
    """An alert's lifecycle after a change (the answer of ack and outcome)."""

    alert_id: str
    customer_id: str
    status: Literal["open", "acknowledged", "resolved"]
    acknowledged_by: str | None = None
    acknowledged_at: dt.datetime | None = None
    outcome: str | None = None
    note: str | None = None
    outcome_by: str | None = None
    outcome_at: dt.datetime | None = None
    attempts: int = 0
    history: list[LifecycleEvent] = Field(default_factory=list)


# KEYS: state, history, open:all, open:m, acknowledged:all, acknowledged:m, resolved:all, resolved:m
# ARGV: alert_id, allowed (csv), target, score, by, now, event json, channel, pub json, attempt(0/1),
#       then field/value pairs for the state hash
_TRANSITION_LUA = (
    """
local cur = redis.call('HGET', KEYS[1], 'status') or 'open'
local ok = false
for s in string.gmatch(ARGV[2], '[^,]+') do if s == cur then ok = true end end
if not ok then return {0, cur} end
local idx = {open = {KEYS[3], KEYS[4]}, acknowledged = {KEYS[5], KEYS[6]}, resolved = {KEYS[7], KEYS[8]}}
if cur ~= ARGV[3] then
  for _, k in ipairs(idx[cur]) do redis.call('ZREM', k, ARGV[1]) end
end
for _, k in ipairs(idx[ARGV[3]]) do redis.call('ZADD', k, ARGV[4], ARGV[1]) end
if redis.call('HEXISTS', KEYS[1], 'acknowledged_at') == 0 then
  redis.call('HSET', KEYS[1], 'acknowledged_by', ARGV[5], 'acknowledged_at', ARGV[6])
end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'updated_at', ARGV[6])
if #ARGV > 10 then redis.call('HSET', KEYS[1], unpack(ARGV, 11)) end
if ARGV[10] == '1' then redis.call('HINCRBY', KEYS[1], 'attempts', 1) end
local ev = cjson.decode(ARGV[7])
ev['from'] = cur
redis.call('RPUSH', KEYS[2], cjson.encode(ev))
redis.call('LTRIM', KEYS[2], -tonumber("""
    + str(HISTORY_KEPT)
    + """), -1)
redis.call('PUBLISH', ARGV[8], ARGV[9])
return {1, cur}
"""
)


def allowed_from(action: str, outcome: str | None) -> tuple[str, ...]:
    if action == "ack":
        return ("open",)
    return ("open", "acknowledged")


def target(action: str, outcome: str | None) -> str:
    if action == "ack" or outcome == "no_answer":
        return "acknowledged"
    return "resolved"


def who_of(token: TokenRecord) -> str:
    if token.role == "manager" and token.manager_id:
        return token.manager_id
    return f"ops:{token.label or token.token_id}"[:80]


@dataclass(frozen=True)
class Located:
    alert_id: str
    customer_id: str
    doc: dict[str, Any]


async def locate(caller: Caller, alert_id: str) -> Located:
    """The alert and its customer, if the caller may see it; 404 otherwise (same message either way)."""
    keys = caller.rt.keys
    not_found = ApiError(404, "not_found", f"no alert {alert_id!r} visible to this token")
    owner = await caller.rt.redis.hget(keys.alert_owner, alert_id)
    if owner is None:
        raise not_found
    cid = owner.decode() if isinstance(owner, bytes) else str(owner)
    snaps = caller.rt.snapshots
    body, state, old, cust = await caller.read(
        lambda p: [p.hget(keys.alert_bodies(cid), alert_id)] + [p.get(name) for name in snaps.names(cid)]
    )
    # the record decides; the snapshot only without one (a read model of an earlier worker)
    base = None if cust is not None else snaps.view(state, old, cust)
    if body is None or not caller.may_read(manager_of(cust, base)):
        raise not_found
    doc = orjson.loads(body)
    return Located(alert_id, cid, doc if isinstance(doc, dict) else {})


async def transition(
    caller: Caller, alert_id: str, action: Literal["ack", "outcome"], body: OutcomeBody | None = None
) -> LifecycleView:
    """Apply one lifecycle action; 404 (not visible), 409 (not allowed from the current status)."""
    loc = await locate(caller, alert_id)
    rt = caller.rt
    keys = rt.keys
    outcome = body.outcome if body is not None else None
    to = target(action, outcome)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    by = who_of(caller.token)
    event: dict[str, Any] = {"at": now, "by": by, "action": action, "to": to}
    fields: list[str] = []
    if body is not None:
        event.update(outcome=body.outcome, note=body.note)
        fields += ["outcome", body.outcome, "note", body.note, "outcome_by", by, "outcome_at", now]
    mid = loc.doc.get("manager_id") or None
    ts = str(loc.doc.get("triggered_by", ""))
    score = dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() if ts else 0.0
    idx = [keys.alert_index(s, m) for s in ("open", "acknowledged", "resolved") for m in (None, mid)]
    script = rt.redis.register_script(_TRANSITION_LUA)
    pub = event_json("lifecycle", alert_id, loc.customer_id, mid, to, by=by)
    done, cur = await script(
        keys=[keys.alert_state(alert_id), keys.alert_history(alert_id), *idx],
        args=[
            alert_id,
            ",".join(allowed_from(action, outcome)),
            to,
            f"{score:.3f}",
            by,
            now,
            orjson.dumps(event),
            keys.alert_events,
            pub,
            "1" if outcome == "no_answer" else "0",
            *fields,
        ],
    )
    if not int(done):
        cur_s = cur.decode() if isinstance(cur, bytes) else str(cur)
        what = "acknowledge" if action == "ack" else "record an outcome on"
        raise ApiError(409, "conflict", f"cannot {what} alert {alert_id!r}: it is already {cur_s}")
    return await view(caller, loc)


async def view(caller: Caller, loc: Located) -> LifecycleView:
    keys = caller.rt.keys
    state, hist = await caller.read(
        lambda p: (
            p.hgetall(keys.alert_state(loc.alert_id)),
            p.lrange(keys.alert_history(loc.alert_id), 0, -1),
        )
    )
    st = {_s(k): _s(v) for k, v in state.items()}
    return LifecycleView.model_validate(
        {
            **st,
            "alert_id": loc.alert_id,
            "customer_id": loc.customer_id,
            "status": st.get("status", "open"),
            "history": [orjson.loads(h) for h in hist],
        }
    )


async def histories(caller: Caller, alert_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The lifecycle events of several alerts, oldest first (for the customer page)."""
    keys = caller.rt.keys
    if not alert_ids:
        return {}
    res = await caller.read(lambda p: [p.lrange(keys.alert_history(a), 0, -1) for a in alert_ids])
    return {a: [orjson.loads(x) for x in r] for a, r in zip(alert_ids, res, strict=True)}


def _s(x: bytes | str) -> str:
    return x.decode() if isinstance(x, bytes) else x
