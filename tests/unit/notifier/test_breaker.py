"""The circuit breaker with explicit times (no I/O, no waiting) — issue #10, item 10."""

from __future__ import annotations

from notifier.breaker import CircuitBreaker, Ticket


def _allowed(b: CircuitBreaker, now: float) -> Ticket:
    """The ticket of a send the breaker lets through (it must)."""
    t = b.allow(now)
    assert t is not None
    return t


def test_a_blip_of_in_flight_failures_opens_the_breaker_once_with_the_base_cooldown() -> None:
    b = CircuitBreaker(threshold=5, cooldown_s=5.0, max_cooldown_s=60.0)
    tickets = [_allowed(b, 0.0) for _ in range(12)]  # 12 sends in flight when the gateway blips
    opened = [b.failure(t, 0.1 + i / 1000) for i, t in enumerate(tickets)]
    assert opened == [False] * 4 + [True] * 8
    assert b.opened == 1
    assert b.cooldown == 5.0 and abs(b.retry_at - 5.104) < 1e-9  # not +10/+20/+40/+60 s


def test_after_recovery_the_probe_closes_the_breaker_and_sends_resume() -> None:
    b = CircuitBreaker(threshold=2, cooldown_s=5.0)
    for t in [_allowed(b, 0.0), _allowed(b, 0.0)]:
        b.failure(t, 0.0)
    assert b.allow(4.9) is None
    probe = b.allow(5.0)
    assert probe is not None and probe.probe
    assert b.allow(5.0) is None  # one probe at a time
    b.success(probe)
    assert not b.is_open and b.cooldown == 5.0
    assert all(b.allow(5.1) is not None for _ in range(10))  # everything goes again


def test_only_a_failed_probe_doubles_the_cooldown_up_to_the_cap() -> None:
    b = CircuitBreaker(threshold=1, cooldown_s=1.0, max_cooldown_s=4.0)
    b.failure(_allowed(b, 0.0), 0.0)
    now, waits = 0.0, []
    for _ in range(4):
        now = b.retry_at
        probe = b.allow(now)
        assert probe is not None and probe.probe
        b.failure(probe, now)
        waits.append(b.retry_at - now)
    assert waits == [2.0, 4.0, 4.0, 4.0]


def test_a_late_failure_from_before_the_breaker_opened_or_closed_changes_nothing() -> None:
    b = CircuitBreaker(threshold=1, cooldown_s=1.0)
    early, late = _allowed(b, 0.0), _allowed(b, 0.0)
    b.failure(early, 0.0)
    probe = b.allow(1.0)
    b.success(probe)
    assert not b.is_open
    b.failure(late, 1.1)  # started before the breaker opened at all
    assert not b.is_open and b.consecutive == 0


def test_a_probe_that_never_reports_is_replaced_and_a_lost_claim_gives_it_back() -> None:
    b = CircuitBreaker(threshold=1, cooldown_s=1.0)
    b.failure(_allowed(b, 0.0), 0.0)
    probe = b.allow(1.0)
    assert probe is not None and b.allow(2.0) is None
    assert b.allow(1.0 + 30.0) is not None  # the probe's deadline passed: a new probe
    again = b.allow(100.0)
    assert again is not None
    b.release(again)  # its claim was lost before sending
    assert b.allow(100.0) is not None


def test_threshold_zero_never_opens() -> None:
    b = CircuitBreaker(threshold=0, cooldown_s=1.0)
    for i in range(100):
        assert b.failure(_allowed(b, float(i)), float(i)) is False
    assert not b.is_open
