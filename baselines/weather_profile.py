"""The profile side of the weather response: which days it learns from, what the rules ask of it.

:func:`absorb` feeds the fit (``baselines.weather.update``) the ring's final days it has not
seen yet, once per evaluation day (``baselines.rules.evaluate``): a day with a value and a
temperature, neither flagged far above or below the baseline (a surge must not teach the fit
that cold days cost more) nor special (holidays, away days, a previous occupant's days).

:func:`window_adjustment` gives the rules the kWh/day the temperatures of some recent days
explain relative to the baseline period: the fit's slopes times (the days' mean HDD - the
median HDD of the baseline days: the ring's known, unflagged, ordinary days, the days behind
``baseline_median``). ``None`` without a series or a sufficient fit.

>>> p = Profile.new("c"); p.final_start = 700_000
>>> p.final_days = [6.0 + 0.5 * (i % 10) for i in range(56)]
>>> temps = {700_000 + i: 15.5 - (i % 10) for i in range(70)}
>>> absorb(p, temps); p.weather.days, round(p.weather.heating_slope, 3)
(56, 0.5)
>>> adj = window_adjustment(p, temps, 700_069, 700_070)   # a 9-HDD day; baseline median 4 HDD
>>> round(adj.kwh, 3), adj.hdd, adj.baseline_hdd
(2.5, 9.0, 4.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from baselines.profile import Profile
from baselines.stats import median
from baselines.weather import Response, cdd, expected_adjustment, hdd, update


class Adjustment(NamedTuple):
    """What the weather explains over some days: kWh/day, their mean HDD, the baseline days' HDD."""

    kwh: float
    hdd: float
    baseline_hdd: float


def absorb(p: Profile, temps: Mapping[int, float]) -> None:
    """Feed the response the ring days after its newest (see the module docstring); creates it.

    >>> p = Profile.new("c"); absorb(p, {}); p.weather is None
    True
    """
    if p.final_start is None:
        return
    end = p.final_start + len(p.final_days)
    state = p.weather
    last = state.last_day if state is not None else None
    first = p.final_start if last is None else max(p.final_start, last + 1)
    if first >= end:
        return
    skip = p.high_flags | p.low_flags | p.special_flags
    for day in range(first, end):
        i = day - p.final_start
        v = p.final_days[i]
        t = temps.get(day)
        if v is None or t is None or (skip >> i) & 1:
            continue
        state = update(state if state is not None else Response.new(), day, v, hdd(t), cdd(t))
    p.weather = state


def baseline_degree_days(p: Profile, temps: Mapping[int, float]) -> tuple[float, float] | None:
    """Median HDD and CDD of the baseline days (the ring's known, unflagged, ordinary days with a
    temperature); None without any.

    >>> p = Profile.new("c"); p.final_start, p.final_days = 700_000, [5.0, None, 5.0]
    >>> baseline_degree_days(p, {700_000: 10.5, 700_001: 0.0, 700_002: 12.5})
    (4.0, 0.0)
    """
    if p.final_start is None:
        return None
    skip = p.high_flags | p.low_flags | p.special_flags
    hs: list[float] = []
    cs: list[float] = []
    for i, v in enumerate(p.final_days):
        t = temps.get(p.final_start + i)
        if v is None or t is None or (skip >> i) & 1:
            continue
        hs.append(hdd(t))
        cs.append(cdd(t))
    if not hs:
        return None
    return median(hs), median(cs)


def window_adjustment(p: Profile, temps: Mapping[int, float] | None, lo: int, hi: int) -> Adjustment | None:
    """The kWh/day the temperatures of days ``[lo, hi)`` explain over the baseline period's
    (mean HDD/CDD of the days with a temperature); None without a series, temperatures or a
    sufficient response.

    >>> window_adjustment(Profile.new("c"), None, 1, 2) is None
    True
    """
    if temps is None or p.weather is None:
        return None
    ts = [t for t in (temps.get(d) for d in range(lo, hi)) if t is not None]
    if not ts:
        return None
    base = baseline_degree_days(p, temps)
    if base is None:
        return None
    h = sum(hdd(t) for t in ts) / len(ts)
    c = sum(cdd(t) for t in ts) / len(ts)
    adj = expected_adjustment(p.weather, h, c, base[0], base[1])
    if adj is None:
        return None
    return Adjustment(adj, round(h, 2), round(base[0], 2))
