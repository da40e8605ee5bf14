"""Special days: the public holidays of the customer's region and the periods the customer was away.

A household uses electricity differently on such days (at home all day over
Christmas or the Spring Festival, gone to the family home, away on a trip), so
a special day is no evidence of a habit change: it stays out of the baseline
statistics (``baselines.baseline_stats``) and out of the days the surge and
drop rules judge (``sudden_increase``, ``sustained_drop``: their skip reason
names it, ``baselines.calendar.holiday`` / ``baselines.calendar.away``).

Holidays come from the ``holidays`` package for the record's ``region`` (ISO
3166-1 country, optionally ``-`` subdivision: ``CN``, ``GB-ENG``). The days
between two holidays at most ``BRIDGE_DAYS`` apart are holiday too (the whole
Spring Festival break, where the statutory list has gaps; Easter's weekend), and so
is the week between Christmas and New Year where both are holidays.

The ring's special days (``Profile.special_flags``) follow the customer's calendar:
a day is flagged when it leaves the late window, and the whole ring is derived
again (:func:`refresh_ring`) when the record's region, away periods or move-in day
(``baselines.occupancy``) change, so an absence declared afterwards or a corrected
move-in day applies to the days already kept.

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

from baselines.baseline_stats import recompute
from baselines.customer import CustomerConfig
from baselines.profile import Profile

#: holidays at most this many days apart make one break (the days between are holiday too: a
#: weekend between Good Friday and Easter Monday, a bridge day); no more, so two unrelated
#: holidays a week apart stay two days
BRIDGE_DAYS = 4
#: the week between Christmas Day and New Year's Day is a break wherever both are holidays
XMAS, NEW_YEAR = (12, 25), (1, 1)


@lru_cache(maxsize=512)
def holiday_days(region: str, year: int) -> frozenset[int]:
    """The holiday days (proleptic ordinals) of ``region`` in ``year``, breaks bridged.

    Weekly rest days some calendars list as holidays (Sweden's Sundays) are not holidays here.

    >>> import datetime as dt
    >>> easter = [dt.date.fromordinal(d).isoformat() for d in sorted(holiday_days("GB-ENG", 2014))][1:5]
    >>> easter   # Good Friday to Easter Monday: the weekend between is part of the break
    ['2014-04-18', '2014-04-19', '2014-04-20', '2014-04-21']
    >>> len(holiday_days("SE", 2024)) < 30   # not every Sunday
    True
    """
    days = sorted(_listed(region, year - 1) | _listed(region, year) | _listed(region, year + 1))
    out: set[int] = set(days)
    for a, b in itertools.pairwise(days):
        if b - a <= BRIDGE_DAYS:
            out.update(range(a + 1, b))
    for y in (year - 1, year):
        xmas, new_year = dt.date(y, *XMAS).toordinal(), dt.date(y + 1, *NEW_YEAR).toordinal()
        if xmas in out and new_year in out:
            out.update(range(xmas + 1, new_year))
    lo, hi = dt.date(year, 1, 1).toordinal(), dt.date(year + 1, 1, 1).toordinal()
    return frozenset(d for d in out if lo <= d < hi)


@lru_cache(maxsize=512)
def _listed(region: str, year: int) -> frozenset[int]:
    """The days the ``holidays`` package lists for ``region`` in ``year`` (weekly rest days left out)."""
    import holidays  # the `holidays` package: public holidays per country and subdivision

    country, _, subdiv = region.partition("-")
    try:
        cal = holidays.country_holidays(country, subdiv=subdiv or None, years=year, language="en_US")
    except (NotImplementedError, ValueError):  # no English names for this calendar
        cal = holidays.country_holidays(country, subdiv=subdiv or None, years=year)
    return frozenset(d.toordinal() for d in cal if any(n != "Sunday" for n in cal.get_list(d)))


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


def excluded(customer: CustomerConfig, day: int) -> bool:
    """Whether ``day`` stays out of the customer's baseline: a holiday, an away day, or a day
    before the current occupant moved in (``baselines.occupancy``).

    >>> c = CustomerConfig("c", occupant_since=738900)
    >>> excluded(c, 738899), excluded(c, 738900), excluded(CustomerConfig("c"), 738899)
    (True, False, False)
    """
    occ = customer.occupant_since
    if occ is not None and day < occ:
        return True
    return customer.has_special_days and special_day(customer.region, customer.away, day) is not None


def refresh_ring(p: Profile, customer: CustomerConfig) -> None:
    """Derive the ring's special days again for the customer's calendar (it changed: a region, an
    away period, a move-in day) and refresh the statistics if they moved.

    >>> p = Profile.new("c"); p.final_start, p.final_days = 738890, [5.0] * 15 + [9.0] * 5
    >>> refresh_ring(p, CustomerConfig("c", occupant_since=738905)); p.baseline_median, p.baseline_days
    (9.0, 5)
    >>> refresh_ring(p, CustomerConfig("c")); p.baseline_median, p.special_flags, p.calendar_key
    (5.0, 0, None)
    """
    p.calendar_key = customer.calendar_key
    if p.final_start is None:
        return
    mask = 0
    for i in range(len(p.final_days)):
        if excluded(customer, p.final_start + i):
            mask |= 1 << i
    if mask != p.special_flags:
        p.special_flags = mask
        p.high_flags &= ~mask  # a special day is never flagged high or low
        p.low_flags &= ~mask
        recompute(p)
