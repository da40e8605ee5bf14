"""Occupant changes: a new tenant or owner is a new household, with habits of its own.

The registry record's ``occupant_since`` (set by the billing system, the workbench or
``PUT /v1/customers/{id}/occupant``) is the latest move-in day. When it changes:

* the baseline starts learning afresh: the ring days before the move-in stay (shown,
  billed) but leave the statistics (``special_flags``), so the rules that need a
  baseline wait for ``min_baseline_days`` of the new occupant
  (``baselines.sufficiency.too_few_days``);
* the same-period comparison is switched off while last year's same period was
  the previous occupant's (``baselines.occupancy.new_occupant``, with the move-in
  day and the day comparisons resume): a new tenant using twice what the last one
  did is no anomaly, and must not be told again every cycle;
* the history is kept (closed cycles, alerts, money).

A correction to an earlier move-in day than the one applied keeps the later one's
exclusions (the days in between stay out of the baseline).

>>> p = Profile.new("c"); p.final_start, p.final_days = 700_000, [5.0] * 20
>>> start_occupancy(p, 700_015); p.occupant_from, p.baseline_days, p.baseline_median
(700015, 5, 5.0)
>>> compared_with_previous_occupant(700_100, 700_015), compared_with_previous_occupant(700_400, 700_015)
(True, False)
"""

from __future__ import annotations

from baselines.baseline_stats import recompute
from baselines.profile import Profile

NEW_OCCUPANT = "baselines.occupancy.new_occupant"
#: last year's same period is one year back (billing cycles repeat yearly)
YEAR_DAYS = 365


def start_occupancy(p: Profile, since: int) -> None:
    """Restart the baseline for an occupant living there from ``since`` (a proleptic ordinal).

    >>> p = Profile.new("c"); start_occupancy(p, 700_000); p.occupant_from, p.special_flags
    (700000, 0)
    """
    p.occupant_from = since
    if p.final_start is None:
        return
    n = min(len(p.final_days), max(0, since - p.final_start))
    if n:
        before = (1 << n) - 1
        p.special_flags |= before
        p.high_flags &= ~before
        p.low_flags &= ~before
        recompute(p)


def compared_with_previous_occupant(cycle_start: int, since: int | None) -> bool:
    """Whether the same period of the cycle starting ``cycle_start`` (one year earlier) was, at least
    in part, before the occupant living there from ``since`` moved in.

    >>> compared_with_previous_occupant(700_100, None)
    False
    """
    return since is not None and since > cycle_start - YEAR_DAYS
