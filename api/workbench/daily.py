"""The daily series of a customer (``GET /v1/customers/{id}/daily``, the customer page's charts).

One ``GET`` of the customer's daily archive (``meterwatch.dailyarchive``) gives
every day's kWh with the baseline's expectation and band as they stood when the
day became final; ``last_year_kwh`` is the same calendar day a year earlier
(29 February: the 28th). ``cost`` is the day's bill under the customer's tariff plan
(its ``tariff_plan``, else the default plan of its tariff category; null without one):
the energy at the prices in force that day, in the tier the customer's consumption
had reached (the tariff year's or the billing cycle's archived days before it), plus
the day's standing charge, rounded as bills round. Days missing from the archive
count as zero towards the tier; time-of-use plans use their documented daily split.

>>> import datetime as dt
>>> last_year(dt.date(2024, 2, 29)), last_year(dt.date(2025, 3, 1))
(datetime.date(2023, 2, 28), datetime.date(2024, 3, 1))
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from baselines.tariffs import NoPriceError, Plan, bill
from meterwatch.dailyarchive import DayRecord, decode

DEFAULT_DAYS = 90
MAX_DAYS = 400


class DailyPoint(BaseModel):
    day: dt.date
    kwh: float | None = Field(default=None, description="Final daily total (null: no or partial data).")
    expected_kwh: float | None = Field(
        default=None, description="What the baseline expected that day (weekday-adjusted median)."
    )
    band_low: float | None = Field(
        default=None, description="Below this, the baseline treats the day as unusual."
    )
    band_high: float | None = Field(
        default=None, description="Above this, the baseline treats the day as unusual."
    )
    last_year_kwh: float | None = Field(default=None, description="The same calendar day a year earlier.")
    cost: float | None = Field(
        default=None, description="The day's cost under the customer's tariff (when known)."
    )


class DailySeries(BaseModel):
    """``GET /v1/customers/{customer_id}/daily``: one entry per day of the range, oldest first."""

    customer_id: str
    days: list[DailyPoint] = Field(default_factory=list)


def last_year(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def latest_day(archive: dict[int, DayRecord]) -> dt.date | None:
    """The newest day with a kWh value in the archive."""
    known = [d for d, r in archive.items() if r.kwh is not None]
    return dt.date.fromordinal(max(known)) if known else None


def series(
    customer_id: str,
    blob: bytes | None,
    start: dt.date,
    end: dt.date,
    plan: Plan | None = None,
    cycle_starts: list[dt.date] | None = None,
) -> DailySeries:
    """The days ``start``..``end`` (inclusive) from an archive blob, priced under ``plan``.

    ``cycle_starts``: the billing cycles' first days (ascending), for plans whose tiers
    count per cycle.
    """
    arch = decode(blob)
    out: list[DailyPoint] = []
    d = start
    while d <= end:
        r = arch.get(d.toordinal())
        ly = arch.get(last_year(d).toordinal())
        out.append(
            DailyPoint(
                day=d,
                kwh=r.kwh if r else None,
                expected_kwh=r.expected_kwh if r else None,
                band_low=r.band_low if r else None,
                band_high=r.band_high if r else None,
                last_year_kwh=ly.kwh if ly else None,
                cost=day_cost(plan, d, r.kwh, arch, cycle_starts or []) if r and r.kwh is not None else None,
            )
        )
        d += dt.timedelta(days=1)
    return DailySeries(customer_id=customer_id, days=out)


def tier_period_start(plan: Plan, day: dt.date, cycle_starts: list[dt.date]) -> dt.date:
    """The first day of the tier period containing ``day`` (``day`` itself without tiers).

    >>> from baselines.tariffs.catalogue import default_catalogue
    >>> cat = default_catalogue()
    >>> tier_period_start(cat.plan("cn-js-residential"), dt.date(2024, 5, 9), [])
    datetime.date(2024, 1, 1)
    >>> tier_period_start(cat.plan("uk-london-standard"), dt.date(2024, 5, 9), [])
    datetime.date(2024, 5, 9)
    """
    cp = plan.compiled
    if cp.tier_period == "year":
        return dt.date.fromordinal(cp.year_start_of(day.toordinal()))
    if cp.tier_period == "cycle":
        before = [c for c in cycle_starts if c <= day]
        return before[-1] if before else day.replace(day=1)  # no cycle known: the calendar month
    return day


def day_cost(
    plan: Plan | None, day: dt.date, kwh: float, archive: dict[int, DayRecord], cycle_starts: list[dt.date]
) -> float | None:
    """The bill of one day (see the module doc); None without a plan or a price that day.

    >>> from baselines.tariffs.catalogue import default_catalogue
    >>> js = default_catalogue().plan("cn-js-residential")
    >>> day_cost(js, dt.date(2024, 7, 1), 20.0, {}, [])  # tier 1: 20 kWh at 0.5283
    10.57
    >>> full = {dt.date(2024, 1, 1).toordinal() + i: DayRecord(dt.date(2024, 1, 1).toordinal() + i, 20.0)
    ...         for i in range(182)}
    >>> day_cost(js, dt.date(2024, 7, 1), 20.0, full, [])  # 3,640 kWh before: tier 2 (+0.05)
    11.57
    """
    if plan is None:
        return None
    first = tier_period_start(plan, day, cycle_starts).toordinal()
    before = sum(r.kwh for o in range(first, day.toordinal()) if (r := archive.get(o)) and r.kwh)
    try:
        return float(bill(plan, day, [kwh], tier_kwh_before=before).total)
    except NoPriceError:
        return None


def default_range(blob: bytes | None, today: dt.date, days: int = DEFAULT_DAYS) -> tuple[dt.date, dt.date]:
    """The last ``days`` days up to the newest archived day (or ``today`` when there is none)."""
    end = latest_day(decode(blob)) or today
    return end - dt.timedelta(days=days - 1), end
