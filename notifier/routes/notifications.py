"""Notification status and history; release or cancel a held/deferred SMS."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, status

from meterwatch.auth import TokenRecord
from meterwatch.logs import mask_phone
from notifier.deps import ClockDep, Principal, StoreDep
from notifier.models import HistoryEvent, NotificationView
from notifier.store import Store

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])


async def _load(nid: str, p: TokenRecord, store: Store) -> dict[str, str]:
    h = await store.get(nid)
    # a manager gets 404, not 403, for another manager's notification: ids are not confirmed
    if h is None or not p.may_read(h.get("manager_id")):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown notification")
    return h


@router.get("/{notification_id}", response_model=NotificationView)
async def get_notification(notification_id: str, p: Principal, store: StoreDep) -> NotificationView:
    """Delivery status and the full status history (phone masked)."""
    h = await _load(notification_id, p, store)
    due = h.get("due_ms")
    return NotificationView(
        notification_id=notification_id,
        alert_id=h.get("alert_id", ""),
        channel=h.get("channel", ""),
        recipient="landlord" if h.get("recipient") == "landlord" else "customer",
        status=h.get("status", ""),
        reason=h.get("reason", ""),
        customer_id=h.get("customer_id", ""),
        manager_id=h.get("manager_id", ""),
        phone=mask_phone(h.get("phone")) if h.get("phone") else "",
        language=h.get("language", ""),
        text=h.get("text", ""),
        attempts=int(h.get("attempts") or 0),
        due_at=dt.datetime.fromtimestamp(int(due) / 1000, dt.UTC) if due else None,
        created_at=dt.datetime.fromisoformat(h["created_at"]) if h.get("created_at") else None,
        gateway_id=h.get("gateway_id", ""),
        segments=int(h["segments"]) if h.get("segments") else None,
        history=[HistoryEvent.model_validate(e) for e in await store.history(notification_id)],
    )


@router.post("/{notification_id}/release", response_model=NotificationView)
async def release(notification_id: str, p: Principal, store: StoreDep, clock: ClockDep) -> NotificationView:
    """The manager has called: send a held (policy `after_manager`) or deferred SMS now.

    Quiet hours still apply at send time.
    """
    h = await _load(notification_id, p, store)
    if h.get("channel") != "sms":
        raise HTTPException(status.HTTP_409_CONFLICT, "only an SMS can be released")
    now = clock.now()
    res = await store.transition(
        notification_id,
        ["held", "deferred"],
        "queued",
        "",
        now,
        int(now.timestamp() * 1000),
        detail=f"released by {p.role} token {p.token_id}",
    )
    if res != 1:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"cannot release a notification in status {h.get('status')}"
        )
    return await get_notification(notification_id, p, store)


@router.post("/{notification_id}/cancel", response_model=NotificationView)
async def cancel(notification_id: str, p: Principal, store: StoreDep, clock: ClockDep) -> NotificationView:
    """Cancel an SMS that has not gone out yet (e.g. the manager already spoke to the customer).

    Not while an attempt is in flight (its outcome is being settled with the gateway): 409.
    """
    h = await _load(notification_id, p, store)
    if h.get("inflight"):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "an attempt of this SMS may have reached the gateway; its outcome is being settled",
        )
    res = await store.transition(
        notification_id,
        ["held", "deferred", "queued", "retrying"],
        "cancelled",
        "manager.cancelled",
        clock.now(),
        None,
        metric=f"{h.get('channel', '')}_cancelled",
        detail=f"cancelled by {p.role} token {p.token_id}",
    )
    if res != 1:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"cannot cancel a notification in status {h.get('status')}"
        )
    return await get_notification(notification_id, p, store)
