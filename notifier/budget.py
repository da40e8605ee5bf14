"""A budget set by SMS reply ("预算200" / "BUDGET 200"): parse, update the registry, confirm.

The customer's registry record (the worker's copy in Redis, ``customer:{id}``) gets
``budget`` {amount, currency}; the updated full record is published to the
``customers`` topic, so that Kafka stays the source of truth and the worker applies it
like any registry change. The currency is the one of the customer's tariff plan (its
``tariff_plan``, else its tariff's default, ``MW_DEFAULT_TARIFF_PLANS``); a customer
without a plan cannot have a budget (the reply says so). "预算0" / "BUDGET 0" /
"BUDGET OFF" / "取消预算" remove it. The confirmation is an ordinary SMS notification
(retries, quiet hours, consent), with an id fixed by the customer, the text and the
10-minute window, so a gateway that retries its callback does not confirm twice.

Last writer wins: the billing system publishes whole records too; a record it
publishes without ``budget`` (because it does not carry the field through) removes
the budget. See docs/money.md.

>>> parse_budget("预算200"), parse_budget(" budget 120.5 "), parse_budget("ＢＵＤＧＥＴ ０")
(Decimal('200'), Decimal('120.5'), Decimal('0'))
>>> parse_budget("取消预算"), parse_budget("预算两百") is None, parse_budget("STOP") is None
(Decimal('0'), True, True)
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from decimal import Decimal
from typing import Any, Literal

from pydantic import ValidationError

from baselines.plans import Tariffs
from meterwatch.contracts import CustomerRecord
from meterwatch.registry import with_budget
from notifier.ids import iso, make_nid, ms
from notifier.store import Store
from notifier.templates import budget_refused_text, budget_reply_text

log = logging.getLogger("meterwatch.notifier.budget")

_BUDGET = re.compile(r"^(?:预算|BUDGET)\s*(\d{1,9}(?:\.\d{1,2})?)\s*(?:元|YUAN|RMB|CNY|GBP|£|¥)?$")
_REMOVE = frozenset({"取消预算", "预算取消", "BUDGET OFF", "BUDGET STOP", "NO BUDGET"})
Outcome = Literal["budget_set", "budget_removed", "budget_refused"]


def parse_budget(text: str) -> Decimal | None:
    """The budget an SMS reply asks for (``0``: remove it), or None when the text is not one."""
    t = unicodedata.normalize("NFKC", text).strip().strip(".!。！ ").upper()
    if t in _REMOVE:
        return Decimal(0)
    m = _BUDGET.match(t)
    return Decimal(m.group(1)) if m else None


async def apply_reply(
    store: Store,
    tariffs: Tariffs,
    publish: Any,
    customer_id: str,
    phone: str,
    text: str,
    amount: Decimal,
    now: dt.datetime,
    signature: str,
) -> tuple[Outcome, str]:
    """Set (or remove) the budget of ``customer_id`` and queue the confirmation; (outcome, detail).

    ``publish(key, value)`` sends the updated record to the customers topic (awaitable).
    """
    raw = await store.r.get(store.k.customer(customer_id))
    if raw is None:
        return "budget_refused", "no registry record"
    try:
        rec = CustomerRecord.model_validate_json(raw)
    except ValidationError:
        return "budget_refused", "unreadable registry record"
    plan_id = rec.tariff_plan or tariffs.defaults.get(rec.tariff)
    plan = tariffs.plan(plan_id) if plan_id else None
    if plan is None:
        await _confirm(store, rec, phone, text, now, budget_refused_text(rec.language, "no_plan", signature))
        return "budget_refused", "no tariff plan"
    body, new = with_budget(raw, amount, plan.currency)
    await publish(customer_id.encode(), body)
    reply = budget_reply_text(rec.language, amount if amount > 0 else None, plan.currency, signature)
    await _confirm(store, new, phone, text, now, reply)
    return ("budget_set" if amount > 0 else "budget_removed"), f"{amount} {plan.currency}"


async def _confirm(
    store: Store, rec: CustomerRecord, phone: str, asked: str, now: dt.datetime, text: str
) -> None:
    """Queue the reply SMS (once per customer, request and 10 minutes)."""
    window = str(int(now.timestamp()) // 600)
    nid = make_nid("budget-reply", rec.customer_id, phone, asked.strip(), window)
    fields = {
        "id": nid,
        "alert_id": "",
        "channel": "sms",
        "customer_id": rec.customer_id,
        "manager_id": rec.manager_id or "",
        "phone": phone,
        "text": text,
        "timezone": rec.timezone,
        "registry_opt_in": "1" if rec.sms_opt_in else "0",
        "status": "queued",
        "reason": "",
        "attempts": "0",
        "claim": "0",
        "created_at": iso(now),
        "due_ms": str(ms(now)),
    }
    await store.create(nid, fields, ms(now), now, "budget reply", "budget_replies")
