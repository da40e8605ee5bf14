"""What every stage of one worker process shares: settings, the domain engine, outputs, metrics.

Built once by the composition root (stream/worker.py) and handed to each stage;
a unit test builds one with memory outputs (tests/unit/stream).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from baselines.engine import Engine
from meterwatch.settings import Settings
from stream.deadletters import DeadLetters
from stream.envelope import Envelope
from stream.metrics import WorkerMetrics
from stream.produce import DeliveryFailed, Outputs
from stream.readmodel import ReadModelWriter
from stream.registry import MeterIndex

log = logging.getLogger(__name__)

__all__ = ["StageContext", "TopicNames", "exit_without_commit", "utc_now"]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def exit_without_commit() -> NoReturn:
    """Stop the process at once, committing nothing (a supervisor restarts it).

    Stopping hard matters: Faust acknowledges a batch from ``take_events`` even when
    the agent raises, and a graceful stop commits acknowledged offsets, so the
    outputs of the failed batch would be lost. Exiting without a commit lets the
    replacement process redo the batch from the last committed offsets.
    """
    logging.shutdown()
    os._exit(75)  # EX_TEMPFAIL


@dataclass(frozen=True)
class TopicNames:
    """Every topic a stage writes to or names in a dead letter."""

    readings: str
    customers: str
    history: str
    segments: str
    features: str
    alerts: str
    dlq: str
    by_customer: str
    parked: str
    customers_changelog: str
    profiles_changelog: str
    segmenter_changelog: str


@dataclass
class StageContext:
    """The shared services of one worker process."""

    settings: Settings
    engine: Engine
    out: Outputs
    metrics: WorkerMetrics
    dead: DeadLetters
    index: MeterIndex
    names: TopicNames
    clock: Callable[[], dt.datetime] = utc_now
    readmodel: ReadModelWriter | None = None  # set at start-up (needs the event loop)
    batch_max: int = 2000
    batch_within_s: float = 0.05
    on_fatal: Callable[[], NoReturn] = exit_without_commit
    # next offset to process per topic-partition of the Faust stages (for the lag gauges)
    positions: dict[Any, int] = field(default_factory=dict)

    async def deliver(self) -> None:
        """Deliver every batched output; a process that cannot deliver stops at once."""
        try:
            await self.out.flush()
        except DeliveryFailed:
            log.critical("outputs could not be delivered; exiting without committing", exc_info=True)
            self.on_fatal()

    def forward(self, env: Envelope) -> None:
        """Send an envelope to its customer's partition of ``<app>-by-customer``."""
        self.out.add_keyed(self.names.by_customer, env.customer_id.encode(), env.dumps())

    def track(self, event: Any) -> None:
        """Remember how far a Faust stage got on the event's partition."""
        m = event.message
        self.positions[m.tp] = m.offset + 1
