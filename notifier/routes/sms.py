"""`POST /v1/sms/inbound`: the SMS gateway's callback for replies (opt-out/opt-in) and receipts.

Authenticated by the shared secret header ``X-MW-Inbound-Secret`` (``MW_SMS_INBOUND_SECRET``)
or by an ops bearer token.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from meterwatch.auth import verify_token
from meterwatch.logs import mask_phone
from meterwatch.registry import PublishError
from notifier.budget import apply_reply, parse_budget
from notifier.deps import ClockDep, SettingsDep, StoreDep
from notifier.models import InboundResult, InboundSms
from notifier.moderation import parse_keyword

router = APIRouter(prefix="/v1/sms", tags=["sms"])
log = logging.getLogger("meterwatch.notifier.inbound")
_bearer = HTTPBearer(auto_error=False)


async def inbound_auth(
    settings: SettingsDep,
    store: StoreDep,
    x_mw_inbound_secret: Annotated[str | None, Header()] = None,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> None:
    secret = settings.sms_inbound_secret.get_secret_value()
    if secret and x_mw_inbound_secret and hmac.compare_digest(secret.encode(), x_mw_inbound_secret.encode()):
        return
    if creds is not None:
        rec = await verify_token(store.r, store.k, creds.credentials)
        if rec is not None and rec.role == "ops":
            return
        if rec is not None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "the inbound callback needs an ops token")
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or wrong X-MW-Inbound-Secret / bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


@router.post("/inbound", response_model=InboundResult, dependencies=[Depends(inbound_auth)])
async def inbound(body: InboundSms, request: Request, store: StoreDep, clock: ClockDep) -> InboundResult:
    """A reply (`from`, `text`) or a delivery receipt (`reference`, `status`).

    Replies STOP/TD/退订 opt out, START/KT/订阅 opt in (see notifier.moderation for the full list);
    "预算200" / "BUDGET 200" set the customer's budget per billing cycle ("预算0" / "BUDGET OFF"
    remove it): the updated registry record is published to the customers topic and the
    customer gets a confirmation SMS (503 while Kafka cannot take it: the gateway retries).
    """
    now = clock.now()
    if body.reference and body.status:
        h = await store.get(body.reference)
        if h is None or h.get("channel") != "sms":
            raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown notification reference")
        if body.status == "accepted":
            return InboundResult(action="ignored", notification_id=body.reference, detail="accepted")
        if body.status == "delivered":
            await store.transition(
                body.reference, ["sent"], "delivered", "", now, None, metric="sms_delivered"
            )
            return InboundResult(action="receipt", notification_id=body.reference, detail="delivered")
        done = await store.transition(
            body.reference,
            ["sent"],
            "undelivered",
            "gateway.receipt",
            now,
            None,
            metric="sms_undelivered",
            detail=body.error or body.status,
        )
        if done == 1:
            await request.app.state.dispatcher.escalate(
                body.reference, h, int(h.get("attempts") or 1), body.error or body.status, now
            )
        return InboundResult(action="receipt", notification_id=body.reference, detail=body.status)
    if body.from_ and body.text is not None:
        action = parse_keyword(body.text)
        amount = parse_budget(body.text) if action is None else None
        if amount is not None:
            return await _budget(request, store, body.from_, body.text, amount, now)
        if action is None:
            log.info("inbound SMS from %s is not a keyword; ignored", mask_phone(body.from_))
            return InboundResult(action="ignored", detail="not a keyword")
        cid = await store.customer_by_phone(body.from_)
        await store.set_consent(cid, body.from_, action == "opt_in", now)
        log.info("inbound %s from %s (customer %s)", action, mask_phone(body.from_), cid or "?")
        return InboundResult(action=action, customer_id=cid)
    return InboundResult(action="ignored", detail="neither a reply nor a receipt")  # unreachable: validated


async def _budget(
    request: Request, store: StoreDep, phone: str, text: str, amount: Decimal, now: dt.datetime
) -> InboundResult:
    cid = await store.customer_by_phone(phone)
    if cid is None:
        log.info("budget reply from %s: no customer has this number; ignored", mask_phone(phone))
        return InboundResult(action="ignored", detail="unknown number")
    app = request.app
    try:
        outcome, detail = await apply_reply(
            store,
            app.state.tariffs,
            app.state.registry,
            cid,
            phone,
            text,
            amount,
            now,
            app.state.settings.sms_signature,
        )
    except PublishError as exc:
        log.warning("budget reply of customer %s not applied: %s", cid, exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the registry topic is unavailable") from exc
    log.info("budget reply from %s (customer %s): %s %s", mask_phone(phone), cid, outcome, detail)
    return InboundResult(action=outcome, customer_id=cid, detail=detail)
