"""A customer's budget per billing cycle: ``PUT`` / ``DELETE /v1/customers/{customer_id}/budget``.

Ops, or the customer's own manager (any other customer answers 404, as if unknown).
The customer's registry record (the worker's copy in Redis, ``customer:{id}``) is
published again to the ``customers`` topic with the new ``budget`` (fields this
version does not know are kept), so that Kafka stays the source of truth; the worker
applies it like any registry change, and the baseline shows it soon after. The budget
must be in the currency of the customer's tariff plan (its ``tariff_plan``, else its
tariff's default): budget alerts compare it with the bill.

Last writer wins: a record the billing system publishes later without ``budget``
removes it (docs/money.md, "Budgets").
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.deps import Caller, Ctx
from api.errors import ApiError, error_responses
from api.routes.customers import CustomerId, manager_of
from baselines.plans import Tariffs
from meterwatch.contracts import Budget, CustomerRecord
from meterwatch.registry import PublishError, RegistryPublisher, with_budget

router = APIRouter(prefix="/v1/customers", tags=["customers"])


class BudgetBody(BaseModel):
    """A budget per billing cycle, in the currency of the customer's tariff plan."""

    model_config = ConfigDict(extra="forbid")

    amount: Annotated[Decimal, Field(gt=0, le=Decimal(1_000_000), decimal_places=2, examples=[200])]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), Field(examples=["CNY"])]


class BudgetResult(BaseModel):
    """What was published to the customers topic."""

    customer_id: str
    budget: Budget | None = Field(description="The budget now (null: removed).")
    plan_id: str
    published: bool = Field(description="True: the record is on the customers topic (the worker applies it).")


async def registry_record(caller: Caller, customer_id: str) -> bytes:
    """The worker's copy of the customer's registry record (404 unless visible to the caller)."""
    raw = await caller.rt.redis.get(caller.rt.keys.customer(customer_id))
    if raw is None or not caller.may_read(manager_of(raw)):
        raise ApiError(404, "not_found", f"no customer {customer_id!r} with data visible to this token")
    return raw if isinstance(raw, bytes) else str(raw).encode()


def _plan(request: Request, rec: CustomerRecord) -> tuple[str, str]:
    t: Tariffs = request.app.state.tariffs
    plan_id = rec.tariff_plan or t.defaults.get(rec.tariff)
    plan = t.plan(plan_id) if plan_id else None
    if plan is None:
        raise ApiError(
            422, "no_tariff_plan", f"customer {rec.customer_id!r} has no tariff plan: a budget needs one"
        )
    return plan.id, plan.currency


async def publish_record(request: Request, customer_id: str, body: bytes, what: str = "budget") -> None:
    """Publish the registry record to the customers topic (503 when Kafka does not take it)."""
    publisher: RegistryPublisher = request.app.state.registry
    try:
        await publisher(customer_id.encode(), body)
    except PublishError as exc:
        raise ApiError(503, "unavailable", f"the {what} was not saved: {exc}") from exc


@router.put(
    "/{customer_id}/budget",
    response_model=BudgetResult,
    status_code=202,
    summary="Set the customer's budget per billing cycle",
    description=(
        "Body `{amount, currency}` (amount > 0, at most 2 decimals; the currency of the customer's "
        "tariff plan). Publishes the customer's registry record with the budget to the customers "
        "topic (202: accepted, the worker applies it). Budget alerts (`budget_projected`, "
        "`budget_reached`) are solicited. Role ops, or the customer's manager."
    ),
    responses=error_responses(401, 404, 422, 429, 503),
)
async def put_budget(
    customer_id: CustomerId, body: BudgetBody, caller: Ctx, request: Request
) -> BudgetResult:
    raw = await registry_record(caller, customer_id)
    rec = CustomerRecord.model_validate_json(raw)
    plan_id, currency = _plan(request, rec)
    if body.currency != currency:
        raise ApiError(
            422, "currency_mismatch", f"the plan {plan_id!r} bills in {currency}, not {body.currency}"
        )
    out, new = with_budget(raw, body.amount, currency)
    await publish_record(request, customer_id, out)
    return BudgetResult(customer_id=customer_id, budget=new.budget, plan_id=plan_id, published=True)


@router.delete(
    "/{customer_id}/budget",
    response_model=BudgetResult,
    status_code=202,
    summary="Remove the customer's budget",
    description="Publishes the registry record without `budget`. Role ops, or the customer's manager.",
    responses=error_responses(401, 404, 429, 503),
)
async def delete_budget(customer_id: CustomerId, caller: Ctx, request: Request) -> BudgetResult:
    raw = await registry_record(caller, customer_id)
    rec = CustomerRecord.model_validate_json(raw)
    t: Tariffs = request.app.state.tariffs
    plan_id = rec.tariff_plan or t.defaults.get(rec.tariff) or ""
    out, _ = with_budget(raw, None, "")
    await publish_record(request, customer_id, out)
    return BudgetResult(customer_id=customer_id, budget=None, plan_id=plan_id, published=True)
