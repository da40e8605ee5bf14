"""`POST /v1/alerts`: the same ingest path as the Kafka consumer, for any producer with an ops token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from meterwatch.contracts import Alert
from notifier.deps import ClockDep, OpsPrincipal, Principal, SettingsDep, StoreDep
from notifier.models import IngestResult, NotificationRef, RejectedAlert
from notifier.routing import ingest_alerts

router = APIRouter(prefix="/v1", tags=["alerts"])


@router.post("/alerts", status_code=status.HTTP_202_ACCEPTED, response_model=IngestResult)
async def post_alert(
    alert: Alert, request: Request, _p: OpsPrincipal, store: StoreDep, settings: SettingsDep, clock: ClockDep
) -> IngestResult:
    """Record an alert (idempotent by `alert_id`) and route it; 202 with the notifications made."""
    (res,) = await ingest_alerts([alert], store, settings, clock.now())
    if "error" in res:
        msg = f"alert cannot be routed: {res['error']}"[:200]  # bounded: never the whole input back
        raise HTTPException(422, [{"type": "value_error", "loc": ["body"], "msg": msg}])
    request.app.state.dispatcher.wake()
    # a new alert answers with the decisions taken at ingest; a duplicate with the current state
    decided = {} if res.get("duplicate") else res.get("result") or {}
    return await _result(alert.alert_id, bool(res.get("duplicate")), store, decided)


async def _result(
    alert_id: str, duplicate: bool, store: StoreDep, decided: dict[str, list[str]] | None = None
) -> IngestResult:
    refs: list[NotificationRef] = []
    for nid in await store.alert_nids(alert_id) or []:
        h = await store.get(nid)
        if h:
            status, reason = (decided or {}).get(nid) or [h.get("status", ""), h.get("reason", "")]
            refs.append(
                NotificationRef(
                    notification_id=nid,
                    channel=h.get("channel", ""),
                    recipient="landlord" if h.get("recipient") == "landlord" else "customer",
                    status=status,
                    reason=reason,
                )
            )
    return IngestResult(alert_id=alert_id, duplicate=duplicate, notifications=refs)


@router.get("/alerts/{alert_id}/notifications", response_model=IngestResult)
async def alert_notifications(alert_id: str, p: Principal, store: StoreDep) -> IngestResult:
    """The notifications an alert produced (a manager sees only those of their customers)."""
    res = await _result(alert_id, False, store)
    if not res.notifications:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown alert")
    if p.role != "ops":
        first = await store.get(res.notifications[0].notification_id)
        if not first or not p.may_read(first.get("manager_id")):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown alert")
    return res


@router.get("/rejected-alerts", response_model=list[RejectedAlert])
async def rejected_alerts(
    _p: OpsPrincipal, store: StoreDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[RejectedAlert]:
    """Messages of the alerts topic that were not valid Alerts, with the reason (ops only)."""
    return [RejectedAlert.model_validate(x) for x in await store.rejected(limit)]
