"""What to do with an SMS of unknown outcome, from the gateway's answer (pure) — issue #10, item 9."""

from __future__ import annotations

import pytest

from notifier.channels import StatusAnswer, classify_status
from notifier.reconcile import POSSIBLE_DUPLICATE, decide

MAX = dict(max_attempts=5, max_checks=3)


def test_the_gateway_has_it_means_sent_never_again() -> None:
    r = decide(StatusAnswer("accepted", "g-1", "delivered"), "", attempts=5, checks=2, **MAX)
    assert (r.action, r.gateway_id) == ("sent", "g-1")
    assert POSSIBLE_DUPLICATE not in r.metrics


@pytest.mark.parametrize(("attempts", "action"), [(1, "send"), (4, "send"), (5, "fail")])
def test_never_received_is_sent_now_unless_it_was_the_last_attempt(attempts: int, action: str) -> None:
    r = decide(StatusAnswer("absent"), "", attempts=attempts, checks=0, **MAX)
    assert r.action == action
    # the first request may still be on its way to the gateway: a resend is counted
    assert (POSSIBLE_DUPLICATE in r.metrics) == (action == "send")


@pytest.mark.parametrize(("attempts", "action"), [(1, "retry"), (5, "fail")])
def test_taken_and_failed_is_an_ordinary_failed_attempt(attempts: int, action: str) -> None:
    assert (
        decide(StatusAnswer("failed", detail="rejected"), "", attempts=attempts, checks=0, **MAX).action
        == action
    )


def test_failing_status_queries_wait_then_resend_as_a_counted_possible_duplicate() -> None:
    actions = [decide(None, "timeout", attempts=1, checks=c, **MAX) for c in range(3)]
    assert [a.action for a in actions] == ["wait", "wait", "send"]
    assert POSSIBLE_DUPLICATE in actions[-1].metrics
    assert decide(None, "timeout", attempts=5, checks=2, **MAX).action == "fail"


def test_without_a_status_api_the_resend_is_counted() -> None:
    r = decide(StatusAnswer("unsupported"), "", attempts=1, checks=0, **MAX)
    assert r.action == "send" and POSSIBLE_DUPLICATE in r.metrics
    assert decide(StatusAnswer("unsupported"), "", attempts=5, checks=0, **MAX).action == "fail"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"status": "delivered"}, "accepted"),
        ({"status": "QUEUED"}, "accepted"),
        ({"state": "sent"}, "accepted"),
        ({"status": "something new"}, "accepted"),  # it answered for the reference: it has it
        ({"status": "undelivered"}, "failed"),
        ({"status": "rejected"}, "failed"),
        ({"status": "unknown"}, "absent"),
        ({"status": "not_found"}, "absent"),
        (["not", "an", "object"], "accepted"),
    ],
)
def test_status_words_of_the_gateway_contract(body: object, status: str) -> None:
    assert classify_status(body).status == status
