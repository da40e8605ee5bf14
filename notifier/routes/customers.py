"""SMS consent by API: `GET|PUT /v1/customers/{customer_id}/sms-consent`."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, status

from meterwatch.auth import TokenRecord
from notifier.deps import ClockDep, Principal, StoreDep
from notifier.models import ConsentUpdate, ConsentView
from notifier.moderation import effective_consent
from notifier.store import Store

router = APIRouter(prefix="/v1/customers", tags=["customers"])


async def _view(customer_id: str, p: TokenRecord, store: Store) -> ConsentView:
    rec = (await store.customers([customer_id])).get(customer_id)
    if p.role != "ops" and (rec is None or not p.may_read(rec.manager_id)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown customer")
    overrides = await store.consent_overrides(customer_id, rec.phone if rec else None)
    opt_in, ts = effective_consent(rec.sms_opt_in if rec else False, overrides)
    return ConsentView(
        customer_id=customer_id,
        opt_in=opt_in,
        source="registry" if ts is None else "override",
        updated_at=dt.datetime.fromtimestamp(ts, dt.UTC) if ts is not None else None,
    )


@router.get("/{customer_id}/sms-consent", response_model=ConsentView)
async def get_consent(customer_id: str, p: Principal, store: StoreDep) -> ConsentView:
    """The customer's effective SMS consent (the newest of registry flag, API and inbound SMS)."""
    return await _view(customer_id, p, store)


@router.put("/{customer_id}/sms-consent", response_model=ConsentView)
async def put_consent(
    customer_id: str, body: ConsentUpdate, p: Principal, store: StoreDep, clock: ClockDep
) -> ConsentView:
    """Opt a customer out of (or back into) SMS; ops, or the customer's own manager."""
    await _view(customer_id, p, store)  # permission check
    rec = (await store.customers([customer_id])).get(customer_id)
    await store.set_consent(customer_id, rec.phone if rec else None, body.opt_in, clock.now())
    return await _view(customer_id, p, store)
