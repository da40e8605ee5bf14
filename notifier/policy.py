"""What the notifier does with one alert: a pure decision (no Redis), returned as a typed plan.

``decide`` takes the alert, the customer's registry record, the customer's effective
consent, the manager's profile, the settings and the time, and answers:

* the **manager push** (always): to ``alert.manager_id``, else the registry's manager,
  else ``MW_NOTIFIER_UNASSIGNED_MANAGER``; a customer-facing alert's push may be collapsed
  into the hourly digest (``digest``: the threshold and the hour are decided here, the count
  is kept in Redis); a manager-only alert's push is held for the manager's **daily digest**
  (``daily``, ``MW_MANAGER_DIGEST_DAILY``), which at the day's end pushes the top of the
  day's ranking and folds the rest (``baselines.digest``, ``notifier.dailydigest``);
* the **customer SMS** (customer-facing rules only): its status (``queued``, ``deferred``,
  ``held``, ``suppressed``), reason, due time and text; when it may still go out, the
  per-cycle / per-N-days limits it must reserve (checked atomically in Redis at ingest;
  none for a solicited alert, which the customer asked for);
* the **inbox item** of the manager.

``notifier.store.Store.encode`` turns the plan into the arguments of the ingest script.
Unit tests: tests/unit/notifier/test_policy.py (no Redis).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from baselines.digest import DigestPolicy, day_end, digest_day
from meterwatch.contracts import Alert, CustomerRecord
from meterwatch.settings import SegmentPolicy, Settings
from notifier import landlord as rented
from notifier.ids import iso, make_nid
from notifier.moderation import in_quiet_hours, next_allowed, policy_for
from notifier.templates import Contact, SmsText, push_title, render_sms

SmsStatus = Literal["queued", "deferred", "held", "suppressed"]


@dataclass(frozen=True)
class DigestRule:
    """Collapse the push into the manager's hourly digest beyond ``threshold`` pushes in ``hour``."""

    hour: int  # epoch hours (UTC)
    threshold: int
    nid: str  # the digest notification of that manager and hour
    item: dict[str, Any]  # the alert's line in the digest

    @property
    def due(self) -> dt.datetime:
        """The digest goes out when the hour ends."""
        return dt.datetime.fromtimestamp((self.hour + 1) * 3600, dt.UTC)


@dataclass(frozen=True)
class DailyRule:
    """Hold the push of a manager-only alert for the manager's daily digest of ``day``."""

    day: dt.date
    due: dt.datetime  # the digest goes out then (the day's end plus the grace)
    nid: str  # the daily digest notification of that manager and day


@dataclass(frozen=True)
class PushPlan:
    nid: str
    payload: dict[str, Any]
    digest: DigestRule | None = None
    daily: DailyRule | None = None


def digest_policy(settings: Settings) -> DigestPolicy:
    """The daily digest's policy from the settings (``MW_MANAGER_DIGEST_*``).

    >>> digest_policy(Settings()).actionable_per_day, digest_policy(Settings()).min_excess_kwh
    (3, 200.0)
    """
    return DigestPolicy(
        actionable_per_day=settings.manager_digest_actionable_per_day,
        min_money=settings.manager_digest_min_money,
        min_excess_kwh=settings.manager_digest_min_excess_kwh,
        fold_rules=tuple(settings.manager_digest_fold_rules),
    )


def daily_rule(manager_id: str, settings: Settings, now: dt.datetime) -> DailyRule:
    """The daily digest a manager-only alert recorded at ``now`` belongs to.

    >>> r = daily_rule("m1", Settings(), dt.datetime(2024, 3, 1, 17, tzinfo=dt.UTC))
    >>> r.day.isoformat(), r.due.isoformat()
    ('2024-03-01', '2024-03-02T00:05:00+00:00')
    """
    tz = settings.manager_digest_timezone
    day = digest_day(now, tz)
    due = day_end(day, tz) + dt.timedelta(seconds=settings.manager_digest_grace_s)
    return DailyRule(day, due, make_nid("ddigest", manager_id, day.isoformat()))


LANDLORD_NO_CYCLE_LIMIT = 1_000_000  # landlords: only MW_LANDLORD_SMS_MIN_DAYS_BETWEEN limits


@dataclass(frozen=True)
class SmsLimit:
    """The reservations an SMS makes at ingest (decided atomically in Redis)."""

    cycle_start: dt.date
    max_per_cycle: int
    min_gap_s: int


@dataclass(frozen=True)
class SmsPlan:
    nid: str
    status: SmsStatus
    reason: str
    detail: str
    due: dt.datetime
    cycle_start: dt.date
    record: CustomerRecord | None  # the registry copy the text and the phone come from
    text: SmsText | None = None
    limit: SmsLimit | None = None
    #: whom it goes to: the customer, or the landlord of a rented home (``notifier.landlord``)
    recipient: Literal["customer", "landlord"] = "customer"


@dataclass(frozen=True)
class AlertPlan:
    alert: Alert
    now: dt.datetime
    manager_id: str
    policy: str
    push: PushPlan
    sms: SmsPlan | None
    inbox_item: dict[str, Any] = field(default_factory=dict)
    landlord_sms: SmsPlan | None = None  # the landlord of a rented home (``notifier.landlord``)

    @property
    def nids(self) -> list[str]:
        return [p.nid for p in (self.push, self.sms, self.landlord_sms) if p is not None]


def decide(
    alert: Alert,
    record: CustomerRecord | None,
    consent: bool,
    manager_profile: dict[str, Any],
    settings: Settings,
    now: dt.datetime,
    landlord_consent: bool = True,
) -> AlertPlan:
    """The plan for one alert (see the module docstring); ``landlord_consent``: the landlord of a
    rented home has not replied STOP (``notifier.landlord``)."""
    manager_id = (
        alert.manager_id or (record.manager_id if record else None) or settings.notifier_unassigned_manager
    )
    pol_name, pol = policy_for(alert.segment, settings)
    alert_json = json.loads(alert.model_dump_json(by_alias=True))
    push = _push(alert, record, manager_id, pol, settings, now, alert_json)
    sms = (
        _sms(alert, record, consent, manager_profile, pol_name, pol, settings, now)
        if alert.customer_facing
        else None
    )
    ll_sms = _landlord_sms(alert, record, landlord_consent, manager_profile, settings, now)
    landlord = rented.landlord_of(record)
    inbox_item = {
        "id": make_nid("inbox", alert.alert_id),
        "kind": "alert",
        "at": iso(now),
        "manager_id": manager_id,
        "customer_id": alert.customer_id,
        "title": push_title(alert),
        "text": rented.with_line({"zh-CN": alert.explanation.zh_CN, "en": alert.explanation.en}, landlord),
        "notification_ids": [p.nid for p in (push, sms, ll_sms) if p is not None],
        "alert": alert_json,
    }
    if landlord is not None:
        inbox_item["landlord"] = landlord.model_dump()
    return AlertPlan(alert, now, manager_id, pol_name, push, sms, inbox_item, ll_sms)


def _push(
    alert: Alert,
    record: CustomerRecord | None,
    manager_id: str,
    pol: SegmentPolicy,
    settings: Settings,
    now: dt.datetime,
    alert_json: dict[str, Any],
) -> PushPlan:
    nid = make_nid("push", alert.alert_id)
    landlord = rented.landlord_of(record)
    payload = {
        "kind": "alert",
        "notification_id": nid,
        "manager_id": manager_id,
        "customer_id": alert.customer_id,
        "customer_name": record.name if record else "",
        "title": push_title(alert),
        "text": rented.with_line({"zh-CN": alert.explanation.zh_CN, "en": alert.explanation.en}, landlord),
        "alert": alert_json,
    }
    if landlord is not None:
        payload["landlord"] = landlord.model_dump()
    if not alert.customer_facing and settings.manager_digest_daily and pol.digest:
        return PushPlan(nid, payload, daily=daily_rule(manager_id, settings, now))
    threshold = settings.manager_digest_threshold_per_hour
    if not (pol.digest and threshold > 0):
        return PushPlan(nid, payload)
    hour = int(now.timestamp()) // 3600
    item: dict[str, Any] = {
        "alert_id": alert.alert_id,
        "customer_id": alert.customer_id,
        "rule": alert.rule,
        "severity": alert.severity,
        "notification_id": nid,
    }
    if landlord is not None:
        item["landlord"] = landlord.model_dump()
    return PushPlan(
        nid, payload, DigestRule(hour, threshold, make_nid("digest", manager_id, str(hour)), item)
    )


def _sms(
    alert: Alert,
    record: CustomerRecord | None,
    consent: bool,
    manager_profile: dict[str, Any],
    pol_name: str,
    pol: SegmentPolicy,
    settings: Settings,
    now: dt.datetime,
) -> SmsPlan:
    nid = make_nid("sms", alert.alert_id)
    cycle = alert.cycle.start
    detail = f"policy {pol_name}"
    blocked = _blocked(record, consent, pol)
    if record is None:
        return SmsPlan(nid, "suppressed", blocked or "", detail, now, cycle, None)
    contact = Contact(
        manager_name=str(manager_profile.get("name") or ""),
        manager_phone=str(manager_profile.get("phone") or ""),
        hotline=settings.notifier_hotline,
    )
    text = render_sms(alert, record.language, record.name, contact, settings.sms_signature)
    if blocked:
        return SmsPlan(nid, "suppressed", blocked, detail, now, cycle, record, text)
    status, reason, due, detail = _timing(record, pol, pol_name, settings, now)
    # a solicited alert (the customer's own budget) is outside the per-cycle / per-N-days limits:
    # it neither uses them up nor waits for them (consent and quiet hours still apply)
    limit = (
        None
        if alert.solicited
        else SmsLimit(cycle, settings.sms_max_per_cycle, settings.sms_min_days_between * 86400)
    )
    return SmsPlan(nid, status, reason, detail, due, cycle, record, text, limit)


def _landlord_sms(
    alert: Alert,
    record: CustomerRecord | None,
    consent: bool,
    manager_profile: dict[str, Any],
    settings: Settings,
    now: dt.datetime,
) -> SmsPlan | None:
    """The landlord's SMS of a rented home, for the rules of ``MW_LANDLORD_SMS_RULES`` (else None).

    No segment policy applies (the landlord is not the segmented customer); quiet hours of
    the home, the landlord's STOP and one SMS per landlord per ``MW_LANDLORD_SMS_MIN_DAYS_BETWEEN``
    days do. The text carries no figure of the tenant's use (``notifier.landlord``).
    """
    landlord = rented.wants_sms(alert, record, settings)
    if landlord is None or record is None:
        return None
    nid, cycle = rented.sms_nid(alert), alert.cycle.start
    contact = Contact(
        manager_name=str(manager_profile.get("name") or ""),
        manager_phone=str(manager_profile.get("phone") or ""),
        hotline=settings.notifier_hotline,
    )
    text = rented.render_landlord_sms(
        alert, landlord, record.language, contact, settings.sms_signature, record.timezone
    )
    if not consent:
        return SmsPlan(
            nid,
            "suppressed",
            "moderation.opted_out",
            "landlord",
            now,
            cycle,
            record,
            text,
            recipient="landlord",
        )
    status, reason, due, detail = rented.timing(record, settings, now)
    gap = settings.landlord_sms_min_days_between * 86400
    # the landlord's limit is the gap alone: the billing cycle is the tenant's, not theirs
    limit = SmsLimit(cycle, LANDLORD_NO_CYCLE_LIMIT, gap)
    return SmsPlan(nid, status, reason, detail, due, cycle, record, text, limit, "landlord")


def _blocked(record: CustomerRecord | None, consent: bool, pol: SegmentPolicy) -> str:
    """Why the customer gets no SMS at all ('' when one may go out)."""
    if record is None:
        return "customer.unknown"
    if not record.phone:
        return "customer.no_phone"
    if not consent:
        return "moderation.opted_out"
    if pol.sms == "never":
        return "policy.no_sms"
    return ""


def _timing(
    record: CustomerRecord, pol: SegmentPolicy, pol_name: str, settings: Settings, now: dt.datetime
) -> tuple[SmsStatus, str, dt.datetime, str]:
    """(status, reason, due, detail) of an SMS that may go out: now, later, or after the manager."""
    due = now + dt.timedelta(minutes=pol.sms_delay_minutes)
    qs, qe = settings.quiet_hours_start, settings.quiet_hours_end
    quiet = in_quiet_hours(due, record.timezone, qs, qe)
    due = next_allowed(due, record.timezone, qs, qe)
    if pol.sms == "after_manager":
        return "held", "policy.after_manager", due, f"policy {pol_name}"
    if quiet:
        return "deferred", "moderation.quiet_hours", due, f"until {iso(due)}"
    if pol.sms_delay_minutes > 0:
        return "deferred", "policy.manager_first", due, f"until {iso(due)}"
    return "queued", "", due, f"policy {pol_name}"
