"""Alerts across customers: filters, ranking, cursor pages (``GET /v1/alerts``, the worklist).

Candidates come from the alert index (``meterwatch.alertindex``): one ZSET per
lifecycle status, across every customer or of one manager, scored by
``triggered_by``; ``since``/``until`` select a score range. At most
``MAX_SCAN`` newest candidates per status are looked at (the page says
``truncated``; narrow the range to see older ones). Bodies, lifecycle states and,
for a manager, the current registry records come in one pipelined round trip.

Ranking (``sort=rank``, the default): severity (critical, warning, info), then
the money at stake (``money.extra_vs_same_period``; alerts that carry money first),
then the ratio (``observed.ratio``), then the newest. ``sort=newest``: by
``triggered_by``. The cursor is the sort key of the last item of the page
(opaque, URL-safe): the next page starts strictly after it, so alerts arriving
meanwhile never shift a page.

>>> k = rank_key({"severity": "critical", "observed": {"ratio": 3.0}, "triggered_by": "2025-03-02T08:00:00Z",
...               "alert_id": "a"})
>>> k
(-3, 0, 0.0, -3.0, -1740902400.0, 'a')
>>> decode_cursor(encode_cursor("rank", k), "rank") == k
True
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from api.deps import Caller
from api.errors import ApiError
from api.routes.customers import manager_of
from meterwatch.alertindex import STATUSES

MAX_SCAN = 5000
SEVERITY_RANK = {"critical": 3, "warning": 2, "info": 1}
Sort = Literal["rank", "newest"]
Status = Literal["open", "acknowledged", "resolved"]


@dataclass(frozen=True)
class AlertQuery:
    status: Status | None = None
    rule: str | None = None
    severity: str | None = None
    segment: int | None = None
    manager_id: str | None = None
    customer_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    sort: Sort = "rank"
    limit: int = 50
    cursor: str | None = None


@dataclass
class AlertItem:
    """One alert as listed: the stored body (dict), its status and lifecycle state."""

    doc: dict[str, Any]
    status: str
    state: dict[str, str]
    key: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**self.doc, "status": self.status, "lifecycle": lifecycle_view(self.state)}


@dataclass
class AlertPage:
    items: list[AlertItem] = field(default_factory=list)
    next: str | None = None
    truncated: bool = False

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"items": [i.to_dict() for i in self.items], "next": self.next, "truncated": self.truncated}
        )


def lifecycle_view(state: dict[str, str]) -> dict[str, Any] | None:
    """The lifecycle hash as JSON-ready values (``attempts`` as a number).

    >>> lifecycle_view({}) is None
    True
    >>> lifecycle_view({"status": "acknowledged", "attempts": "2"})["attempts"]
    2
    """
    if not state:
        return None
    out: dict[str, Any] = dict(state)
    if "attempts" in out:
        out["attempts"] = int(out["attempts"])
    return out


def _num(x: Any) -> float | None:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


def _obj(doc: dict[str, Any], name: str) -> dict[str, Any]:
    v = doc.get(name)
    return v if isinstance(v, dict) else {}


def _epoch(value: Any) -> float:
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def rank_key(doc: dict[str, Any], sort: Sort = "rank") -> tuple[Any, ...]:
    """The ascending sort key of an alert body (most urgent first)."""
    ts = _epoch(doc.get("triggered_by"))
    aid = str(doc.get("alert_id", ""))
    if sort == "newest":
        return (-ts, aid)
    money = _obj(doc, "money")
    stake = _num(money.get("extra_vs_same_period")) if money else None
    ratio = _num(_obj(doc, "observed").get("ratio")) or 0.0
    sev = SEVERITY_RANK.get(str(doc.get("severity")), 0)
    return (-sev, -1 if stake is not None else 0, -stake if stake is not None else 0.0, -ratio, -ts, aid)


def encode_cursor(sort: Sort, key: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([sort, *key])).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort) -> tuple[Any, ...]:
    """The key in a cursor of the same sort; 422 for anything else.

    >>> decode_cursor("bm9wZQ", "rank")
    Traceback (most recent call last):
    ...
    api.errors.ApiError: invalid cursor (give the `next` value of the previous page, with the same sort)
    """
    bad = ApiError(
        422,
        "invalid_request",
        "invalid cursor (give the `next` value of the previous page, with the same sort)",
    )
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise bad from None
    want = 6 if sort == "rank" else 2
    if not isinstance(raw, list) or len(raw) != want + 1 or raw[0] != sort:
        raise bad
    *nums, aid = raw[1:]
    if not isinstance(aid, str) or not all(isinstance(x, (int, float)) for x in nums):
        raise bad
    return (*nums, aid)


def _s(x: bytes | str) -> str:
    return x.decode() if isinstance(x, bytes) else x


async def _candidates(
    caller: Caller, q: AlertQuery, manager: str | None
) -> tuple[list[tuple[str, str]], bool]:
    """(alert_id, status) of the newest candidates per status, and whether any list was cut."""
    keys = caller.rt.keys
    statuses = [q.status] if q.status else list(STATUSES)
    hi = f"{q.until.timestamp():.3f}" if q.until else "+inf"
    lo = f"{q.since.timestamp():.3f}" if q.since else "-inf"
    lists = await caller.read(
        lambda p: [
            p.zrevrangebyscore(keys.alert_index(s, manager), hi, lo, start=0, num=MAX_SCAN) for s in statuses
        ]
    )
    out: list[tuple[str, str]] = []
    truncated = False
    for status, ids in zip(statuses, lists, strict=True):
        truncated = truncated or len(ids) >= MAX_SCAN
        out += [(_s(i), status) for i in ids]
    return out, truncated


async def list_alerts(caller: Caller, q: AlertQuery) -> AlertPage:
    """One page of alerts visible to ``caller`` (see the module doc)."""
    if not caller.is_ops and q.manager_id is not None and q.manager_id != caller.token.manager_id:
        return AlertPage()  # another manager's alerts: nothing, as for an unknown manager
    manager = q.manager_id if caller.is_ops else caller.token.manager_id
    after = decode_cursor(q.cursor, q.sort) if q.cursor else None
    cands, truncated = await _candidates(caller, q, manager)
    items = await load_items(caller, cands, customer_id=q.customer_id)
    kept: list[AlertItem] = []
    for it in items:
        d = it.doc
        if q.rule is not None and d.get("rule") != q.rule:
            continue
        if q.severity is not None and d.get("severity") != q.severity:
            continue
        if q.segment is not None:
            if _obj(d, "segment").get("id") != q.segment:
                continue
        it.key = rank_key(d, q.sort)
        if after is not None and not it.key > after:
            continue
        kept.append(it)
    kept.sort(key=lambda i: i.key)
    page = kept[: q.limit]
    nxt = encode_cursor(q.sort, page[-1].key) if len(kept) > q.limit else None
    return AlertPage(page, nxt, truncated)


async def load_items(
    caller: Caller, cands: list[tuple[str, str]], customer_id: str | None = None
) -> list[AlertItem]:
    """Bodies, states and (for a manager) visibility of candidate alerts; vanished ones are dropped."""
    if not cands:
        return []
    rt = caller.rt
    keys = rt.keys
    ids = [a for a, _ in cands]
    owners = [None if o is None else _s(o) for o in await rt.redis.hmget(keys.alert_owner, ids)]
    pairs = [(c, o) for c, o in zip(cands, owners, strict=True) if o is not None]
    if customer_id is not None:
        pairs = [(c, o) for c, o in pairs if o == customer_id]
    cids = list(dict.fromkeys(o for _, o in pairs))

    def build(p: Any) -> None:
        for (aid, _), cid in pairs:
            p.hget(keys.alert_bodies(cid), aid)
            p.hgetall(keys.alert_state(aid))
        if not caller.is_ops:
            for cid in cids:
                p.get(keys.customer(cid))

    res = await caller.read(build)
    allowed: set[str] | None = None
    if not caller.is_ops:
        recs = res[2 * len(pairs) :]
        allowed = {c for c, rec in zip(cids, recs, strict=True) if caller.may_read(manager_of(rec))}
    out: list[AlertItem] = []
    for i, ((_, status), cid) in enumerate(pairs):
        body, state = res[2 * i], res[2 * i + 1]
        if body is None or (allowed is not None and cid not in allowed):
            continue
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(doc, dict):
            continue
        st = {_s(k): _s(v) for k, v in state.items()} if state else {}
        out.append(AlertItem(doc, st.get("status", status), st))
    return out


async def customer_alerts(caller: Caller, customer_id: str, limit: int = 200) -> list[AlertItem]:
    """A customer's alerts (newest first) with their lifecycle; the caller's access is checked by the page."""
    keys = caller.rt.keys
    (ids,) = await caller.read(lambda p: [p.zrevrange(keys.alerts(customer_id), 0, limit - 1)])
    if not ids:
        return []
    aids = [_s(i) for i in ids]

    def build(p: Any) -> None:
        for aid in aids:
            p.hget(keys.alert_bodies(customer_id), aid)
            p.hgetall(keys.alert_state(aid))

    res = await caller.read(build)
    out: list[AlertItem] = []
    for i, _aid in enumerate(aids):
        body, state = res[2 * i], res[2 * i + 1]
        if body is None:
            continue
        doc = orjson.loads(body)
        st = {_s(k): _s(v) for k, v in state.items()} if state else {}
        out.append(AlertItem(doc, st.get("status", "open"), st))
    return out
