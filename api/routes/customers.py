"""Per-customer reads: baseline, alert history, registry view.

Hot path (``GET .../baseline``): one Redis command (``MGET`` of the customer's
state, its old snapshot and its registry record), then the snapshot is built
from the state (:mod:`api.snapshots`: the JSON bytes of
:class:`meterwatch.contracts.BaselineSnapshot`, which the ``response_model``
documents), or the old snapshot returned as it is. A manager asking for a
customer of another manager gets the very same 404 as for a customer that does
not exist.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from api.deps import Caller, Ctx
from api.errors import ApiError, error_responses
from meterwatch.contracts import Alert, BaselineSnapshot, CustomerRecord, SegmentRef
from meterwatch.logs import mask_phone

router = APIRouter(prefix="/v1/customers", tags=["customers"])

CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$"
RULE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
MAX_ALERTS = 200

CustomerId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=CUSTOMER_ID_PATTERN,
        description="1-64 characters: letters, digits and `. _ : @ -`, starting with a letter or digit.",
        examples=["MAC000002"],
    ),
]

_NO_STORE = {"Cache-Control": "no-store"}


def _not_found(customer_id: str) -> ApiError:
    # One message for "does not exist" and "not yours": existence must not leak.
    return ApiError(404, "not_found", f"no customer {customer_id!r} with data visible to this token")


def manager_of(*raws: bytes | str | None) -> str | None:
    """The manager_id of the first stored (readable) document, in order of authority.

    The registry record comes first: when it exists it decides, even when it
    names no manager (an unassigned customer is for ops only), so a stale
    snapshot never keeps a former manager's access.
    """
    for raw in raws:
        if raw is None:
            continue
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(doc, dict):
            continue
        mid = doc.get("manager_id")
        return mid if isinstance(mid, str) and mid else None
    return None


@router.get(
    "/{customer_id}/baseline",
    response_model=BaselineSnapshot,
    summary="The customer's current baseline",
    description=(
        "Current cycle (cycle-to-date, projection), same-period cycle of a year earlier, the "
        "habit baseline (daily kWh and up to 36 closed cycles), segment and open alerts, as "
        "of the state last flushed to the read model by the worker. `manager_id` is included (ops need it). "
        "Role ops: every customer; role manager: only its own customers."
    ),
    responses=error_responses(401, 404, 422, 429, 503),
)
async def get_baseline(customer_id: CustomerId, caller: Ctx) -> Response:
    raw, cust = await caller.rt.snapshots.read(
        caller.rt.hot, customer_id, lambda rec: caller.is_ops or caller.may_read(manager_of(rec))
    )
    if raw is None or not (caller.is_ops or caller.may_read(manager_of(cust, raw))):
        raise _not_found(customer_id)
    return Response(raw, media_type="application/json", headers=_NO_STORE)


class AlertList(BaseModel):
    """A customer's alert history, newest first (bounded: the newest 200 are kept)."""

    customer_id: str
    count: int
    alerts: list[Alert] = Field(default_factory=list)


def _visible(caller: Caller, customer_id: str, cust: bytes | None, base: bytes | None) -> None:
    if cust is None and base is None:
        raise _not_found(customer_id)
    if not caller.may_read(manager_of(cust, base)):
        raise _not_found(customer_id)


@router.get(
    "/{customer_id}/alerts",
    response_model=AlertList,
    response_model_by_alias=True,
    summary="The customer's alert history",
    description=(
        "Alerts of the customer, newest first (by the reading that triggered them). "
        "`limit` 1-200 (default 50); `rule` keeps only one rule "
        "(e.g. `same_period_reached`, `sudden_increase`)."
    ),
    responses=error_responses(401, 404, 422, 429, 503),
)
async def get_alerts(
    customer_id: CustomerId,
    caller: Ctx,
    limit: Annotated[int, Query(ge=1, le=MAX_ALERTS, description="How many alerts, newest first.")] = 50,
    rule: Annotated[
        str | None, Query(pattern=RULE_PATTERN, max_length=64, description="Only alerts of this rule.")
    ] = None,
) -> Response:
    keys = caller.rt.keys
    stop = -1 if rule else limit - 1
    cust, state, old, ids = await caller.read(
        lambda p: (
            p.get(keys.customer(customer_id)),
            p.get(keys.state(customer_id)),
            p.get(keys.baseline(customer_id)),
            p.zrevrange(keys.alerts(customer_id), 0, stop),
        )
    )
    # the snapshot only decides when there is no record (a read model of an earlier worker)
    _visible(
        caller, customer_id, cust, None if cust is not None else caller.rt.snapshots.view(state, old, cust)
    )
    bodies: list[bytes] = []
    if ids:
        raw_bodies = await caller.rt.redis.hmget(keys.alert_bodies(customer_id), ids)
        for body in raw_bodies:
            if body is None:
                continue  # trimmed between the two reads
            if rule is not None:
                try:
                    doc = orjson.loads(body)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(doc, dict) or doc.get("rule") != rule:
                    continue
            bodies.append(body if isinstance(body, bytes) else body.encode())
            if len(bodies) >= limit:
                break
    head = json.dumps({"customer_id": customer_id, "count": len(bodies)})[:-1].encode()
    content = head + b', "alerts": [' + b",".join(bodies) + b"]}"
    return Response(content, media_type="application/json", headers=_NO_STORE)


class LandlordView(BaseModel):
    """The landlord of a rented home, as the API shows it (the phone masked for ops)."""

    name: str
    phone: str


class CustomerView(CustomerRecord):
    """The registry record as the API shows it, with the current segment and open alerts.

    ``phone`` (and the ``landlord``'s phone of a rented home) is shown in full only to the
    customer's own account manager (who calls them); ops see it masked (``+86*******5678``)
    and ``phone_masked`` is true.
    """

    phone: str | None = None
    landlord: LandlordView | None = None  # type: ignore[assignment]  # a masked phone is no E.164
    phone_masked: bool = False
    segment: SegmentRef | None = None
    open_alerts: list[str] = Field(default_factory=list)


@router.get(
    "/{customer_id}",
    response_model=CustomerView,
    summary="The customer's registry record",
    description=(
        "The registry copy of the customer (from the `customers` topic) with its current "
        "segment and open alerts. The phone number is masked for role ops and shown in "
        "full to the customer's own manager."
    ),
    responses=error_responses(401, 404, 422, 429, 503),
)
async def get_customer(customer_id: CustomerId, caller: Ctx) -> CustomerView:
    snaps = caller.rt.snapshots
    state, old, cust = await caller.read(lambda p: [p.get(name) for name in snaps.names(customer_id)])
    if cust is None or not caller.may_read(manager_of(cust)):
        raise _not_found(customer_id)
    base = snaps.view(state, old, cust)
    record = CustomerRecord.model_validate_json(cust)
    extra: dict[str, Any] = {}
    if base is not None:
        snap = BaselineSnapshot.model_validate_json(base)
        extra = {"segment": snap.segment, "open_alerts": snap.open_alerts}
    view = CustomerView.model_validate({**record.model_dump(), **extra})
    if view.landlord is not None and view.occupancy != "rented":  # a landlord only for a rented home
        view = view.model_copy(update={"landlord": None})
    if caller.is_ops:
        upd: dict[str, Any] = {}
        if view.phone:
            upd.update(phone=mask_phone(view.phone), phone_masked=True)
        if view.landlord is not None:
            upd["landlord"] = view.landlord.model_copy(update={"phone": mask_phone(view.landlord.phone)})
        view = view.model_copy(update=upd)
    return view
