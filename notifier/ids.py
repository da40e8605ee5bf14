"""Notification ids and timestamps as the notifier stores them.

>>> make_nid("sms", "a1") == make_nid("sms", "a1") != make_nid("push", "a1")
True
>>> make_nid("sms", "a1")[:2]
'n_'
>>> import datetime as dt
>>> iso(dt.datetime(2025, 1, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8))))
'2025-01-01T00:00:00+00:00'
"""

from __future__ import annotations

import datetime as dt
import hashlib


def make_nid(kind: str, *parts: str) -> str:
    """A deterministic notification id: the same alert and channel always give the same id."""
    h = hashlib.sha256("\x1f".join((kind, *parts)).encode()).hexdigest()[:24]
    return f"n_{h}"


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat()


def ms(t: dt.datetime) -> int:
    """Epoch milliseconds (the due queue's scores)."""
    return int(t.timestamp() * 1000)
