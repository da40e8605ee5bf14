"""Rebuild a profile's billing cycles for changed cycle settings (read day, cycle length).

A profile folded under one schedule (e.g. the default read day 1, before the
customer's registry record arrived, or before the record changed ``read_day`` /
``cycle_months``) keeps cycles with that schedule's boundaries. This lays the
cycles out again under the customer's current schedule from the days the
profile still holds:

* closed cycles that start before the first stored day are kept as they are
  (their days are gone; only their totals remain);
* from there on, cycles follow the new schedule (``cycle_end_for``, as the
  engine lays them out), each summing the final daily totals of the ring; the
  days still inside the late window stay open and are booked into the new
  cycles when they become final, as usual;
* cycles that ended more than the late window ago are closed, the rest stay open;
* which rule fired in which cycle moves to the new cycle containing the old start.

Limits: a day that was final but partial (coverage below the minimum) is not in
the ring, so its kWh is not in the rebuilt cycle; the ring holds the last
``RulesConfig.ring_days`` days only.

>>> import datetime as dt
>>> from baselines.customer import CustomerConfig
>>> from baselines.engine import Engine
>>> from baselines.profile import Profile
>>> from baselines.readings import Reading
>>> eng, monthly = Engine(), CustomerConfig("c1", timezone="UTC")
>>> p = Profile.new("c1")
>>> for i in range(50):
...     _ = eng.process_inplace(p, Reading.daily(dt.date(2024, 1, 1) + dt.timedelta(days=i), 10.0), monthly)
>>> [dt.date.fromordinal(c.start).isoformat() for c in p.open_cycles]
['2024-02-01']
>>> q = rebuild_cycles(p, CustomerConfig("c1", timezone="UTC", read_day=12))
>>> [(dt.date.fromordinal(c.start).isoformat(), c.kwh) for c in q.closed_cycles][-1]
('2024-01-12', 310.0)
>>> [dt.date.fromordinal(c.start).isoformat() for c in q.open_cycles]
['2024-02-12']
>>> rebuild_cycles(p, monthly).open_cycles == p.open_cycles  # same schedule: same layout
True
"""

from __future__ import annotations

import datetime as dt

from baselines.customer import CustomerConfig
from baselines.cycles import cycle_containing, cycle_end_for
from baselines.profile import MAX_CYCLES, ClosedCycleT, OpenCycle, Profile

__all__ = ["rebuild_cycles"]


def _layout(first: int, last: int, kept_end: int | None, cust: CustomerConfig) -> list[tuple[int, int]]:
    """The new schedule's cycles ``(start, end_excl)`` that cover ``first``..``last`` (ordinals).

    >>> c = CustomerConfig("c", read_day=10)
    >>> [(dt.date.fromordinal(s).isoformat(), dt.date.fromordinal(e).isoformat())
    ...  for s, e in _layout(dt.date(2024, 1, 20).toordinal(), dt.date(2024, 2, 15).toordinal(), None, c)]
    [('2024-01-10', '2024-02-10'), ('2024-02-10', '2024-03-10')]
    """
    if kept_end is not None:
        start = kept_end
    else:
        start = cycle_containing(dt.date.fromordinal(first), cust.read_day, cust.cycle_months)[0].toordinal()
    out = []
    while start <= last:
        end = cycle_end_for(dt.date.fromordinal(start), cust.read_day, cust.cycle_months).toordinal()
        out.append((start, end))
        start = end
    return out


def rebuild_cycles(profile: Profile, customer: CustomerConfig, late_window_days: int = 7) -> Profile:
    """A copy of ``profile`` with its cycles laid out under ``customer``'s schedule (see the module)."""
    p = profile.clone()
    if p.newest_day is None:
        p.open_cycles = []
        return p
    stored = [d for d in p.open_days] + ([p.final_start] if p.final_start is not None else [])
    first = min(stored) if stored else p.newest_day
    kept = [c for c in p.closed_cycles if c.start < first]
    ring = {}
    if p.final_start is not None:
        ring = {
            p.final_start + i: v
            for i, v in enumerate(p.final_days)
            if v is not None and p.final_start + i not in p.open_days
        }
    horizon = p.newest_day - late_window_days
    closed: list[ClosedCycleT] = []
    running: list[OpenCycle] = []
    layout = _layout(first, p.newest_day, kept[-1].end if kept else None, customer)
    for i, (s, e) in enumerate(layout):
        values = [v for d, v in ring.items() if s <= d < e]
        kwh, cov = sum(values), float(len(values))
        if e <= horizon and i < len(layout) - 1:
            closed.append(ClosedCycleT(s, e, round(kwh, 3), round(min(1.0, cov / (e - s)), 4)))
        else:
            running.append(OpenCycle(s, e, kwh, cov))
    p.closed_cycles = (kept + closed)[-MAX_CYCLES:]
    p.open_cycles = running
    for rule, start in list(p.fired.items()):
        for s, e in layout:
            if s <= start < e:
                p.fired[rule] = s
                break
    p.same_period_cache = None
    p.money_cache = None  # its keys hold the cycle starts and closed cycles, rebuilt here
    p.money_epoch += 1
    return p
