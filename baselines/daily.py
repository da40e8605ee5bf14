"""Final days with the baseline's expectation, for the daily archive (docs/workbench.md).

The engine keeps only the last ``ring_days`` final days; the workbench charts
need more (90 days, and the same days a year earlier). These pure functions
let a caller that owns a profile see which days became final during a step
and what the baseline expected of each then, without changing the engine:

* :func:`mark` before a step (``process_inplace``, ``load_history``): the last
  final day and the baseline statistics;
* :func:`final_days` after it: the days that became final, each with the
  expectation and band of the statistics in the mark (the baseline that judged
  the day: the engine flags a day against the statistics before it is pushed);
* :func:`complete_open_days` when a new day begins: the days still inside the late
  window that are complete already (coverage at least ``min_day_coverage``), so a
  chart shows this week too; they are written again, final, when they leave it.

The band is the engine's own notion of an ordinary day: a day above
``max(expected + flag_z * sigma, flag_hi_ratio * expected)`` or below
``flag_lo_ratio * expected`` is flagged and kept out of the baseline. There is
no band before the baseline has 14 days (as for flagging).

>>> import datetime as dt
>>> from baselines.customer import CustomerConfig
>>> from baselines.engine import Engine
>>> from baselines.profile import Profile
>>> from baselines.readings import Reading
>>> eng, cust, p = Engine(), CustomerConfig("c1", timezone="UTC"), Profile.new("c1")
>>> got = []
>>> for i in range(40):
...     m = mark(p)
...     _ = eng.process_inplace(p, Reading.daily(dt.date(2024, 1, 1) + dt.timedelta(days=i), 8.0), cust)
...     got += final_days(m, p, eng.rules)
>>> len(got), dt.date.fromordinal(got[0].day), got[0].kwh, got[0].expected_kwh
(32, datetime.date(2024, 1, 1), 8.0, None)
>>> got[-1].kwh, got[-1].expected_kwh, got[-1].band_low, got[-1].band_high
(8.0, 8.0, 3.2, 12.8)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from baselines.baseline_stats import MIN_DAYS_FOR_SHAPE
from baselines.customer import CustomerConfig
from baselines.profile import Profile
from baselines.rules import RulesConfig
from baselines.stats import robust_sigma
from meterwatch.contracts import HistoryRow
from meterwatch.dailyarchive import DayRecord

__all__ = ["DayMark", "DayRecord", "expectation", "final_days", "load_history_with_days", "mark"]

MIN_BASELINE_DAYS = MIN_DAYS_FOR_SHAPE  # as the engine's flagging (14)
HISTORY_CHUNK_DAYS = 7  # the engine refreshes its statistics weekly


class DayMark(NamedTuple):
    """What :func:`final_days` compares against: the last final day and the baseline then."""

    last_final: int | None
    newest: int | None
    med: float | None
    mad: float | None
    n: int
    wf: tuple[float, ...]


def mark(p: Profile) -> DayMark:
    """The profile's last final day and baseline statistics (cheap: no copy).

    >>> mark(Profile.new("c")).last_final is None
    True
    """
    last = None if p.final_start is None or not p.final_days else p.final_start + len(p.final_days) - 1
    return DayMark(last, p.newest_day, p.baseline_median, p.baseline_mad, p.baseline_days, p.weekday_factors)


def expectation(m: DayMark, day: int, rules: RulesConfig) -> tuple[float, float, float] | None:
    """``(expected, band_low, band_high)`` kWh for ``day`` under the statistics of ``m``.

    >>> m = DayMark(None, None, 10.0, 1.0, 28, (1.0,) * 7)
    >>> expectation(m, 739311, RulesConfig())
    (10.0, 4.0, 16.0)
    >>> expectation(m._replace(n=5), 739311, RulesConfig()) is None
    True
    """
    if m.med is None or m.med <= 0 or m.n < MIN_BASELINE_DAYS:
        return None
    exp = m.med * m.wf[(day + 6) % 7]
    sig = robust_sigma(m.mad, exp)
    hi = max(exp + rules.flag_z * sig, rules.flag_hi_ratio * exp)
    return round(exp, 3), round(rules.flag_lo_ratio * exp, 3), round(hi, 3)


def final_days(before: DayMark, p: Profile, rules: RulesConfig) -> list[DayRecord]:
    """The days that became final since ``before`` was taken, oldest first.

    A day without a usable total (missing or partial) has ``kwh`` None.

    >>> final_days(mark(Profile.new("c")), Profile.new("c"), RulesConfig())
    []
    """
    if p.final_start is None or not p.final_days:
        return []
    last = p.final_start + len(p.final_days) - 1
    lo = p.final_start if before.last_final is None else max(p.final_start, before.last_final + 1)
    out: list[DayRecord] = []
    for d in range(lo, last + 1):
        e = expectation(before, d, rules)
        kwh = p.final_days[d - p.final_start]
        out.append(DayRecord(d, kwh, *(e if e is not None else (None, None, None))))
    return out


def complete_open_days(p: Profile, rules: RulesConfig) -> list[DayRecord]:
    """The complete days still in the late window (before the newest day), provisional.

    >>> import datetime as dt
    >>> from baselines.customer import CustomerConfig
    >>> from baselines.engine import Engine
    >>> from baselines.readings import Reading
    >>> p = Profile.new("c")
    >>> for i in range(3):
    ...     _ = Engine().process_inplace(p, Reading.daily(dt.date(2024, 1, 1) + dt.timedelta(days=i), 4.0),
    ...                                  CustomerConfig("c", timezone="UTC"))
    >>> [(dt.date.fromordinal(r.day).day, r.kwh) for r in complete_open_days(p, RulesConfig())]
    [(1, 4.0), (2, 4.0)]
    """
    if p.newest_day is None or not p.open_days:
        return []
    m = mark(p)
    out: list[DayRecord] = []
    for d in sorted(p.open_days):
        if d >= p.newest_day:
            continue
        acc = p.open_days[d]
        if acc.covered_s / 86400.0 < rules.min_day_coverage:
            continue
        e = expectation(m, d, rules)
        out.append(DayRecord(d, round(acc.kwh, 3), *(e if e is not None else (None, None, None))))
    return out


def load_history_with_days(
    engine: Any,
    profile: Profile,
    rows: Iterable[HistoryRow | Mapping[str, Any]],
    customer: CustomerConfig,
) -> tuple[Profile, list[DayRecord]]:
    """``engine.load_history`` that also returns the days it made final, with their expectations.

    The daily rows are loaded a week at a time (the same profile as one call: rows are
    applied in date order either way), so every day passes the ring of final days and
    gets the expectation of the week before it. When some daily rows are older than the
    late window of what the profile already holds (history after live readings), the
    engine sums them into cycles: then one call, and those days are kept with their kWh
    only.

    >>> import datetime as dt
    >>> from baselines.engine import Engine
    >>> rows = [HistoryRow(customer_id="c", day=dt.date(2024, 1, 1) + dt.timedelta(days=i), kwh=5.0)
    ...         for i in range(60)]
    >>> cust = CustomerConfig("c", timezone="UTC")
    >>> p, days = load_history_with_days(Engine(), Profile.new("c"), rows, cust)
    >>> len(days), days[-1].expected_kwh, p == Engine().load_history(Profile.new("c"), rows, cust)
    (59, 5.0, True)
    """
    rules: RulesConfig = engine.rules
    all_rows = [r if isinstance(r, HistoryRow) else HistoryRow.model_validate(r) for r in rows]
    cyc = [r for r in all_rows if r.day is None]
    day_rows = sorted((r for r in all_rows if r.day is not None), key=_ordinal)
    horizon = None if profile.newest_day is None else profile.newest_day - rules.late_window_days
    late = [r for r in day_rows if horizon is not None and _ordinal(r) < horizon]
    if late:
        m = mark(profile)
        p = engine.load_history(profile, all_rows, customer)
        known = {d.day for d in final_days(m, p, rules)}
        out = final_days(m, p, rules)
        out += [DayRecord(_ordinal(r), r.kwh) for r in late if _ordinal(r) not in known]
        return p, sorted(out, key=lambda d: d.day)
    p = engine.load_history(profile, cyc, customer) if cyc else profile.clone()
    out = []
    for i in range(0, len(day_rows), HISTORY_CHUNK_DAYS):
        m = mark(p)
        p = engine.load_history(p, day_rows[i : i + HISTORY_CHUNK_DAYS], customer)
        out += final_days(m, p, rules)
    return p, out + complete_open_days(p, rules)


def _ordinal(r: HistoryRow) -> int:
    return r.day.toordinal() if r.day is not None else 0
