"""An injectable clock, so that tests can stand inside quiet hours without waiting.

>>> import datetime as dt
>>> c = FixedClock(dt.datetime(2024, 1, 1, 22, tzinfo=dt.UTC))
>>> c.advance(3600).hour
23
"""

from __future__ import annotations

import datetime as dt


class Clock:
    """The wall clock (UTC)."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock(Clock):
    """A clock that stands still until told to move."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at

    def set(self, at: dt.datetime) -> dt.datetime:
        self.at = at
        return at

    def advance(self, seconds: float) -> dt.datetime:
        self.at = self.at + dt.timedelta(seconds=seconds)
        return self.at
