"""The tariff catalogue (ops): ``GET /v1/tariffs`` and ``GET /v1/tariffs/{plan_id}``.

The catalogue is the one the worker prices with: ``MW_TARIFFS_FILE``, else the one
shipped with meterwatch (docs/money.md), loaded once when the API starts; the
defaults per tariff category are ``MW_DEFAULT_TARIFF_PLANS``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from api.deps import OpsCtx
from api.errors import ApiError, error_responses
from baselines.plans import Tariffs
from baselines.tariffs import Plan

router = APIRouter(prefix="/v1/tariffs", tags=["tariffs"])

PlanIdPath = Annotated[
    str,
    Path(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
        description="A plan id of the catalogue.",
        examples=["cn-js-residential"],
    ),
]


class TariffSummary(BaseModel):
    """One plan of the catalogue, in short."""

    id: str
    name: dict[str, str] = Field(description="The plan's name per language (`zh-CN`, `en`).")
    currency: str
    customer_class: str
    tier_period: str = Field(description="`none`, `cycle` (monthly tiers) or `year` (annual tiers).")
    tariff_year_start: str
    versions: int = Field(description="How many price versions the plan has.")
    in_force_from: dt.date | None = Field(
        description="`effective_from` of the version in force today (null: none yet)."
    )
    default_for: list[str] = Field(description="Tariff categories whose customers get this plan by default.")


class TariffList(BaseModel):
    """Every plan of the catalogue, in file order."""

    tariffs: list[TariffSummary]


def _tariffs(request: Request) -> Tariffs:
    t: Tariffs = request.app.state.tariffs
    return t


def _summary(plan: Plan, t: Tariffs, today: dt.date) -> TariffSummary:
    starts = [v.effective_from for v in plan.versions if v.effective_from <= today]
    return TariffSummary(
        id=plan.id,
        name={"zh-CN": plan.name.zh_CN, "en": plan.name.en},
        currency=plan.currency,
        customer_class=plan.customer_class,
        tier_period=plan.tier_period,
        tariff_year_start=plan.tariff_year_start,
        versions=len(plan.versions),
        in_force_from=starts[-1] if starts else None,
        default_for=sorted(k for k, v in t.defaults.items() if v == plan.id),
    )


@router.get(
    "",
    response_model=TariffList,
    summary="The tariff plans",
    description=(
        "Every plan of the catalogue the worker prices with: id, names, currency, how its tiers "
        "are counted, the version in force today, and the tariff categories it is the default of. "
        "Role ops."
    ),
    responses=error_responses(401, 403, 429),
)
async def list_tariffs(caller: OpsCtx, request: Request) -> TariffList:
    t = _tariffs(request)
    today = dt.datetime.now(dt.UTC).date()
    return TariffList(tariffs=[_summary(p, t, today) for p in t.catalogue.plans])


@router.get(
    "/{plan_id}",
    response_model=Plan,
    response_model_by_alias=True,
    summary="One tariff plan, in full",
    description=(
        "The plan as the catalogue file holds it: every price version with its effective date, "
        "energy prices (flat or time-of-use with the fallback for daily data), tiers and standing "
        "charge, and the source of its figures. Role ops."
    ),
    responses=error_responses(401, 403, 404, 422, 429),
)
async def get_tariff(plan_id: PlanIdPath, caller: OpsCtx, request: Request) -> Plan:
    plan = _tariffs(request).plan(plan_id)
    if plan is None:
        raise ApiError(404, "not_found", f"no tariff plan {plan_id!r} in the catalogue")
    return plan
