"""Cumulative register reads: the difference between two actual reads, spread over the days between.

The first actual read only sets the register. A later one books ``new - old``
kWh over the local days of the gap, by time: days still in the late window as
open days (``granularity_s`` 0), older days straight into their final day and
cycle. Estimated reads are remembered (``register_estimate``, shown as
provisional cycle-to-date) until the next actual read replaces them. A read
that goes backwards counts across the wrap of a ``register_digits``-digit
register (``10**digits - previous + new`` kWh) when that is within the meter's
rating over the elapsed time (recorded as ``register_rollover``); otherwise a read
that goes back to at most ``register_reset_fraction`` of the register is a
meter reset. Rejected: a different actual value for the time of the last read
(``conflicting_duplicate``), other backward reads, more than the meter's
rating (max kW) on average, and a read that is not finite, negative or wider
than the register.
"""

from __future__ import annotations

import math

from baselines.customer import CustomerConfig
from baselines.cycle_book import ensure_cycles
from baselines.late_window import (
    DUPLICATE,
    PROVISIONAL,
    DayLocator,
    FoldOutcome,
    advance,
    book_final,
    iso_utc,
    rejected,
)
from baselines.plans import Tariffs
from baselines.profile import REGISTER_GRANULARITY_S, OpenDay, Profile
from baselines.readings import (
    CONFLICTING_DUPLICATE,
    KWH_IMPLAUSIBLE,
    MAX_REGISTER_KWH,
    METER_RESET,
    REGISTER_BACKWARDS,
    REGISTER_IMPLAUSIBLE,
    REGISTER_ROLLOVER,
    Reading,
)
from baselines.rules.config import RulesConfig


def fold_register(
    p: Profile,
    r: Reading,
    customer: CustomerConfig,
    config: RulesConfig,
    days: DayLocator,
    tariffs: Tariffs | None = None,
) -> FoldOutcome | None:
    """Book a cumulative register read; ``None`` when it was applied and processing continues.

    Otherwise the outcome ends processing here (duplicate, rejected, or provisional).

    >>> import datetime as dt
    >>> from baselines.customer import CustomerConfig
    >>> from baselines.readings import Reading
    >>> from baselines.rules.config import RulesConfig
    >>> p, cust, cfg, loc = Profile.new("c"), CustomerConfig("c", timezone="UTC"), RulesConfig(), DayLocator()
    >>> t0 = dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC).timestamp()
    >>> fold_register(p, Reading("register", t0, 100.0), cust, cfg, loc)
    >>> fold_register(p, Reading("register", t0 + 86400, 110.0), cust, cfg, loc)
    >>> sorted(round(d.kwh, 3) for d in p.open_days.values())
    [5.0, 5.0]
    >>> fold_register(p, Reading("register", t0 + 2 * 86400, 50.0), cust, cfg, loc).rejected.code
    'baselines.readings.register_backwards'
    """
    t, v = r.ts, r.value
    top = MAX_REGISTER_KWH if customer.register_digits is None else 10.0**customer.register_digits
    if not 0.0 <= v < top:  # NaN fails too
        return _unreadable(v, top)
    if p.register_read is None:
        if r.estimated:
            return _remember_estimate(p, t, v)
        p.register_read = (t, v)
        _advance_to(p, days.locate(t - 1.0, customer.tz)[0], customer, config, tariffs)
        return None
    pt, pv = p.register_read
    if t <= pt:
        return _not_newer(r, pt, pv)
    hours = (t - pt) / 3600.0
    max_kw = config.max_kw(customer.max_kw, customer.tariff)
    if v < pv:
        diff = rollover_kwh(customer.register_digits, pv, v, max_kw * max(hours, 0.5))
        if diff is None:
            return _backwards(p, r, pv, customer, config, days, tariffs)
    else:
        diff = v - pv
        if diff > max_kw * max(hours, 0.5):
            return _too_much(diff, hours, max_kw, pv, v)
    if r.estimated:
        return _remember_estimate(p, t, v)
    last_day = _spread(p, pt, t, diff, customer, config, days)
    p.register_read = (t, v)
    p.register_estimate = None
    if v < pv:
        p.reasons["_register"] = [
            REGISTER_ROLLOVER,
            {"previous_kwh": pv, "register_kwh": v, "kwh": diff, "digits": customer.register_digits, "at": t},
        ]
    _advance_to(p, last_day, customer, config, tariffs)
    return None


def _too_much(diff: float, hours: float, max_kw: float, pv: float, v: float) -> FoldOutcome:
    return rejected(
        REGISTER_IMPLAUSIBLE,
        f"{diff:.1f} kWh in {hours:.1f} h exceeds {max_kw:g} kW",
        previous_kwh=pv,
        register_kwh=v,
        hours=round(hours, 3),
        max_kw=max_kw,
    )


def rollover_kwh(digits: int | None, previous: float, new: float, max_kwh: float) -> float | None:
    """The kWh used across a wrap of a ``digits``-digit register from ``previous`` to ``new``, if at most
    ``max_kwh`` (the meter's rating over the elapsed time); ``None``: no plausible wrap.

    >>> rollover_kwh(5, 99995.0, 3.0, 100.0)
    8.0
    >>> rollover_kwh(5, 50000.0, 3.0, 100.0) is None, rollover_kwh(None, 99995.0, 3.0, 100.0) is None
    (True, True)
    """
    if digits is None:
        return None
    wrap = 10.0**digits
    if previous >= wrap:  # read when the register was wider: no wrap at this width
        return None
    used = wrap - previous + new
    return used if used <= max_kwh else None


def _not_newer(r: Reading, pt: float, pv: float) -> FoldOutcome:
    """A read no newer than the last actual one: a duplicate, a conflicting value, or backwards."""
    t, v = r.ts, r.value
    if t == pt and v != pv and not r.estimated:
        return rejected(
            CONFLICTING_DUPLICATE,
            f"a second, different register read for {iso_utc(t)}: {pv:g} kWh booked, {v:g} kWh now",
            booked_kwh=pv,
            new_kwh=v,
            ts=iso_utc(t),
        )
    if v <= pv:
        return DUPLICATE  # an older read consistent with what we have
    return rejected(
        REGISTER_BACKWARDS,
        "an older register read is higher than a newer one",
        previous_kwh=pv,
        register_kwh=v,
    )


def _backwards(
    p: Profile,
    r: Reading,
    pv: float,
    customer: CustomerConfig,
    config: RulesConfig,
    days: DayLocator,
    tariffs: Tariffs | None,
) -> FoldOutcome | None:
    """A newer read below the last one and no plausible wrap: a meter reset, or rejected."""
    t, v = r.ts, r.value
    if v <= pv * config.register_reset_fraction:
        _meter_reset(p, t, v, pv)
        _advance_to(p, days.locate(t - 1.0, customer.tz)[0], customer, config, tariffs)
        return None
    return rejected(
        REGISTER_BACKWARDS,
        f"register went backwards from {pv} to {v} kWh",
        previous_kwh=pv,
        register_kwh=v,
    )


def _unreadable(v: float, top: float) -> FoldOutcome:
    if not math.isfinite(v) or v < 0:
        return rejected(
            KWH_IMPLAUSIBLE,
            f"register read of {v:g} kWh is not a finite, non-negative number",
            register_kwh=v if math.isfinite(v) else repr(v),
        )
    return rejected(
        REGISTER_IMPLAUSIBLE,
        f"register read of {v:g} kWh has more digits than the register ({top:g})",
        register_kwh=v,
        register_limit_kwh=top,
    )


def _remember_estimate(p: Profile, t: float, v: float) -> FoldOutcome:
    if p.register_estimate == (t, v):
        return DUPLICATE
    p.register_estimate = (t, v)
    return PROVISIONAL


def _meter_reset(p: Profile, t: float, v: float, previous: float) -> None:
    p.register_read = (t, v)
    p.register_estimate = None
    p.reasons["_register"] = [
        METER_RESET,
        {"previous_kwh": previous, "register_kwh": v, "at": t},
    ]


def _advance_to(
    p: Profile, day: int, customer: CustomerConfig, config: RulesConfig, tariffs: Tariffs | None
) -> None:
    # ``tariffs``: the interval days it finalises keep their time-of-use split (baselines.tou_days)
    if p.newest_day is None or day > p.newest_day:
        advance(p, day, customer, config, tariffs)


def _spread(
    p: Profile,
    pt: float,
    t: float,
    diff: float,
    customer: CustomerConfig,
    config: RulesConfig,
    days: DayLocator,
) -> int:
    """Spread ``diff`` kWh over the local days of ``[pt, t)``, by time; returns the day of ``t``."""
    total = t - pt
    cur = pt
    last_day = days.locate(t - 1.0, customer.tz)[0]
    if p.newest_day is None or last_day > p.newest_day:
        ensure_cycles(p, last_day, customer)
    horizon = (p.newest_day if p.newest_day is not None else last_day) - config.late_window_days
    while cur < t:
        d, _, de = days.locate(cur, customer.tz)
        seg_end = min(de, t)
        share = diff * (seg_end - cur) / total
        if d < horizon:
            book_final(p, d, share)
        else:
            ensure_cycles(p, d, customer)
            acc = p.open_days.get(d)
            if acc is None:
                p.open_days[d] = OpenDay(share, seg_end - cur, 0, REGISTER_GRANULARITY_S, None, 0.0)
            else:
                p.open_days[d] = OpenDay(
                    acc.kwh + share,
                    acc.covered_s + (seg_end - cur),
                    acc.slots_seen,
                    acc.granularity_s,
                    acc.estimated,
                    acc.night_kwh,
                    acc.values,
                )
        cur = seg_end
    return last_day
