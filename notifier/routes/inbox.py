"""A manager's inbox: JSON (newest first) or a live server-sent-event stream; manager profiles."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from meterwatch.auth import TokenRecord
from notifier.deps import OpsPrincipal, Principal, StoreDep
from notifier.models import Inbox, InboxItem, ManagerProfile
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


def _sse(item_json: str) -> str:
    kind = json.loads(item_json).get("kind", "message")
    return f"id: {_event_id(item_json)}\nevent: {kind}\ndata: {item_json}\n\n"


async def _stream(request: Request, store: Store, manager_id: str, since: float | None) -> AsyncIterator[str]:
    pubsub = store.r.pubsub()
    await pubsub.subscribe(store.inbox_channel(manager_id))
    try:
        yield "retry: 2000\n\n"
        seen: set[str] = set()
        if since is not None:
            for raw in await store.inbox(manager_id, 500, after_score=since):
                seen.add(raw)
                yield _sse(raw)
        last = time.monotonic()
        while not await request.is_disconnected():
            try:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except (RedisError, OSError):
                yield ": redis unavailable\n\n"
                await asyncio.sleep(1.0)
                continue
            if msg is not None and msg.get("type") == "message":
                data = str(msg["data"])
                if data not in seen:
                    yield _sse(data)
                    last = time.monotonic()
                seen.discard(data)
            elif time.monotonic() - last > KEEPALIVE_S:
                yield ": keepalive\n\n"
                last = time.monotonic()
    finally:
        try:
            await pubsub.unsubscribe()
            await pubsub.aclose()  # type: ignore[no-untyped-call]
        except (RedisError, OSError):
            pass


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
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    accept: Annotated[str, Header()] = "application/json",
    last_event_id: Annotated[str | None, Header()] = None,
    since: Annotated[int | None, Query(ge=0, description="epoch ms; SSE replays newer items")] = None,
) -> Inbox | StreamingResponse:
    """The manager's alerts, digests and escalations, newest first (ops may read any inbox).

    With `Accept: text/event-stream` the answer is a live stream; `Last-Event-ID` (or `since`)
    replays what was missed.
    """
    _check(manager_id, p)
    if "text/event-stream" in accept:
        start: float | None = float(since) if since is not None else None
        if last_event_id:
            try:
                start = float(last_event_id)
            except ValueError as e:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, "Last-Event-ID must be epoch ms") from e
        return StreamingResponse(
            _stream(request, store, manager_id, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    items = [InboxItem.model_validate_json(x) for x in await store.inbox(manager_id, limit)]
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
