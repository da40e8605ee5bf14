"""Special days: the public holidays of the customer's region and the periods the customer was away.

A household uses electricity differently on such days (at home all day over
Christmas or the Spring Festival, gone to the family home, away on a trip), so
a special day is no evidence of a habit change: it stays out of the baseline
statistics (``baselines.baseline_stats``) and out of the days the surge and
drop rules judge (``sudden_increase``, ``sustained_drop``: their skip reason
names it, ``baselines.calendar.holiday`` / ``baselines.calendar.away``).

Holidays come from the ``holidays`` package for the record's ``region`` (ISO
3166-1 country, optionally ``-`` subdivision: ``CN``, ``GB-ENG``). The days
between two holidays at most ``BRIDGE_DAYS`` apart are holiday too: the week
between Christmas and New Year, the whole Spring Festival break (its weekend
days and the days off in lieu are the break, even where the statutory list has
gaps), Easter's weekend.

Without a region and away periods nothing is special: every rule and the
baseline behave exactly as before.

>>> import datetime as dt
>>> [dt.date.fromordinal(d).isoformat() for d in sorted(holiday_days("GB-ENG", 2013)) if d >= 735222]
['2013-12-25', '2013-12-26', '2013-12-27', '2013-12-28', '2013-12-29', '2013-12-30', '2013-12-31']
>>> is_holiday("CN", dt.date(2024, 2, 13).toordinal()), is_holiday("CN", dt.date(2024, 3, 13).toordinal())
(True, False)
"""

from __future__ import annotations

import datetime as dt
import itertools
from functools import lru_cache

#: holidays at most this many days apart make one break (the days between are holiday too)
BRIDGE_DAYS = 7


@lru_cache(maxsize=512)
def holiday_days(region: str, year: int) -> frozenset[int]:
    """The holiday days (proleptic ordinals) of ``region`` in ``year``, breaks bridged.

    >>> import datetime as dt
    >>> easter = [dt.date.fromordinal(d).isoformat() for d in sorted(holiday_days("GB-ENG", 2014))][1:5]
    >>> easter   # Good Friday to Easter Monday: the weekend between is part of the break
    ['2014-04-18', '2014-04-19', '2014-04-20', '2014-04-21']
    """
    import holidays  # the `holidays` package: public holidays per country and subdivision

    country, _, subdiv = region.partition("-")
    cal = holidays.country_holidays(country, subdiv=subdiv or None, years=(year - 1, year, year + 1))
    days = sorted(d.toordinal() for d in cal)
    out: set[int] = set(days)
    for a, b in itertools.pairwise(days):
        if b - a <= BRIDGE_DAYS:
            out.update(range(a + 1, b))
    lo, hi = dt.date(year, 1, 1).toordinal(), dt.date(year + 1, 1, 1).toordinal()
    return frozenset(d for d in out if lo <= d < hi)


def is_holiday(region: str, day: int) -> bool:
    """Whether ``day`` (a proleptic ordinal) is a public holiday (or inside a break) in ``region``.

    >>> import datetime as dt
    >>> is_holiday("GB-ENG", dt.date(2013, 12, 30).toordinal())
    True
    >>> is_holiday("GB", dt.date(2013, 7, 1).toordinal())
    False
    """
    return day in holiday_days(region, dt.date.fromordinal(day).year)


def special_day(region: str | None, away: tuple[tuple[int, int], ...], day: int) -> str | None:
    """``"away"`` if ``day`` is in one of the ``away`` periods (first, last day; ordinals), else
    ``"holiday"`` on a holiday of ``region``, else ``None``.

    >>> special_day(None, (), 738900), special_day(None, ((738890, 738900),), 738900)
    (None, 'away')
    >>> import datetime as dt
    >>> special_day("CN", (), dt.date(2024, 10, 5).toordinal())
    'holiday'
    """
    for first, last in away:
        if first <= day <= last:
            return "away"
    if region is not None and is_holiday(region, day):
        return "holiday"
    return None
