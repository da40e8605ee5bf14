"""Interval readings split into time-of-use periods, per local day.

An interval reading covers ``[ts - interval_s, ts)``. Each part of it inside
one local hour goes to that hour's period (the periods of the price version
in force on that local day), pro rata of the seconds; a reading that spans
midnight is split between the two days. Local time is the customer's
timezone (DST-aware: the hour of each piece is read on the local clock).

>>> import datetime as dt
>>> from baselines.tariffs.catalogue import default_catalogue
>>> zj = default_catalogue().plan("cn-zj-residential-tou")
>>> utc = dt.timezone.utc
>>> rs = [(dt.datetime(2024, 1, 1, 0, 30, tzinfo=utc), 1.0, 1800),   # 08:00-08:30 Shanghai: peak
...       (dt.datetime(2024, 1, 1, 14, 30, tzinfo=utc), 0.5, 3600)]  # 21:30-22:30: half peak, half valley
>>> split_intervals(zj, rs, "Asia/Shanghai")
{datetime.date(2024, 1, 1): {'peak': 1.25, 'valley': 0.25}}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from baselines.tariffs.bill import Day, DayUse, ordinal

if TYPE_CHECKING:
    from baselines.tariffs.catalogue import Plan

Interval = tuple[dt.datetime, float, int]  # (end, kWh, interval seconds)


def split_intervals(
    plan: Plan, readings: Iterable[Interval], tz: ZoneInfo | str
) -> dict[dt.date, dict[str, float]]:
    """kWh per local day and TOU period (a plan without TOU puts everything in ``all``)."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    cp = plan.compiled
    out: dict[dt.date, dict[str, float]] = {}
    for end, kwh, seconds in readings:
        if end.tzinfo is None:
            raise ValueError(f"reading time {end.isoformat()} has no UTC offset")
        if seconds <= 0:
            raise ValueError(f"interval must be > 0 s, got {seconds}")
        t = end - dt.timedelta(seconds=seconds)
        while t < end:
            local = t.astimezone(zone)
            into_hour = local.minute * 60 + local.second + local.microsecond / 1e6
            piece_end = min(end, t + dt.timedelta(seconds=3600 - into_hour))
            share = (piece_end - t).total_seconds() / seconds
            day = local.date()
            v = cp.versions[cp.version_index(day.toordinal())]
            name = v.periods[v.hour_period[local.hour]] if v.periods else "all"
            bucket = out.setdefault(day, {})
            bucket[name] = bucket.get(name, 0.0) + kwh * share
            t = piece_end
    return out


def day_uses(start: Day, end: Day, by_day: Mapping[dt.date, Mapping[str, float]]) -> list[DayUse]:
    """The day uses of ``[start, end)`` from :func:`split_intervals` (``None`` for a day without data).

    >>> import datetime as dt
    >>> day_uses(dt.date(2024, 1, 1), dt.date(2024, 1, 3), {dt.date(2024, 1, 2): {"peak": 1.0}})
    [None, {'peak': 1.0}]
    """
    return [by_day.get(dt.date.fromordinal(o)) for o in range(ordinal(start), ordinal(end))]
