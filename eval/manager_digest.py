"""Manager items per 100 customer-cycles, before and after the daily digest (issue #15 item 5).

The London households have no account manager: ``assign_managers`` gives every
``per_manager`` of them (in a fixed hash order) one manager. A manager receives every
alert of their customers. **Before** the digest, each alert was one push: manager items =
all alerts. **After**, a manager's *actionable items* are the customer-facing alerts (still
pushed one by one, unchanged) plus the manager-only alerts that the day's digest
(``baselines.digest.build_digest``, grouped by manager and the UTC day of
``triggered_by``) marks actionable; every other manager-only alert is folded into that
day's digest. The digest pushes themselves (at most one per manager and day) are counted
apart, as ``digests``.

>>> from baselines.digest import DigestPolicy, sample_alert
>>> xs = [sample_alert(f"a{k}", "sustained_drop", recent=1.0, baseline=2.0 + k) for k in range(3)]
>>> xs.append(sample_alert("s", "same_period_reached", ctd=400.0, sp=300.0))
>>> xs.append(sample_alert("c", "sudden_increase", cf=True, recent=20.0, baseline=5.0))
>>> t = tally(xs, {a.customer_id: "m1" for a in xs}, DigestPolicy(actionable_per_day=1, min_excess_kwh=0))
>>> t["before"], t["customer_facing"], t["actionable"], t["folded"], t["digests"], t["max_actionable_per_day"]
(5, 1, 1, 3, 1, 1)
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from baselines.digest import DigestPolicy, build_digest, digest_day, manager_only
from meterwatch.contracts import Alert

#: the policies screened in every run ("(default)": the notifier's default, DigestPolicy())
NO_CAP = 10**9
SCREEN: tuple[tuple[str, DigestPolicy], ...] = (
    ("no digest (before)", DigestPolicy(actionable_per_day=NO_CAP, fold_rules=())),
    ("same_period_reached folded, the rest pushed", DigestPolicy(actionable_per_day=NO_CAP)),
    ("top 3 per manager-day", DigestPolicy(actionable_per_day=3)),
    ("top 2 per manager-day", DigestPolicy(actionable_per_day=2)),
    ("top 1 per manager-day", DigestPolicy(actionable_per_day=1)),
    (">= 150 kWh at stake, no cap", DigestPolicy(actionable_per_day=NO_CAP, min_excess_kwh=150.0)),
    (">= 200 kWh at stake, no cap", DigestPolicy(actionable_per_day=NO_CAP, min_excess_kwh=200.0)),
    (">= 300 kWh at stake, no cap", DigestPolicy(actionable_per_day=NO_CAP, min_excess_kwh=300.0)),
    ("top 2, >= 100 kWh at stake", DigestPolicy(actionable_per_day=2, min_excess_kwh=100.0)),
    ("top 2, >= 200 kWh at stake", DigestPolicy(actionable_per_day=2, min_excess_kwh=200.0)),
    ("top 3, >= 200 kWh at stake (default)", DigestPolicy()),
    ("top 3, >= 300 kWh at stake", DigestPolicy(actionable_per_day=3, min_excess_kwh=300.0)),
)
#: a second, smaller manager size screened in the same run (the cap binds less often)
SMALL_MANAGER = 300
KEYS = ("before", "customer_facing", "manager_only", "actionable", "folded", "digests", "manager_days")


SMALL_SUFFIX = f" @{SMALL_MANAGER}"


def assign_managers(customer_ids: Iterable[str], per_manager: int) -> dict[str, str]:
    """One manager per ``per_manager`` customers, in the order of sha256(customer id).

    >>> m = assign_managers([f"c{i}" for i in range(5)], 2)
    >>> sorted(set(m.values())), sorted(list(m.values()).count(x) for x in set(m.values()))
    (['m0', 'm1', 'm2'], [1, 2, 2])
    """
    order = sorted(set(customer_ids), key=lambda c: hashlib.sha256(c.encode()).hexdigest())
    return {c: f"m{i // per_manager}" for i, c in enumerate(order)}


def tally(alerts: Iterable[Alert], managers: dict[str, str], policy: DigestPolicy) -> dict[str, int]:
    """Manager items of one run under ``policy`` (see the module docstring); checks nothing is lost."""
    out = dict.fromkeys((*KEYS, "max_actionable_per_day"), 0)
    days: dict[tuple[str, Any], list[Alert]] = defaultdict(list)
    for a in alerts:
        out["before"] += 1
        if not manager_only(a):
            out["customer_facing"] += 1
            continue
        out["manager_only"] += 1
        days[(managers.get(a.customer_id, "unassigned"), digest_day(a.triggered_by))].append(a)
    for (mgr, day), xs in days.items():
        d = build_digest(mgr, day, xs, policy)
        if len(d.items) != len({a.alert_id for a in xs}):
            raise AssertionError(f"digest of {mgr} on {day} lost alerts")
        out["actionable"] += d.actionable_count
        out["folded"] += d.folded_count
        out["digests"] += d.folded_count > 0
        out["manager_days"] += 1
        out["max_actionable_per_day"] = max(out["max_actionable_per_day"], d.actionable_count)
    if out["actionable"] + out["folded"] != out["manager_only"]:
        raise AssertionError("manager-only alerts neither pushed nor folded")
    return out


def add(total: dict[str, int], one: dict[str, int]) -> None:
    """Pool one run's tally into ``total`` (sums; the maximum per day stays a maximum)."""
    for k, v in one.items():
        total[k] = max(total.get(k, 0), v) if k.startswith("max_") else total.get(k, 0) + v


def per100(n: int, cycles: int) -> float:
    """Per 100 customer-cycles, two decimals.

    >>> per100(3, 150)
    2.0
    """
    return round(100.0 * n / max(1, cycles), 2)


def markdown(rows: dict[str, dict[str, int]], cycles: int, per_manager: int) -> list[str]:
    """The table of the screen: items per 100 customer-cycles (all households, surged ones included)."""
    lines = [
        "",
        f"Manager items per 100 customer-cycles ({cycles} customer-cycles, all households; one manager "
        f"per {per_manager} customers; actionable = customer-facing pushes + manager-only alerts the "
        "daily digest pushes; the rest folded into one digest per manager-day):",
        "",
        "| digest policy | before | actionable | of which customer-facing | manager-only pushed | folded "
        f"| digests | max pushed / manager-day | actionable, {SMALL_MANAGER} customers / manager |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t in rows.items():
        if name.endswith(SMALL_SUFFIX):
            continue
        small = rows.get(name + SMALL_SUFFIX)
        small_cell = (
            "-" if small is None else f"{per100(small['customer_facing'] + small['actionable'], cycles):.2f}"
        )
        lines.append(
            f"| {name} | {per100(t['before'], cycles):.2f} | "
            f"**{per100(t['customer_facing'] + t['actionable'], cycles):.2f}** | "
            f"{per100(t['customer_facing'], cycles):.2f} | {per100(t['actionable'], cycles):.2f} | "
            f"{per100(t['folded'], cycles):.2f} | {per100(t['digests'], cycles):.2f} | "
            f"{t['max_actionable_per_day']} | {small_cell} |"
        )
    return lines
