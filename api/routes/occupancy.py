"""Who lives there: ``PUT /v1/customers/{customer_id}/occupancy`` (move-in day, declared absences).

Ops, or the customer's own manager (any other customer answers 404, as if unknown).
As with budgets, the customer's registry record (the worker's copy in Redis) is
published again to the ``customers`` topic with the fields changed (fields this
version does not know are kept), so that Kafka stays the source of truth; the worker
applies it like any registry change:

* ``occupant_since``: a new occupant moved in that day: the baseline learns afresh and
  the same-period comparison waits a year (``baselines.occupancy``);
* ``away``: the periods the customer declared the home empty (drop alerts muted, days
  out of the baseline: ``baselines.special_days``); the list replaces the record's.

A field left out of the body is left as it is; ``null`` removes it. A move-in day in the
future is refused (422 ``future_move_in``: it would silence the customer's rules).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.deps import Ctx
from api.errors import ApiError, error_responses
from api.routes.budget import publish_record, registry_record
from api.routes.customers import CustomerId
from meterwatch.contracts import MAX_AWAY_PERIODS, AwayPeriod
from meterwatch.registry import with_fields

router = APIRouter(prefix="/v1/customers", tags=["customers"])


class OccupancyBody(BaseModel):
    """The move-in day and/or the declared absences (at least one of them)."""

    model_config = ConfigDict(extra="forbid")

    occupant_since: dt.date | None = Field(default=None, examples=["2024-03-10"])
    away: Annotated[list[AwayPeriod], Field(max_length=MAX_AWAY_PERIODS)] | None = Field(
        default=None, examples=[[{"start": "2024-02-08", "end": "2024-02-18"}]]
    )


class OccupancyResult(BaseModel):
    """What was published to the customers topic."""

    customer_id: str
    occupant_since: dt.date | None
    away: list[AwayPeriod]
    published: bool = Field(description="True: the record is on the customers topic (the worker applies it).")


@router.put(
    "/{customer_id}/occupancy",
    response_model=OccupancyResult,
    status_code=202,
    summary="Set the customer's move-in day and/or declared absences",
    description=(
        "Body `{occupant_since?, away?}` (a field left out is kept, `null` removes it). "
        "`occupant_since`: a new occupant moved in that day, the baseline learns afresh and "
        "the same-period comparison waits a year. `away`: `[{start, end}]` (inclusive days, "
        "at most 24): drop alerts muted, the days out of the baseline. Publishes the "
        "customer's registry record to the customers topic (202: the worker applies it). "
        "Role ops, or the customer's manager."
    ),
    responses=error_responses(401, 404, 422, 429, 503),
)
async def put_occupancy(
    customer_id: CustomerId, body: OccupancyBody, caller: Ctx, request: Request
) -> OccupancyResult:
    given = body.model_fields_set
    if not given:
        raise ApiError(422, "empty_body", "give occupant_since and/or away")
    latest = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)  # any time zone's today
    if body.occupant_since is not None and body.occupant_since > latest:
        raise ApiError(
            422, "future_move_in", f"occupant_since {body.occupant_since} is in the future (a typo?)"
        )
    fields = body.model_dump(mode="json", include=given)
    if fields.get("away") == []:
        fields["away"] = None  # an empty list: no absences (the field removed)
    raw = await registry_record(caller, customer_id)
    try:
        out, rec = with_fields(raw, fields)
    except ValidationError as exc:  # e.g. a move-in the record cannot hold
        raise ApiError(422, "invalid_record", str(exc.errors()[0]["msg"])) from None
    await publish_record(request, customer_id, out, what="occupancy change")
    return OccupancyResult(
        customer_id=customer_id, occupant_since=rec.occupant_since, away=list(rec.away), published=True
    )
