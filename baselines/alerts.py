"""Alerts: what a rule found, its moderation, the alert it becomes, and its explanation texts.

A rule returns ``Finding`` values; ``fire`` records the firing on the profile
(``Profile.fired``: at most once per customer, rule and cycle; at most one
customer-facing alert per cycle, plus at most one escalation) and builds the
``meterwatch.contracts.Alert``.

Alert ids are deterministic: the first 32 hex digits of
``sha256(f"{customer_id}|{rule}|{cycle_start:%Y-%m-%d}")``; a replay produces
the same ids.

>>> import datetime as dt
>>> alert_id("c1", "sudden_increase", dt.date(2024, 1, 1))
'24b79d4551131564e6f64eaa8840b3e2'
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from baselines.profile import OpenCycle, Profile
from baselines.tariffs.fmt import format_amount
from meterwatch.contracts import (
    Alert,
    CycleRef,
    Explanation,
    Money,
    Observed,
    Reason,
    SegmentRef,
    Severity,
)

if TYPE_CHECKING:  # the rules import this module; the context is only a type here
    from baselines.rules.context import RuleContext

# keys of Profile.fired besides the rule names (the stored format: do not rename)
CUSTOMER_FACING_KEY = "_customer"  # cycle start of the customer-facing alert of the cycle
# the recent daily level (Wh) behind the first customer-facing alert of the cycle (CUSTOMER_FACING_KEY)
CUSTOMER_LEVEL_KEY = "_customer_wh"
ESCALATION = "sudden_increase_escalation"
_EMPTY_SEGMENT = SegmentRef()
# rules about an increase: money at stake may raise their severity (RulesConfig money.critical_extra)
INCREASE_RULES = frozenset(
    {"same_period_reached", "projected_over_same_period", "sudden_increase", ESCALATION, "tier_crossing"}
)

Numbers = dict[str, float | int | str | None]


@dataclass(slots=True)
class Finding:
    """What a rule found: enough to fire one alert.

    ``explain`` holds the figures the sentence quotes (see ``explain``);
    ``numbers`` the extra figures of the alert's reason, after those of
    ``observed``. ``escalation`` marks ``sudden_increase_escalation``, the one
    exception to one customer-facing alert per cycle.
    """

    rule: str
    cycle: OpenCycle
    severity: Severity
    customer_facing: bool
    observed: Observed
    explain: dict[str, float]
    numbers: Numbers
    escalation: bool = False
    money: Money | None = None
    solicited: bool = False


def alert_id(customer_id: str, rule: str, cycle_start: dt.date) -> str:
    """Deterministic alert id (customer, rule, cycle start).

    >>> import datetime as dt
    >>> alert_id("c1", "sudden_increase", dt.date(2024, 1, 1))
    '24b79d4551131564e6f64eaa8840b3e2'
    """
    raw = f"{customer_id}|{rule}|{cycle_start.isoformat()}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def fire(ctx: RuleContext, f: Finding) -> Alert:
    """Record the firing on ``ctx.profile`` (with its moderation) and build the alert.

    >>> import datetime as dt
    >>> from baselines.customer import CustomerConfig
    >>> from baselines.profile import OpenCycle
    >>> from baselines.rules.config import RulesConfig
    >>> from baselines.rules.context import RuleContext
    >>> p, c = Profile.new("c1"), OpenCycle(738886, 738917, 0.0, 0.0)
    >>> p.open_cycles.append(c)
    >>> ctx = RuleContext(p, RulesConfig(), RulesConfig().resolve("residential", None), CustomerConfig("c1"),
    ...                   None, 1704153600.0, None, 738886, 0)
    >>> f = Finding("sudden_increase", c, "warning", True, Observed(recent_daily_kwh=21.0),
    ...             {"recent": 21.0, "baseline": 7.0, "ratio": 3.0}, {"z": 5.0})
    >>> a = fire(ctx, f); a.customer_facing, a.cycle.start, p.fired["_customer_wh"]
    (True, datetime.date(2024, 1, 1), 21000)
    >>> fire(ctx, f).customer_facing   # the second customer-facing alert of a cycle is manager-only
    False
    """
    p = ctx.profile
    start = f.cycle.start
    p.fired[f.rule] = start
    customer_facing, moderation = _moderate(p, f)
    day0 = dt.date.fromordinal(start)
    trig = dt.datetime.fromtimestamp(ctx.ts, dt.UTC)
    money = f.money if f.money is not None else _money(ctx, f)
    severity, at_stake = _severity(ctx, f, money)
    text = explain(f.rule, dict(f.explain), money)
    numbers: Numbers = {k: v for k, v in f.observed.model_dump().items() if v is not None}
    numbers.update(f.numbers)
    cust = ctx.customer
    return Alert.model_validate(
        {
            "alert_id": alert_id(p.customer_id, f.rule, day0),
            "customer_id": p.customer_id,
            "meter_ids": list(cust.meter_ids),
            "rule": f.rule,
            "severity": severity,
            "cycle": CycleRef(start=day0, end=dt.date.fromordinal(f.cycle.end - 1)),
            "observed": f.observed,
            "segment": ctx.segment if ctx.segment is not None else _EMPTY_SEGMENT,
            "manager_id": cust.manager_id,
            "triggered_by": trig,
            "created_at": ctx.clock() if ctx.clock is not None else trig,
            "explanation": Explanation(zh_CN=text["zh-CN"], en=text["en"]),
            "customer_facing": customer_facing,
            "reasons": [
                Reason(code=f"baselines.rules.{f.rule}", message=text["en"], numbers=numbers),
                *moderation,
                *at_stake,
            ],
            "money": money,
            "solicited": f.solicited,
        }
    )


def _money(ctx: RuleContext, f: Finding) -> Money | None:
    """The alert's bill figures, as of the evaluation's day (None without a catalogue or a plan)."""
    if ctx.tariffs is None:
        return None
    from baselines.billing import alert_money  # billing imports the statistics, which import the rules

    p = ctx.profile
    for i, c in enumerate(p.open_cycles):
        if c.start == f.cycle.start:
            through = min(ctx.as_of, c.end - 1)
            return alert_money(p, ctx.customer, ctx.tariffs, i, through, ctx.config.min_day_coverage)
    return None


_RAISED: dict[Severity, Severity] = {"info": "warning", "warning": "critical", "critical": "critical"}


def _severity(ctx: RuleContext, f: Finding, money: Money | None) -> tuple[Severity, list[Reason]]:
    """The finding's severity, one step up when the money at stake is large (see MoneyRules)."""
    if money is None or f.severity == "critical" or f.rule not in INCREASE_RULES:
        return f.severity, []
    if money.projected is None or money.same_period_at_current_prices is None:
        return f.severity, []
    limit = ctx.rules.money.critical_extra.get(money.currency)
    extra = money.projected - money.same_period_at_current_prices
    if limit is None or extra < limit:
        return f.severity, []
    return _RAISED[f.severity], [
        Reason(
            code="baselines.money.at_stake",
            message="the projected bill is far above last year's at today's prices",
            numbers={"extra": float(extra), "critical_extra": float(limit), "currency": money.currency},
        )
    ]


def _moderate(p: Profile, f: Finding) -> tuple[bool, list[Reason]]:
    """Whether the alert still goes to the customer, and the moderation reasons (updates ``p.fired``)."""
    start = f.cycle.start
    if f.solicited:  # asked for: outside the one-unsolicited-alert-per-cycle moderation
        return f.customer_facing, [
            Reason(code="baselines.solicited.budget", message="the customer asked for this alert (budget)")
        ]
    if f.escalation:
        # the one exception to one customer-facing alert per cycle: at most one escalation
        return f.customer_facing, [
            Reason(
                code="baselines.moderation.escalation",
                message="a new excursion clearly above the level of this cycle's earlier alert",
                numbers={"previous_alert_daily_kwh": f.numbers.get("previous_alert_daily_kwh")},
            )
        ]
    if not f.customer_facing:
        return False, []
    if p.fired.get(CUSTOMER_FACING_KEY) == start:
        # moderation: at most one customer-facing alert per customer and cycle
        return False, [
            Reason(
                code="baselines.moderation.one_customer_alert_per_cycle",
                message="the customer was already alerted this cycle; manager only",
            )
        ]
    p.fired[CUSTOMER_FACING_KEY] = start
    if f.observed.recent_daily_kwh is not None:
        p.fired[CUSTOMER_LEVEL_KEY] = round(f.observed.recent_daily_kwh * 1000)
    else:
        p.fired.pop(CUSTOMER_LEVEL_KEY, None)
    return True, []


Lang = Literal["zh-CN", "en"]


def explain(rule: str, n: dict[str, float | None], money: Money | None = None) -> dict[Lang, str]:
    """One sentence per language that a manager can read aloud; with ``money``, the bill and tier follow.

    >>> explain("sudden_increase", {"recent": 21.0, "baseline": 7.0, "ratio": 3.0})["en"]
    'Daily use over the last days was 21.0 kWh, 3.0 times this customer’s usual 7.0 kWh per day.'
    >>> from decimal import Decimal
    >>> m = Money(currency="CNY", to_date=Decimal("52.3"), projected=Decimal("160.2"),
    ...           same_period=Decimal("48.1"))
    >>> explain("sudden_increase", {"recent": 21.0, "baseline": 7.0, "ratio": 3.0}, m)["zh-CN"][-48:]
    '的 3.0 倍。本期电费至今52.30元，按当前用量预计160.20元（去年同期48.10元）。'
    """
    text = _explain_kwh(rule, n, money)
    if money is None or rule in MONEY_RULES:
        return text
    extra = money_sentence(money)
    return {"en": f"{text['en']} {extra['en']}", "zh-CN": text["zh-CN"] + extra["zh-CN"]}


# rules whose sentence is about money already (no money sentence appended)
MONEY_RULES = frozenset({"tier_crossing", "budget_projected", "budget_reached"})


def _amount(money: Money, x: Decimal | None, lang: Lang) -> str:
    return "?" if x is None else format_amount(x, money.currency, lang)


def _day(d: dt.date | None, lang: Lang) -> str:
    if d is None:
        return "?"
    return f"{d.month}月{d.day}日" if lang == "zh-CN" else d.strftime("%-d %b")


def money_sentence(money: Money) -> dict[Lang, str]:
    """The manager's money sentence: bill so far, projection, last year's cycle, the tier.

    >>> import datetime as dt
    >>> from decimal import Decimal
    >>> from meterwatch.contracts import MoneyTier
    >>> tier = MoneyTier(index=1, count=3, period="year", period_kwh=2600.0, next_at_kwh=2760.0,
    ...                  next_on=dt.date(2024, 7, 17), price_step=Decimal("0.05"))
    >>> m = Money(currency="GBP", to_date=Decimal("12.5"), tier=tier)
    >>> money_sentence(m)["en"]
    'Bill so far £12.50. Tier 1 of 3 (2,600 kWh this tariff year); tier 2 from 2,760 kWh, around 17 Jul.'
    """
    out: dict[Lang, str] = {}
    for lang in ("en", "zh-CN"):
        a = functools.partial(_amount, money, lang=lang)
        if lang == "en":
            text = f"Bill so far {a(money.to_date)}"
            if money.projected is not None:
                text += f", projected {a(money.projected)}"
            if money.same_period is not None:
                text += f" ({a(money.same_period)} in the same cycle last year)"
            text += "."
        else:
            text = f"本期电费至今{a(money.to_date)}"
            if money.projected is not None:
                text += f"，按当前用量预计{a(money.projected)}"
            if money.same_period is not None:
                text += f"（去年同期{a(money.same_period)}）"
            text += "。"
        out[lang] = text + _tier_sentence(money, lang)
    return out


def _tier_sentence(money: Money, lang: Lang) -> str:
    t = money.tier
    if t is None:
        return ""
    zh = lang == "zh-CN"
    period = (
        ("本年度" if t.period == "year" else "本期")
        if zh
        else ("this tariff year" if t.period == "year" else "this cycle")
    )
    if zh:
        text = f"目前处于第{t.index}档（共{t.count}档，{period}已用{t.period_kwh:,.0f}千瓦时）"
        if t.next_at_kwh is not None:
            text += f"，用电达{t.next_at_kwh:,.0f}千瓦时进入第{t.index + 1}档"
            if t.next_on is not None:
                text += f"（约{_day(t.next_on, lang)}）"
        return text + "。"
    text = f" Tier {t.index} of {t.count} ({t.period_kwh:,.0f} kWh {period})"
    if t.next_at_kwh is not None:
        text += f"; tier {t.index + 1} from {t.next_at_kwh:,.0f} kWh"
        if t.next_on is not None:
            text += f", around {_day(t.next_on, lang)}"
    return text + "."


def _explain_kwh(rule: str, n: dict[str, float | None], money: Money | None) -> dict[Lang, str]:
    def f(key: str) -> str:
        v = n.get(key)
        return "?" if v is None else f"{v:.1f}"

    if rule == "same_period_reached":
        return {
            "en": f"Usage so far this billing cycle ({f('ctd')} kWh) has already reached the whole "
            f"same cycle last year ({f('sp')} kWh), with {f('days_left')} days still to go.",
            "zh-CN": f"本抄表周期至今用电 {f('ctd')} 千瓦时，已达到去年同期整个周期的用电量"
            f"（{f('sp')} 千瓦时），距周期结束还有 {f('days_left')} 天。",
        }
    if rule == "projected_over_same_period":
        return {
            "en": f"At the current pace this cycle will reach about {f('projected')} kWh, "
            f"{f('ratio')} times the {f('sp')} kWh of the same cycle last year.",
            "zh-CN": f"按目前的用电速度，本周期预计用电约 {f('projected')} 千瓦时，"
            f"是去年同期 {f('sp')} 千瓦时的 {f('ratio')} 倍。",
        }
    if rule == "sudden_increase":
        return {
            "en": f"Daily use over the last days was {f('recent')} kWh, {f('ratio')} times "
            f"this customer’s usual {f('baseline')} kWh per day.",
            "zh-CN": f"近几天日均用电 {f('recent')} 千瓦时，是该户平时每天 {f('baseline')} 千瓦时的 "
            f"{f('ratio')} 倍。",
        }
    if rule == "sudden_increase_escalation":
        return {
            "en": f"Daily use has risen again, to {f('recent')} kWh over the last days: {f('ratio')} times "
            f"this customer’s usual {f('baseline')} kWh per day and well above the {f('previous')} kWh "
            "of the earlier alert this cycle.",
            "zh-CN": f"近几天日均用电再次上升至 {f('recent')} 千瓦时，"
            f"是该户平时每天 {f('baseline')} 千瓦时的 {f('ratio')} 倍，"
            f"明显高于本周期上次提醒时的 {f('previous')} 千瓦时。",
        }
    if rule == "sustained_drop":
        return {
            "en": f"For {f('days')} days daily use has stayed around {f('recent')} kWh, far below "
            f"the usual {f('baseline')} kWh: the home may be empty or the meter faulty.",
            "zh-CN": f"连续 {f('days')} 天日用电量仅约 {f('recent')} 千瓦时，远低于平时的 "
            f"{f('baseline')} 千瓦时，可能无人居住或电表故障。",
        }
    if rule in MONEY_RULES:
        return _explain_money(rule, n, money)
    raise ValueError(f"unknown rule {rule!r}")


def _explain_money(rule: str, n: dict[str, float | None], money: Money | None) -> dict[Lang, str]:
    """The sentences of the money rules (they need ``money``)."""
    if money is None:
        raise ValueError(f"rule {rule!r} needs the alert's money")
    zh: Lang = "zh-CN"
    if rule == "tier_crossing":
        return _explain_tier(n, money)
    en = functools.partial(_amount, money, lang="en")
    cn = functools.partial(_amount, money, lang=zh)
    b = money.budget
    if rule == "budget_projected":
        return {
            "en": f"At the current pace this cycle's bill will be about {en(money.projected)}, "
            f"reaching the customer's budget of {en(b)} (so far {en(money.to_date)}).",
            "zh-CN": f"按目前用电速度，本期电费预计约{cn(money.projected)}，"
            f"将达到客户设定的预算{cn(b)}（至今{cn(money.to_date)}）。",
        }
    return {
        "en": f"This cycle's bill so far, {en(money.to_date)}, has reached the customer's budget of {en(b)}.",
        "zh-CN": f"本期电费至今{cn(money.to_date)}，已达到客户设定的预算{cn(b)}。",
    }


def _explain_tier(n: dict[str, float | None], money: Money) -> dict[Lang, str]:
    zh: Lang = "zh-CN"
    en = functools.partial(_amount, money, lang="en")
    cn = functools.partial(_amount, money, lang=zh)
    t = money.tier
    on = None if n.get("on") is None else dt.date.fromordinal(int(n["on"] or 0))
    to = int(n.get("to_tier") or 0)
    at = n.get("at_kwh") or 0.0
    step = Decimal(str(n.get("price_step") or 0))
    year = t is None or t.period == "year"
    return {
        "en": f"At the current pace this customer passes into tier {to} around {_day(on, 'en')}, "
        f"at {at:,.0f} kWh {'this tariff year' if year else 'this cycle'}: "
        f"+{format_amount(step, money.currency, 'en', digits=4)} per kWh from then on. "
        f"Bill so far {en(money.to_date)}, projected {en(money.projected)}.",
        "zh-CN": f"按目前用电速度，预计{_day(on, zh)}前后{'本年度' if year else '本期'}"
        f"用电达{at:,.0f}千瓦时，"
        f"进入第{to}档电价，每千瓦时加价{format_amount(step, money.currency, zh, digits=4)}。"
        f"本期电费至今{cn(money.to_date)}，预计{cn(money.projected)}。",
    }
