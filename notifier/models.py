"""Pydantic models at the notifier's HTTP boundary."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Channel = Literal["sms", "push", "digest", "escalation"]
Status = Literal[
    "queued",
    "deferred",
    "held",
    "retrying",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "suppressed",
    "digested",
    "cancelled",
]
TERMINAL: frozenset[str] = frozenset(
    {"sent", "delivered", "undelivered", "failed", "suppressed", "digested", "cancelled"}
)


class HistoryEvent(BaseModel):
    at: dt.datetime
    status: str
    detail: str = ""


class NotificationView(BaseModel):
    """`GET /v1/notifications/{id}`: one notification with its status history."""

    notification_id: str
    alert_id: str
    channel: str
    #: an SMS's addressee: the customer, or the landlord of a rented home (docs/notifier.md)
    recipient: Literal["customer", "landlord"] = "customer"
    status: str
    reason: str = ""
    customer_id: str = ""
    manager_id: str = ""
    phone: str = Field(default="", description="masked")
    language: str = ""
    text: str = ""
    attempts: int = 0
    due_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    gateway_id: str = ""
    segments: int | None = None
    history: list[HistoryEvent] = Field(default_factory=list)


class NotificationRef(BaseModel):
    notification_id: str
    channel: str
    recipient: Literal["customer", "landlord"] = "customer"  # an SMS's addressee
    status: str
    reason: str = ""


class IngestResult(BaseModel):
    """`POST /v1/alerts` answer."""

    alert_id: str
    duplicate: bool
    notifications: list[NotificationRef] = Field(default_factory=list)


class InboxItem(BaseModel):
    """One entry of a manager's inbox (an alert, a digest or an escalation)."""

    id: str
    kind: Literal["alert", "digest", "escalation"]
    at: dt.datetime
    manager_id: str
    customer_id: str | None = None
    title: str = ""
    text: dict[str, str] = Field(default_factory=dict)
    notification_ids: list[str] = Field(default_factory=list)
    alert: dict[str, Any] | None = None
    #: the landlord of a rented home {name, phone}, to call (an alert item; absent otherwise)
    landlord: dict[str, str] | None = Field(default=None, exclude_if=lambda v: v is None)


class Inbox(BaseModel):
    manager_id: str
    items: list[InboxItem]


class ConsentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opt_in: bool


class ConsentView(BaseModel):
    customer_id: str
    opt_in: bool
    source: Literal["registry", "override"]
    updated_at: dt.datetime | None = None


class InboundSms(BaseModel):
    """The SMS gateway's callback: a reply (`from`, `text`) or a receipt (`reference`, `status`)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    from_: Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")] | None = Field(
        default=None, alias="from"
    )
    text: Annotated[str, StringConstraints(max_length=1600)] | None = None
    reference: Annotated[str, StringConstraints(max_length=128)] | None = None
    status: Literal["delivered", "failed", "undelivered", "accepted"] | None = None
    error: Annotated[str, StringConstraints(max_length=500)] | None = None

    @model_validator(mode="after")
    def _reply_or_receipt(self) -> InboundSms:
        if not ((self.from_ and self.text is not None) or (self.reference and self.status)):
            raise ValueError("give either `from` and `text`, or `reference` and `status`")
        return self


class InboundResult(BaseModel):
    action: Literal[
        "opt_out", "opt_in", "receipt", "ignored", "budget_set", "budget_removed", "budget_refused"
    ]
    customer_id: str | None = None
    notification_id: str | None = None
    detail: str = ""


class ManagerProfile(BaseModel):
    """Name and phone the SMS names as the person to call."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(max_length=32)] = ""
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{3,16}$")] | None = None


class RejectedAlert(BaseModel):
    """A message of the alerts topic that could not be used, with the reason (newest first)."""

    error: dict[str, Any]
    received_at: str
    source: dict[str, Any]
    raw: str
    raw_encoding: str = "text"


class ErrorBody(BaseModel):
    detail: str
