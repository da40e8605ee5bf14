"""The segmenter wired into the worker, on the real stack: features -> one model ->
assignments back to each customer's partition -> state, read model and alerts."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import pytest

from meterwatch.contracts import Alert, BaselineSnapshot, HistoryRow, SegmentAssignment, SegmentSummary
from meterwatch.keys import Keys
from meterwatch.settings import Settings

from .conftest import customer, publish, snapshot_of, wait_for

pytestmark = [pytest.mark.integration]

N = 320  # above the segmenter's default warm-up (300 customers)
T0 = dt.date(2024, 6, 1)


async def test_segments_reach_customer_state_read_model_and_alerts(
    mw_settings: Settings,
    worker_factory: Any,
    kafka_producer: Any,
    kafka_consume: Any,
    redis_client: Any,
    tmp_path: Any,
) -> None:
    # per-segment thresholds: every segment turns sudden_increase into an "info" alert, so an
    # "info" severity proves the customer's segment reached the rule engine
    rules = {
        "by_segment": {
            str(k): {"sudden_increase": {"severity": "info", "critical_factor": 100}} for k in range(7)
        }
    }
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    s = mw_settings.model_copy(update={"rules_file": tmp_path / "rules.json"})
    keys = Keys(s.redis_prefix)
    rnd = random.Random(5)
    customers = [customer(f"s{i:03d}", [f"sm{i:03d}"]) for i in range(N)]
    await publish(kafka_producer, s.topic_customers, [(c["customer_id"], c) for c in customers])
    history = []
    for i in range(N):
        level = (3.0, 9.0, 25.0)[i % 3]  # three clearly different consumption levels
        for d in range(40, 0, -1):
            kwh = level * (0.85 + 0.3 * rnd.random())
            history.append(HistoryRow(customer_id=f"s{i:03d}", day=T0 - dt.timedelta(days=d), kwh=kwh))
    first = worker_factory(s)
    await publish(
        kafka_producer, s.topic_history, [(h.customer_id, h.model_dump(mode="json")) for h in history]
    )

    async def summaries_any() -> list[SegmentSummary] | None:
        raw = await redis_client.get(keys.segments)
        return [SegmentSummary.model_validate(x) for x in json.loads(raw)] if raw else None

    async def summaries() -> list[SegmentSummary] | None:
        raw = await redis_client.get(keys.segments)
        if raw is None:
            return None
        out = [SegmentSummary.model_validate(x) for x in json.loads(raw)]
        return out if sum(x.size for x in out) >= N else None

    segs = await wait_for(summaries, 50, "segment summaries covering every customer")
    # history runs split across batches send a customer's features more than once before its
    # assignment is back: still, every customer is counted exactly once
    assert sum(x.size for x in segs) == N, [x.size for x in segs]
    assert 2 <= len(segs) <= s.max_segments
    assert all(x.label for x in segs)

    async def segmented() -> BaselineSnapshot | None:
        # the online clusterer can still empty a segment and move its members while the last
        # features arrive; the snapshot follows the summaries a moment later (the assignment
        # travels through the segments topic to the customer's partition): wait until both
        # agree, which they must once the model settles
        raw = await snapshot_of(redis_client, s, "s000")
        snap = BaselineSnapshot.model_validate_json(raw) if raw else None
        if snap is None or snap.segment.id is None:
            return None
        now = await summaries()
        return snap if now is not None and snap.segment.id in {x.id for x in now} else None

    try:
        snap = await wait_for(segmented, 20, "the customer's snapshot to carry its segment")
    except AssertionError as exc:  # what happened to s000's assignment, for the report
        recs = await kafka_consume(s.topic_segments, 2000, timeout_s=3)
        assigned = [r.value for r in recs if r.key == b"s000"]
        snap_now = await snapshot_of(redis_client, s, "s000")
        raise AssertionError(f"{exc}; s000 assignments: {assigned}; snapshot: {snap_now!r}") from None

    # a surge now: the alert carries the customer's segment
    readings = []
    for day in range(5):
        for h in range(48):
            ts = dt.datetime.combine(T0, dt.time(), tzinfo=dt.UTC) + dt.timedelta(
                days=day, minutes=30 * (h + 1)
            )
            readings.append({"meter_id": "sm000", "ts": ts.isoformat(), "kwh": round(3.0 * 5 / 48, 5)})
    await publish(kafka_producer, s.topic_readings, [("sm000", r) for r in readings])
    recs = await kafka_consume(s.topic_alerts, 1, timeout_s=30)
    assert recs, "no alert"
    alert = Alert.model_validate_json(recs[0].value)
    assert alert.customer_id == "s000" and alert.rule == "sudden_increase"

    # the online clusterer may move s000 while more customers' features arrive (hysteresis
    # bounds it, it does not forbid it): the alert carries one of s000's own assignments
    async def s000_assignments() -> set[int | None] | None:
        got = await kafka_consume(s.topic_segments, 5000, timeout_s=3)
        ids = {SegmentAssignment.model_validate_json(r.value).segment.id for r in got if r.key == b"s000"}
        return ids if alert.segment.id in ids else None

    assigned = await wait_for(s000_assignments, 30, "s000's assignment the alert carries")
    assert snap.segment.id in assigned, assigned
    assert alert.segment.id in assigned and alert.segment.label, (alert.segment, assigned)
    assert alert.severity == "info"  # the per-segment rule set, not the default ("warning")

    # a deleted customer leaves its segment: the sizes sum to the remaining customers
    await publish(kafka_producer, s.topic_customers, [("s001", None)])

    async def shrunk() -> list[SegmentSummary] | None:
        raw = await redis_client.get(keys.segments)
        out = [SegmentSummary.model_validate(x) for x in json.loads(raw)] if raw else []
        return out if sum(x.size for x in out) == N - 1 else None

    await wait_for(shrunk, 20, "segment sizes to drop the deleted customer")

    # kill -9, then a fresh instance (empty disk): the model and who is counted where come
    # back from the changelog; a registry change re-sends a customer's features, which must
    # not count it again
    first.kill9()
    await redis_client.delete(keys.segments)
    worker_factory(s, "w1")
    await publish(kafka_producer, s.topic_customers, [("s002", customer("s002", ["sm002"], read_day=2))])
    restored = await wait_for(summaries_any, 60, "segment summaries from the restarted worker")
    assert sum(x.size for x in restored) == N - 1, [x.size for x in restored]
