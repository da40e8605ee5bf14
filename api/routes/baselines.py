"""Many baselines in one request (ops scripts, dashboards, a manager's morning list)."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, StringConstraints

from api.deps import Ctx
from api.errors import error_responses
from api.routes.customers import CUSTOMER_ID_PATTERN, manager_of
from meterwatch.contracts import BaselineSnapshot

router = APIRouter(prefix="/v1", tags=["customers"])

MAX_BATCH = 100


class BaselineBatch(BaseModel):
    """The baselines found, in the order asked; ``missing`` lists the others.

    For a manager token, ``missing`` also holds the customers of other managers
    (indistinguishable from unknown ones, as in the single-customer endpoint).
    """

    baselines: list[BaselineSnapshot] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)


@router.get(
    "/baselines",
    response_model=BaselineBatch,
    summary="Several customers' baselines at once",
    description=(
        f"Up to {MAX_BATCH} `customer_id` query parameters (repeat the parameter; duplicates "
        "are answered once). One Redis round trip for the whole batch."
    ),
    responses=error_responses(401, 422, 429, 503),
)
async def get_baselines(
    caller: Ctx,
    customer_id: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=CUSTOMER_ID_PATTERN)]],
        Query(min_length=1, max_length=MAX_BATCH, description="Customer ids (1-100)."),
    ],
) -> Response:
    ids = list(dict.fromkeys(customer_id))  # unique, in the order asked
    views = await caller.rt.snapshots.read_many(
        caller.rt.hot, ids, lambda rec: caller.is_ops or caller.may_read(manager_of(rec))
    )
    found: list[bytes] = []
    missing: list[str] = []
    for cid, (raw, cust) in zip(ids, views, strict=True):
        if raw is None or (not caller.is_ops and not caller.may_read(manager_of(cust, raw))):
            missing.append(cid)
        else:
            found.append(raw)
    content = b'{"baselines":[' + b",".join(found) + b'],"missing":' + orjson.dumps(missing) + b"}"
    return Response(content, media_type="application/json", headers={"Cache-Control": "no-store"})
