"""Routing by customer, rule and segment: turn one Alert into an ingest plan.

Every alert goes to the account manager (inbox + push, or the hourly digest
when the manager is flooded); customer-facing rules also go to the customer by
SMS when the customer opted in, subject to the segment's policy, quiet hours
and the per-cycle / per-N-days limits (the last two are decided atomically in
Redis by the ingest script).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from meterwatch.contracts import Alert, CustomerRecord
from meterwatch.logs import mask_phone
from meterwatch.settings import Settings
from notifier.moderation import effective_consent, in_quiet_hours, next_allowed, policy_for
from notifier.store import Store, iso, make_nid
from notifier.templates import Contact, push_title, render_sms

log = logging.getLogger("meterwatch.notifier.routing")


def _flat(d: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for k, v in d.items():
        if v is None:
            continue
        out += [k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)]
    return out


def build_plan(
    alert: Alert,
    record: CustomerRecord | None,
    consent: bool,
    manager_profile: dict[str, Any],
    settings: Settings,
    store: Store,
    now: dt.datetime,
) -> dict[str, Any]:
    """The plan the ingest script applies atomically (see store._INGEST)."""
    now_ms = int(now.timestamp() * 1000)
    manager_id = (
        alert.manager_id or (record.manager_id if record else None) or settings.notifier_unassigned_manager
    )
    pol_name, pol = policy_for(alert.segment, settings)
    alert_json = json.loads(alert.model_dump_json(by_alias=True))
    notifications: list[dict[str, Any]] = []

    # 1. the manager push (always)
    push_nid = make_nid("push", alert.alert_id)
    push_payload = {
        "kind": "alert",
        "notification_id": push_nid,
        "manager_id": manager_id,
        "customer_id": alert.customer_id,
        "customer_name": record.name if record else "",
        "title": push_title(alert),
        "text": {"zh-CN": alert.explanation.zh_CN, "en": alert.explanation.en},
        "alert": alert_json,
    }
    push: dict[str, Any] = {
        "nid": push_nid,
        "key": store.notif_key(push_nid),
        "hist_key": store.hist_key(push_nid),
        "channel": "push",
        "status": "queued",
        "due_ms": str(now_ms),
        "detail": f"policy {pol_name}",
        "fields": _flat(
            {
                "id": push_nid,
                "alert_id": alert.alert_id,
                "channel": "push",
                "customer_id": alert.customer_id,
                "manager_id": manager_id,
                "payload": push_payload,
                "attempts": "0",
                "claim": "0",
                "created_at": iso(now),
                "due_ms": str(now_ms),
                "policy": pol_name,
            }
        ),
    }
    threshold = settings.manager_digest_threshold_per_hour
    if pol.digest and threshold > 0:
        hour = int(now.timestamp()) // 3600
        digest_nid = make_nid("digest", manager_id, str(hour))
        items_key = store.k.ns(f"digestitems:{manager_id}:{hour}")
        push["digest"] = {
            "count_key": store.k.ns(f"mgrhour:{manager_id}:{hour}"),
            "threshold": str(threshold),
            "ttl": str(3 * 3600),
            "items_key": items_key,
            "item": json.dumps(
                {
                    "alert_id": alert.alert_id,
                    "customer_id": alert.customer_id,
                    "rule": alert.rule,
                    "severity": alert.severity,
                    "notification_id": push_nid,
                },
                ensure_ascii=False,
            ),
            "nid": digest_nid,
            "notif_key": store.notif_key(digest_nid),
            "hist_key": store.hist_key(digest_nid),
            "due_ms": str((hour + 1) * 3600 * 1000),
            "fields": _flat(
                {
                    "alert_id": "",
                    "channel": "digest",
                    "manager_id": manager_id,
                    "items_key": items_key,
                    "hour": str(hour),
                    "attempts": "0",
                    "claim": "0",
                    "created_at": iso(now),
                    "due_ms": str((hour + 1) * 3600 * 1000),
                    "status": "queued",
                }
            ),
        }
    notifications.append(push)
    nids = [push_nid]

    # 2. the customer SMS (customer-facing rules only)
    if alert.customer_facing:
        sms_nid = make_nid("sms", alert.alert_id)
        nids.append(sms_nid)
        status, reason, due = "queued", "", now
        detail = f"policy {pol_name}"
        sms_fields: dict[str, Any] = {
            "id": sms_nid,
            "alert_id": alert.alert_id,
            "channel": "sms",
            "customer_id": alert.customer_id,
            "manager_id": manager_id,
            "attempts": "0",
            "claim": "0",
            "created_at": iso(now),
            "policy": pol_name,
            "cycle_start": alert.cycle.start.isoformat(),
        }
        if record is None:
            status, reason = "suppressed", "customer.unknown"
        elif not record.phone:
            status, reason = "suppressed", "customer.no_phone"
        elif not consent:
            status, reason = "suppressed", "moderation.opted_out"
        elif pol.sms == "never":
            status, reason = "suppressed", "policy.no_sms"
        if record is not None:
            contact = Contact(
                manager_name=str(manager_profile.get("name") or ""),
                manager_phone=str(manager_profile.get("phone") or ""),
                hotline=settings.notifier_hotline,
            )
            sms = render_sms(alert, record.language, record.name, contact, settings.sms_signature)
            sms_fields.update(
                {
                    "phone": record.phone or "",
                    "language": record.language,
                    "timezone": record.timezone,
                    "registry_opt_in": "1" if record.sms_opt_in else "0",
                    "text": sms.text,
                    "segments": str(sms.segments),
                    "encoding": sms.encoding,
                }
            )
            if status == "queued":
                due = now + dt.timedelta(minutes=pol.sms_delay_minutes)
                qs, qe = settings.quiet_hours_start, settings.quiet_hours_end
                quiet = in_quiet_hours(due, record.timezone, qs, qe)
                due = next_allowed(due, record.timezone, qs, qe)
                if pol.sms == "after_manager":
                    status, reason = "held", "policy.after_manager"
                elif quiet:
                    status, reason = "deferred", "moderation.quiet_hours"
                    detail = f"until {iso(due)}"
                elif pol.sms_delay_minutes > 0:
                    status, reason = "deferred", "policy.manager_first"
                    detail = f"until {iso(due)}"
        due_ms = int(due.timestamp() * 1000)
        sms_fields["due_ms"] = str(due_ms)
        sms_plan: dict[str, Any] = {
            "nid": sms_nid,
            "key": store.notif_key(sms_nid),
            "hist_key": store.hist_key(sms_nid),
            "channel": "sms",
            "status": status,
            "reason": reason,
            "detail": detail,
            "due_ms": str(due_ms),
            "fields": _flat(sms_fields),
        }
        if status in ("queued", "deferred", "held"):
            sms_plan["sms_limit"] = {
                "cycle_key": store.k.ns(f"smscycle:{alert.customer_id}:{alert.cycle.start.isoformat()}"),
                "last_key": store.k.ns(f"smslast:{alert.customer_id}"),
                "max_per_cycle": str(settings.sms_max_per_cycle),
                "min_gap_s": str(settings.sms_min_days_between * 86400),
                "cycle_ttl": str(400 * 86400),
            }
        notifications.append(sms_plan)
        if record is not None and record.phone:
            log.debug("alert %s: sms to %s %s", alert.alert_id, mask_phone(record.phone), status)

    inbox_item = {
        "id": make_nid("inbox", alert.alert_id),
        "kind": "alert",
        "at": iso(now),
        "manager_id": manager_id,
        "customer_id": alert.customer_id,
        "title": push_title(alert),
        "text": {"zh-CN": alert.explanation.zh_CN, "en": alert.explanation.en},
        "notification_ids": nids,
        "alert": alert_json,
    }
    return {
        "now_s": str(int(now.timestamp())),
        "now_iso": iso(now),
        "dedupe_key": store.k.ns(f"alert:{alert.alert_id}"),
        "dedupe_ttl": str(settings.notifier_alert_dedupe_days * 86400),
        "nids": json.dumps(nids),
        "metrics_key": store.metrics_key,
        "due_key": store.due_key,
        "notifications": notifications,
        "inbox": {
            "key": store.inbox_key(manager_id),
            "channel": store.inbox_channel(manager_id),
            "score": str(now_ms),
            "item": json.dumps(inbox_item, ensure_ascii=False),
            "max": str(settings.notifier_inbox_max),
        },
    }


async def ingest_alerts(
    alerts: list[Alert], store: Store, settings: Settings, now: dt.datetime
) -> list[dict[str, Any]]:
    """Record a batch of alerts durably (idempotent per alert_id); returns per-alert results."""
    if not alerts:
        return []
    records = await store.customers([a.customer_id for a in alerts])
    mgr_ids = [
        a.manager_id or ((records.get(a.customer_id) or CustomerRecord(customer_id="-")).manager_id) or ""
        for a in alerts
    ]
    profiles = await store.manager_profiles([m for m in mgr_ids if m])
    plans: list[dict[str, Any]] = []
    planned: list[int] = []
    out: list[dict[str, Any]] = [{"alert_id": a.alert_id} for a in alerts]
    phones: dict[str, str] = {}
    known = [(a.customer_id, rec.phone) for a in alerts if (rec := records.get(a.customer_id)) is not None]
    overrides = dict(zip([c for c, _ in known], await store.consent_overrides_many(known), strict=True))
    for i, (a, m) in enumerate(zip(alerts, mgr_ids, strict=True)):
        rec = records.get(a.customer_id)
        consent = False
        try:
            if rec is not None:
                consent, _ = effective_consent(rec.sms_opt_in, overrides[a.customer_id])
                if rec.phone:
                    phones[rec.phone] = rec.customer_id
            plans.append(build_plan(a, rec, consent, profiles.get(m, {}), settings, store, now))
            planned.append(i)
        except (ValueError, TypeError, KeyError, OverflowError) as e:
            # an alert that cannot be routed must not stop the others (nor crash the consumer)
            log.warning("alert %s cannot be routed: %s", a.alert_id, e)
            out[i]["error"] = f"{type(e).__name__}: {e}"
    await store.index_phones(phones)
    for i, res in zip(planned, await store.ingest(plans), strict=True):
        out[i].update(res)
    return out
