"""Occupant changes: a new tenant or owner is a new household, with habits of its own.

The registry record's ``occupant_since`` (set by the billing system, the workbench or
``PUT /v1/customers/{id}/occupancy``) is the latest move-in day. When it changes:

* the baseline starts learning afresh: the ring days before the move-in stay (shown,
  billed) but leave the statistics (``special_flags``, derived again by
  ``baselines.special_days.refresh_ring``, so a corrected move-in day applies too), and
  the rules that need a baseline wait for ``min_baseline_days`` of the new occupant
  (``baselines.sufficiency.too_few_days``);
* the same-period comparison is switched off while any of last year's same-period data
  is the previous occupant's (``baselines.occupancy.new_occupant``, with the move-in
  day and the day one year on): a new tenant using twice what the last one did is no
  anomaly, and must not be told again every cycle;
* the history is kept (closed cycles, alerts, money).

>>> import datetime as dt
>>> from baselines.profile import ClosedCycleT
>>> p = Profile.new("c"); mar = dt.date(2023, 3, 1).toordinal()
>>> p.closed_cycles.append(ClosedCycleT(mar, mar + 31, 300.0, 1.0))       # March 2023
>>> apr24 = dt.date(2024, 4, 1).toordinal()
>>> compared_with_previous_occupant(p, apr24, apr24 + 30, mar + 10)     # moved in 11 March 2023
False
>>> compared_with_previous_occupant(p, mar + 366, mar + 397, mar + 10)  # March 2024 vs March 2023
True
"""

from __future__ import annotations

import datetime as dt

from baselines.cycles import same_period
from baselines.profile import Profile

NEW_OCCUPANT = "baselines.occupancy.new_occupant"


def compared_with_previous_occupant(p: Profile, start: int, end: int, since: int | None) -> bool:
    """Whether the same-period basis of the cycle ``[start, end)`` (last year's days, and the whole
    closed cycles they are pro-rated from) begins before the occupant living there from ``since``.

    >>> compared_with_previous_occupant(Profile.new("c"), 738900, 738930, None)
    False
    """
    if since is None:
        return False
    s1d, e1d = same_period(dt.date.fromordinal(start), dt.date.fromordinal(end))
    s1, e1 = s1d.toordinal(), e1d.toordinal()
    first = min((c.start for c in p.closed_cycles if c.start < e1 and c.end > s1), default=s1)
    return since > min(first, s1)


def one_year_on(day: int) -> dt.date:
    """The same date one year later (29 February: 1 March).

    >>> one_year_on(dt.date(2024, 2, 29).toordinal()), one_year_on(dt.date(2024, 3, 10).toordinal())
    (datetime.date(2025, 3, 1), datetime.date(2025, 3, 10))
    """
    d = dt.date.fromordinal(day)
    try:
        return d.replace(year=d.year + 1)
    except ValueError:
        return dt.date(d.year + 1, 3, 1)
