"""The worker's writes for the workbench (issue #14), in one place (docs/workbench.md).

* the alert index across customers (``meterwatch.alertindex``), queued in the same
  pipeline as the per-customer alert mirror of :class:`stream.readmodel.ReadModelWriter`;
* the daily archive (``meterwatch.dailyarchive``): one record per day that becomes
  final, with the baseline's expectation and band then (``baselines.daily``);
* segment membership (``Keys.segment_members``) for ``GET /v1/segments/{id}/customers``.

The pipeline calls :func:`before` / :func:`after` around ``process_inplace``,
:func:`load_history` instead of ``engine.load_history`` and :func:`segment_changed`
when a customer's segment changes or the customer is deleted; the read-model
writer owns a :class:`WorkbenchWrites` and flushes it with everything else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from meterwatch import dailyarchive
from meterwatch.alertindex import AlertIndexer
from meterwatch.contracts import Alert, HistoryRow, SegmentRef
from meterwatch.dailyarchive import DayRecord
from meterwatch.keys import Keys

if TYPE_CHECKING:
    from stream.readmodel import ReadModelWriter

MAX_PENDING_DAYS = 200_000
#: what :meth:`WorkbenchWrites.take` hands to one flush: days per customer, (old, new) segment
Taken = tuple[dict[str, list[DayRecord]], dict[str, tuple[int | None, int | None]]]


class WorkbenchWrites:
    """Pending daily-archive records and segment-membership changes; the alert-index script."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.keys = keys
        self.indexer = AlertIndexer(redis, keys)
        self.days: dict[str, list[DayRecord]] = {}
        self.members: dict[str, tuple[int | None, int | None]] = {}
        self._n_days = 0

    def add_days(self, customer_id: str, records: list[DayRecord]) -> None:
        if records and self._n_days < MAX_PENDING_DAYS:
            self.days.setdefault(customer_id, []).extend(records)
            self._n_days += len(records)

    def set_member(self, customer_id: str, old: int | None, new: int | None) -> None:
        prev = self.members.get(customer_id)
        self.members[customer_id] = (prev[0] if prev is not None else old, new)

    async def queue_alert(self, pipe: Pipeline, a: Alert) -> None:
        await self.indexer.queue(
            pipe, a.alert_id, a.customer_id, a.manager_id, a.triggered_by.timestamp(), a.rule, a.severity
        )

    def take(self) -> Taken:
        days, self.days, self._n_days = self.days, {}, 0
        members, self.members = self.members, {}
        return days, members

    async def queue(self, pipe: Pipeline, taken: Taken, step: Callable[[int], Awaitable[Pipeline]]) -> None:
        """Queue what :meth:`take` took; ``step(n)`` counts ``n`` commands and returns the pipeline
        to go on with (the writer executes in chunks)."""
        days, members = taken
        k = self.keys
        for cid, records in days.items():
            ws = dailyarchive.writes(records)
            for off, data in ws:
                pipe.setrange(k.daily(cid), off, data)
            pipe = await step(len(ws))
        for cid, (old, new) in members.items():
            if old is not None and old != new:
                pipe.zrem(k.segment_members(old), cid)
            if new is not None:
                pipe.zadd(k.segment_members(new), {cid: 0})
            pipe = await step(2)

    def restore(self, taken: Taken) -> None:
        days, members = taken
        for cid, records in days.items():
            newer = self.days.get(cid, [])
            self.days[cid] = records + newer
            self._n_days += len(records)
        for cid, (old, new) in members.items():
            if cid in self.members:
                self.members[cid] = (old, self.members[cid][1])
            else:
                self.members[cid] = (old, new)


# --- hooks called by the pipeline -----------------------------------------------------------


def before(profile: Any) -> Any:
    """A mark of the profile before a step (``baselines.daily.mark``)."""
    from baselines.daily import mark

    return None if profile is None else mark(profile)


def after(rm: ReadModelWriter | None, customer_id: str, m: Any, profile: Any, rules: Any) -> None:
    """Archive the days the step made final."""
    if rm is None or m is None or profile is None:
        return
    if profile.newest_day != m.newest:  # a new day began: the days before it are complete (provisional)
        from baselines.daily import complete_open_days

        rm.workbench.add_days(customer_id, complete_open_days(profile, rules))
    if profile.final_start is None:
        return
    if m.last_final is not None and profile.final_start + len(profile.final_days) - 1 <= m.last_final:
        return  # nothing became final (the common case)
    from baselines.daily import final_days

    rm.workbench.add_days(customer_id, final_days(m, profile, rules))


def load_history(
    rm: ReadModelWriter | None,
    engine: Any,
    customer_id: str,
    profile: Any,
    rows: list[HistoryRow],
    config: Any,
) -> Any:
    """``engine.load_history`` that archives the days it loads."""
    from baselines.daily import load_history_with_days

    p, records = load_history_with_days(engine, profile, rows, config)
    if rm is not None:
        rm.workbench.add_days(customer_id, records)
    return p


def segment_changed(
    rm: ReadModelWriter | None, customer_id: str, old: SegmentRef | None, new: SegmentRef | None
) -> None:
    if rm is None:
        return
    o = old.id if old is not None else None
    n = new.id if new is not None else None
    if o != n or n is not None:
        rm.workbench.set_member(customer_id, o, n)
