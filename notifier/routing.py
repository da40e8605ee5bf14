"""Routing: turn a batch of Alerts into recorded notifications (the I/O around ``notifier.policy``).

Every alert goes to the account manager (inbox + push, or the hourly digest when the
manager is flooded; a manager-only alert's push is held for the manager's daily digest);
customer-facing rules also go to the customer by SMS when the
customer opted in, subject to the segment's policy, quiet hours and the per-cycle /
per-N-days limits. ``notifier.policy.decide`` takes the decisions (pure); the last two
limits are reserved atomically in Redis by the ingest script, with the plan laid out
by ``notifier.encode``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from meterwatch.contracts import Alert, CustomerRecord
from meterwatch.logs import mask_phone
from meterwatch.settings import Settings
from notifier.landlord import wants_sms
from notifier.moderation import effective_consent
from notifier.policy import decide
from notifier.store import Store

log = logging.getLogger("meterwatch.notifier.routing")


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
    landlords = await _landlord_consents(alerts, records, store, settings)
    for i, (a, m) in enumerate(zip(alerts, mgr_ids, strict=True)):
        rec = records.get(a.customer_id)
        consent = False
        try:
            if rec is not None:
                consent, _ = effective_consent(rec.sms_opt_in, overrides[a.customer_id])
                if rec.phone:
                    phones[rec.phone] = rec.customer_id
            plan = decide(
                a, rec, consent, profiles.get(m, {}), settings, now, landlords.get(a.alert_id, True)
            )
            plans.append(
                store.encode(
                    plan,
                    settings.notifier_alert_dedupe_days,
                    settings.notifier_inbox_max,
                    settings.manager_digest_keep_days,
                )
            )
            planned.append(i)
            if plan.sms is not None and rec is not None and rec.phone:
                log.debug("alert %s: sms to %s %s", a.alert_id, mask_phone(rec.phone), plan.sms.status)
            ll = plan.landlord_sms
            if ll is not None and rec is not None and rec.landlord is not None:
                log.info(
                    "alert %s (%s): sms to the landlord %s %s",
                    a.alert_id,
                    a.rule,
                    mask_phone(rec.landlord.phone),
                    ll.status,
                )
        except (ValueError, TypeError, KeyError, OverflowError) as e:
            # an alert that cannot be routed must not stop the others (nor crash the consumer)
            log.warning("alert %s cannot be routed: %s", a.alert_id, e)
            out[i]["error"] = f"{type(e).__name__}: {e}"
    await store.index_phones(phones)
    for i, res in zip(planned, await store.ingest(plans), strict=True):
        out[i].update(res)
    return out


async def _landlord_consents(
    alerts: list[Alert], records: dict[str, CustomerRecord | None], store: Store, settings: Settings
) -> dict[str, bool]:
    """alert_id -> whether the landlord to text has not replied STOP (their number's consent:
    a landlord is texted unless they opted out; the tenant's consent is not theirs)."""
    wanted = [
        (a.alert_id, ll.phone) for a in alerts if (ll := wants_sms(a, records.get(a.customer_id), settings))
    ]
    if not wanted:
        return {}
    found = await store.consent_overrides_many([("", phone) for _, phone in wanted])
    return {aid: effective_consent(True, ov[1:])[0] for (aid, _), ov in zip(wanted, found, strict=True)}
