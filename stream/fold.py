"""What one by-customer envelope does to its customer's state (the profile stage's per-kind work).

The seam to the domain: ``baselines.engine.Engine`` folds readings and history
into a ``baselines.profile.Profile`` under a ``baselines.customer.CustomerConfig``
built from the registry record. This module decides what the worker does
around it: hold inputs until the registry record is there, dead-letter what the
domain rejects, count, emit alerts, send segment features. The read model gets the
changed customers' stored state (``ProfileStage._store``), not a snapshot.

Inputs that reach a customer's partition before its registry record (the meter
index is global and can be ahead; history has no index at all) are HELD in the
customer's stored state (``pending``, at most :data:`MAX_PENDING_BYTES`) and
applied in arrival order when the record arrives: nothing is folded under
default billing-cycle settings. When a record changes ``read_day`` or
``cycle_months`` the cycles are rebuilt from the stored days
(``baselines.rebuild.rebuild_cycles``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from baselines.customer import CustomerConfig
from baselines.profile import Profile
from baselines.readings import Reading
from baselines.rebuild import rebuild_cycles
from meterwatch.contracts import Alert, CustomerRecord, DeadLetterError, SegmentRef
from stream import workbench
from stream.context import StageContext
from stream.deadletters import domain_error, unknown_error
from stream.envelope import Envelope, FeaturesEvent
from stream.plausibility import check_history_row
from stream.state import CustomerState, baseline_days

log = logging.getLogger(__name__)

__all__ = ["MAX_PENDING_BYTES", "Batch", "Fold"]

# held inputs per customer: the stored value stays far below the broker's 1 MB record limit
MAX_PENDING_BYTES = 512 * 1024
FEATURES_EVERY_DAYS = 7
MIN_BASELINE_DAYS = 7


@dataclass
class Batch:
    """What one batch did on one partition: changed and deleted customers."""

    partition: int
    offset: int = -1  # the last by-customer offset of the batch on this partition
    dirty: dict[str, CustomerState] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)


def _cycles_changed(old: CustomerConfig | None, new: CustomerConfig) -> bool:
    return old is None or (old.read_day, old.cycle_months) != (new.read_day, new.cycle_months)


class Store(Protocol):
    """The profile stage's side of the fold: the customers table and the state cache."""

    def put_record(self, partition: int, customer_id: str, body: bytes) -> None: ...

    def drop(self, partition: int, customer_id: str) -> None: ...


class Fold:
    """Applies envelopes to cached customer states."""

    def __init__(self, ctx: StageContext, store: Store) -> None:
        self.ctx = ctx
        self.store = store

    # ------------------------------------------------------------------ holding
    def hold(self, st: CustomerState, env: Envelope, raw: bytes | None, batch: Batch) -> None:
        """Keep an input until the customer's registry record arrives (bounded)."""
        body = (raw or env.dumps()).decode()
        if sum(map(len, st.pending)) + len(body) > MAX_PENDING_BYTES:
            self._reject_held(env, "its registry record did not arrive and the hold is full")
            return
        st.pending.append(body)
        batch.dirty[st.customer_id] = st
        self.ctx.metrics.inc("awaiting_registry" if env.kind == "reading" else "history_awaiting_registry")

    def _reject_held(self, env: Envelope, why: str) -> None:
        dead = self.ctx.dead
        if env.reading is not None:
            err = unknown_error(env.reading)
            dead.send_envelope(env, err.model_copy(update={"message": f"{err.message}; {why}"}))
            return
        err = DeadLetterError(
            code="unknown_customer",
            message=f"customer {env.customer_id!r} is not in the registry; {why}",
            field="customer_id",
        )
        for row in env.history or []:
            dead.send_envelope(env, err, raw=row.model_dump_json().encode())

    # ------------------------------------------------------------------ registry
    def customer(self, st: CustomerState, rec: CustomerRecord, batch: Batch) -> None:
        ctx = self.ctx
        old = st.config
        st.record = rec
        st.config = CustomerConfig.from_record(rec)
        ctx.metrics.inc("customers_applied")
        body = rec.model_dump_json().encode()
        self.store.put_record(batch.partition, st.customer_id, body)
        batch.deleted.discard(st.customer_id)
        if st.profile is not None and _cycles_changed(old, st.config):
            # folded under other cycle settings (a changed record, or state from before holding)
            st.profile = rebuild_cycles(st.profile, st.config, ctx.engine.rules.late_window_days)
            batch.dirty[st.customer_id] = st
            ctx.metrics.inc("cycles_rebuilt")
        if st.pending:
            waiting, st.pending = st.pending, []
            batch.dirty[st.customer_id] = st
            for item in waiting:
                self.apply_held(st, Envelope.model_validate_json(item), batch)
        if ctx.readmodel is not None:
            ctx.readmodel.put_customer(st.customer_id, body)
        if st.profile is not None:
            # registry facts (tariff, arrears, occupancy) are segment features too (the read model's
            # view reads the new record from the registry copy: no state to write for it)
            self.send_features(st)

    def apply_held(self, st: CustomerState, env: Envelope, batch: Batch) -> None:
        try:
            if env.kind == "reading":
                self.reading(st, env, batch)
            elif env.kind == "history":
                self.history(st, env, batch)
        except Exception as exc:
            log.exception("applying a held %s of customer %s failed", env.kind, st.customer_id)
            if env.reading is not None:
                self.ctx.dead.send_envelope(env, self.ctx.dead.processing_error(exc))

    def deleted(self, st: CustomerState, batch: Batch) -> None:
        ctx = self.ctx
        for item in st.pending:
            self._reject_held(Envelope.model_validate_json(item), "the customer was deleted")
        # always: the segmenter may count the customer although its assignment has not
        # come back yet (it keeps its own membership; forgetting an unknown id is a no-op)
        self.send_features(st, forget=True)
        workbench.segment_changed(ctx.readmodel, st.customer_id, st.segment, None)
        self.store.drop(batch.partition, st.customer_id)
        batch.dirty.pop(st.customer_id, None)
        batch.deleted.add(st.customer_id)
        ctx.metrics.inc("customers_deleted")
        if ctx.readmodel is not None:
            ctx.readmodel.put_customer(st.customer_id, None)

    def segment(self, st: CustomerState, env: Envelope, batch: Batch) -> None:
        assert env.segment is not None
        if st.config is None:
            return  # deleted meanwhile
        workbench.segment_changed(self.ctx.readmodel, st.customer_id, st.segment, env.segment.segment)
        st.segment = env.segment.segment
        batch.dirty[st.customer_id] = st
        self.ctx.metrics.inc("segment_assignments")

    # ------------------------------------------------------------------ consumption
    def history(self, st: CustomerState, env: Envelope, batch: Batch, raw: bytes | None = None) -> None:
        ctx = self.ctx
        if st.config is None:
            self.hold(st, env, raw, batch)
            return
        rows = []
        now = ctx.clock()
        for i, row in enumerate(env.history or []):
            err = check_history_row(row, st.record, now, ctx.settings)
            if err is None:
                rows.append(row)
                continue
            n = len(env.history or [])
            err = err.model_copy(update={"message": f"{err.message} (history row {i + 1} of {n} from here)"})
            ctx.dead.send_envelope(env, err, raw=row.model_dump_json().encode())
        prof = st.profile or Profile.new(st.customer_id)
        st.profile = workbench.load_history(ctx.readmodel, ctx.engine, st.customer_id, prof, rows, st.config)
        batch.dirty[st.customer_id] = st
        ctx.metrics.inc("history_applied", len(rows))
        self.send_features(st)

    def reading(self, st: CustomerState, env: Envelope, batch: Batch, raw: bytes | None = None) -> None:
        """Fold one reading; the redelivery watermark and the domain's de-duplication make it idempotent."""
        ctx = self.ctx
        r = env.reading
        assert r is not None
        if st.config is None:
            self.hold(st, env, raw, batch)
            return
        if st.profile is None:
            st.profile = Profile.new(st.customer_id)
        redelivered = self._watermark(st, env, batch)
        wb_mark = workbench.before(st.profile)
        res = ctx.engine.process_inplace(
            st.profile, Reading.from_contract(r), st.config, segment=st.segment or SegmentRef()
        )
        if res.rejected is not None or res.duplicate:
            if redelivered:
                # seen before the crash/rebalance: counted or dead-lettered then, not again now
                # (without the watermark, a replay older than the late window reads as "too late")
                ctx.metrics.inc_labelled("duplicates", "redelivered")
            elif res.rejected is not None:
                ctx.dead.send_envelope(env, domain_error(res.rejected))
            else:
                ctx.metrics.inc_labelled("duplicates", "reading")
                st.batch_duplicates += 1
                batch.dirty[st.customer_id] = st
            return
        batch.dirty[st.customer_id] = st
        ctx.metrics.inc("readings_processed")
        workbench.after(ctx.readmodel, st.customer_id, wb_mark, st.profile, ctx.engine.rules)
        st.batch_readings += 1
        key = st.customer_id.encode()
        for alert in res.alerts:
            self._emit_alert(key, alert)
        # Segments describe long-term habits: features go to the segmenter once the customer
        # has a baseline, then at most once per FEATURES_EVERY_DAYS days of data.
        day = int(r.ts.timestamp() // 86400)
        if day >= st.features_day + FEATURES_EVERY_DAYS and baseline_days(st.profile) >= MIN_BASELINE_DAYS:
            self.send_features(st, day=day)

    def _watermark(self, st: CustomerState, env: Envelope, batch: Batch) -> bool:
        """Whether this reading was applied before (per source partition: highest offset applied)."""
        src = env.src
        if src is None or env.parked or src.t != self.ctx.names.readings:
            return False  # readings that waited for their meter come after later ones
        if src.o <= st.source_offsets.get(src.p, -1):
            return True
        st.source_offsets[src.p] = src.o
        batch.dirty[st.customer_id] = st
        return False

    # ------------------------------------------------------------------ outputs
    def _emit_alert(self, key: bytes, alert: Alert) -> None:
        ctx = self.ctx
        ctx.out.add_keyed(ctx.names.alerts, key, alert.to_json())
        ctx.metrics.inc_labelled("alerts", alert.rule)
        if alert.solicited:  # the customer asked for it (budget): counted apart from unsolicited alerts
            ctx.metrics.inc("alerts_solicited")
        if ctx.readmodel is not None:
            ctx.readmodel.add_alert(alert)

    def send_features(self, st: CustomerState, *, day: int | None = None, forget: bool = False) -> None:
        ctx = self.ctx
        cur = st.segment.id if st.segment is not None else None
        if forget:
            fe = FeaturesEvent(
                customer_id=st.customer_id, features={}, ts=ctx.clock(), current=cur, forget=True
            )
        else:
            if st.profile is None or st.config is None:
                return
            feats = ctx.engine.segment_features(st.profile, st.config)
            if not feats:
                return
            if day is not None:
                st.features_day = day
            fe = FeaturesEvent(customer_id=st.customer_id, features=feats, ts=ctx.clock(), current=cur)
        ctx.out.add(ctx.names.features, 0, st.customer_id.encode(), fe.model_dump_json().encode())
        ctx.metrics.inc("features_sent")
