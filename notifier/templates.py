"""SMS and push texts in zh-CN and en.

An SMS should fit one segment where it can: 70 UCS-2 characters (any Chinese
text) or 160 GSM-7 characters. Each template has variants from the richest to
the shortest; the first variant that fits one segment is used, else the
shortest one (which then goes out as a multi-part SMS).

>>> sms_segments("hello")
('gsm7', 5, 1)
>>> sms_segments("您好")
('ucs2', 2, 1)
>>> sms_segments("x" * 161)[2]
2
>>> fmt_kwh(312.44), fmt_kwh(7.26), fmt_kwh(None)
('312', '7.3', '?')
"""

from __future__ import annotations

from dataclasses import dataclass

from meterwatch.contracts import Alert

_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = set("^{}\\[~]|€")


def sms_segments(text: str) -> tuple[str, int, int]:
    """(encoding, units, segments) of an SMS text.

    GSM-7: 160 septets in one segment, 153 per part when concatenated
    (extension characters count twice). UCS-2: 70 code units, 67 per part.
    """
    if all(c in _GSM7_BASIC or c in _GSM7_EXT for c in text):
        units = sum(2 if c in _GSM7_EXT else 1 for c in text)
        single, multi, enc = 160, 153, "gsm7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, enc = 70, 67, "ucs2"
    segments = 1 if units <= single else -(-units // multi)
    return enc, units, segments


def fmt_kwh(v: float | None) -> str:
    """A kWh figure as short as it can honestly be."""
    if v is None:
        return "?"
    return f"{v:.0f}" if abs(v) >= 10 else f"{v:.1f}"


def fmt_ratio(v: float | None) -> str:
    return "?" if v is None else f"{v:.1f}"


@dataclass(frozen=True)
class Contact:
    """Whom the customer should call: the account manager, else the hotline."""

    manager_name: str
    manager_phone: str
    hotline: str


@dataclass(frozen=True)
class SmsText:
    text: str
    encoding: str
    units: int
    segments: int
    variant: int


def _facts_zh(a: Alert) -> str:
    o = a.observed
    ctd, sp = fmt_kwh(o.cycle_to_date_kwh), fmt_kwh(o.same_period_kwh)
    if a.rule == "same_period_reached":
        return f"本期已用电{ctd}度，已达去年同期全期{sp}度"
    if a.rule == "projected_over_same_period":
        return f"本期已用电{ctd}度，预计全期{fmt_kwh(o.projected_cycle_kwh)}度，去年同期{sp}度"
    if a.rule in ("sudden_increase", "sudden_increase_escalation"):
        return f"近日日均用电{fmt_kwh(o.recent_daily_kwh)}度，约为平时{fmt_ratio(o.ratio)}倍，本期已用{ctd}度"
    if a.rule == "sustained_drop":
        return f"近期用电明显偏低，日均{fmt_kwh(o.recent_daily_kwh)}度，本期已用{ctd}度"
    if o.same_period_kwh is not None:
        return f"本期已用电{ctd}度，去年同期{sp}度"
    return f"本期已用电{ctd}度"


def _facts_en(a: Alert) -> str:
    o = a.observed
    ctd, sp = fmt_kwh(o.cycle_to_date_kwh), fmt_kwh(o.same_period_kwh)
    if a.rule == "same_period_reached":
        return f"you have used {ctd} kWh this billing cycle, already the {sp} kWh of the same cycle last year"
    if a.rule == "projected_over_same_period":
        return (
            f"you have used {ctd} kWh this cycle, on course for {fmt_kwh(o.projected_cycle_kwh)} kWh "
            f"vs {sp} kWh in the same cycle last year"
        )
    if a.rule in ("sudden_increase", "sudden_increase_escalation"):
        return (
            f"your use is {fmt_kwh(o.recent_daily_kwh)} kWh/day, {fmt_ratio(o.ratio)}x your usual; "
            f"{ctd} kWh this cycle"
        )
    if a.rule == "sustained_drop":
        return (
            f"your use has been unusually low ({fmt_kwh(o.recent_daily_kwh)} kWh/day); {ctd} kWh this cycle"
        )
    if o.same_period_kwh is not None:
        return f"you have used {ctd} kWh this cycle ({sp} kWh in the same cycle last year)"
    return f"you have used {ctd} kWh this cycle"


def _variants_zh(a: Alert, name: str, c: Contact, sig: str) -> list[str]:
    facts = _facts_zh(a)
    greet = f"{name}您好，" if name else "您好，"
    mgr = f"客户经理{c.manager_name}{c.manager_phone}" if c.manager_name else ""
    out: list[str] = []
    if c.manager_phone:
        out += [
            f"{sig}{greet}{facts}。如有疑问请致电{mgr}。回TD退订",
            f"{sig}{facts}。如有疑问请致电{mgr}。回TD退订",
            f"{sig}{facts}。疑问请致电{mgr}",
            f"{sig}{facts}。请致电客户经理{c.manager_phone}",
        ]
    out += [
        f"{sig}{greet}{facts}。如有疑问请致电{c.hotline}。回TD退订",
        f"{sig}{facts}。疑问请致电{c.hotline}",
    ]
    return out


def _variants_en(a: Alert, name: str, c: Contact, sig: str) -> list[str]:
    facts = _facts_en(a)
    cap = facts[0].upper() + facts[1:]
    hi = f"Dear {name}, {facts}." if name else f"{cap}."
    out: list[str] = []
    if c.manager_phone:
        who = f"{c.manager_name} on {c.manager_phone}" if c.manager_name else c.manager_phone
        out += [
            f"{sig}{hi} Questions? Call {who}. Reply STOP to opt out",
            f"{sig}{cap}. Questions? Call {who}. Reply STOP to opt out",
            f"{sig}{cap}. Questions? Call {who}",
            f"{sig}{cap}. Call {c.manager_phone}",
        ]
    out += [
        f"{sig}{hi} Questions? Call {c.hotline}. Reply STOP to opt out",
        f"{sig}{cap}. Call {c.hotline}",
    ]
    return out


def render_sms(
    alert: Alert, language: str, customer_name: str, contact: Contact, signature: str = ""
) -> SmsText:
    """The SMS for one alert, in one segment where any variant fits."""
    if language == "en":
        variants = _variants_en(alert, customer_name.strip(), contact, signature)
    else:
        variants = _variants_zh(alert, customer_name.strip(), contact, signature)
    for i, text in enumerate(variants):
        enc, units, segs = sms_segments(text)
        if segs == 1:
            return SmsText(text, enc, units, segs, i)
    shortest = min(range(len(variants)), key=lambda i: sms_segments(variants[i])[1])
    enc, units, segs = sms_segments(variants[shortest])
    return SmsText(variants[shortest], enc, units, segs, shortest)


def push_title(alert: Alert) -> str:
    """A one-line title for the manager's push."""
    return f"[{alert.severity}] {alert.rule} · {alert.customer_id}"


def digest_text(manager_id: str, count: int, customers: list[str]) -> dict[str, str]:
    shown = ", ".join(customers[:10]) + (" …" if len(customers) > 10 else "")
    return {
        "zh-CN": f"过去一小时内您有{count}条用电预警（客户：{shown}），请在收件箱中查看。",
        "en": f"{count} more consumption alerts in the last hour (customers: {shown}); see your inbox.",
    }


def escalation_text(customer_id: str, reason: str, attempts: int) -> dict[str, str]:
    return {
        "zh-CN": f"发给客户{customer_id}的短信未能送达（{reason}，已尝试{attempts}次），请电话联系客户。",
        "en": f"The SMS to customer {customer_id} could not be delivered ({reason}, {attempts} attempts); "
        "please call the customer.",
    }
