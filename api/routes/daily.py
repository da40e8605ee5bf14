"""A customer's daily consumption with the baseline band and last year (the workbench's charts)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError

from api.deps import Ctx
from api.errors import ApiError, error_responses
from api.routes.customers import CustomerId, _not_found, manager_of
from api.workbench.daily import MAX_DAYS, DailySeries, default_range, series
from baselines.plans import Tariffs
from baselines.tariffs import Plan
from meterwatch.contracts import BaselineSnapshot, CustomerRecord

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.get(
    "/{customer_id}/daily",
    response_model=DailySeries,
    summary="Daily kWh with the baseline band and last year",
    description=(
        "One entry per day from `from` to `to` (inclusive; default: the last 90 days up to the newest "
        f"final day; at most {MAX_DAYS} days): final kWh, the baseline's expected kWh and band as they "
        "stood when the day became final, the same calendar day last year, and the cost when the "
        "customer has a tariff plan (else null). Days the worker has not archived have nulls."
    ),
    responses=error_responses(401, 404, 422, 429, 503),
)
async def get_daily(
    request: Request,
    customer_id: CustomerId,
    caller: Ctx,
    from_: Annotated[dt.date | None, Query(alias="from", description="First day (ISO date).")] = None,
    to: Annotated[dt.date | None, Query(description="Last day (ISO date).")] = None,
) -> DailySeries:
    keys, snaps = caller.rt.keys, caller.rt.snapshots
    state, old, cust, blob = await caller.read(
        lambda p: [p.get(name) for name in snaps.names(customer_id)] + [p.get(keys.daily(customer_id))]
    )
    base = snaps.view(state, old, cust, lambda rec: caller.may_read(manager_of(rec)))
    if (cust is None and base is None) or not caller.may_read(manager_of(cust, base)):
        raise _not_found(customer_id)
    start, end = default_range(blob, dt.datetime.now(dt.UTC).date())
    if to is not None:
        end = to
        if from_ is None:
            start = end - (dt.timedelta(days=89))
    if from_ is not None:
        start = from_
    if start > end:
        raise ApiError(422, "invalid_request", "`from` is after `to`")
    if (end - start).days + 1 > MAX_DAYS:
        raise ApiError(422, "invalid_request", f"at most {MAX_DAYS} days per request")
    plan, cycle_starts = _pricing(request.app.state.tariffs, cust, base)
    return series(customer_id, blob, start, end, plan, cycle_starts)


def _pricing(tariffs: Tariffs, cust: bytes | None, base: bytes | None) -> tuple[Plan | None, list[dt.date]]:
    """The customer's plan (its own, else its category's default) and its billing cycles' first days."""
    try:
        rec = CustomerRecord.model_validate_json(cust) if cust else None
        snap = BaselineSnapshot.model_validate_json(base) if base else None
    except ValidationError:  # a record of another version: no price rather than an error
        return None, []
    plan_id = (rec.tariff_plan or tariffs.defaults.get(rec.tariff)) if rec is not None else None
    plan = tariffs.plan(plan_id) if plan_id else None
    starts = sorted({c.start for c in snap.baseline.cycles} | {snap.cycle.start}) if snap is not None else []
    return plan, starts
