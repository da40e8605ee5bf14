"""The workbench pages: worklist, customer, segments, operations, and their actions.

Reads go through the same data layer as the JSON API (``api.workbench``) with
the same manager scoping and the same answer for "missing" and "not yours".
Every POST checks the session's CSRF token and the Origin (``api.web.session``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from api.errors import ApiError
from api.routes.customers import CUSTOMER_ID_PATTERN
from api.routes.members import members_page
from api.web.common import (
    PageNotFound,
    read_form,
    redirect,
    render,
    require_caller,
    safe_next,
    user_lang,
    wants_json,
)
from api.web.session import WebCaller, csrf_ok
from api.web.views import load_customer, names, notification_log, row_of
from api.workbench.alerts import AlertQuery, customer_alerts, list_alerts
from api.workbench.events import EventHub, TooManyStreams
from api.workbench.lifecycle import OUTCOMES, OutcomeBody, histories, transition
from api.workbench.registry import occupant_change
from meterwatch.contracts import CustomerRecord, SegmentSummary

router = APIRouter(include_in_schema=False)

WORKLIST_MAX = 500
READY_WAIT_S = 10.0  # a live stream waits this long for the subscription before its first event
RULES = (
    "sudden_increase",
    "sudden_increase_escalation",
    "projected_over_same_period",
    "same_period_reached",
    "sustained_drop",
)
_ID = __import__("re").compile(CUSTOMER_ID_PATTERN)


def _date(v: str | None) -> dt.datetime | None:
    if not v:
        return None
    try:
        return dt.datetime.combine(dt.date.fromisoformat(v), dt.time(), tzinfo=dt.UTC)
    except ValueError:
        return None


@router.get("/")
async def worklist(request: Request) -> Response:
    caller = await require_caller(request)
    lang = await user_lang(request, caller)
    qp = request.query_params
    status = qp.get("status", "open")
    status = status if status in ("open", "acknowledged", "resolved", "") else "open"
    seg = qp.get("segment", "")
    until = _date(qp.get("until"))
    q = AlertQuery(
        status=status or None,  # type: ignore[arg-type]
        rule=qp.get("rule") if qp.get("rule") in RULES else None,
        severity=qp.get("severity") if qp.get("severity") in ("info", "warning", "critical") else None,
        segment=int(seg) if seg.isdigit() else None,
        manager_id=(qp.get("manager") or None)
        if caller.is_ops and _ID.match(qp.get("manager", ""))
        else None,
        since=_date(qp.get("since")),
        until=until + dt.timedelta(days=1) if until else None,
        limit=WORKLIST_MAX,
        cursor=qp.get("cursor") or None,
    )
    try:
        page = await list_alerts(caller, q)
    except ApiError:  # a stale cursor: start again
        page = await list_alerts(caller, AlertQuery(**{**q.__dict__, "cursor": None}))
    who = await names(caller, [i.doc.get("customer_id", "") for i in page.items])
    now = dt.datetime.now(dt.UTC)
    rows = [row_of(i, who.get(str(i.doc.get("customer_id")), ""), lang, now) for i in page.items]
    nxt = None
    if page.next:
        params = dict(qp)
        params["cursor"] = page.next
        nxt = "?" + "&".join(f"{k}={_q(v)}" for k, v in params.items())
    return render(
        request,
        "worklist.html",
        lang,
        caller,
        rows=rows,
        filters=dict(qp),
        cur_status=status,
        rules=RULES,
        next_url=nxt,
        truncated=page.truncated,
        outcomes=OUTCOMES,
    )


def _q(v: str) -> str:
    from urllib.parse import quote

    return quote(v, safe="")


@router.get("/customers/{customer_id}")
async def customer_page(request: Request, customer_id: str) -> Response:
    caller = await require_caller(request)
    lang = await user_lang(request, caller)
    if not _ID.match(customer_id):
        raise PageNotFound
    data = await load_customer(caller, customer_id, lang)
    if data is None:
        raise PageNotFound
    items = await customer_alerts(caller, customer_id)
    now = dt.datetime.now(dt.UTC)
    rows = [row_of(i, data.record.name, lang, now) for i in items]
    ids = [r.alert_id for r in rows]
    hist, notes = await asyncio.gather(histories(caller, ids), notification_log(caller, ids))
    return render(
        request,
        "customer.html",
        lang,
        caller,
        c=data,
        rows=rows,
        histories=hist,
        notifications=notes,
        outcomes=OUTCOMES,
        today=now.date().isoformat(),
        sent=request.query_params.get("sent"),
    )


async def _checked_form(request: Request, caller: WebCaller) -> dict[str, str]:
    form = await read_form(request)
    if not csrf_ok(request, form.get("csrf"), caller.session.csrf):
        raise ApiError(403, "forbidden", "missing or wrong CSRF token (reload the page)")
    return form


async def _lifecycle(request: Request, alert_id: str, action: str) -> Response:
    caller = await require_caller(request)
    form = await _checked_form(request, caller)
    body = None
    if action == "outcome":
        try:
            body = OutcomeBody.model_validate(
                {"outcome": form.get("outcome", ""), "note": form.get("note", "")}
            )
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", f"invalid outcome: {exc.errors()[0]['msg']}") from None
    view = await transition(caller, alert_id, "ack" if action == "ack" else "outcome", body)
    if wants_json(request):
        return JSONResponse(
            view.model_dump(mode="json", by_alias=True), headers={"Cache-Control": "no-store"}
        )
    return redirect(safe_next(form.get("next")))


@router.post("/alerts/{alert_id}/ack")
async def ack(request: Request, alert_id: str) -> Response:
    return await _lifecycle(request, alert_id, "ack")


@router.post("/alerts/{alert_id}/outcome")
async def outcome(request: Request, alert_id: str) -> Response:
    return await _lifecycle(request, alert_id, "outcome")


@router.post("/customers/{customer_id}/occupant")
async def occupant(request: Request, customer_id: str) -> Response:
    caller = await require_caller(request)
    form = await _checked_form(request, caller)
    try:
        since = dt.date.fromisoformat(form.get("since", ""))
    except ValueError:
        raise ApiError(422, "invalid_request", "give the move-in date as YYYY-MM-DD") from None
    if not _ID.match(customer_id):
        raise PageNotFound
    from api.routes.customers import manager_of

    (cust,) = await caller.read(lambda p: [p.get(caller.rt.keys.customer(customer_id))])
    if cust is None or not caller.may_read(manager_of(cust)):  # the record decides (no snapshot needed)
        raise PageNotFound
    await occupant_change(request.app.state.registry, CustomerRecord.model_validate_json(cust), since)
    return redirect(f"/customers/{customer_id}?sent=occupant")


@router.get("/segments")
async def segments_page(request: Request) -> Response:
    caller = await require_caller(request)
    lang = await user_lang(request, caller)
    (raw,) = await caller.read(lambda p: [p.get(caller.rt.keys.segments)])
    segs = [SegmentSummary.model_validate(s) for s in orjson.loads(raw)] if raw else []
    return render(request, "segments.html", lang, caller, segments=segs)


@router.get("/segments/{segment_id}")
async def segment_members(request: Request, segment_id: int) -> Response:
    caller = await require_caller(request)
    lang = await user_lang(request, caller)
    cursor = request.query_params.get("cursor")
    if cursor is not None and not _ID.match(cursor):
        cursor = None
    page = await members_page(caller, segment_id, 100, cursor)
    (raw,) = await caller.read(lambda p: [p.get(caller.rt.keys.segments)])
    seg = next(
        (SegmentSummary.model_validate(s) for s in orjson.loads(raw or b"[]") if s.get("id") == segment_id),
        None,
    )
    return render(request, "segment.html", lang, caller, page=page, segment=seg, segment_id=segment_id)


@router.get("/ops")
async def ops_page(request: Request) -> Response:
    caller = await require_caller(request)
    lang = await user_lang(request, caller)
    if not caller.is_ops:
        return render(request, "error.html", lang, caller, status=403, message="error.forbidden")
    from api.web.opsview import load_ops

    return render(request, "ops.html", lang, caller, ops=await load_ops(caller))


@router.get("/events")
async def events(request: Request) -> Response:
    """Server-sent events of new alerts and lifecycle changes the caller may see."""
    caller = await require_caller(request)
    hub: EventHub = request.app.state.web_events
    try:
        queue = hub.open()
    except TooManyStreams:
        raise ApiError(
            503, "unavailable", "too many live streams; the page still works without", {"Retry-After": "30"}
        ) from None
    mine = caller.token.manager_id if not caller.is_ops else None

    async def stream() -> Any:
        try:
            yield b"retry: 5000\n\n"
            # "ready" once the process's subscription is confirmed: from then on no event is missed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hub.ready.wait(), timeout=READY_WAIT_S)
            if hub.ready.is_set():
                yield b"event: ready\ndata: {}\n\n"
            while True:
                if await request.is_disconnected():
                    break
                try:
                    ev = await asyncio.wait_for(queue.get(), timeout=15.0)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if mine is not None and ev.get("manager_id") != mine:
                    continue
                yield b"event: alert\ndata: " + orjson.dumps(ev) + b"\n\n"
        finally:
            hub.close(queue)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
