"""What to do with an SMS whose last attempt has an unknown outcome (pure; no I/O).

An attempt is recorded in Redis (``inflight``) before the request goes out. If the
notifier then learns nothing (killed mid-send, a timeout, a connection dropped after
the request was written), the gateway may or may not have the message. Resending
blindly sends it twice to every gateway that does not honour ``Idempotency-Key``; so
before anything else the dispatcher asks the gateway (``SmsChannel.sms_status``) and
``decide`` turns its answer into an action:

* ``accepted`` (the gateway has it): the SMS is ``sent`` — no resend;
* ``failed`` (the gateway took it and could not deliver it): an ordinary failed attempt,
  retried with backoff (or failed and escalated after the last attempt);
* ``absent`` (the gateway never got it): sent now (or failed after the last attempt); still
  counted as a possible duplicate, as the first request may yet arrive (a request that
  was still on its way when the gateway was asked);
* ``unsupported`` (no status API), or status queries failing ``max_checks`` times: sent
  again with the same ``Idempotency-Key``, counted as a possible duplicate; after the
  last attempt it fails and escalates instead (the manager calls the customer).

>>> from notifier.channels import StatusAnswer
>>> decide(StatusAnswer("accepted", "g-7"), "", attempts=1, max_attempts=5, checks=0, max_checks=5).action
'sent'
>>> r = decide(None, "status query: HTTP 503", attempts=1, max_attempts=5, checks=0, max_checks=5)
>>> r.action, r.metrics
('wait', ['sms_status_checks{outcome="error"}'])
>>> r = decide(StatusAnswer("unsupported"), "", attempts=2, max_attempts=5, checks=0, max_checks=5)
>>> r.action, r.metrics
('send', ['sms_reconciled{outcome="unsupported"}', 'possible_duplicates{channel="sms"}'])
>>> decide(StatusAnswer("absent"), "", attempts=5, max_attempts=5, checks=0, max_checks=5).action
'fail'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from notifier.channels import StatusAnswer

Action = Literal["sent", "wait", "retry", "send", "fail"]

POSSIBLE_DUPLICATE = 'possible_duplicates{channel="sms"}'


def reconciled(outcome: str) -> str:
    """The metrics-hash field counting reconciliations by outcome."""
    return f'sms_reconciled{{outcome="{outcome}"}}'


@dataclass(frozen=True)
class Reconciled:
    action: Action
    detail: str
    metrics: list[str] = field(default_factory=list)
    gateway_id: str = ""


def decide(
    answer: StatusAnswer | None, error: str, attempts: int, max_attempts: int, checks: int, max_checks: int
) -> Reconciled:
    """The action for an SMS in flight, from the gateway's answer (None: the status query failed)."""
    last = attempts >= max_attempts
    if answer is None:
        if checks + 1 < max_checks:
            return Reconciled(
                "wait", f"status query failed ({error})", ['sms_status_checks{outcome="error"}']
            )
        return _unconfirmed(f"status query failed {max_checks} times ({error})", last)
    if answer.status == "accepted":
        return Reconciled(
            "sent",
            f"the gateway has it ({answer.detail or 'accepted'})",
            [reconciled("accepted")],
            answer.gateway_id,
        )
    if answer.status == "failed":
        action: Action = "fail" if last else "retry"
        return Reconciled(
            action, f"the gateway could not deliver it ({answer.detail})", [reconciled("failed")]
        )
    if answer.status == "absent":
        if last:
            return Reconciled("fail", "the gateway never received it", [reconciled("absent")])
        return Reconciled("send", "the gateway never received it", [reconciled("absent"), POSSIBLE_DUPLICATE])
    return _unconfirmed(f"the gateway cannot tell ({answer.detail or 'no status API'})", last, "unsupported")


def _unconfirmed(why: str, last: bool, outcome: str = "unconfirmed") -> Reconciled:
    if last:
        return Reconciled("fail", f"{why}; outcome of the last attempt unknown", [reconciled(outcome)])
    return Reconciled(
        "send",
        f"{why}; sending again with the same Idempotency-Key",
        [reconciled(outcome), POSSIBLE_DUPLICATE],
    )
