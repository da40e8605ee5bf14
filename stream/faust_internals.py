"""The one private Faust internal the worker uses, isolated here (checked against faust-streaming 0.15.3).

Faust's table stores pick the partition of a read or write from the "current
event" (``faust.streams.current_event()``, a context variable the stream sets
while it iterates). A stage that takes events in batches (``take_events``)
sees the batch's LAST event as current, whatever partition it came from, so
it must say which partition it is working on before touching a table. Faust
offers no public setter for it: ``Stream._set_current_event`` is private too,
and needs the stream object. If a Faust upgrade moves the context variable, the
import below fails at start-up (not silently at run time).

The two other internals the worker used are gone: the batch producer runs on
its own ``AIOKafkaProducer`` (not ``app.producer._ensure_producer()``), and the
registry follower refreshes metadata with a new client (not aiokafka's
``consumer._client.force_metadata_update()``).
"""

from __future__ import annotations

import weakref
from typing import Any

from faust.streams import _current_event

__all__ = ["use_event"]


def use_event(event: Any) -> None:
    """Make ``event`` the current event of this task, so table reads/writes go to its partition."""
    _current_event.set(weakref.ref(event))
