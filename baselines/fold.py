"""The per-customer fold: one reading into the profile's open days, final days and cycles.

``fold(profile, reading, customer)`` returns a new profile and what happened;
``fold_inplace`` changes the profile itself (for a caller that owns it). No
rules run here (``baselines.rules.evaluate`` does that).

Per reading the work is O(1): the value is added to its day's accumulator in
the late window; a redelivered interval is recognised by its slot bit and
changes nothing; a different actual value for a booked slot is rejected
(``conflicting_duplicate``, the first value stays); an actual value replaces an
estimate of the same slot.
Heavier work happens only when a day leaves the late window
(``late_window.advance``).

>>> import datetime as dt
>>> from baselines.customer import CustomerConfig
>>> cust = CustomerConfig("c1", timezone="UTC")
>>> p0 = Profile.new("c1")
>>> p1, out = fold(p0, Reading.daily(dt.date(2024, 1, 1), 5.0), cust)
>>> p0.newest_day is None, p1.newest_day == dt.date(2024, 1, 1).toordinal(), out.closes_newest
(True, True, True)
>>> fold(p1, Reading.daily(dt.date(2024, 1, 1), 5.0), cust)[1].duplicate
True
>>> fold(p1, Reading.daily(dt.date(2024, 1, 1), 5.5), cust)[1].rejected.numbers["booked_kwh"]
5.0
"""

from __future__ import annotations

import math

from baselines.customer import CustomerConfig
from baselines.cycle_book import ensure_cycles
from baselines.late_window import (
    APPLIED,
    APPLIED_CLOSING,
    DUPLICATE,
    DayLocator,
    FoldOutcome,
    advance,
    date_of,
    iso_utc,
    rejected,
)
from baselines.plans import Tariffs
from baselines.profile import DAILY_GRANULARITY_S, REGISTER_GRANULARITY_S, OpenDay, Profile, slot_value
from baselines.readings import (
    CONFLICTING_DUPLICATE,
    KWH_IMPLAUSIBLE,
    LONGEST_DAY_H,
    MIXED_RESOLUTION,
    TOO_LATE,
    TS_MAX,
    TS_MIN,
    TS_OUT_OF_RANGE,
    Reading,
)
from baselines.register import fold_register
from baselines.rules.config import RulesConfig

# an interval that starts before 07:00 local time counts as night use
NIGHT_END_S = 7 * 3600
# one reading covers at most the longest local day
_LONGEST_DAY_S = LONGEST_DAY_H * 3600.0
_DEFAULT_CONFIG = RulesConfig()


def fold(
    profile: Profile,
    reading: Reading,
    customer: CustomerConfig,
    config: RulesConfig | None = None,
    days: DayLocator | None = None,
) -> tuple[Profile, FoldOutcome]:
    """Apply one reading to a copy of ``profile``: ``(new profile, outcome)``.

    A rejected or duplicate reading returns ``profile`` itself.

    >>> import datetime as dt
    >>> from baselines.customer import CustomerConfig
    >>> p, out = fold(Profile.new("c"), Reading.daily(dt.date(2024, 1, 1), 1.0), CustomerConfig("c"))
    >>> out.rejected, out.duplicate, len(p.open_days)
    (None, False, 1)
    """
    q = profile.clone()
    cfg = config if config is not None else _DEFAULT_CONFIG
    out = fold_inplace(q, reading, customer, cfg, days if days is not None else DayLocator())
    if out.rejected is not None or out.duplicate:
        return profile, out
    return q, out


def fold_inplace(
    p: Profile,
    r: Reading,
    customer: CustomerConfig,
    config: RulesConfig,
    days: DayLocator,
    tariffs: Tariffs | None = None,
) -> FoldOutcome:
    """Apply one reading to ``p`` itself; a rejected or duplicate reading leaves it unchanged.

    ``tariffs``: keep the kWh per period of the final days of customers on a time-of-use plan
    (``baselines.tou_days``).

    >>> import datetime as dt
    >>> from baselines.customer import CustomerConfig
    >>> from baselines.rules.config import RulesConfig
    >>> p, cust, cfg, loc = Profile.new("c"), CustomerConfig("c"), RulesConfig(), DayLocator()
    >>> _ = fold_inplace(p, Reading.daily(dt.date(2024, 1, 20), 1.0), cust, cfg, loc)
    >>> fold_inplace(p, Reading.daily(dt.date(2024, 1, 1), 1.0), cust, cfg, loc).rejected.code
    'baselines.readings.too_late'
    """
    # over 60 lines: the interval/daily fold runs once per reading, one frame saves a call per reading
    t = r.ts
    if not TS_MIN <= t < TS_MAX:  # NaN fails too
        return _ts_out_of_range(r)
    kind = r.kind
    if kind == "register":
        return _fold_register_read(p, r, customer, config, days, tariffs)
    v = r.value
    max_kw = customer.max_kw  # the meter's rating (RulesConfig.max_kw, inline)
    if max_kw is None:
        max_kw = config.max_kw_by_tariff.get(customer.tariff, config.default_max_kw)
    if kind == "daily":
        if not 0.0 <= v <= max_kw * LONGEST_DAY_H:  # NaN fails too
            return implausible_kwh(r, LONGEST_DAY_H, max_kw)
        assert r.day is not None
        day = r.day.toordinal()
        gran = DAILY_GRANULARITY_S
        slot = 0
        covered = min(1.0, max(0.0, r.coverage)) * DAILY_GRANULARITY_S
        night = 0.0
        complete = True
    else:
        iv = r.interval_s
        if not 0.0 <= v * 3600.0 <= max_kw * (iv if iv < _LONGEST_DAY_S else _LONGEST_DAY_S):
            return implausible_kwh(r, min(iv, _LONGEST_DAY_S) / 3600.0, max_kw)
        day, ds, de = days.locate(t - iv, customer.tz)
        covered = float(iv)
        night = v if (t - iv - ds) < NIGHT_END_S else 0.0
        complete = t >= de - 1.0
    window = config.late_window_days
    if p.newest_day is not None and day < p.newest_day - window:
        return rejected(
            TOO_LATE,
            f"reading for {date_of(day)} is older than the late window of {window} days",
            day=date_of(day).isoformat(),
            newest=date_of(p.newest_day).isoformat(),
            window_days=window,
        )
    acc = p.open_days.get(day)
    if kind != "daily":
        gran = acc.granularity_s if acc is not None and acc.granularity_s > 0 else r.interval_s
        slot = int((t - ds) / gran + 0.5)
    if acc is None:
        est = {slot: v} if r.estimated else None
        first = None if kind == "daily" else (slot, v, None)
        p.open_days[day] = OpenDay(v, covered, 1 << slot, gran, est, night, first)
        p.booked_kwh += v  # the running bound (Profile.booked_kwh, peak_kwh): v >= 0 here
        if v > p.peak_kwh:
            p.peak_kwh = v
    elif acc.granularity_s == gran and not r.estimated and not acc.slots_seen & (1 << slot):
        # the common case inline (an actual value for a new slot of the day): one call less per reading
        vals = acc.values
        kwh = acc.kwh + v
        p.open_days[day] = OpenDay(
            kwh,
            acc.covered_s + covered,
            acc.slots_seen | 1 << slot,
            gran,
            acc.estimated,
            acc.night_kwh + night,
            None if vals is None else (slot, v, vals),
        )
        p.booked_kwh += v
        if kwh > p.peak_kwh:
            p.peak_kwh = kwh
    else:
        out = _add_to_day(p, day, acc, r, gran, slot, covered, night)
        if out is not None:
            return out
        p.booked_kwh = math.inf  # the rare paths (a replaced estimate may lower a day): no bound
    if p.newest_day is None or day > p.newest_day:
        advance(p, day, customer, config, tariffs)
    elif day < p.open_cycles[0].start:
        ensure_cycles(p, day, customer)
    if p.latest_ts is None or t > p.latest_ts:
        p.latest_ts = t
    return APPLIED_CLOSING if complete and day == p.newest_day else APPLIED


def implausible_kwh(r: Reading, hours: float, max_kw: float) -> FoldOutcome:
    """The rejection of a value that is negative, not finite, or more than ``max_kw`` x ``hours``.

    >>> import datetime as dt
    >>> out = implausible_kwh(Reading.daily(dt.date(2024, 1, 1), float("inf")), 25.0, 100.0)
    >>> out.rejected.code, out.rejected.numbers["kwh"]
    ('baselines.readings.kwh_implausible', 'inf')
    """
    v = r.value
    limit = max_kw * hours
    if not math.isfinite(v):
        why = "is not finite"
    elif v < 0:
        why = "is negative"
    else:
        why = f"exceeds the meter's {max_kw:g} kW over {hours:g} h ({limit:g} kWh)"
    return rejected(
        KWH_IMPLAUSIBLE,
        f"{r.kind} reading of {v:g} kWh {why}",
        kwh=v if math.isfinite(v) else repr(v),
        max_kw=max_kw,
        hours=hours,
        limit_kwh=limit,
        ts=iso_utc(r.ts),
    )


def _ts_out_of_range(r: Reading) -> FoldOutcome:
    return rejected(
        TS_OUT_OF_RANGE,
        f"reading time {r.ts!r} (epoch s) is outside 1970-01-01 .. 3000-01-01",
        ts=repr(r.ts),
    )


def _fold_register_read(
    p: Profile,
    r: Reading,
    customer: CustomerConfig,
    config: RulesConfig,
    days: DayLocator,
    tariffs: Tariffs | None,
) -> FoldOutcome:
    out = fold_register(p, r, customer, config, days, tariffs)
    p.booked_kwh = math.inf  # a register read spreads over open and final days: no running bound
    if out is not None:
        return out
    if p.latest_ts is None or r.ts > p.latest_ts:
        p.latest_ts = r.ts
    return APPLIED


def _add_to_day(
    p: Profile, day: int, acc: OpenDay, r: Reading, gran: int, slot: int, covered: float, night: float
) -> FoldOutcome | None:
    """Add a value to an open day that has readings (a new slot, a redelivery, a different value for a
    booked slot, or an actual value replacing an estimate); ``None`` when applied."""
    if acc.granularity_s != gran and acc.slots_seen:
        if acc.granularity_s == REGISTER_GRANULARITY_S or DAILY_GRANULARITY_S in (gran, acc.granularity_s):
            return rejected(
                MIXED_RESOLUTION,
                "this day already has readings of another kind",
                day=date_of(day).isoformat(),
            )
    v = r.value
    bit = 1 << slot
    if not acc.slots_seen & bit:
        est = acc.estimated
        if r.estimated:
            est = dict(est) if est else {}
            est[slot] = v
        vals = acc.values
        if gran == DAILY_GRANULARITY_S or (vals is None and acc.slots_seen):
            vals = None  # a daily total needs none; a day stored without them stays without
        else:  # (a register day's first interval starts them)
            vals = (slot, v, vals)
        p.open_days[day] = OpenDay(
            acc.kwh + v,
            acc.covered_s + covered,
            acc.slots_seen | bit,
            acc.granularity_s,
            est,
            acc.night_kwh + night,
            vals,
        )
        return None
    # the slot was seen: a redelivery, a different value, or an actual value replacing an estimate
    est = acc.estimated
    if est is None or slot not in est:
        return _booked_again(acc, r, day, slot)
    old = est[slot]
    if r.estimated and old == v:
        return DUPLICATE
    new_est = dict(est)
    if r.estimated:
        new_est[slot] = v
    else:
        del new_est[slot]
    vals = acc.values
    p.open_days[day] = OpenDay(
        acc.kwh + v - old,
        acc.covered_s,
        acc.slots_seen,
        acc.granularity_s,
        new_est or None,
        acc.night_kwh + (night - old if night else 0.0),
        None if vals is None else (slot, v, vals),  # shadows the estimate's cell
    )
    return None


def _booked_again(acc: OpenDay, r: Reading, day: int, slot: int) -> FoldOutcome:
    """A reading for a slot that holds an actual value: the same value again is a duplicate; a
    different actual value is rejected (the first value stays); an estimate never replaces it."""
    if r.estimated:
        return DUPLICATE
    booked = acc.kwh if acc.granularity_s == DAILY_GRANULARITY_S else slot_value(acc.values, slot)
    if booked is None:
        return DUPLICATE  # a day stored before per-slot values were kept: the value is unknown
    if booked == r.value:
        return DUPLICATE
    what = f"the day {date_of(day)}" if r.kind == "daily" else f"the interval ending {iso_utc(r.ts)}"
    return rejected(
        CONFLICTING_DUPLICATE,
        f"a second, different value for {what}: {booked:g} kWh booked, {r.value:g} kWh now (first kept)",
        booked_kwh=booked,
        new_kwh=r.value,
        day=date_of(day).isoformat(),
        slot=slot,
        ts=iso_utc(r.ts),
    )
