"""The late window: readings land on local days that stay open until they are final.

A day is *open* while it is at most ``late_window_days`` behind the newest day
seen (late readings still change it); when it leaves the window it becomes
*final*: its total is booked into its billing cycle and pushed to the baseline
ring (``baseline_stats``), and cycles whose days are all final close.

Also here: ``DayLocator`` (which local day an instant falls on, cached) and
``FoldOutcome`` (what folding one reading did), shared by the interval/daily
fold (``baselines.fold``) and the register fold (``baselines.register``).
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple
from zoneinfo import ZoneInfo

from baselines.baseline_stats import add_to_final_day, push_final_day
from baselines.customer import CustomerConfig
from baselines.cycle_book import add_final_day, add_late_kwh, close_cycles_before, ensure_cycles
from baselines.cycles import day_bounds_epoch, local_date
from baselines.plans import Tariffs
from baselines.profile import DAILY_GRANULARITY_S, REGISTER_GRANULARITY_S, OpenDay, Profile
from baselines.rules.config import RulesConfig
from baselines.special_days import excluded
from baselines.tou_days import drop_closed, keep_final_day
from meterwatch.contracts import Reason

# the night share is an exponential average: old * KEEP + new day * WEIGHT
NIGHT_SHARE_KEEP = 0.9
NIGHT_SHARE_WEIGHT = 0.1


class FoldOutcome(NamedTuple):
    """What folding one reading into a profile did.

    ``provisional``: an estimated register read was only remembered (the rules
    are not evaluated and ``latest_ts`` does not move); ``closes_newest``: the
    reading completed the newest day, so the rules may evaluate as of it.
    An applied reading's outcome is always one of the shared ``APPLIED`` /
    ``APPLIED_CLOSING`` values (the engine tests them by identity).
    """

    rejected: Reason | None = None
    duplicate: bool = False
    provisional: bool = False
    closes_newest: bool = False


# shared outcomes: the hot path allocates none
APPLIED = FoldOutcome()
APPLIED_CLOSING = FoldOutcome(closes_newest=True)
DUPLICATE = FoldOutcome(duplicate=True)
PROVISIONAL = FoldOutcome(provisional=True)


def rejected(code: str, message: str, **numbers: float | int | str | None) -> FoldOutcome:
    """A rejection with its reason (``code`` is one of ``baselines.readings.*``).

    >>> rejected("baselines.readings.too_late", "old", days=9).rejected.numbers
    {'days': 9}
    """
    return FoldOutcome(rejected=Reason(code=code, message=message, numbers=numbers))


def date_of(ordinal: int) -> dt.date:
    """The date of a proleptic ordinal.

    >>> date_of(738886)
    datetime.date(2024, 1, 1)
    """
    return dt.date.fromordinal(ordinal)


def iso_utc(epoch: float) -> str:
    """An epoch time as ISO-8601 in UTC (for the numbers of a rejection).

    >>> iso_utc(1704067200.0)
    '2024-01-01T00:00:00+00:00'
    """
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


class DayLocator:
    """Which local day an instant falls on, with the day's bounds.

    Why a cache: consecutive readings of a customer (and of the customers of
    one zone) fall on the same local day, and ``ZoneInfo`` conversions cost
    microseconds; the last day seen per zone answers most calls.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, float, int]] = {}

    def locate(self, epoch: float, tz: ZoneInfo) -> tuple[int, float, float]:
        """(day ordinal, local start epoch, local end epoch) of the day containing ``epoch``.

        >>> from baselines.cycles import zone
        >>> day, start, end = DayLocator().locate(1719788400.0, zone("Europe/London"))  # 2024-06-30T23:00Z
        >>> date_of(day), end - start
        (datetime.date(2024, 7, 1), 86400.0)
        """
        c = self._last.get(tz.key)
        if c is not None and c[0] <= epoch < c[1]:
            return c[2], c[0], c[1]
        day = local_date(epoch, tz)
        s, e = day_bounds_epoch(day, tz)
        self._last[tz.key] = (s, e, day.toordinal())
        return day.toordinal(), s, e


def advance(
    p: Profile, newest: int, customer: CustomerConfig, config: RulesConfig, tariffs: Tariffs | None = None
) -> None:
    """Move the newest day to ``newest``: finalise the days that left the window, close cycles.

    ``tariffs``: for customers on a time-of-use plan, the final days' kWh per period are kept
    (``baselines.tou_days``); without it, none are.

    >>> import datetime as dt
    >>> from baselines.customer import CustomerConfig
    >>> from baselines.profile import OpenDay
    >>> from baselines.rules.config import RulesConfig
    >>> p, cust, cfg = Profile.new("c"), CustomerConfig("c", timezone="UTC"), RulesConfig()
    >>> day = dt.date(2024, 1, 1).toordinal()
    >>> p.open_days[day] = OpenDay(7.0, 86400.0, 1, 86400, None, 0.0)
    >>> advance(p, day, cust, cfg); advance(p, day + 8, cust, cfg)
    >>> sorted(p.open_days), p.final_days
    ([], [7.0])
    """
    p.newest_day = newest
    cycles = p.open_cycles
    if not cycles or cycles[-1].end <= newest or newest < cycles[0].start:  # mostly covered: skip the call
        ensure_cycles(p, newest, customer)
    horizon = newest - config.late_window_days
    if p.open_days:
        old = []
        for d in p.open_days:  # a loop, not a comprehension: no extra frame (Python 3.11)
            if d < horizon:
                old.append(d)
        if old:
            old.sort()
            for d in old:
                finalize_day(p, d, p.open_days.pop(d), customer, config, tariffs)
    if len(cycles) > 1 and cycles[0].end <= horizon:  # rarely: skip the call
        close_cycles_before(p, horizon)
        drop_closed(p)


def finalize_day(
    p: Profile,
    day: int,
    acc: OpenDay,
    customer: CustomerConfig,
    config: RulesConfig,
    tariffs: Tariffs | None = None,
) -> None:
    """Book a day that left the late window: its cycle, the night share, the baseline ring (and, for
    a time-of-use plan, its kWh per period).

    >>> import datetime as dt
    >>> from baselines.customer import CustomerConfig
    >>> from baselines.rules.config import RulesConfig
    >>> p = Profile.new("c")
    >>> half_day = OpenDay(6.0, 43200.0, 3, 1800, None, 1.0)
    >>> finalize_day(p, 700_000, half_day, CustomerConfig("c", timezone="UTC"), RulesConfig())
    >>> p.final_days, p.night_share   # half a day covered: no value for the baseline
    ([None], None)
    """
    if acc.granularity_s == DAILY_GRANULARITY_S:
        cov = acc.covered_s / DAILY_GRANULARITY_S
    else:
        s, e = day_bounds_epoch(date_of(day), customer.tz)
        cov = min(1.0, acc.covered_s / (e - s))
    add_final_day(p, day, acc.kwh, cov)
    value = round(acc.kwh, 3) if cov >= config.min_day_coverage else None
    if (
        value is not None
        and acc.granularity_s not in (DAILY_GRANULARITY_S, REGISTER_GRANULARITY_S)
        and value > 0
    ):
        ns = acc.night_kwh / value
        old = p.night_share
        p.night_share = round(ns if old is None else NIGHT_SHARE_KEEP * old + NIGHT_SHARE_WEIGHT * ns, 4)
    # a holiday, an away day or a previous occupant's day stays out of the statistics
    push_final_day(p, day, value, config, customer.calendar_key is not None and excluded(customer, day))
    if tariffs is not None and acc.values is not None:
        keep_final_day(p, day, acc, customer, tariffs)


def book_final(p: Profile, day: int, kwh: float) -> None:
    """Add kWh to a day that already left the late window (register spreads only).

    >>> from baselines.profile import OpenCycle
    >>> p = Profile.new("c"); p.open_cycles.append(OpenCycle(10, 40, 5.0, 1.0))
    >>> p.final_start, p.final_days = 10, [5.0]
    >>> book_final(p, 10, 1.0); p.open_cycles[0].kwh, p.final_days
    (6.0, [6.0])
    """
    add_late_kwh(p, day, kwh)
    add_to_final_day(p, day, kwh)
