"""An injectable clock, so that tests can stand inside quiet hours without waiting.

``now()`` is the wall clock (due times, quiet hours); ``monotonic()`` measures intervals
(the circuit breaker's cool-down). A ``FixedClock`` moves both only when told to.

>>> import datetime as dt
>>> c = FixedClock(dt.datetime(2024, 1, 1, 22, tzinfo=dt.UTC))
>>> t0 = c.monotonic()
>>> c.advance(3600).hour, c.monotonic() - t0
(23, 3600.0)
"""

from __future__ import annotations

import datetime as dt
import time


class Clock:
    """The wall clock (UTC)."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FixedClock(Clock):
    """A clock that stands still until told to move."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at

    def monotonic(self) -> float:
        return self.at.timestamp()

    def set(self, at: dt.datetime) -> dt.datetime:
        self.at = at
        return at

    def advance(self, seconds: float) -> dt.datetime:
        self.at = self.at + dt.timedelta(seconds=seconds)
        return self.at
