"""The baseline statistics of a profile: the ring of final days and what is derived from it.

A day that leaves the late window is *final*: its total joins the ring
(``Profile.final_days``, the last ``ring_days`` days), flagged when far above or
below the baseline so that a surge does not drag the baseline up; a flagged
level that persists for ``level_shift_days`` is a new habit and is unflagged.
From the unflagged days: the baseline median and MAD (``baseline_days`` of
them), the weekday factors (every known day), and the 95th-percentile day
(spikes included). The rules read days through ``day_values`` and levels
through ``recent_level``.

>>> from baselines.rules.config import RulesConfig
>>> p, cfg = Profile.new("c1"), RulesConfig()
>>> for d in range(700_000, 700_020):
...     push_final_day(p, d, 8.0, cfg)
>>> p.baseline_median, p.baseline_days, recent_level(p, 700_019, 7, cfg.min_day_coverage)
(8.0, 20, (8.0, 7))
"""

from __future__ import annotations

from collections.abc import Callable

from baselines.cycle_book import cycle_to_date
from baselines.profile import DAILY_GRANULARITY_S, Profile
from baselines.rules.config import RulesConfig
from baselines.stats import median, robust_sigma

# fewer unflagged days than this: no flagging, no weekday shape (the baseline is too young)
MIN_DAYS_FOR_SHAPE = 14
# below this many unflagged days the statistics are refreshed with every final day
YOUNG_BASELINE_DAYS = 28


def weekday(ordinal: int) -> int:
    """Monday = 0 for a proleptic ordinal (as ``date.weekday()``).

    >>> import datetime as dt
    >>> weekday(dt.date(2024, 1, 1).toordinal())
    0
    """
    return (ordinal + 6) % 7


def push_final_day(
    p: Profile, day: int, value: float | None, config: RulesConfig, special: bool = False
) -> None:
    """Add a final day's total (``None``: missing or partial) to the ring and refresh the statistics.

    A day already in the ring is corrected instead (a register spread over final days). A
    ``special`` day (a holiday or away day, ``baselines.special_days``) is kept in the ring but
    out of the statistics (``special_flags``), never flagged high or low.

    >>> from baselines.rules.config import RulesConfig
    >>> p = Profile.new("c"); push_final_day(p, 700_000, 5.0, RulesConfig())
    >>> p.final_start, p.final_days, p.baseline_median
    (700000, [5.0], 5.0)
    """
    if p.final_start is None or day - p.final_start - len(p.final_days) > config.ring_days:
        p.final_start, p.final_days, p.high_flags, p.low_flags, p.special_flags = day, [], 0, 0, 0
    idx = day - p.final_start
    if idx < len(p.final_days):  # a final day corrected (register spread over final days)
        if idx >= 0:
            old = p.final_days[idx]
            p.final_days[idx] = value if old is None else round(old + (value or 0.0), 3)
        return
    while len(p.final_days) < idx:
        p.final_days.append(None)
    med = p.baseline_median
    if special:
        p.special_flags |= 1 << idx
    elif value is not None and med is not None and med > 0 and p.baseline_days >= MIN_DAYS_FOR_SHAPE:
        # flag a day far above or below the weekday-adjusted baseline (kept out of the statistics)
        med = med * p.weekday_factors[(day + 6) % 7]
        sig = robust_sigma(p.baseline_mad, med)
        if value > med + config.flag_z * sig and value > config.flag_hi_ratio * med:
            p.high_flags |= 1 << idx
        elif value < config.flag_lo_ratio * med:
            p.low_flags |= 1 << idx
    p.final_days.append(value)
    excess = len(p.final_days) - config.ring_days
    if excess > 0:
        del p.final_days[:excess]
        p.final_start += excess
        p.high_flags >>= excess
        p.low_flags >>= excess
        p.special_flags >>= excess
    if (p.high_flags or p.low_flags) and _clear_level_shift(p, config):  # no flags: nothing to clear
        recompute(p)
        return
    # the statistics are refreshed weekly (daily while the baseline is young, and when a
    # day was flagged or a level shift cleared flags): they describe weeks, not days
    if day % 7 == 0 or p.baseline_days < YOUNG_BASELINE_DAYS:
        recompute(p)


def _clear_level_shift(p: Profile, config: RulesConfig) -> bool:
    """A level that persists is a new habit: stop excluding it. True if flags were cleared."""
    n = len(p.final_days)
    span = config.level_shift_days
    if n < span:
        return False
    window = ((1 << span) - 1) << (n - span)
    need = config.level_shift_share * span
    shifted = False
    if (p.high_flags & window).bit_count() >= need:
        p.high_flags &= ~window
        shifted = True
    if (p.low_flags & window).bit_count() >= need:
        p.low_flags &= ~window
        shifted = True
    return shifted


def recompute(p: Profile) -> None:
    """Baseline median/MAD over the unflagged ring days, the p95 day and the weekday factors.

    >>> p = Profile.new("c"); p.final_start, p.final_days = 700_000, [4.0, None, 6.0]
    >>> recompute(p); p.baseline_median, p.baseline_mad, p.baseline_days
    (5.0, 1.0, 2)
    """
    flagged = p.high_flags | p.low_flags | p.special_flags
    assert p.final_start is not None
    days = p.final_days
    if p.special_flags:  # holidays and away days: out of the spikes and the weekly shape too
        sp = p.special_flags
        days = [None if (sp >> i) & 1 else v for i, v in enumerate(days)]
    if flagged:
        vals = [v for i, v in enumerate(days) if v is not None and not (flagged >> i) & 1]
        p.p95_day = p95_day(days)
    else:
        vals = [v for v in days if v is not None]
    vals.sort()
    if not flagged:
        # no flags: the baseline values are all the known days of the ring, already sorted
        p.p95_day = _p95_of_sorted(vals)
    p.baseline_days = len(vals)
    if not vals:
        p.baseline_median = p.baseline_mad = None
        p.weekday_factors = (1.0,) * 7
        return
    n = len(vals)
    h = n // 2
    med = vals[h] if n % 2 else (vals[h - 1] + vals[h]) / 2.0
    p.baseline_median = med
    p.baseline_mad = median([abs(x - med) for x in vals])
    if med > 0 and n >= MIN_DAYS_FOR_SHAPE:
        p.weekday_factors = _weekday_factors(days, p.final_start, med)


def _weekday_factors(days: list[float | None], start: int, med: float) -> tuple[float, ...]:
    """Per weekday: the median of its known days / ``med``, shrunk towards 1 and clipped to [0.5, 2]."""
    first = weekday(start)  # weekday of days[0]
    wf = [1.0] * 7
    for k in range(7):
        i0 = (k - first) % 7
        # the weekly shape uses every known day (a weekday median is robust on its own)
        xs = [v for v in days[i0::7] if v is not None]
        m = len(xs)
        f = median(xs) / med if m else 1.0
        f = (m * f + 3.0) / (m + 3.0)
        wf[k] = round(min(2.0, max(0.5, f)), 3)
    return tuple(wf)


def p95_day(days: list[float | None]) -> float | None:
    """The customer's own 95th-percentile day of the ring, spikes included (None if < 14 days).

    >>> p95_day([float(i) for i in range(20)]), p95_day([1.0] * 13)
    (19.0, None)
    """
    return _p95_of_sorted(sorted([v for v in days if v is not None]))


def _p95_of_sorted(known: list[float]) -> float | None:
    if len(known) < MIN_DAYS_FOR_SHAPE:
        return None
    return known[min(len(known) - 1, int(0.95 * len(known)))]


def add_to_final_day(p: Profile, day: int, kwh: float) -> None:
    """Add kWh to a day of the ring (register spreads over final days); no statistics refresh.

    >>> p = Profile.new("c"); p.final_start, p.final_days = 10, [1.0, None]
    >>> add_to_final_day(p, 11, 0.5); add_to_final_day(p, 12, 9.0); p.final_days
    [1.0, 0.5]
    """
    if p.final_start is not None and 0 <= day - p.final_start < len(p.final_days):
        v = p.final_days[day - p.final_start]
        p.final_days[day - p.final_start] = round((v or 0.0) + kwh, 3)


def day_values(p: Profile, lo: int, hi: int, min_day_coverage: float) -> list[float | None]:
    """The kWh of every day in ``[lo, hi)``: open days (if covered enough), then the ring, else ``None``.

    >>> p = Profile.new("c"); p.final_start, p.final_days = 10, [1.0, None, 3.0]
    >>> day_values(p, 9, 14, 0.9)
    [None, 1.0, None, 3.0, None]
    """
    ds = p.final_start
    opened = p.open_days
    days = p.final_days
    if ds is not None and not opened and lo >= ds and hi - ds <= len(days):
        return days[lo - ds : hi - ds]
    n = hi - lo
    if n <= 0:
        return []
    # the ring's days padded with None, then the open days (which take precedence) over them:
    # the same values as a lookup per day, without a dict lookup per day
    out: list[float | None]
    if ds is None:
        out = [None] * n
    else:
        a, b = max(lo - ds, 0), min(hi - ds, len(days))
        out = [None] * (ds + a - lo) + days[a:b] + [None] * (hi - ds - b) if a < b else [None] * n
    for d, acc in opened.items():  # the late window: a few days
        if lo <= d < hi:
            out[d - lo] = acc.kwh if acc.covered_s / DAILY_GRANULARITY_S >= min_day_coverage else None
    return out


def recent_level(
    p: Profile, as_of: int, n: int, min_day_coverage: float, skip: Callable[[int], bool] | None = None
) -> tuple[float, int] | None:
    """Median of the last ``n`` days through ``as_of``, each divided by its weekday factor, and their count.

    ``None`` with fewer than ``max(1, n - 2)`` known days (a day for which ``skip(day)`` is true,
    e.g. a holiday, counts as unknown).

    >>> p = Profile.new("c"); p.final_start, p.final_days = 10, [2.0, 4.0, None, 6.0]
    >>> recent_level(p, 13, 4, 0.9), recent_level(p, 13, 7, 0.9)
    ((4.0, 3), None)
    >>> recent_level(p, 13, 4, 0.9, skip=lambda day: day == 10)
    (5.0, 2)
    """
    lo = as_of - n + 1
    wf = p.weekday_factors
    w0 = weekday(lo)
    xs = [
        v / wf[(w0 + i) % 7]
        for i, v in enumerate(day_values(p, lo, as_of + 1, min_day_coverage))
        if v is not None and (skip is None or not skip(lo + i))
    ]
    if len(xs) < max(1, n - 2):
        return None
    return median(xs), len(xs)


def project_cycle(
    p: Profile, index: int, as_of: int, min_day_coverage: float
) -> tuple[float, float, float] | None:
    """(projected cycle kWh, cycle-to-date through ``as_of``, recent level), or ``None`` without a level.

    The rest of the open cycle ``index`` is the recent 7-day level times the
    customer's weekday factor of each remaining day.

    >>> from baselines.profile import OpenCycle
    >>> p = Profile.new("c"); p.final_start, p.final_days = 10, [2.0] * 7
    >>> p.open_cycles.append(OpenCycle(10, 20, 14.0, 7.0))
    >>> project_cycle(p, 0, 16, 0.9)
    (20.0, 14.0, 2.0)
    """
    c = p.open_cycles[index]
    lv = recent_level(p, as_of, 7, min_day_coverage)
    if lv is None:
        return None
    level = lv[0]
    ctd = cycle_to_date(p, index, as_of)
    wf = p.weekday_factors
    n_rest = c.end - as_of - 1
    weeks, extra = divmod(max(0, n_rest), 7)
    rest = weeks * sum(wf)
    d0 = as_of + 1 + weeks * 7
    for d in range(d0, d0 + extra):
        rest += wf[(d + 6) % 7]  # weekday(d), inline: hot loop
    return ctd + level * rest, ctd, level
