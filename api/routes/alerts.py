"""Alerts across customers and the alert lifecycle (docs/workbench.md).

``GET /v1/alerts`` lists, ``POST /v1/alerts/{alert_id}/ack`` and ``.../outcome``
move an alert along ``open -> acknowledged -> resolved``. Same authentication
and manager scoping as the other routes: a manager sees and changes only the
alerts of its own customers (any other alert answers 404).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from api.deps import Ctx
from api.errors import ApiError, error_responses
from api.routes.customers import CUSTOMER_ID_PATTERN, RULE_PATTERN
from api.workbench.alerts import MAX_SCAN, AlertQuery, list_alerts
from api.workbench.lifecycle import LifecycleView, OutcomeBody, transition
from meterwatch.contracts import Alert

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

AlertId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$",
        description="An alert id.",
    ),
]


class AlertLifecycleState(BaseModel):
    status: str
    acknowledged_by: str | None = None
    acknowledged_at: dt.datetime | None = None
    outcome: str | None = None
    note: str | None = None
    outcome_by: str | None = None
    outcome_at: dt.datetime | None = None
    attempts: int | None = None
    updated_at: dt.datetime | None = None


class AlertListItem(Alert):
    """An alert (the `alerts` topic's JSON, with `money` when its plan is known) with its lifecycle."""

    status: Literal["open", "acknowledged", "resolved"]
    lifecycle: AlertLifecycleState | None = None


class AlertPageModel(BaseModel):
    items: list[AlertListItem] = Field(default_factory=list)
    next: str | None = Field(default=None, description="Cursor of the next page (null: last page).")
    truncated: bool = Field(
        default=False, description=f"More than {MAX_SCAN} alerts of a status matched: narrow since/until."
    )


@router.get(
    "",
    response_model=AlertPageModel,
    summary="Alerts across customers, most urgent first",
    description=(
        "Filters: `status` (open | acknowledged | resolved; default all), `rule`, `severity`, `segment` "
        "(segment id at alert time), `manager_id` (the alert's manager; a manager token sees only its own), "
        "`since`/`until` (on `triggered_by`). `sort=rank` (default): severity, then money at stake "
        "(`money.extra_vs_same_period`; alerts with money first), then `observed.ratio`, then newest; "
        "`sort=newest`. Page with `limit` (1-200, default 50) and `cursor` (the `next` of the previous page)."
    ),
    responses=error_responses(401, 422, 429, 503),
)
async def get_alerts(
    caller: Ctx,
    status: Annotated[Literal["open", "acknowledged", "resolved"] | None, Query()] = None,
    rule: Annotated[str | None, Query(pattern=RULE_PATTERN, max_length=64)] = None,
    severity: Annotated[Literal["info", "warning", "critical"] | None, Query()] = None,
    segment: Annotated[int | None, Query(ge=0, le=1000)] = None,
    manager_id: Annotated[str | None, Query(min_length=1, max_length=64, pattern=CUSTOMER_ID_PATTERN)] = None,
    since: Annotated[dt.datetime | None, Query(description="ISO 8601; without offset: UTC.")] = None,
    until: Annotated[dt.datetime | None, Query(description="ISO 8601; without offset: UTC.")] = None,
    sort: Annotated[Literal["rank", "newest"], Query()] = "rank",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    since, until = _aware(since), _aware(until)
    if since is not None and until is not None and since > until:
        raise ApiError(422, "invalid_request", "`since` is after `until`")
    q = AlertQuery(
        status=status,
        rule=rule,
        severity=severity,
        segment=segment,
        manager_id=manager_id,
        since=since,
        until=until,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    page = await list_alerts(caller, q)
    return Response(page.to_json(), media_type="application/json", headers={"Cache-Control": "no-store"})


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    return t.replace(tzinfo=dt.UTC) if t is not None and t.tzinfo is None else t


@router.post(
    "/{alert_id}/ack",
    response_model=LifecycleView,
    summary="Acknowledge an alert",
    description="`open` -> `acknowledged`, with who (from the token) and when. 409 if it is not open.",
    responses=error_responses(401, 404, 409, 422, 429, 503),
)
async def ack(alert_id: AlertId, caller: Ctx) -> LifecycleView:
    return await transition(caller, alert_id, "ack")


@router.post(
    "/{alert_id}/outcome",
    response_model=LifecycleView,
    summary="Record what the customer said",
    description=(
        "`no_answer` records a call attempt (the alert is or stays `acknowledged`); any other outcome "
        "resolves it (`open` or `acknowledged` -> `resolved`). A free `note` (at most 1000 characters) "
        "is kept for the next person, with who and when. 409 if the alert is already resolved."
    ),
    responses=error_responses(401, 404, 409, 422, 429, 503),
)
async def outcome(alert_id: AlertId, body: OutcomeBody, caller: Ctx) -> LifecycleView:
    return await transition(caller, alert_id, "outcome", body)
