"""The customers of one segment, paged (the workbench's segment drill-down)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.deps import Caller, Ctx
from api.errors import ApiError, error_responses
from api.snapshots import Snapshots

router = APIRouter(prefix="/v1/segments", tags=["segments"])

SCAN_CAP = 5000  # members looked at per request (a manager's page may need to skip others' customers)


class MemberRef(BaseModel):
    customer_id: str
    name: str = ""
    manager_id: str | None = None
    tariff: str | None = None
    occupancy: str | None = None


class MemberPage(BaseModel):
    segment_id: int
    items: list[MemberRef] = Field(default_factory=list)
    next: str | None = Field(default=None, description="Cursor (the last customer id of the page) or null.")


def _in_segment(state: bytes | str | None, snapshot: bytes | str | None, segment_id: int) -> bool:
    """Whether the customer's snapshot as the API shows it (``Snapshots.segment_id``) names this segment."""
    return Snapshots.segment_id(state, snapshot) in (None, segment_id)


async def backfill_members(redis: Any, keys: Any) -> int:
    """Add every customer to the members of the segment its snapshot as the API shows it names (once):
    an earlier worker's stored snapshot where there is one (it is the newer: ``Snapshots.view``),
    else its state."""
    n = 0
    for kind in ("state", "baseline"):
        prefix = getattr(keys, kind)("")
        async for name in redis.scan_iter(match=prefix + "*", count=1000):
            cid = (name.decode() if isinstance(name, bytes) else str(name))[len(prefix) :]
            if kind == "state" and await redis.exists(keys.baseline(cid)):
                continue  # the stored snapshot is newer (a worker of this version deletes it)
            raw = await redis.get(name)
            sid = Snapshots.segment_id(raw, None) if kind == "state" else Snapshots.segment_id(None, raw)
            if sid is not None:
                await redis.zadd(keys.segment_members(sid), {cid: 0})
                n += 1
    await redis.set(keys.segment_members_version, "1")
    return n


async def members_page(caller: Caller, segment_id: int, limit: int, cursor: str | None) -> MemberPage:
    keys = caller.rt.keys
    redis = caller.rt.redis
    lo = f"({cursor}" if cursor else "-"
    items: list[MemberRef] = []
    scanned = 0
    last: str | None = None
    while len(items) < limit and scanned < SCAN_CAP:
        batch = await redis.zrangebylex(
            keys.segment_members(segment_id), lo, "+", start=0, num=max(limit, 200)
        )
        if not batch:
            last = None
            break
        ids = [b.decode() if isinstance(b, bytes) else str(b) for b in batch]
        n = len(ids)
        recs = await redis.mget(
            [keys.customer(c) for c in ids] + [keys.state(c) for c in ids] + [keys.baseline(c) for c in ids]
        )
        scanned += n
        stale: list[str] = []
        for cid, raw, state, snap in zip(ids, recs[:n], recs[n : 2 * n], recs[2 * n :], strict=True):
            last = cid
            if raw is None or not _in_segment(state, snap, segment_id):
                stale.append(cid)
                continue
            doc: Any = orjson.loads(raw)
            if not isinstance(doc, dict) or not caller.may_read(doc.get("manager_id") or None):
                continue
            items.append(
                MemberRef.model_validate(
                    {k: doc.get(k) for k in MemberRef.model_fields}
                    | {"customer_id": cid, "name": doc.get("name") or ""}
                )
            )
            if len(items) >= limit:
                break
        if stale:  # deleted customers, or moved while a backfill raced the worker: forget them
            await redis.zrem(keys.segment_members(segment_id), *stale)
        lo = f"({last}"
        if len(batch) < max(limit, 200) and len(items) < limit:
            last = None  # the set is exhausted
            break
    return MemberPage(segment_id=segment_id, items=items, next=last)


@router.get(
    "/{segment_id}/customers",
    response_model=MemberPage,
    summary="The customers of a segment",
    description=(
        "Customers currently assigned to the segment, ordered by id, `limit` (1-200, default 50) per "
        "page; `cursor` is the `next` of the previous page. A manager sees only its own customers."
    ),
    responses=error_responses(401, 422, 429, 503),
)
async def get_members(
    caller: Ctx,
    segment_id: Annotated[int, Path(ge=0, le=1000)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")
    ] = None,
) -> MemberPage:
    if segment_id < 0:
        raise ApiError(422, "invalid_request", "segment id must be >= 0")
    return await members_page(caller, segment_id, limit, cursor)
