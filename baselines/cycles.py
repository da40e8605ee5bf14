"""Billing-cycle arithmetic.

A customer's billing (meter-reading) cycle starts on its ``read_day`` (1-28) and
lasts ``cycle_months`` (1 or 2) months. A cycle is the half-open range of local
dates ``[start, end_excl)``; what leaves the package (Alert, BaselineSnapshot)
shows ``end`` as the last day *included* (``end_excl - 1 day``).

Bi-monthly cycles start in odd months (January, March, ...): the month index
``year * 12 + month - 1`` is even.

Because ``read_day`` is at most 28, every month has the read day, so month ends
and leap years need no special case: the same-period cycle one year earlier
simply starts on the same day of the same month a year before.

>>> import datetime as dt
>>> cycle_containing(dt.date(2024, 3, 4), read_day=5, cycle_months=1)
(datetime.date(2024, 2, 5), datetime.date(2024, 3, 5))
>>> same_period(dt.date(2024, 2, 5), dt.date(2024, 3, 5))
(datetime.date(2023, 2, 5), datetime.date(2023, 3, 5))
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

ONE_DAY = dt.timedelta(days=1)


def _month_index(d: dt.date) -> int:
    return d.year * 12 + d.month - 1


def _from_month_index(idx: int, day: int) -> dt.date:
    return dt.date(idx // 12, idx % 12 + 1, day)


def cycle_containing(day: dt.date, read_day: int, cycle_months: int = 1) -> tuple[dt.date, dt.date]:
    """The cycle ``(start, end_excl)`` that contains the local date ``day``.

    >>> import datetime as dt
    >>> cycle_containing(dt.date(2024, 2, 29), read_day=1)
    (datetime.date(2024, 2, 1), datetime.date(2024, 3, 1))
    >>> cycle_containing(dt.date(2024, 1, 14), read_day=15)
    (datetime.date(2023, 12, 15), datetime.date(2024, 1, 15))
    >>> cycle_containing(dt.date(2024, 4, 20), read_day=10, cycle_months=2)
    (datetime.date(2024, 3, 10), datetime.date(2024, 5, 10))
    """
    if not 1 <= read_day <= 28:
        raise ValueError(f"read_day must be 1-28, got {read_day}")
    if cycle_months not in (1, 2):
        raise ValueError(f"cycle_months must be 1 or 2, got {cycle_months}")
    idx = _month_index(day)
    if day.day < read_day:
        idx -= 1
    idx -= idx % cycle_months
    start = _from_month_index(idx, read_day)
    return start, _from_month_index(idx + cycle_months, read_day)


def next_boundary(after: dt.date, read_day: int, cycle_months: int = 1) -> dt.date:
    """The first cycle start strictly after ``after``.

    >>> import datetime as dt
    >>> next_boundary(dt.date(2024, 1, 31), read_day=1)
    datetime.date(2024, 2, 1)
    >>> next_boundary(dt.date(2024, 2, 1), read_day=1)
    datetime.date(2024, 3, 1)
    """
    return cycle_containing(after, read_day, cycle_months)[1]


def cycle_end_for(start: dt.date, read_day: int, cycle_months: int = 1) -> dt.date:
    """The exclusive end of a running cycle that began on ``start``.

    Normally the next read day. When the customer's read day (or cycle length)
    changed since ``start``, the transitional cycle ends on the first boundary
    of the new schedule that leaves it at least 14 days (28 for bi-monthly),
    so it is between about half and one and a half normal cycles long.

    >>> import datetime as dt
    >>> cycle_end_for(dt.date(2024, 1, 5), read_day=5)
    datetime.date(2024, 2, 5)
    >>> cycle_end_for(dt.date(2024, 1, 5), read_day=20)   # read day moved 5 -> 20
    datetime.date(2024, 1, 20)
    >>> cycle_end_for(dt.date(2024, 1, 5), read_day=8)    # 3 days would be too short
    datetime.date(2024, 2, 8)
    """
    end = next_boundary(start, read_day, cycle_months)
    min_days = 14 * cycle_months
    while (end - start).days < min_days:
        end = next_boundary(end, read_day, cycle_months)
    return end


def _minus_year(d: dt.date) -> dt.date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:  # 29 February (only reachable for transitional ends)
        return d.replace(year=d.year - 1, day=28)


def same_period(start: dt.date, end_excl: dt.date) -> tuple[dt.date, dt.date]:
    """The same-period window one year earlier (同期).

    >>> import datetime as dt
    >>> same_period(dt.date(2024, 2, 1), dt.date(2024, 3, 1))
    (datetime.date(2023, 2, 1), datetime.date(2023, 3, 1))
    """
    return _minus_year(start), _minus_year(end_excl)


def previous_cycle(start: dt.date, read_day: int, cycle_months: int = 1) -> tuple[dt.date, dt.date]:
    """The regular cycle just before the one starting on ``start``.

    >>> import datetime as dt
    >>> previous_cycle(dt.date(2024, 3, 1), read_day=1)
    (datetime.date(2024, 2, 1), datetime.date(2024, 3, 1))
    """
    return cycle_containing(start - ONE_DAY, read_day, cycle_months)


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """A cached ``ZoneInfo`` (raises ``ValueError`` for an unknown zone).

    >>> zone("Europe/London").key
    'Europe/London'
    """
    try:
        return ZoneInfo(name)
    except Exception as exc:  # ZoneInfoNotFoundError, bad key
        raise ValueError(f"unknown timezone {name!r}") from exc


def local_midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The aware datetime of local midnight at the start of ``day``.

    >>> import datetime as dt
    >>> local_midnight(dt.date(2024, 7, 1), zone("Europe/London")).isoformat()
    '2024-07-01T00:00:00+01:00'
    """
    return dt.datetime.combine(day, dt.time(), tzinfo=tz)


def day_bounds_epoch(day: dt.date, tz: ZoneInfo) -> tuple[float, float]:
    """Epoch seconds of the local start and end of ``day`` (23 h or 25 h on DST days).

    >>> import datetime as dt
    >>> a, b = day_bounds_epoch(dt.date(2024, 3, 31), zone("Europe/London"))
    >>> (b - a) / 3600
    23.0
    """
    return local_midnight(day, tz).timestamp(), local_midnight(day + ONE_DAY, tz).timestamp()


def fraction_elapsed(at: dt.datetime, start: dt.date, end_excl: dt.date, tz: ZoneInfo) -> float:
    """Fraction (0-1) of the cycle elapsed at the aware instant ``at``, in real time.

    >>> import datetime as dt
    >>> tz = zone("Europe/London")
    >>> at = dt.datetime(2024, 4, 16, 0, 0, tzinfo=tz)
    >>> round(fraction_elapsed(at, dt.date(2024, 4, 1), dt.date(2024, 5, 1), tz), 3)
    0.5
    """
    t0 = local_midnight(start, tz).timestamp()
    t1 = local_midnight(end_excl, tz).timestamp()
    return min(1.0, max(0.0, (at.timestamp() - t0) / (t1 - t0)))


def local_date(epoch: float, tz: ZoneInfo) -> dt.date:
    """The local date of an epoch instant.

    >>> local_date(1719788400.0, zone("Europe/London"))   # 2024-06-30T23:00Z
    datetime.date(2024, 7, 1)
    """
    return dt.datetime.fromtimestamp(epoch, tz).date()
