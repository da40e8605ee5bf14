"""A circuit breaker per channel: while a gateway is down, notifications wait instead of
burning their retry budget, and one probe at a time checks whether it is back.

Every send gets a ``Ticket`` from ``allow`` and reports back with it. The ticket carries
the breaker's generation, which changes whenever the breaker opens or closes, so a
failure of a request that was already in flight when the breaker opened is not counted
again: a burst of failures opens the breaker ONCE, with the base cool-down (it used to
double the cool-down for every in-flight failure: a 0.1 s blip of 12 errors pushed
deliveries out by a minute). Only a failed *probe* doubles the cool-down (up to
``max_cooldown_s``); any success closes the breaker and resets it. The time is passed
in by the caller (the dispatcher's injectable clock), so tests need not wait.

>>> b = CircuitBreaker(threshold=2, cooldown_s=1.0)
>>> t = [b.allow(0.0) for _ in range(4)]              # four sends in flight at once
>>> [b.failure(x, 0.1) for x in t]                    # all fail: open once, at the 2nd
[False, True, True, True]
>>> b.retry_at, b.opened                              # not 8 s: late failures are not counted
(1.1, 1)
>>> b.allow(0.5) is None                              # closed to all until the cool-down ends
True
>>> probe = b.allow(1.2); probe.probe, b.allow(1.3)   # then one probe at a time
(True, None)
>>> b.failure(probe, 1.4), b.retry_at                 # the probe failed: wait twice as long
(True, 3.4)
>>> b.success(b.allow(3.5)); b.is_open, b.cooldown
(False, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ticket:
    """Permission for one send: the breaker generation it started in, and whether it is the probe."""

    generation: int
    probe: bool = False


class CircuitBreaker:
    def __init__(self, threshold: int, cooldown_s: float, max_cooldown_s: float = 60.0) -> None:
        self.threshold = threshold
        self.base = cooldown_s
        self.max = max_cooldown_s
        self.cooldown = cooldown_s
        self.consecutive = 0
        self.is_open = False
        self.retry_at = 0.0
        self.generation = 0
        self.probing = False
        self.probe_deadline = 0.0
        self.opened = 0  # times the breaker opened (for the metrics and the tests)

    def allow(self, now: float) -> Ticket | None:
        """A ticket when a send may go out now (closed, or the one probe of a cooled-down open breaker)."""
        if not self.is_open:
            return Ticket(self.generation)
        if now >= self.retry_at and (not self.probing or now >= self.probe_deadline):
            # a probe that never reported back (claim lost, crash) is replaced after a while
            return self._probe_ticket(now)
        return None

    def _probe_ticket(self, now: float) -> Ticket:
        self.probing, self.probe_deadline = True, now + max(30.0, self.cooldown)
        return Ticket(self.generation, probe=True)

    def failure(self, ticket: Ticket, now: float) -> bool:
        """Count a transient failure of the send ``ticket`` allowed; True when the breaker is open now."""
        if ticket.generation != self.generation:
            return self.is_open  # in flight since before the breaker changed: already accounted for
        if self.is_open:
            if ticket.probe:  # the gateway is still down: wait longer before the next probe
                self.cooldown = min(self.max, self.cooldown * 2)
                self._open(now)
            return True
        self.consecutive += 1
        if self.threshold > 0 and self.consecutive >= self.threshold:
            self.opened += 1
            self._open(now)
            return True
        return False

    def _open(self, now: float) -> None:
        self.is_open, self.retry_at, self.probing = True, now + self.cooldown, False
        self.generation += 1

    def release(self, ticket: Ticket) -> None:
        """A send that did not happen (its claim was lost): a probe ticket goes back at once."""
        if ticket.probe and ticket.generation == self.generation:
            self.probing = False

    def success(self, ticket: Ticket | None = None) -> None:
        """The gateway answered (2xx, or a 4xx that is the request's fault): close and reset."""
        if self.is_open:
            self.generation += 1
        self.consecutive = 0
        self.is_open = False
        self.probing = False
        self.cooldown = self.base
