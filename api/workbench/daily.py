"""The daily series of a customer (``GET /v1/customers/{id}/daily``, the customer page's charts).

One ``GET`` of the customer's daily archive (``meterwatch.dailyarchive``) gives
every day's kWh with the baseline's expectation and band as they stood when the
day became final; ``last_year_kwh`` is the same calendar day a year earlier
(29 February: the 28th). ``cost`` is null until the registry carries a tariff
plan per customer (issue #13).

>>> import datetime as dt
>>> last_year(dt.date(2024, 2, 29)), last_year(dt.date(2025, 3, 1))
(datetime.date(2023, 2, 28), datetime.date(2024, 3, 1))
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

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


def series(customer_id: str, blob: bytes | None, start: dt.date, end: dt.date) -> DailySeries:
    """The days ``start``..``end`` (inclusive) from an archive blob."""
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
            )
        )
        d += dt.timedelta(days=1)
    return DailySeries(customer_id=customer_id, days=out)


def default_range(blob: bytes | None, today: dt.date, days: int = DEFAULT_DAYS) -> tuple[dt.date, dt.date]:
    """The last ``days`` days up to the newest archived day (or ``today`` when there is none)."""
    end = latest_day(decode(blob)) or today
    return end - dt.timedelta(days=days - 1), end
