"""A manager's inbox: JSON (newest first) or a live server-sent-event stream; manager profiles."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError
from starlette.types import Receive, Scope, Send

from meterwatch.auth import TokenRecord
from meterwatch.logs import mask_text
from notifier.deps import ClockDep, OpsPrincipal, Principal, StoreDep
from notifier.models import Inbox, InboxItem, ManagerProfile
from notifier.sse import InboxHub, StreamLimitError, Subscription
from notifier.store import Store

router = APIRouter(prefix="/v1/managers", tags=["managers"])

KEEPALIVE_S = 15.0


def _check(manager_id: str, p: TokenRecord) -> None:
    # 403 (not 404): manager ids are not secret, and the caller should know why
    if p.role != "ops" and p.manager_id != manager_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a manager token opens only that manager's inbox")


def _event_id(item_json: str) -> str:
    at = json.loads(item_json).get("at")
    return str(int(dt.datetime.fromisoformat(at).timestamp() * 1000)) if at else ""


def _shown(item_json: str, ops: bool) -> str:
    """An inbox item as the caller may see it: ops read any manager's inbox, but the phone
    numbers in it (a rented home's landlord, in the item and in its text) only masked; the
    manager sees them in full (they call them)."""
    return mask_text(item_json) if ops else item_json


def _sse(item_json: str) -> str:
    kind = json.loads(item_json).get("kind", "message")
    return f"id: {_event_id(item_json)}\nevent: {kind}\ndata: {item_json}\n\n"


class _Replay:
    """What a stream has sent: the last event id (epoch ms) and the recent items, to skip repeats."""

    def __init__(self, since: float) -> None:
        self.last = since
        self.recent: dict[str, None] = {}

    def fresh(self, raw: str) -> bool:
        if raw in self.recent:
            return False
        self.recent[raw] = None
        if len(self.recent) > 1000:
            del self.recent[next(iter(self.recent))]
        score = _event_id(raw)
        if score:
            self.last = max(self.last, float(score))
        return True


async def _missed(store: Store, sub: Subscription, sent: _Replay) -> list[str]:
    """The inbox items newer than what the stream sent (after an overflow or a hub reconnect)."""
    sub.resync = False
    try:
        raws = await store.inbox(sub.manager_id, 500, after_score=sent.last)
    except (RedisError, OSError):
        sub.resync = True
        return []
    return [raw for raw in raws if sent.fresh(raw)]


async def _stream(
    request: Request, store: Store, sub: Subscription, since: float | None, now_ms: float, ops: bool
) -> AsyncIterator[str]:
    """The live stream of one manager's inbox (registered at the replica's one pub/sub hub)."""
    try:
        yield "retry: 2000\n\n"
        sent = _Replay(since if since is not None else now_ms)
        sub.resync = since is not None
        last, warned = time.monotonic(), False
        while not await request.is_disconnected():
            if sub.resync:
                for missed in await _missed(store, sub, sent):
                    yield _sse(_shown(missed, ops))
            if not sub.hub.up:
                if not warned:
                    yield ": redis unavailable\n\n"
                warned = True
                await asyncio.sleep(1.0)
                continue
            warned = False
            raw = None
            with contextlib.suppress(TimeoutError):
                raw = await asyncio.wait_for(sub.queue.get(), timeout=1.0)
            if raw is not None and sent.fresh(raw):
                yield _sse(_shown(raw, ops))
                last = time.monotonic()
            elif time.monotonic() - last > KEEPALIVE_S:
                yield ": keepalive\n\n"
                last = time.monotonic()
    finally:
        sub.release()


class _StreamResponse(StreamingResponse):
    """Releases the stream's slot however the response ends (even if the body never started)."""

    def __init__(self, content: AsyncIterator[str], sub: Subscription) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.sub = sub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.sub.release()


@router.get(
    "/{manager_id}/inbox",
    response_model=Inbox,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or a live SSE stream"}},
)
async def inbox(
    manager_id: str,
    request: Request,
    p: Principal,
    store: StoreDep,
    clock: ClockDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    accept: Annotated[str, Header()] = "application/json",
    last_event_id: Annotated[str | None, Header()] = None,
    since: Annotated[int | None, Query(ge=0, description="epoch ms; SSE replays newer items")] = None,
) -> Inbox | StreamingResponse:
    """The manager's alerts, digests and escalations, newest first (ops may read any inbox).

    With `Accept: text/event-stream` the answer is a live stream; `Last-Event-ID` (or `since`)
    replays what was missed. Live streams are capped per token (429) and per replica (503).
    """
    _check(manager_id, p)
    if "text/event-stream" in accept:
        start: float | None = float(since) if since is not None else None
        if last_event_id:
            try:
                start = float(last_event_id)
            except ValueError as e:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, "Last-Event-ID must be epoch ms") from e
        hub: InboxHub = request.app.state.hub
        try:
            sub = hub.open(manager_id, p.token_id)
        except StreamLimitError as e:
            raise HTTPException(e.status, e.message, headers={"Retry-After": "5"}) from e
        now_ms = clock.now().timestamp() * 1000
        return _StreamResponse(_stream(request, store, sub, start, now_ms, p.role == "ops"), sub)
    ops = p.role == "ops"
    items = [InboxItem.model_validate_json(_shown(x, ops)) for x in await store.inbox(manager_id, limit)]
    return Inbox(manager_id=manager_id, items=items)


@router.put("/{manager_id}/profile", response_model=ManagerProfile)
async def put_profile(
    manager_id: str, body: ManagerProfile, _p: OpsPrincipal, store: StoreDep
) -> ManagerProfile:
    """Name and phone that customers' SMS name as the person to call (ops only)."""
    await store.set_manager_profile(manager_id, body.model_dump_json())
    return body


@router.get("/{manager_id}/profile", response_model=ManagerProfile)
async def get_profile(manager_id: str, p: Principal, store: StoreDep) -> ManagerProfile:
    _check(manager_id, p)
    prof = (await store.manager_profiles([manager_id])).get(manager_id) or {}
    return ManagerProfile.model_validate(prof)
