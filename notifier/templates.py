"""SMS and push texts in zh-CN and en.

An SMS should fit one segment where it can: 70 UCS-2 characters (any Chinese
text) or 160 GSM-7 characters. Each template has variants from the richest to
the shortest; the first variant that fits one segment is used, else the
shortest one (which then goes out as a multi-part SMS).

An alert with ``money`` (the customer has a tariff plan) quotes money first:
"本期已用电约52元，按当前用量预计约160元，去年同期约48元" (whole units, "about"),
then, if it still fits, the kWh fact of the rule; the facts shrink (kWh fact, then
last year's figure, then the projection) before the contact line does. The
money rules have their own texts: ``tier_crossing`` (the day and the price
step of the next tier) and the solicited ``budget_*`` (the budget).

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

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from baselines.tariffs.fmt import format_amount, money_clause
from meterwatch.contracts import Alert, Money

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


Wrap = Callable[[str, str, "Contact", str], list[str]]


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


def _yuan(m: Money, x: Decimal | None, lang: str) -> str:
    return "?" if x is None else format_amount(x, m.currency, lang, whole=True)


def _to_tier(a: Alert) -> int:
    """The tier a ``tier_crossing`` alert announces (its reason's ``to_tier``, else the next one)."""
    for r in a.reasons:
        v = r.numbers.get("to_tier")
        if isinstance(v, int | float):
            return int(v)
    return (a.money.tier.index + 1) if a.money is not None and a.money.tier is not None else 0


def _money_facts(a: Alert, lang: str) -> list[str]:
    """Money-first facts, richest first (empty without money)."""
    m = a.money
    if m is None:
        return []
    zh = lang != "en"
    if a.rule == "tier_crossing" and m.tier is not None and m.tier.next_on is not None:
        return _tier_facts(a, m, zh)
    if a.rule in ("budget_projected", "budget_reached"):
        return _budget_facts(a, m, zh)
    full = money_clause(m, "zh-CN" if zh else "en")
    no_year = money_clause(m.model_copy(update={"same_period": None}), "zh-CN" if zh else "en")
    only = money_clause(
        m.model_copy(update={"same_period": None, "projected": None}), "zh-CN" if zh else "en"
    )
    kwh = _facts_zh(a) if zh else _facts_en(a)
    sep = "；" if zh else "; "
    return list(dict.fromkeys([full + sep + kwh, full, no_year, only]))


def _tier_facts(a: Alert, m: Money, zh: bool) -> list[str]:
    t = m.tier
    assert t is not None and t.next_on is not None
    on: dt.date = t.next_on
    to = _to_tier(a)
    step = (
        "?"
        if t.price_step is None
        else format_amount(t.price_step, m.currency, "zh-CN" if zh else "en", digits=4)
    )
    if zh:
        day = f"{on.month}月{on.day}日"
        td = _yuan(m, m.to_date, "zh-CN")
        return [
            f"本期已用电约{td}，按当前用量预计{day}起进入第{to}档电价，每度加价{step}",
            f"本期已用电约{td}，预计{day}起进入第{to}档电价，每度加{step}",
            f"预计{day}起进入第{to}档电价，每度加{step}",
        ]
    day = on.strftime("%-d %b")
    td = _yuan(m, m.to_date, "en")
    return [
        f"so far this cycle about {td}; at this pace you enter price tier {to} on {day}, "
        f"+{step} per kWh from then on",
        f"about {td} so far; from {day} price tier {to}, +{step}/kWh",
    ]


def _budget_facts(a: Alert, m: Money, zh: bool) -> list[str]:
    lang = "zh-CN" if zh else "en"
    td, proj, b = _yuan(m, m.to_date, lang), _yuan(m, m.projected, lang), _yuan(m, m.budget, lang)
    if a.rule == "budget_reached":
        if zh:
            return [f"本期电费已达约{td}，达到您设定的预算{b}", f"本期电费约{td}，已达预算{b}"]
        return [f"your bill this cycle has reached about {td}, your budget of {b}", f"bill {td}, budget {b}"]
    if zh:
        return [
            f"按当前用量本期电费预计约{proj}，将达到您设定的预算{b}（已用约{td}）",
            f"本期电费预计约{proj}，将达到预算{b}",
        ]
    return [
        f"at this pace your bill this cycle will be about {proj}, reaching your budget of {b} (so far {td})",
        f"bill heading for {proj}, budget {b}",
    ]


def _variants(facts: list[str], wrap: Wrap, name: str, c: Contact, sig: str) -> list[str]:
    """Every text, in the order tried: the manager's number before the hotline, then the richest
    facts first, then the richest wrapping (greeting, opt-out) first."""
    wrapped = [wrap(f, name, c, sig) for f in facts]
    split = [(w[:4], w[4:]) if c.manager_phone else ([], w) for w in wrapped]
    return [t for mgr, _ in split for t in mgr] + [t for _, hot in split for t in hot]


def _variants_zh(a: Alert, name: str, c: Contact, sig: str) -> list[str]:
    return _variants(_money_facts(a, "zh-CN") or [_facts_zh(a)], _wrap_zh, name, c, sig)


def _wrap_zh(facts: str, name: str, c: Contact, sig: str) -> list[str]:
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
    return _variants(_money_facts(a, "en") or [_facts_en(a)], _wrap_en, name, c, sig)


def _wrap_en(facts: str, name: str, c: Contact, sig: str) -> list[str]:
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


def budget_reply_text(language: str, amount: Decimal | None, currency: str, signature: str = "") -> str:
    """The SMS that confirms a budget set (or removed, ``amount`` None) by an SMS reply.

    >>> budget_reply_text("zh-CN", Decimal("200"), "CNY")
    '已为您设置每期电费预算200元，电费预计或已达到预算时将短信提醒您。回复"预算0"取消'
    >>> budget_reply_text("en", None, "GBP", "[Power] ")
    '[Power] Your bill budget is removed. Reply BUDGET 120 to set one'
    """
    if language == "en":
        if amount is None:
            return f"{signature}Your bill budget is removed. Reply BUDGET 120 to set one"
        b = format_amount(amount, currency, "en", whole=amount == amount.to_integral_value())
        return (
            f"{signature}Your budget of {b} per billing cycle is set: we will text you when your bill "
            "is heading for it or reaches it. Reply BUDGET 0 to remove it"
        )
    if amount is None:
        return f'{signature}已为您取消电费预算提醒。回复"预算"加金额（如"预算200"）可重新设置'
    b = format_amount(amount, currency, "zh-CN", whole=amount == amount.to_integral_value())
    return f'{signature}已为您设置每期电费预算{b}，电费预计或已达到预算时将短信提醒您。回复"预算0"取消'


def budget_refused_text(language: str, reason: str, signature: str = "") -> str:
    """The SMS that answers a budget reply that could not be applied (``reason``: no_plan | unknown)."""
    if language == "en":
        if reason == "no_plan":
            return f"{signature}A budget needs your tariff on file; please call us to set it up"
        return f"{signature}We could not find your account for this number; please call us"
    if reason == "no_plan":
        return f"{signature}设置电费预算需要您的电价信息，请致电客户经理或95598办理"
    return f"{signature}未找到与本号码关联的用电户，请致电95598"
