"""The notifier's Redis layout: key names, and an ``AlertPlan`` as the ingest script's argument.

``notifier.policy`` decides; ``encode`` only lays the decision out the way the ingest
script (``notifier.store._INGEST``) reads it: every value a string, the hash fields
flattened, the limits' and the digest's counter keys computed from the key layout
(documented in ``notifier.store``). ``Store.encode`` is the entry point.
"""

from __future__ import annotations

import json
from typing import Any

from meterwatch.keys import Keys
from notifier.ids import iso, ms
from notifier.landlord import landlord_key, landlord_of
from notifier.policy import AlertPlan, DailyRule, DigestRule, PushPlan, SmsPlan

CYCLE_TTL_S = 400 * 86400  # an SMS-per-cycle counter outlives any billing cycle
DIGEST_TTL_S = 3 * 3600


def flat(d: dict[str, Any]) -> list[str]:
    """A hash as the ``HSET k v k v ...`` list the scripts take (None left out, non-strings as JSON).

    >>> flat({"a": "x", "b": None, "c": {"k": 1}})
    ['a', 'x', 'c', '{"k": 1}']
    """
    out: list[str] = []
    for k, v in d.items():
        if v is None:
            continue
        out += [k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)]
    return out


def notif_key(k: Keys, nid: str) -> str:
    return k.ns(f"notif:{nid}")


def hist_key(k: Keys, nid: str) -> str:
    return k.ns(f"hist:{nid}")


def due_key(k: Keys) -> str:
    return k.ns("due")


def inbox_key(k: Keys, manager_id: str) -> str:
    return k.ns(f"inbox:{manager_id}")


def inbox_channel(k: Keys, manager_id: str) -> str:
    return k.ns(f"inboxch:{manager_id}")


def daily_items_key(k: Keys, manager_id: str, day: str) -> str:
    """HASH alert_id -> Alert JSON: the manager-only alerts held for that day's digest."""
    return k.ns(f"ddigest:{manager_id}:{day}")


def daily_closed_key(k: Keys, manager_id: str, day: str) -> str:
    """Set when the day's digest is made: a later manager-only alert is pushed at once."""
    return k.ns(f"ddigestclosed:{manager_id}:{day}")


def daily_doc_key(k: Keys, manager_id: str, day: str) -> str:
    """STRING: the day's digest as made (``notifier.dailydigest.DailyDigestView`` JSON)."""
    return k.ns(f"ddigestdoc:{manager_id}:{day}")


def encode(
    plan: AlertPlan,
    keys: Keys,
    metrics_key: str,
    dedupe_days: int,
    inbox_max: int,
    keep_days: int = 90,
) -> dict[str, Any]:
    """The argument of the ingest script for ``plan`` (applied atomically, idempotent per alert)."""
    now, mgr = plan.now, plan.manager_id
    notifications = [_push(plan, plan.push, keys, keep_days)]
    for sms in (plan.sms, plan.landlord_sms):
        if sms is not None:
            notifications.append(_sms(plan, sms, keys))
    return {
        "now_s": str(int(now.timestamp())),
        "now_iso": iso(now),
        "dedupe_key": keys.ns(f"alert:{plan.alert.alert_id}"),
        "dedupe_ttl": str(dedupe_days * 86400),
        "nids": json.dumps(plan.nids),
        "metrics_key": metrics_key,
        "solicited": plan.alert.solicited,  # counted apart (alerts_solicited): the customer asked
        "due_key": due_key(keys),
        "notifications": notifications,
        "inbox": {
            "key": inbox_key(keys, mgr),
            "channel": inbox_channel(keys, mgr),
            "score": str(ms(now)),
            "item": json.dumps(plan.inbox_item, ensure_ascii=False),
            "max": str(inbox_max),
        },
    }


def _common(plan: AlertPlan, nid: str, channel: str) -> dict[str, Any]:
    return {
        "id": nid,
        "alert_id": plan.alert.alert_id,
        "channel": channel,
        "customer_id": plan.alert.customer_id,
        "manager_id": plan.manager_id,
    }


def _push(plan: AlertPlan, push: PushPlan, keys: Keys, keep_days: int) -> dict[str, Any]:
    now_ms = ms(plan.now)
    fields = {
        **_common(plan, push.nid, "push"),
        "payload": push.payload,
        "attempts": "0",
        "claim": "0",
        "created_at": iso(plan.now),
        "due_ms": str(now_ms),
        "policy": plan.policy,
    }
    out: dict[str, Any] = {
        "nid": push.nid,
        "key": notif_key(keys, push.nid),
        "hist_key": hist_key(keys, push.nid),
        "channel": "push",
        "status": "queued",
        "due_ms": str(now_ms),
        "detail": f"policy {plan.policy}",
        "fields": flat(fields),
    }
    if push.digest is not None:
        out["digest"] = _digest(plan, push.digest, keys)
    if push.daily is not None:
        out["daily"] = _daily(plan, push.daily, keys, keep_days)
    return out


def _daily(plan: AlertPlan, d: DailyRule, keys: Keys, keep_days: int) -> dict[str, Any]:
    mgr, day = plan.manager_id, d.day.isoformat()
    due_ms = str(ms(d.due))
    items_key = daily_items_key(keys, mgr, day)
    return {
        "items_key": items_key,
        "closed_key": daily_closed_key(keys, mgr, day),
        "alert_id": plan.alert.alert_id,
        "item": plan.alert.model_dump_json(by_alias=True),
        "ttl": str(keep_days * 86400),
        "nid": d.nid,
        "notif_key": notif_key(keys, d.nid),
        "hist_key": hist_key(keys, d.nid),
        "due_ms": due_ms,
        "fields": flat(
            {
                "alert_id": "",
                "channel": "digest",
                "daily": "1",
                "manager_id": mgr,
                "day": day,
                "items_key": items_key,
                "attempts": "0",
                "claim": "0",
                "created_at": iso(plan.now),
                "due_ms": due_ms,
                "status": "queued",
            }
        ),
    }


def _digest(plan: AlertPlan, d: DigestRule, keys: Keys) -> dict[str, Any]:
    mgr = plan.manager_id
    items_key = keys.ns(f"digestitems:{mgr}:{d.hour}")
    due_ms = str(ms(d.due))
    return {
        "count_key": keys.ns(f"mgrhour:{mgr}:{d.hour}"),
        "threshold": str(d.threshold),
        "ttl": str(DIGEST_TTL_S),
        "items_key": items_key,
        "item": json.dumps(d.item, ensure_ascii=False),
        "nid": d.nid,
        "notif_key": notif_key(keys, d.nid),
        "hist_key": hist_key(keys, d.nid),
        "due_ms": due_ms,
        "fields": flat(
            {
                "alert_id": "",
                "channel": "digest",
                "manager_id": mgr,
                "items_key": items_key,
                "hour": str(d.hour),
                "attempts": "0",
                "claim": "0",
                "created_at": iso(plan.now),
                "due_ms": due_ms,
                "status": "queued",
            }
        ),
    }


def _sms(plan: AlertPlan, sms: SmsPlan, keys: Keys) -> dict[str, Any]:
    fields: dict[str, Any] = {
        **_common(plan, sms.nid, "sms"),
        "attempts": "0",
        "claim": "0",
        "created_at": iso(plan.now),
        "policy": plan.policy,
        "cycle_start": sms.cycle_start.isoformat(),
    }
    rec, text = sms.record, sms.text
    landlord = landlord_of(rec) if sms.recipient == "landlord" else None
    if rec is not None and text is not None:
        fields.update(
            {
                "phone": (landlord.phone if landlord is not None else rec.phone) or "",
                "language": rec.language,
                "timezone": rec.timezone,
                "registry_opt_in": "1" if rec.sms_opt_in or landlord is not None else "0",
                "text": text.text,
                "segments": str(text.segments),
                "encoding": text.encoding,
            }
        )
    if sms.recipient == "landlord":
        fields["recipient"] = "landlord"
    due_ms = str(ms(sms.due))
    fields["due_ms"] = due_ms
    out: dict[str, Any] = {
        "nid": sms.nid,
        "key": notif_key(keys, sms.nid),
        "hist_key": hist_key(keys, sms.nid),
        "channel": "landlord_sms" if sms.recipient == "landlord" else "sms",  # the ingest counters
        "status": sms.status,
        "reason": sms.reason,
        "detail": sms.detail,
        "due_ms": due_ms,
        "fields": flat(fields),
    }
    if sms.limit is not None:
        # the customer's limits are per customer; a landlord's per landlord (whatever the home)
        who = f"smscycle:{plan.alert.customer_id}", f"smslast:{plan.alert.customer_id}"
        if landlord is not None:
            who = f"smsllcycle:{landlord_key(landlord.phone)}", f"smslllast:{landlord_key(landlord.phone)}"
        out["sms_limit"] = {
            "cycle_key": keys.ns(f"{who[0]}:{sms.limit.cycle_start.isoformat()}"),
            "last_key": keys.ns(who[1]),
            "max_per_cycle": str(sms.limit.max_per_cycle),
            "min_gap_s": str(sms.limit.min_gap_s),
            "cycle_ttl": str(CYCLE_TTL_S),
        }
    return out
