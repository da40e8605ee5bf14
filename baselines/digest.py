"""The manager's daily digest: rank a day's manager-only alerts by what is at stake, fold the rest.

A manager receives every alert of their customers. Customer-facing alerts are pushed one by
one as before (the manager should know what the customer was just told). *Manager-only*
alerts (``customer_facing`` false: ``same_period_reached``, ``sustained_drop``, the second
alert of a cycle that moderation kept from the customer) are collected per manager and day
and ranked by the money at stake (``Alert.money`` when present), else the kWh at stake.

An **actionable item** is a manager-only alert that the day's digest puts among the first
``actionable_per_day`` eligible alerts of the ranking; eligible: its rule is not in
``fold_rules``, its kWh at stake reach ``min_excess_kwh`` (every alert has kWh, in any
currency) and, when it has money, its money at stake reaches ``min_money``. It is pushed to
the manager on its own. Every other manager-only alert
is **folded**: listed, ranked, in the digest (one push per manager and day), and still in
the inbox and the alert index. Each manager-only alert is in exactly one of the two lists.

>>> import datetime as dt
>>> a = sample_alert("a1", "sustained_drop", recent=1.0, baseline=9.0)
>>> b = sample_alert("b1", "same_period_reached", ctd=400.0, sp=300.0)
>>> d = build_digest("m1", dt.date(2024, 3, 2), [b, a], DigestPolicy(actionable_per_day=1))
>>> [(i.alert_id, i.rank, i.actionable, i.reason) for i in d.items]
[('a1', 1, True, 'actionable'), ('b1', 2, False, 'folded.rule')]
>>> d.actionable_count, d.folded_count
(1, 1)
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from meterwatch.contracts import Alert, Severity

#: rules whose stake is a shortfall (a home gone quiet or a meter gone wrong): the stake is its size
DROP_RULES = frozenset({"sustained_drop"})
#: the literal same-period rule: a listing, never a push of its own (decisions/0013)
DEFAULT_FOLD_RULES = ("same_period_reached",)

ItemReason = Literal["actionable", "folded.rule", "folded.below_threshold", "folded.daily_limit"]


class DigestPolicy(BaseModel):
    """How many manager-only alerts a manager gets pushed per day, and which (settings: MW_MANAGER_DIGEST_*).

    >>> p = DigestPolicy()
    >>> p.actionable_per_day, p.min_excess_kwh, p.fold_rules
    (3, 200.0, ('same_period_reached',))
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    actionable_per_day: int = Field(3, ge=0)  # the top of the ranking pushed on its own (0: none)
    min_excess_kwh: float = Field(200.0, ge=0)  # kWh at stake an alert needs to be pushed
    min_money: float = Field(0.0, ge=0)  # and money at stake, when it has money (the plan's currency)
    fold_rules: tuple[str, ...] = DEFAULT_FOLD_RULES  # always folded, whatever their stake


class Stake(BaseModel):
    """What an alert puts at stake: money (the plan's currency) when it has money, and kWh over the cycle."""

    model_config = ConfigDict(frozen=True)

    money: float | None = None
    currency: str | None = None
    excess_kwh: float = 0.0
    ratio: float | None = None


class DigestItem(BaseModel):
    """One manager-only alert in the digest: its place in the ranking and whether it is pushed."""

    alert_id: str
    customer_id: str
    rule: str
    severity: Severity
    cycle_start: dt.date
    rank: int = Field(ge=1)
    stake: Stake
    actionable: bool
    reason: ItemReason
    text_en: str = ""


class ManagerDigest(BaseModel):
    """The day's manager-only alerts of one manager, ranked (``items``: rank order, rank 1 first)."""

    manager_id: str
    day: dt.date
    policy: DigestPolicy
    items: list[DigestItem] = Field(default_factory=list)

    @property
    def actionable(self) -> list[DigestItem]:
        return [i for i in self.items if i.actionable]

    @property
    def folded(self) -> list[DigestItem]:
        return [i for i in self.items if not i.actionable]

    @property
    def actionable_count(self) -> int:
        return sum(1 for i in self.items if i.actionable)

    @property
    def folded_count(self) -> int:
        return len(self.items) - self.actionable_count


def manager_only(alert: Alert) -> bool:
    """Whether the alert goes to the manager only (the digest's alerts).

    >>> drop, surge = sample_alert("a", "sustained_drop"), sample_alert("b", "sudden_increase", cf=True)
    >>> manager_only(drop), manager_only(surge)
    (True, False)
    """
    return not alert.customer_facing


def _f(x: object) -> float | None:
    if x is None:
        return None
    v = float(str(x))
    return v if math.isfinite(v) else None


def stake(alert: Alert) -> Stake:
    """The money and kWh an alert puts at stake (never negative).

    Money: ``projected - same_period_at_current_prices`` (the change due to consumption),
    else ``extra_vs_same_period``, else ``projected - budget``. kWh: projected cycle minus
    the same period, else the daily excess (or shortfall, for a drop) over the cycle's days,
    else cycle-to-date minus the same period. A drop's stake is the size of the shortfall.

    >>> stake(sample_alert("a", "sudden_increase", recent=21.0, baseline=7.0)).excess_kwh
    420.0
    >>> stake(sample_alert("a", "sustained_drop", recent=1.0, baseline=9.0)).excess_kwh
    240.0
    >>> stake(sample_alert("a", "same_period_reached", ctd=400.0, sp=300.0)).excess_kwh
    100.0
    """
    drop = alert.rule in DROP_RULES
    o = alert.observed
    days = (alert.cycle.end - alert.cycle.start).days + 1
    if o.projected_cycle_kwh is not None and o.same_period_kwh is not None:
        kwh = o.projected_cycle_kwh - o.same_period_kwh
    elif o.recent_daily_kwh is not None and o.baseline_daily_kwh is not None:
        kwh = (o.recent_daily_kwh - o.baseline_daily_kwh) * days
    elif o.cycle_to_date_kwh is not None and o.same_period_kwh is not None:
        kwh = o.cycle_to_date_kwh - o.same_period_kwh
    else:
        kwh = 0.0
    kwh = abs(kwh) if drop else max(kwh, 0.0)
    money, currency = _money_stake(alert, drop)
    ratio = _f(o.ratio)
    return Stake(
        money=money,
        currency=currency,
        excess_kwh=round(kwh if math.isfinite(kwh) else 0.0, 3),
        ratio=ratio,
    )


def _money_stake(alert: Alert, drop: bool) -> tuple[float | None, str | None]:
    m = alert.money
    if m is None:
        return None, None
    proj = _f(m.projected)
    ref = _f(m.same_period_at_current_prices)
    if ref is None:
        ref = _f(m.same_period)
    if ref is None:
        ref = _f(m.budget)
    if proj is None or ref is None:
        return None, None
    v = proj - ref
    v = abs(v) if drop else max(v, 0.0)
    return round(v, 2), m.currency


def rank_key(s: Stake, alert_id: str) -> tuple[int, float, float, float, str]:
    """Sort key, most at stake first: alerts with money first (by money), then kWh, then ratio, then id.

    >>> sorted([rank_key(Stake(excess_kwh=5.0), "b"), rank_key(Stake(money=1.0, excess_kwh=1.0), "a")])[0][-1]
    'a'
    """
    return (0 if s.money is not None else 1, -(s.money or 0.0), -s.excess_kwh, -(s.ratio or 0.0), alert_id)


def _reason(rule: str, s: Stake, pushed: int, p: DigestPolicy) -> ItemReason:
    if rule in p.fold_rules:
        return "folded.rule"
    if s.excess_kwh < p.min_excess_kwh or (s.money is not None and s.money < p.min_money):
        return "folded.below_threshold"
    if pushed >= p.actionable_per_day:
        return "folded.daily_limit"
    return "actionable"


def build_digest(
    manager_id: str, day: dt.date, alerts: Iterable[Alert], policy: DigestPolicy
) -> ManagerDigest:
    """The day's digest of one manager: every manager-only alert once, ranked; the top ones actionable.

    An alert id seen twice counts once (a redelivered alert). A customer-facing alert is refused
    (it is pushed on its own, never digested).

    >>> import datetime as dt
    >>> xs = [sample_alert(f"a{k}", "sustained_drop", recent=1.0, baseline=2.0 + k) for k in range(4)]
    >>> p = DigestPolicy(actionable_per_day=2, min_excess_kwh=0)
    >>> d = build_digest("m1", dt.date(2024, 3, 2), xs + xs[:1], p)
    >>> [(i.alert_id, i.reason) for i in d.items]
    [('a3', 'actionable'), ('a2', 'actionable'), ('a1', 'folded.daily_limit'), ('a0', 'folded.daily_limit')]
    >>> cf = sample_alert("c", "sudden_increase", cf=True)
    >>> build_digest("m1", dt.date(2024, 3, 2), [cf], DigestPolicy())
    Traceback (most recent call last):
    ...
    ValueError: alert c is customer-facing: it is pushed on its own, not digested
    """
    uniq: dict[str, Alert] = {}
    for a in alerts:
        if not manager_only(a):
            raise ValueError(f"alert {a.alert_id} is customer-facing: it is pushed on its own, not digested")
        uniq.setdefault(a.alert_id, a)
    ranked = sorted(((stake(a), a) for a in uniq.values()), key=lambda sa: rank_key(sa[0], sa[1].alert_id))
    items: list[DigestItem] = []
    pushed = 0
    for rank, (s, a) in enumerate(ranked, start=1):
        why = _reason(a.rule, s, pushed, policy)
        pushed += why == "actionable"
        items.append(
            DigestItem(
                alert_id=a.alert_id,
                customer_id=a.customer_id,
                rule=a.rule,
                severity=a.severity,
                cycle_start=a.cycle.start,
                rank=rank,
                stake=s,
                actionable=why == "actionable",
                reason=why,
                text_en=a.explanation.en,
            )
        )
    return ManagerDigest(manager_id=manager_id, day=day, policy=policy, items=items)


def digest_day(at: dt.datetime, timezone: str = "UTC") -> dt.date:
    """The digest day an instant belongs to, in the digest's time zone.

    >>> import datetime as dt
    >>> t = dt.datetime(2024, 3, 1, 17, 0, tzinfo=dt.UTC)
    >>> digest_day(t), digest_day(t, "Asia/Shanghai")
    (datetime.date(2024, 3, 1), datetime.date(2024, 3, 2))
    """
    return at.astimezone(ZoneInfo(timezone)).date()


def day_end(day: dt.date, timezone: str = "UTC") -> dt.datetime:
    """The instant (UTC) the digest day ends: the next local midnight.

    >>> import datetime as dt
    >>> day_end(dt.date(2024, 3, 1), "Asia/Shanghai").isoformat()
    '2024-03-01T16:00:00+00:00'
    """
    nxt = day + dt.timedelta(days=1)
    return dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=ZoneInfo(timezone)).astimezone(dt.UTC)


def sample_alert(
    alert_id: str,
    rule: str,
    *,
    cf: bool = False,
    recent: float | None = None,
    baseline: float | None = None,
    ctd: float | None = None,
    sp: float | None = None,
    manager_id: str | None = "m1",
) -> Alert:
    """A small alert for the examples and tests (cycle of March 2024).

    >>> sample_alert("x", "sustained_drop").cycle.end
    datetime.date(2024, 3, 30)
    """
    t = dt.datetime(2024, 3, 2, 8, tzinfo=dt.UTC)
    return Alert.model_validate(
        {
            "alert_id": alert_id,
            "customer_id": f"c-{alert_id}",
            "rule": rule,
            "severity": "warning",
            "cycle": {"start": "2024-03-01", "end": "2024-03-30"},
            "observed": {
                "recent_daily_kwh": recent,
                "baseline_daily_kwh": baseline,
                "cycle_to_date_kwh": ctd,
                "same_period_kwh": sp,
            },
            "manager_id": manager_id,
            "triggered_by": t,
            "created_at": t,
            "explanation": {"zh-CN": "-", "en": f"{rule} {alert_id}"},
            "customer_facing": cf,
        }
    )
