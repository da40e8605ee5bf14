"""Billing-cycle bookkeeping on a profile: open cycles, closed cycles, cycle-to-date, same period.

``baselines.cycles`` is the calendar arithmetic (dates in, dates out); this
module keeps a profile's cycles in step with its days (ordinals throughout):
the open cycles cover every day that still changes, a cycle closes when its
last day leaves the late window, and the last 36 closed cycles are kept.

>>> import datetime as dt
>>> from baselines.customer import CustomerConfig
>>> p = Profile.new("c1")
>>> ensure_cycles(p, dt.date(2024, 3, 10).toordinal(), CustomerConfig("c1", read_day=5))
>>> [(dt.date.fromordinal(c.start), dt.date.fromordinal(c.end)) for c in p.open_cycles]
[(datetime.date(2024, 3, 5), datetime.date(2024, 4, 5))]
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from baselines.customer import CustomerConfig
from baselines.cycles import cycle_containing, cycle_end_for, same_period
from baselines.profile import MAX_CYCLES, ClosedCycleT, OpenCycle, Profile

# a gap after the last closed cycle shorter than this continues the cycle chain from its end
CHAIN_GAP_DAYS = 400


def _d(ordinal: int) -> dt.date:
    return dt.date.fromordinal(ordinal)


def cycle_end(start: int, customer: CustomerConfig) -> int:
    """The exclusive end (ordinal) of a cycle that began on ``start`` (ordinal).

    >>> import datetime as dt
    >>> from baselines.customer import CustomerConfig
    >>> end = cycle_end(dt.date(2024, 1, 5).toordinal(), CustomerConfig("c", read_day=5))
    >>> dt.date.fromordinal(end)
    datetime.date(2024, 2, 5)
    """
    return cycle_end_for(_d(start), customer.read_day, customer.cycle_months).toordinal()


def ensure_cycles(p: Profile, day: int, customer: CustomerConfig) -> None:
    """Make sure an open cycle contains ``day`` (creating empty ones across gaps).

    Cycles continue the chain of the closed ones (so a changed read day yields
    a transitional cycle, see ``cycle_end_for``); a day before the first open
    cycle gets a cycle of its own unless closed cycles already cover it.

    >>> import datetime as dt
    >>> from baselines.customer import CustomerConfig
    >>> p, cust = Profile.new("c"), CustomerConfig("c")
    >>> ensure_cycles(p, dt.date(2024, 1, 20).toordinal(), cust)
    >>> ensure_cycles(p, dt.date(2024, 3, 2).toordinal(), cust)
    >>> [dt.date.fromordinal(c.start).month for c in p.open_cycles]
    [1, 2, 3]
    """
    cycles = p.open_cycles
    closed = p.closed_cycles
    if not cycles:
        start: int | None = None
        if closed and closed[-1].end <= day and day - closed[-1].end < CHAIN_GAP_DAYS:
            start = closed[-1].end
        if start is None:
            start = cycle_containing(_d(day), customer.read_day, customer.cycle_months)[0].toordinal()
            if closed and start < closed[-1].end:
                start = closed[-1].end
        cycles.append(OpenCycle(start, cycle_end(start, customer), 0.0, 0.0))
    while cycles[-1].end <= day:
        s = cycles[-1].end
        cycles.append(OpenCycle(s, cycle_end(s, customer), 0.0, 0.0))
    if day < cycles[0].start:
        lo = cycle_containing(_d(day), customer.read_day, customer.cycle_months)[0].toordinal()
        if closed:
            lo = max(lo, closed[-1].end)
        if lo <= day:
            cycles.insert(0, OpenCycle(lo, cycles[0].start, 0.0, 0.0))


def cycle_index(p: Profile, day: int) -> int:
    """Index of the open cycle containing ``day``, or -1.

    >>> p = Profile.new("c"); p.open_cycles.append(OpenCycle(10, 40, 0.0, 0.0))
    >>> cycle_index(p, 39), cycle_index(p, 40)
    (0, -1)
    """
    for i, c in enumerate(p.open_cycles):
        if c.start <= day < c.end:
            return i
    return -1


def close_cycles_before(p: Profile, horizon: int) -> None:
    """Close the open cycles that ended on or before ``horizon`` (the running one stays open).

    >>> p = Profile.new("c")
    >>> p.open_cycles += [OpenCycle(10, 40, 300.0, 30.0), OpenCycle(40, 70, 0.0, 0.0)]
    >>> close_cycles_before(p, 45); p.closed_cycles, len(p.open_cycles)
    ([ClosedCycleT(start=10, end=40, kwh=300.0, coverage=1.0)], 1)
    """
    cycles = p.open_cycles
    while cycles and cycles[0].end <= horizon and len(cycles) > 1:
        c = cycles.pop(0)
        n = c.end - c.start
        p.closed_cycles.append(
            ClosedCycleT(c.start, c.end, round(c.kwh, 3), round(min(1.0, c.covered_days / n), 4))
        )
        p.money_epoch += 1
        if len(p.closed_cycles) > MAX_CYCLES:
            del p.closed_cycles[: len(p.closed_cycles) - MAX_CYCLES]


def add_final_day(p: Profile, day: int, kwh: float, covered_days: float) -> None:
    """Book a day that became final into its open cycle (if one holds it).

    >>> p = Profile.new("c"); p.open_cycles.append(OpenCycle(10, 40, 5.0, 1.0))
    >>> add_final_day(p, 11, 2.5, 1.0); p.open_cycles[0]
    OpenCycle(start=10, end=40, kwh=7.5, covered_days=2.0)
    """
    for i, c in enumerate(p.open_cycles):
        if c.start <= day < c.end:
            p.open_cycles[i] = OpenCycle(c.start, c.end, c.kwh + kwh, c.covered_days + covered_days)
            return


def add_late_kwh(p: Profile, day: int, kwh: float) -> None:
    """Add kWh of an already final day to its cycle, open or closed (register spreads only).

    Coverage is not changed. A closed cycle that changes invalidates the same-period cache.

    >>> p = Profile.new("c"); p.closed_cycles.append(ClosedCycleT(10, 40, 300.0, 1.0))
    >>> p.same_period_cache = ((0, 0, 0, None), None)
    >>> add_late_kwh(p, 12, 1.5); p.closed_cycles[0].kwh, p.same_period_cache
    (301.5, None)
    """
    i = cycle_index(p, day)
    if i >= 0:
        c = p.open_cycles[i]
        p.open_cycles[i] = OpenCycle(c.start, c.end, c.kwh + kwh, c.covered_days)
        return
    for j in range(len(p.closed_cycles) - 1, -1, -1):
        cc = p.closed_cycles[j]
        if cc.start <= day < cc.end:
            p.closed_cycles[j] = ClosedCycleT(cc.start, cc.end, round(cc.kwh + kwh, 3), cc.coverage)
            p.same_period_cache = None
            p.money_cache = None
            p.money_epoch += 1
            break


def insert_closed_cycle(p: Profile, c: ClosedCycleT) -> None:
    """Add a closed cycle from history unless it overlaps a known (closed or open) one.

    >>> p = Profile.new("c")
    >>> for start, end in ((40, 70), (10, 40), (20, 50)):   # the last overlaps both
    ...     insert_closed_cycle(p, ClosedCycleT(start, end, 9.0, 1.0))
    >>> [c.start for c in p.closed_cycles]
    [10, 40]
    """
    if c.end <= c.start:
        return
    for o in p.closed_cycles:
        if o.start < c.end and c.start < o.end:
            return
    for o2 in p.open_cycles:
        if o2.start < c.end and c.start < o2.end:
            return
    p.closed_cycles.append(c)
    p.closed_cycles.sort(key=lambda x: x.start)
    p.money_epoch += 1
    if len(p.closed_cycles) > MAX_CYCLES:
        del p.closed_cycles[: len(p.closed_cycles) - MAX_CYCLES]


def cycle_to_date(p: Profile, index: int, upto: int | None = None) -> float:
    """kWh of the open cycle ``index``: its final days plus its open days (through ``upto``).

    >>> from baselines.profile import OpenDay
    >>> p = Profile.new("c"); p.open_cycles.append(OpenCycle(10, 40, 5.0, 1.0))
    >>> p.open_days[12] = OpenDay(2.0, 86400.0, 1, 86400, None, 0.0)
    >>> p.open_days[13] = OpenDay(3.0, 86400.0, 1, 86400, None, 0.0)
    >>> cycle_to_date(p, 0), cycle_to_date(p, 0, upto=12)
    (10.0, 7.0)
    """
    c = p.open_cycles[index]
    total = c.kwh
    for d, acc in p.open_days.items():
        if c.start <= d < c.end and (upto is None or d <= upto):
            total += acc.kwh
    return total


def same_period_figures(p: Profile, start: int, end: int) -> tuple[float, float] | None:
    """Pro-rata kWh and coverage of the same period one year earlier, from the closed cycles.

    ``None`` when no closed cycle overlaps it. Cached on the profile
    (``same_period_cache``) while the cycle and the closed cycles are
    unchanged: the rules ask for it on every evaluation and, with interval
    data, ``same_period_reached`` on every reading.

    >>> import datetime as dt
    >>> p = Profile.new("c")
    >>> jan = dt.date(2023, 1, 1).toordinal()
    >>> p.closed_cycles.append(ClosedCycleT(jan, jan + 31, 310.0, 1.0))   # January 2023
    >>> same_period_figures(p, jan + 365, jan + 380)                       # 1-15 January 2024
    (150.0, 1.0)
    """
    last = p.closed_cycles[-1] if p.closed_cycles else None
    key = (start, end, len(p.closed_cycles), last)
    cached = p.same_period_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    s1d, e1d = same_period(_d(start), _d(end))
    s1, e1 = s1d.toordinal(), e1d.toordinal()
    kwh = 0.0
    covd = 0.0
    for c in p.closed_cycles:
        if c.end <= s1 or c.start >= e1:
            continue
        o = min(c.end, e1) - max(c.start, s1)
        n = c.end - c.start
        kwh += c.kwh * o / n
        covd += c.coverage * o
    out = (kwh, covd / (e1 - s1)) if covd > 0 else None
    p.same_period_cache = (key, out)
    return out


# Why cached: projected_over_same_period asks on every evaluation that passes its prelude, with
# the same cycle for a month; the date arithmetic costs a dozen calls (pure, so caching is safe).
@lru_cache(maxsize=4096)
def same_period_days(start: int, end: int) -> int:
    """Length in days (at least 1) of the same period of the cycle ``[start, end)``.

    >>> import datetime as dt
    >>> same_period_days(dt.date(2024, 2, 1).toordinal(), dt.date(2024, 3, 1).toordinal())
    28
    """
    s1, e1 = same_period(_d(start), _d(end))
    return max(1, (e1 - s1).days)
