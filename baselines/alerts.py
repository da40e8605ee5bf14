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
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from baselines.profile import OpenCycle, Profile
from meterwatch.contracts import Alert, CycleRef, Explanation, Observed, Reason, SegmentRef, Severity

if TYPE_CHECKING:  # the rules import this module; the context is only a type here
    from baselines.rules.context import RuleContext

# keys of Profile.fired besides the rule names (the stored format: do not rename)
CUSTOMER_FACING_KEY = "_customer"  # cycle start of the customer-facing alert of the cycle
# the recent daily level (Wh) behind the first customer-facing alert of the cycle (CUSTOMER_FACING_KEY)
CUSTOMER_LEVEL_KEY = "_customer_wh"
ESCALATION = "sudden_increase_escalation"
_EMPTY_SEGMENT = SegmentRef()

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
    text = explain(f.rule, dict(f.explain))
    numbers: Numbers = {k: v for k, v in f.observed.model_dump().items() if v is not None}
    numbers.update(f.numbers)
    cust = ctx.customer
    return Alert.model_validate(
        {
            "alert_id": alert_id(p.customer_id, f.rule, day0),
            "customer_id": p.customer_id,
            "meter_ids": list(cust.meter_ids),
            "rule": f.rule,
            "severity": f.severity,
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
            ],
        }
    )


def _moderate(p: Profile, f: Finding) -> tuple[bool, list[Reason]]:
    """Whether the alert still goes to the customer, and the moderation reasons (updates ``p.fired``)."""
    start = f.cycle.start
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


def explain(rule: str, n: dict[str, float | None]) -> dict[Lang, str]:
    """One sentence per language that a manager can read aloud.

    >>> explain("sudden_increase", {"recent": 21.0, "baseline": 7.0, "ratio": 3.0})["en"]
    'Daily use over the last days was 21.0 kWh, 3.0 times this customer’s usual 7.0 kWh per day.'
    """

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
    raise ValueError(f"unknown rule {rule!r}")
