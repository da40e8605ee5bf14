"""Rented homes (issue #15): the landlord on the manager's notification, and the landlord's SMS.

Tenant turnover is an arrears risk; the manager should know which homes are rented and
talk to the landlord. For a home whose registry record says ``occupancy: rented`` and
names a ``landlord`` {name, phone}:

* every manager notification of its alerts (push payload, inbox item, hourly digest line)
  carries ``landlord`` and a line "rented home: landlord <name> <phone>" (zh-CN and en);
* an alert of a rule in ``MW_LANDLORD_SMS_RULES`` (default: ``sustained_drop``, the home
  looks empty — the tenant may be gone) also sends the landlord a short SMS through the
  same SMS channel: idempotent per alert (its own notification id), quiet hours of the
  home's time zone, the landlord's STOP honoured (consent by phone), and a limit per
  landlord (one per ``MW_LANDLORD_SMS_MIN_DAYS_BETWEEN`` days, whatever the home).

Privacy: the landlord is not the account holder. The landlord's text never quotes the
tenant's consumption or bill: it says only that the home has looked empty (or its use
changed) since a day, with the account number and whom to call.

>>> from meterwatch.contracts import CustomerRecord
>>> r = CustomerRecord(customer_id="c1", occupancy="rented",
...                    landlord={"name": "王先生", "phone": "+8613900139000"})
>>> landlord_of(r).name, landlord_of(r.model_copy(update={"occupancy": "owner"}))
('王先生', None)
>>> manager_line(landlord_of(r))["en"]
'rented home: landlord 王先生 +8613900139000'
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Literal

from meterwatch.contracts import Alert, CustomerRecord, Landlord
from meterwatch.settings import Settings
from notifier.ids import iso, make_nid
from notifier.moderation import in_quiet_hours, next_allowed, zone
from notifier.templates import Contact, SmsText, sms_segments

#: the window of a drop alert when its reason does not say (``SustainedDrop.days``' default)
DEFAULT_WINDOW_DAYS = 14


def landlord_of(record: CustomerRecord | None) -> Landlord | None:
    """The landlord to involve: the record's, while the home is rented; else None."""
    if record is None or record.occupancy != "rented":
        return None
    return record.landlord


def manager_line(landlord: Landlord) -> dict[str, str]:
    """The line the manager's notification gets, in both languages."""
    return {
        "zh-CN": f"出租房：房东{landlord.name} {landlord.phone}",
        "en": f"rented home: landlord {landlord.name} {landlord.phone}",
    }


def with_line(text: dict[str, str], landlord: Landlord | None) -> dict[str, str]:
    """``text`` (a manager text per language) with the landlord's line appended, if any.

    >>> with_line({"en": "Use fell."}, Landlord(name="Mr Lee", phone="+447700900123"))["en"]
    'Use fell.\\nrented home: landlord Mr Lee +447700900123'
    """
    if landlord is None:
        return text
    line = manager_line(landlord)
    return {lang: f"{t}\n{line.get(lang, line['en'])}" for lang, t in text.items()}


def since_day(alert: Alert, timezone: str) -> dt.date:
    """The first day of the alert's window (local to the home): the day the change began, about.

    >>> import datetime as dt
    >>> from meterwatch.contracts import CycleRef, Explanation, Observed, Reason
    >>> a = Alert(alert_id="a", customer_id="c", rule="sustained_drop",
    ...           cycle=CycleRef(start=dt.date(2025, 3, 1), end=dt.date(2025, 3, 31)), observed=Observed(),
    ...           triggered_by=dt.datetime(2025, 3, 20, 1, tzinfo=dt.UTC), created_at=dt.datetime.now(dt.UTC),
    ...           explanation=Explanation(zh_CN="", en=""),
    ...           reasons=[Reason(code="baselines.rules.sustained_drop", numbers={"days": 14})])
    >>> since_day(a, "Asia/Shanghai")
    datetime.date(2025, 3, 6)
    """
    days = DEFAULT_WINDOW_DAYS
    for r in alert.reasons:
        v = r.numbers.get("days")
        if isinstance(v, int | float) and 1 <= v <= 400:
            days = int(v)
            break
    return alert.triggered_by.astimezone(zone(timezone)).date() - dt.timedelta(days=days)


def _facts(rule: str, cid: str, day: dt.date, zh: bool) -> list[str]:
    """What the landlord is told, richest first: no figure of the tenant's use or bill."""
    if zh:
        d = f"{day.month}月{day.day}日"
        if rule == "sustained_drop":
            return [
                f"您出租的房屋（户号{cid}）自{d}起用电显示可能已无人居住",
                f"户号{cid}自{d}起可能无人居住",
            ]
        return [f"您出租的房屋（户号{cid}）自{d}起用电情况有明显变化", f"户号{cid}自{d}起用电有变化"]
    d = day.strftime("%-d %b")
    if rule == "sustained_drop":
        return [
            f"the home you rent out (account {cid}) has looked empty since {d}",
            f"account {cid} looks empty since {d}",
        ]
    return [
        f"the electricity use of the home you rent out (account {cid}) has changed markedly since {d}",
        f"account {cid}: use changed since {d}",
    ]


def _variants(facts: list[str], name: str, c: Contact, sig: str, zh: bool) -> list[str]:
    who = c.manager_phone or c.hotline
    if zh:
        mgr = f"客户经理{c.manager_name}{c.manager_phone}" if c.manager_phone else c.hotline
        greet = f"{name}您好，" if name else "您好，"
        rich, short = facts
        return [
            f"{sig}{greet}{rich}，请致电{mgr}联系供电公司。回TD退订",
            f"{sig}{rich}，请致电{who}。回TD退订",
            f"{sig}{short}，请致电{who}",
        ]
    rich, short = facts
    if c.manager_phone:
        contact = f"{c.manager_name} on {c.manager_phone}" if c.manager_name else c.manager_phone
    else:
        contact = c.hotline
    cap = rich[0].upper() + rich[1:]
    return [
        f"{sig}Dear {name}, {rich}. Please contact your utility: {contact}. Reply STOP to opt out",
        f"{sig}{cap}. Please call {who}. Reply STOP to opt out",
        f"{sig}{short[0].upper() + short[1:]}. Call {who}",
    ]


def render_landlord_sms(
    alert: Alert, landlord: Landlord, language: str, contact: Contact, signature: str, timezone: str
) -> SmsText:
    """The landlord's SMS in one segment where a variant fits (the shortest otherwise).

    >>> import datetime as dt
    >>> from meterwatch.contracts import CycleRef, Explanation, Observed
    >>> a = Alert(alert_id="a", customer_id="MAC000002", rule="sustained_drop",
    ...           cycle=CycleRef(start=dt.date(2025, 3, 1), end=dt.date(2025, 3, 31)),
    ...           observed=Observed(recent_daily_kwh=0.1, baseline_daily_kwh=8.6),
    ...           triggered_by=dt.datetime(2025, 3, 20, 1, tzinfo=dt.UTC), created_at=dt.datetime.now(dt.UTC),
    ...           explanation=Explanation(zh_CN="", en=""))
    >>> ll = Landlord(name="王先生", phone="+8613900139000")
    >>> t = render_landlord_sms(a, ll, "zh-CN", Contact("李娜", "13812345678", "95598"), "", "Asia/Shanghai")
    >>> t.text, t.segments
    ('您出租的房屋（户号MAC000002）自3月6日起用电显示可能已无人居住，请致电13812345678。回TD退订', 1)
    """
    zh = language != "en"
    facts = _facts(alert.rule, alert.customer_id, since_day(alert, timezone), zh)
    variants = _variants(facts, landlord.name, contact, signature, zh)
    for i, text in enumerate(variants):
        enc, units, segs = sms_segments(text)
        if segs == 1:
            return SmsText(text, enc, units, segs, i)
    i = min(range(len(variants)), key=lambda j: sms_segments(variants[j])[1])
    enc, units, segs = sms_segments(variants[i])
    return SmsText(variants[i], enc, units, segs, i)


def landlord_key(phone: str) -> str:
    """The landlord's id in Redis key names (the limit's counters): a digest, never the number.

    >>> landlord_key("+8613900139000") == landlord_key("+8613900139000") != landlord_key("+8613900139001")
    True
    """
    return hashlib.sha256(phone.encode()).hexdigest()[:20]


def wants_sms(alert: Alert, record: CustomerRecord | None, settings: Settings) -> Landlord | None:
    """The landlord to text about ``alert`` (its rule is in ``MW_LANDLORD_SMS_RULES``), else None."""
    landlord = landlord_of(record)
    if landlord is None or alert.rule not in settings.landlord_sms_rules:
        return None
    return landlord


def sms_nid(alert: Alert) -> str:
    """The landlord SMS of an alert: one per alert (a redelivered alert finds it recorded)."""
    return make_nid("sms", "landlord", alert.alert_id)


def timing(
    record: CustomerRecord, settings: Settings, now: dt.datetime
) -> tuple[Literal["queued", "deferred"], str, dt.datetime, str]:
    """(status, reason, due, detail) of a landlord SMS that may go out: now, or after quiet hours."""
    qs, qe = settings.quiet_hours_start, settings.quiet_hours_end
    if in_quiet_hours(now, record.timezone, qs, qe):
        due = next_allowed(now, record.timezone, qs, qe)
        return "deferred", "moderation.quiet_hours", due, f"until {iso(due)}"
    return "queued", "", now, "landlord of a rented home"
