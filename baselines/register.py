"""Cumulative register reads: the difference between two actual reads, spread over the days between.

The first actual read only sets the register. A later one books ``new - old``
kWh over the local days of the gap, by time: days still in the late window as
open days (``granularity_s`` 0), older days straight into their final day and
cycle. Estimated reads are remembered (``register_estimate``, shown as
provisional cycle-to-date) until the next actual read replaces them. A read
that goes back to at most ``register_reset_fraction`` of the register is a
meter reset; other backward reads, and more than ``register_max_kw`` on
average, are rejected.
"""

from __future__ import annotations

from baselines.customer import CustomerConfig
from baselines.cycle_book import ensure_cycles
from baselines.late_window import (
    DUPLICATE,
    PROVISIONAL,
    DayLocator,
    FoldOutcome,
    advance,
    book_final,
    rejected,
)
from baselines.profile import REGISTER_GRANULARITY_S, OpenDay, Profile
from baselines.readings import Reading
from baselines.rules.config import RulesConfig

BACKWARDS = "baselines.readings.register_backwards"


def fold_register(
    p: Profile, r: Reading, customer: CustomerConfig, config: RulesConfig, days: DayLocator
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
    if p.register_read is None:
        if r.estimated:
            return _remember_estimate(p, t, v)
        p.register_read = (t, v)
        _advance_to(p, days.locate(t - 1.0, customer.tz)[0], customer, config)
        return None
    pt, pv = p.register_read
    if t <= pt:
        if v <= pv:
            return DUPLICATE  # an older read consistent with what we have
        return rejected(
            BACKWARDS, "an older register read is higher than a newer one", previous_kwh=pv, register_kwh=v
        )
    if v < pv:
        if v <= pv * config.register_reset_fraction:
            _meter_reset(p, t, v, pv)
            _advance_to(p, days.locate(t - 1.0, customer.tz)[0], customer, config)
            return None
        return rejected(
            BACKWARDS, f"register went backwards from {pv} to {v} kWh", previous_kwh=pv, register_kwh=v
        )
    diff = v - pv
    hours = (t - pt) / 3600.0
    if diff > config.register_max_kw * max(hours, 0.5):
        return rejected(
            "baselines.readings.register_implausible",
            f"{diff:.1f} kWh in {hours:.1f} h exceeds {config.register_max_kw} kW",
            previous_kwh=pv,
            register_kwh=v,
            hours=round(hours, 3),
        )
    if r.estimated:
        return _remember_estimate(p, t, v)
    last_day = _spread(p, pt, t, diff, customer, config, days)
    p.register_read = (t, v)
    p.register_estimate = None
    _advance_to(p, last_day, customer, config)
    return None


def _remember_estimate(p: Profile, t: float, v: float) -> FoldOutcome:
    if p.register_estimate == (t, v):
        return DUPLICATE
    p.register_estimate = (t, v)
    return PROVISIONAL


def _meter_reset(p: Profile, t: float, v: float, previous: float) -> None:
    p.register_read = (t, v)
    p.register_estimate = None
    p.reasons["_register"] = [
        "baselines.readings.meter_reset",
        {"previous_kwh": previous, "register_kwh": v, "at": t},
    ]


def _advance_to(p: Profile, day: int, customer: CustomerConfig, config: RulesConfig) -> None:
    if p.newest_day is None or day > p.newest_day:
        advance(p, day, customer, config)


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
                )
        cur = seg_end
    return last_day
