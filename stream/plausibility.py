"""Is a valid reading plausible? Bounds on time and energy, checked before anything is booked.

A reading can be valid JSON in the right shape and still poison a customer for
good: one dated 2099 moves the profile's newest day there (every real reading
after it is "too late"), and 1e308 kWh overflows the cycle total to infinity.
These checks reject such readings with a named reason (docs/stream.md):

* time: ``ts`` at most ``MW_READING_MAX_FUTURE_S`` past now (clock-skew
  allowance, default one day), not before ``MW_READING_MIN_TS`` (default
  2000-01-01) and, if ``MW_READING_MAX_AGE_DAYS`` is set (> 0), not older than that.
  (No age limit by default: replaying recorded data is a normal use.)
* energy: an interval's kWh at most the meter's rating (max kW) times the
  interval's hours. The rating is the registry record's ``max_kw``, else
  ``MW_READING_MAX_KW_BY_TARIFF[tariff]``, else ``MW_READING_MAX_KW``. History
  rows are bounded the same way per day (24 h) or per cycle. Every bound is
  finite, so no sum of accepted values can overflow.

>>> import datetime as dt
>>> from meterwatch.settings import Settings
>>> s = Settings()
>>> now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
>>> check_ts(dt.datetime(2099, 1, 1, tzinfo=dt.UTC), now, s).code
'ts_in_future'
>>> check_ts(dt.datetime(1970, 1, 1, tzinfo=dt.UTC), now, s).code
'ts_too_old'
>>> check_ts(dt.datetime(2025, 12, 31, tzinfo=dt.UTC), now, s) is None
True
>>> check_interval_kwh(1e12, 1800, 100.0).code
'kwh_implausible'
>>> check_interval_kwh(49.9, 1800, 100.0) is None
True
"""

from __future__ import annotations

import datetime as dt
import math

from meterwatch.contracts import CustomerRecord, DeadLetterError, HistoryRow, MeterReading
from meterwatch.settings import Settings

__all__ = ["check_history_row", "check_interval_kwh", "check_reading", "check_ts", "max_kw_for"]


def max_kw_for(record: CustomerRecord | None, settings: Settings) -> float:
    """The meter rating that bounds a customer's readings (record, else tariff, else default).

    >>> from meterwatch.settings import Settings
    >>> s = Settings()
    >>> max_kw_for(None, s), max_kw_for(CustomerRecord(customer_id="c", tariff="commercial"), s)
    (100.0, 1000.0)
    >>> max_kw_for(CustomerRecord(customer_id="c", tariff="commercial", max_kw=45.0), s)
    45.0
    """
    if record is None:
        return settings.reading_max_kw
    if record.max_kw is not None:
        return record.max_kw
    return settings.reading_max_kw_by_tariff.get(record.tariff, settings.reading_max_kw)


def check_ts(ts: dt.datetime, now: dt.datetime, settings: Settings) -> DeadLetterError | None:
    """Reject a timestamp in the future (beyond the skew allowance) or before the lower bound."""
    latest = now + dt.timedelta(seconds=settings.reading_max_future_s)
    if ts > latest:
        return DeadLetterError(
            code="ts_in_future",
            message=(
                f"ts {ts.isoformat()} is later than now + {settings.reading_max_future_s:g} s "
                f"({latest.isoformat(timespec='seconds')}; MW_READING_MAX_FUTURE_S)"
            ),
            field="ts",
        )
    earliest = settings.reading_min_ts
    if settings.reading_max_age_days > 0:
        earliest = max(earliest, now - dt.timedelta(days=settings.reading_max_age_days))
    if ts < earliest:
        return DeadLetterError(
            code="ts_too_old",
            message=(
                f"ts {ts.isoformat()} is before {earliest.isoformat(timespec='seconds')} "
                "(MW_READING_MIN_TS / MW_READING_MAX_AGE_DAYS)"
            ),
            field="ts",
        )
    return None


def check_interval_kwh(kwh: float, interval_s: float, max_kw: float) -> DeadLetterError | None:
    """Reject more energy than a meter rated ``max_kw`` can measure in ``interval_s`` seconds."""
    limit = max_kw * interval_s / 3600.0
    if math.isfinite(kwh) and kwh <= limit:
        return None
    return DeadLetterError(
        code="kwh_implausible",
        message=f"{kwh:g} kWh in {interval_s:g} s exceeds the meter's {max_kw:g} kW ({limit:g} kWh)",
        field="kwh",
    )


def check_reading(
    r: MeterReading, record: CustomerRecord | None, now: dt.datetime, settings: Settings
) -> DeadLetterError | None:
    """All bounds of one reading (the customer's record gives its rating)."""
    err = check_ts(r.ts, now, settings)
    if err is not None or r.kwh is None:
        return err
    return check_interval_kwh(r.kwh, r.interval_s, max_kw_for(record, settings))


def check_history_row(
    row: HistoryRow, record: CustomerRecord | None, now: dt.datetime, settings: Settings
) -> DeadLetterError | None:
    """A history row: its day(s) not in the future, its kWh within the rating for its span.

    >>> from meterwatch.settings import Settings
    >>> now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> row = HistoryRow(customer_id="c", day=dt.date(2025, 6, 1), kwh=3000.0)
    >>> check_history_row(row, None, now, Settings()).code
    'kwh_implausible'
    >>> check_history_row(row.model_copy(update={"kwh": 30.0}), None, now, Settings()) is None
    True
    >>> check_history_row(row.model_copy(update={"day": dt.date(2099, 1, 1)}), None, now, Settings()).code
    'ts_in_future'
    """
    first = row.day if row.day is not None else row.start
    last = row.day if row.day is not None else row.end
    assert first is not None and last is not None  # HistoryRow's own validator
    err = check_ts(dt.datetime.combine(last, dt.time(), tzinfo=dt.UTC), now, settings)
    if err is None:
        err = check_ts(dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC), now, settings)
    if err is not None:
        return err.model_copy(update={"field": "day" if row.day is not None else "start"})
    days = (last - first).days + 1
    return check_interval_kwh(row.kwh, days * 86400, max_kw_for(record, settings))
