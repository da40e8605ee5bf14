"""Time of use on interval data: the kWh per TOU period of a customer's days, for the bill figures.

The fold keeps one kWh figure per day; a time-of-use plan (峰谷电价) needs the
kWh of each period. Nothing is added to the hot path: an **open** day (inside
the late window) already holds the booked value of each interval slot (the
``OpenDay.values`` chain that de-duplicates readings), so its period split is
computed from them when a figure needs it (:func:`day_period_wh`). When a day
of a customer whose plan is TOU leaves the late window, its split is kept in
``Profile.tou_days`` (whole Wh per period, in the order of the plan's periods)
while its billing cycle is open, and dropped when the cycle closes
(:func:`keep_final_day`, :func:`drop_closed`). Late and repeated readings
change the split exactly as they change the day's total (same slots, same
values), so it is idempotent under redelivery by construction.

**Which period.** A reading counts on the day the fold books it, in the
period of its slot on the day's grid: slot ``s`` is
``[local midnight + (s-1) x interval, + interval)``. Half-hourly and hourly
slots lie inside one local hour (the periods are whole hours); a longer slot
(or one on a DST day) is split pro rata of its seconds over the local hours it
covers. A reading that the fold books on a day but that ends after its local
midnight counts in the hours after midnight (the next morning's period).

**Exact.** The period Wh of a day add up to the day's kWh in whole Wh
(``kwh_to_wh``), the largest remainders taking the odd Wh.

>>> import datetime as dt
>>> from baselines.cycles import zone
>>> from baselines.profile import chain_of
>>> from baselines.tariffs import default_catalogue
>>> zj = default_catalogue().plan("cn-zj-residential-tou").compiled
>>> day = dt.date(2024, 3, 1).toordinal()
>>> # half-hourly: 07:30-08:00 (slot 16, valley) 1.0 kWh, 08:00-08:30 (slot 17, peak) 0.5 kWh
>>> acc = OpenDay(1.5, 3600.0, 1 << 16 | 1 << 17, 1800, None, 0.0, chain_of(1 << 16 | 1 << 17, [1.0, 0.5]))
>>> day_period_wh(acc, day, zone("Asia/Shanghai"), zj)
(500, 1000)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from baselines.customer import CustomerConfig
from baselines.cycles import day_bounds_epoch
from baselines.plans import Tariffs, plan_on
from baselines.profile import DAILY_GRANULARITY_S, REGISTER_GRANULARITY_S, OpenDay, Profile, SlotValues
from baselines.tariffs import NoPriceError, Plan
from baselines.tariffs.compiled import CompiledPlan, CompiledVersion, kwh_to_wh

SplitWh = dict[str, int]  # Wh per TOU period of one day

__all__ = [
    "SplitWh",
    "apportion",
    "cycle_split",
    "day_period_wh",
    "drop_closed",
    "is_tou",
    "keep_final_day",
    "open_day_wh",
]


def is_tou(plan: Plan) -> bool:
    """Whether any price version of ``plan`` has time-of-use periods.

    >>> from baselines.tariffs import default_catalogue
    >>> c = default_catalogue()
    >>> is_tou(c.plan("cn-zj-residential-tou")), is_tou(c.plan("cn-js-residential"))
    (True, False)
    """
    return any(v.periods for v in plan.compiled.versions)


def apportion(parts: Sequence[float], total: int) -> tuple[int, ...]:
    """``total`` whole units in proportion to ``parts`` (largest remainders; the sum is exact).

    >>> apportion([1.0005, 1.0005], 2001), apportion([0.0, 0.0], 0), apportion([3.0, 1.0], 3)
    ((1001, 1000), (0, 0), (2, 1))
    """
    whole = sum(parts)
    if whole <= 0:
        return (0,) * len(parts) if total == 0 else (total, *(0,) * (len(parts) - 1))
    exact = [x * total / whole for x in parts]
    out = [int(x) for x in exact]
    short = total - sum(out)
    if short:
        order = sorted(range(len(parts)), key=lambda i: (-(exact[i] - out[i]), i))
        for i in order[:short]:
            out[i] += 1
    return tuple(out)


def _version(cp: CompiledPlan, day: int) -> CompiledVersion | None:
    try:
        v = cp.versions[cp.version_index(day)]
    except NoPriceError:
        return None
    return v if v.periods else None


@lru_cache(maxsize=4096)
def _day_start(day: int, tz: ZoneInfo) -> tuple[float, bool]:
    """(the local midnight's epoch, whether the local day is 24 h long) of the day ``day``."""
    ds, de = day_bounds_epoch(dt.date.fromordinal(day), tz)
    return ds, de - ds == 86400


@lru_cache(maxsize=256)
def _slot_periods(gran: int, hour_period: tuple[int, ...]) -> tuple[int, ...]:
    """The period of each slot of a 24-hour day on a grid of ``gran`` seconds (a divisor of 3600)."""
    return tuple(hour_period[(max(s - 1, 0) * gran // 3600) % 24] for s in range(86400 // gran + 2))


def day_period_wh(acc: OpenDay, day: int, tz: ZoneInfo, cp: CompiledPlan) -> tuple[int, ...] | None:
    """Wh per TOU period (the day's version order) of an open interval day, summing to its kWh.

    ``None``: a daily total or register consumption, a day stored without its slot values,
    or a day without a TOU price.
    """
    if acc.values is None or acc.granularity_s in (DAILY_GRANULARITY_S, REGISTER_GRANULARITY_S):
        return None
    v = _version(cp, day)
    if v is None:
        return None
    gran = acc.granularity_s
    ds, whole_day = _day_start(day, tz)
    table = _slot_periods(gran, v.hour_period) if whole_day and 3600 % gran == 0 else ()
    n = len(table)
    kwh = [0.0] * len(v.periods)
    seen = 0
    chain: SlotValues | None = acc.values
    while chain is not None:
        slot, val, chain = chain
        bit = 1 << slot
        if seen & bit:
            continue  # an older value of the slot, shadowed
        seen |= bit
        if slot < n:
            kwh[table[slot]] += val
        else:  # a DST day, a slot longer than an hour, or past the day's end: by local hour
            _by_local_hour(kwh, v.hour_period, ds + max(slot - 1, 0) * gran, gran, val, tz)
    return apportion(kwh, kwh_to_wh(acc.kwh))


def open_day_wh(p: Profile, day: int, acc: OpenDay, tz: ZoneInfo, plan: Plan) -> tuple[int, ...] | None:
    """:func:`day_period_wh` of an open day, cached on the profile until the day's readings change.

    (An ``OpenDay`` is replaced by every reading that changes it, so the cache holds the
    day's accumulator itself and answers only for that very object.)
    """
    if p.money_cache is None:
        p.money_cache = {}
    cache: dict[int, tuple[OpenDay, str, str, tuple[int, ...] | None]] = p.money_cache.setdefault("tou", {})
    hit = cache.get(day)
    if hit is not None and hit[0] is acc and hit[1] == plan.id and hit[2] == tz.key:
        return hit[3]
    parts = day_period_wh(acc, day, tz, plan.compiled)
    if len(cache) > 16:  # days that left the window
        for d in [d for d in cache if d not in p.open_days]:
            del cache[d]
    cache[day] = (acc, plan.id, tz.key, parts)
    return parts


def _by_local_hour(
    kwh: list[float], hp: Sequence[int], t: float, seconds: int, val: float, tz: ZoneInfo
) -> None:
    """Add ``val`` over ``[t, t + seconds)`` to the periods of the local hours it covers, pro rata."""
    end = t + seconds
    while t < end:
        local = dt.datetime.fromtimestamp(t, tz)
        piece_end = min(end, t + 3600 - (local.minute * 60 + local.second + local.microsecond / 1e6))
        kwh[hp[local.hour]] += val * (piece_end - t) / seconds
        t = piece_end


# ---------------------------------------------------------------------------------- a cycle's days
def _tou_version(plan: Plan, day: int) -> CompiledVersion | None:
    return _version(plan.compiled, day)


def cycle_split(
    p: Profile, start: int, totals: list[float], plan: Plan, tz: ZoneInfo
) -> tuple[list[int], list[SplitWh | None]]:
    """The days ``totals`` (kWh, from the day ``start``: ``billing.cycle_days``) in whole Wh, with
    each day's measured Wh per TOU period (``None``: none measured; the fallback prices it).

    An open day is split from its booked slot values, a final day from ``Profile.tou_days``.
    Days without a value of their own (missing, or partial once final: the engine spreads the
    cycle's kWh the ring does not hold over them) share the measured period Wh of the partial
    days among them: each such day has the pool's measured fraction of its Wh at the pool's
    measured period shares, the rest at the fallback. Measured Wh above a day's Wh are scaled
    down to it.
    """
    wh = [round(x * 1000) for x in totals]  # as the bill takes them (bill.day_wh)
    ring, ds, kept = p.final_days, p.final_start, p.tou_days
    split: list[SplitWh | None] = [None] * len(wh)
    if p.money_cache is None:
        p.money_cache = {}
    cache: dict[int, tuple[Any, ...]] = p.money_cache.setdefault("tou_final", {})
    pool: list[int] = []  # indices of the days without a value of their own
    for i in range(len(wh)):
        d = start + i
        acc = p.open_days.get(d)
        if acc is not None:
            split[i] = _final_named(cache, d, open_day_wh(p, d, acc, tz, plan), wh[i], plan)
        elif ds is not None and 0 <= d - ds < len(ring) and ring[d - ds] is not None:
            if kept:
                split[i] = _final_named(cache, d, kept.get(d), wh[i], plan)
        else:
            pool.append(i)
    if pool and kept:
        _share_pool(p, start, wh, pool, plan, split)
    return wh, split


def _final_named(
    cache: dict[int, tuple[Any, ...]], day: int, parts: tuple[int, ...] | None, total: int, plan: Plan
) -> SplitWh | None:
    """:func:`_named`, cached per day while its parts (the same object) and its Wh stay the same."""
    hit = cache.get(day)
    if hit is not None and hit[0] is parts and hit[1] == total and hit[2] == plan.id:
        out: SplitWh | None = hit[3]
        return out
    named = _named(parts, total, _tou_version(plan, day))
    if len(cache) > 64:
        cache.clear()
    cache[day] = (parts, total, plan.id, named)
    return named


def _named(parts: tuple[int, ...] | None, total: int, v: CompiledVersion | None) -> SplitWh | None:
    if parts is None or v is None or len(parts) != len(v.periods):
        return None
    if sum(parts) > total:
        parts = apportion(parts, total)
    return dict(zip(v.periods, parts, strict=True))


def _share_pool(
    p: Profile, start: int, wh: list[int], pool: list[int], plan: Plan, split: list[SplitWh | None]
) -> None:
    """The days without a value of their own: the partial days' measured period Wh, pro rata."""
    measured: dict[str, int] = {}
    for i in pool:
        parts = _named(p.tou_days.get(start + i), 1 << 62, _tou_version(plan, start + i))
        for name, w in (parts or {}).items():
            measured[name] = measured.get(name, 0) + w
    have = sum(measured.values())
    pool_wh = sum(wh[i] for i in pool)
    if not have or not pool_wh:
        return
    names = list(measured)
    for i in pool:
        if wh[i] and _tou_version(plan, start + i) is not None:
            mine = min(have, pool_wh) * wh[i] // pool_wh  # the pool's measured fraction of the day
            split[i] = dict(zip(names, apportion([measured[n] for n in names], mine), strict=True))


# ---------------------------------------------------------------------------------- the fold's side
def keep_final_day(p: Profile, day: int, acc: OpenDay, customer: CustomerConfig, tariffs: Tariffs) -> None:
    """A day left the late window: keep its period Wh when the plan pricing it is TOU.

    >>> import datetime as dt
    >>> from baselines.profile import chain_of
    >>> p, cust = Profile.new("c"), CustomerConfig("c", timezone="UTC", tariff_plan="cn-zj-residential-tou")
    >>> day = dt.date(2024, 3, 1).toordinal()
    >>> acc = OpenDay(1.0, 1800.0, 1 << 20, 1800, None, 0.0, chain_of(1 << 20, [1.0]))   # 09:30-10:00
    >>> keep_final_day(p, day, acc, cust, Tariffs.default()); p.tou_days == {day: (1000, 0)}
    True
    """
    if acc.values is None:
        return
    plan = plan_on(p, customer, tariffs, day)
    if plan is None or not is_tou(plan):
        return
    parts = open_day_wh(p, day, acc, customer.tz, plan)
    if parts is not None:
        kept = dict(p.tou_days)  # copy on write: clones share the dict
        kept[day] = parts
        p.tou_days = kept


def drop_closed(p: Profile) -> None:
    """Drop the kept days before the first open cycle (their cycle closed).

    >>> from baselines.profile import OpenCycle
    >>> p = Profile.new("c"); p.tou_days = {9: (1, 2), 10: (3, 4)}
    >>> p.open_cycles.append(OpenCycle(10, 40, 0.0, 0.0)); drop_closed(p); p.tou_days
    {10: (3, 4)}
    """
    if not p.tou_days:
        return
    first = p.open_cycles[0].start if p.open_cycles else None
    if first is None:
        p.tou_days = {}
    elif min(p.tou_days) < first:
        p.tou_days = {d: x for d, x in p.tou_days.items() if d >= first}
