"""Baseline snapshots built on read: the one way every API reader gets a customer's snapshot.

The worker writes each changed customer's compact state (``Keys.state``: its
stored value, ``stream/state.py``); the snapshot is built here from it and the
registry record (``Keys.customer``) with an engine configured from the same
settings as the worker's (rules, tariff catalogue), ``now`` = read time
(``baselines.readview``). A customer with no state falls back to the snapshot
an earlier worker wrote (``Keys.baseline``: a rolling upgrade, seeded tests).

Every reader fetches the three keys in the same round trip as whatever else it
reads (``names``), then calls :meth:`Snapshots.view` on the values.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import orjson

from baselines.engine import Engine
from baselines.readview import load_engine, snapshot_from_state
from meterwatch.keys import Keys
from meterwatch.settings import Settings

__all__ = ["Snapshots"]

log = logging.getLogger(__name__)

Raw = bytes | str | None
Visible = Callable[[bytes | str], bool]


def _bytes(raw: bytes | str) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode()


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Snapshots:
    """Reads customers' baseline snapshots (see the module docstring)."""

    def __init__(self, engine: Engine, keys: Keys, clock: Callable[[], dt.datetime] = _utc_now) -> None:
        self.engine = engine
        self.keys = keys
        self.clock = clock

    @classmethod
    def for_settings(cls, settings: Settings) -> Snapshots:
        """Configured from ``settings`` as the worker's engine is (rules, tariffs) and the API's reader is."""
        return cls(load_engine(settings), Keys(settings.redis_prefix))

    def names(self, customer_id: str) -> list[str]:
        """The keys :meth:`view` needs, in its order: state, old snapshot, registry record."""
        k = self.keys
        return [k.state(customer_id), k.baseline(customer_id), k.customer(customer_id)]

    def view(self, state: Raw, baseline: Raw, record: Raw, visible: Visible | None = None) -> bytes | None:
        """The snapshot JSON (``BaselineSnapshot``) of the values of :meth:`names`, or None.

        Built from the state when there is one (and the record: no record, no snapshot), else
        the stored snapshot as it is. Both present means an earlier worker wrote the snapshot
        after the state (a worker of this version deletes the customer's old snapshot with every
        state it writes: a rollback, or a partition moved to a worker not yet upgraded): the
        snapshot is the newer one. A state that builds nothing (no profile yet, a non-finite
        figure, unreadable) shows nothing. ``visible``: asked of the registry record first, a
        customer the caller may not read is not built (None).
        """
        if record is not None and visible is not None and not visible(record):
            return None
        if baseline is not None:
            return _bytes(baseline)
        if state is None:
            return None
        try:
            return snapshot_from_state(self.engine, _bytes(state), record, self.clock())
        except Exception:  # a state this code cannot build must not fail the request (nor a batch)
            log.exception("baseline of a customer could not be built from its stored state")
            return None

    async def read(
        self, redis: Any, customer_id: str, visible: Visible | None = None
    ) -> tuple[bytes | None, Raw]:
        """(snapshot, registry record) of one customer: one MGET."""
        state, base, record = await redis.mget(*self.names(customer_id))
        return self.view(state, base, record, visible), record

    async def read_many(
        self, redis: Any, ids: list[str], visible: Visible | None = None
    ) -> list[tuple[bytes | None, Raw]]:
        """(snapshot, registry record) of each customer, in order: one MGET."""
        raws = await redis.mget(*[name for cid in ids for name in self.names(cid)])
        return [
            (self.view(raws[i], raws[i + 1], raws[i + 2], visible), raws[i + 2])
            for i in range(0, len(raws), 3)
        ]

    @staticmethod
    def segment_id(state: Raw, baseline: Raw) -> int | None:
        """The segment id the customer's stored snapshot (else its state) names, without building the
        snapshot (the one :meth:`view` shows); None when neither names one (or is unreadable)."""
        raw, field = (baseline, "segment") if baseline is not None else (state, "s")
        if raw is None:
            return None
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        seg_doc = doc.get(field) if isinstance(doc, dict) else None
        sid = seg_doc.get("id") if isinstance(seg_doc, dict) else None
        return sid if isinstance(sid, int) else None
