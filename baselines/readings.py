"""The domain reading: one interval, register or daily value.

Built from ``meterwatch.contracts.MeterReading`` (already validated) or, on the
backtest/bootstrap fast path, directly from a daily total. Plain slots class:
no validation cost on the hot path.

>>> from meterwatch.contracts import MeterReading
>>> r = Reading.from_contract(MeterReading.model_validate(
...     {"meter_id": "m1", "ts": "2024-01-01T00:30:00+00:00", "kwh": 0.4}))
>>> r.kind, r.ts, r.value
('interval', 1704069000.0, 0.4)
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from meterwatch.contracts import MeterReading

Kind = Literal["interval", "register", "daily"]

# rejection codes of the fold (``StepResult.rejected.code``) and the register's recorded reasons
TOO_LATE = "baselines.readings.too_late"
MIXED_RESOLUTION = "baselines.readings.mixed_resolution"
KWH_IMPLAUSIBLE = "baselines.readings.kwh_implausible"
TS_OUT_OF_RANGE = "baselines.readings.ts_out_of_range"
CONFLICTING_DUPLICATE = "baselines.readings.conflicting_duplicate"
REGISTER_BACKWARDS = "baselines.readings.register_backwards"
REGISTER_IMPLAUSIBLE = "baselines.readings.register_implausible"
METER_RESET = "baselines.readings.meter_reset"
REGISTER_ROLLOVER = "baselines.readings.register_rollover"

# Plausibility bounds. Every accepted value is finite and bounded, so no sum the profile keeps can
# overflow: a meter rating is at most MAX_RATING_KW (1 GW), one reading at most a rating times
# LONGEST_DAY_H, a register at most MAX_REGISTER_KWH (10 digits) and a reading time inside
# [TS_MIN, TS_MAX) (1970 to 3000).
MAX_RATING_KW = 1e6
LONGEST_DAY_H = 25.0
MAX_REGISTER_KWH = 1e10
TS_MIN = 0.0
TS_MAX = 32503680000.0


class Reading:
    """One reading. ``ts`` is epoch seconds (end of interval / time of read).

    For ``daily`` readings ``day`` is the local date and ``coverage`` the share
    of the day the value covers (1.0 = complete).
    """

    __slots__ = ("coverage", "day", "estimated", "interval_s", "kind", "meter_id", "ts", "value")

    def __init__(
        self,
        kind: Kind,
        ts: float,
        value: float,
        *,
        meter_id: str = "",
        interval_s: int = 1800,
        estimated: bool = False,
        day: dt.date | None = None,
        coverage: float = 1.0,
    ) -> None:
        self.kind: Kind = kind
        self.ts = ts
        self.value = value
        self.meter_id = meter_id
        self.interval_s = interval_s
        self.estimated = estimated
        self.day = day
        self.coverage = coverage

    def __repr__(self) -> str:
        return f"Reading({self.kind!r}, ts={self.ts}, value={self.value}, meter_id={self.meter_id!r})"

    @classmethod
    def from_contract(cls, r: MeterReading) -> Reading:
        """From the validated Kafka model.

        >>> from meterwatch.contracts import MeterReading
        >>> Reading.from_contract(MeterReading.model_validate(
        ...     {"meter_id": "m", "ts": "2024-01-01T00:00:00+08:00", "register_kwh": 12.5})).kind
        'register'
        """
        est = r.quality == "estimated"
        ts = r.ts.timestamp()
        if r.kwh is not None:
            return cls("interval", ts, r.kwh, meter_id=r.meter_id, interval_s=r.interval_s, estimated=est)
        assert r.register_kwh is not None
        return cls("register", ts, r.register_kwh, meter_id=r.meter_id, estimated=est)

    @classmethod
    def daily(cls, day: dt.date, kwh: float, coverage: float = 1.0, ts: float | None = None) -> Reading:
        """A whole-day total for a local date (backtest, bootstrap).

        ``ts`` defaults to the UTC midnight ending the day (only used for
        ``triggered_by``; the engine books the value on ``day``).

        >>> import datetime as dt
        >>> Reading.daily(dt.date(2024, 1, 1), 7.5).ts
        1704153600.0
        """
        if ts is None:
            ts = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC).timestamp()
        return cls("daily", ts, kwh, interval_s=86400, day=day, coverage=coverage)
