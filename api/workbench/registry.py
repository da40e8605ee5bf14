"""Registry updates from the workbench: "mark an occupant change".

Kafka stays the source of truth: the API publishes the customer's registry
record (as the worker last mirrored it to Redis) with ``occupant_since`` set to
the ``customers`` topic, keyed by customer id, through the API's one registry
publisher (``meterwatch.registry``, shared with budget changes); the worker
applies it like any registry update and the baseline restart itself is issue
#15's. A record published meanwhile by the billing system and not yet mirrored
would be overwritten by this copy (last write wins on the compacted topic): the
page shows the record it sends.
"""

from __future__ import annotations

import datetime as dt

from api.errors import ApiError
from meterwatch.contracts import CustomerRecord
from meterwatch.registry import PublishError, RegistryPublisher


async def occupant_change(
    publish: RegistryPublisher, record: CustomerRecord, since: dt.date
) -> CustomerRecord:
    """Publish ``record`` with ``occupant_since`` = ``since``; returns what was sent (503: Kafka failed)."""
    updated = record.model_copy(update={"occupant_since": since})
    try:
        await publish(record.customer_id.encode(), updated.model_dump_json(exclude_none=True).encode())
    except PublishError as exc:
        raise ApiError(503, "unavailable", f"the occupant change was not saved: {exc}") from exc
    return updated
