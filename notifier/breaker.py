"""A circuit breaker per channel: while a gateway is down, notifications wait instead of
burning their retry budget, and one probe at a time checks whether it is back.

>>> b = CircuitBreaker(threshold=2, cooldown_s=1.0)
>>> b.allow(0.0), b.failure(0.0), b.failure(0.1), b.is_open
(True, False, True, True)
>>> b.allow(0.5), b.allow(1.2), b.allow(1.3)   # closed to all, then one probe
(False, True, False)
>>> b.failure(1.4)                              # the probe failed: wait twice as long
True
>>> b.retry_at
3.4
>>> b.success(); b.is_open
False
"""

from __future__ import annotations


class CircuitBreaker:
    def __init__(self, threshold: int, cooldown_s: float, max_cooldown_s: float = 60.0) -> None:
        self.threshold = threshold
        self.base = cooldown_s
        self.max = max_cooldown_s
        self.cooldown = cooldown_s
        self.consecutive = 0
        self.is_open = False
        self.retry_at = 0.0
        self.probing = False
        self.probe_deadline = 0.0

    def allow(self, now: float) -> bool:
        """Whether a send may go out now (closed, or the one probe of a cooled-down open breaker)."""
        if not self.is_open:
            return True
        if now >= self.retry_at and (not self.probing or now >= self.probe_deadline):
            # a probe that never reported back (claim lost, crash) is replaced after a while
            self.probing, self.probe_deadline = True, now + max(30.0, self.cooldown)
            return True
        return False

    def failure(self, now: float) -> bool:
        """Count a transient failure; True when the breaker is (now) open."""
        self.consecutive += 1
        if self.is_open:
            self.cooldown = min(self.max, self.cooldown * 2)
            self.retry_at = now + self.cooldown
            self.probing = False
            return True
        if self.threshold > 0 and self.consecutive >= self.threshold:
            self.is_open, self.retry_at, self.probing = True, now + self.cooldown, False
            return True
        return False

    def success(self) -> None:
        self.consecutive = 0
        self.is_open = False
        self.probing = False
        self.cooldown = self.base
