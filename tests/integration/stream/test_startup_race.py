"""Start-up race on a fresh stack (issue #10 item 8): history and readings that reach a customer's
partition before its registry record must not be folded under default billing cycles.

The first demo on a fresh stack gave 20 of 100 households calendar-month cycles instead of their
read day. Here the history is on the customers' partitions before any registry record exists
(the worst case of the interleaving `meterwatch simulate` produces: customers, history and
readings are consumed by different stages that race); then the records and the readings arrive.
Every customer must show cycles that start on its read day, with its cycle length.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from meterwatch.contracts import BaselineSnapshot, HistoryRow
from meterwatch.keys import Keys
from meterwatch.settings import Settings

from .conftest import customer, daily_readings, publish, snapshot_of, wait_for

pytestmark = [pytest.mark.integration]

N = 12
HISTORY_DAYS = 70
FIRST_STREAM_DAY = dt.date(2024, 6, 1)


def read_day(i: int) -> int:
    return 2 + (5 * i) % 27


def months(i: int) -> int:
    return 1 + i % 2


async def test_records_arriving_after_history_and_readings_still_give_read_day_cycles(
    mw_settings: Settings, worker_factory: Any, kafka_producer: Any, redis_client: Any
) -> None:
    s = mw_settings
    keys = Keys(s.redis_prefix)
    cids = [f"r{i:02d}" for i in range(N)]
    history = [
        HistoryRow(customer_id=cid, day=FIRST_STREAM_DAY - dt.timedelta(days=d), kwh=6.0 + i % 4)
        for i, cid in enumerate(cids)
        for d in range(HISTORY_DAYS, 0, -1)
    ]
    await publish(
        kafka_producer, s.topic_history, [(h.customer_id, h.model_dump(mode="json")) for h in history]
    )
    worker_factory(s)

    async def forwarded() -> bool:
        n = await redis_client.hget(keys.metrics("worker"), "history_rows")
        return n is not None and int(n) == len(history)

    await wait_for(forwarded, 60, "the history to reach the customers' partitions")
    records = [
        customer(cid, [f"m-{cid}"], read_day=read_day(i), cycle_months=months(i))
        for i, cid in enumerate(cids)
    ]
    readings = [r for cid in cids for r in daily_readings(f"m-{cid}", FIRST_STREAM_DAY, 1, 4.8)]
    # registry and readings interleaved, the registry record of each customer first on its topic
    await publish(kafka_producer, s.topic_customers, [(c["customer_id"], c) for c in records[: N // 2]])
    await publish(kafka_producer, s.topic_readings, [(r["meter_id"], r) for r in readings])
    await publish(kafka_producer, s.topic_customers, [(c["customer_id"], c) for c in records[N // 2 :]])
    last_ts = dt.datetime.combine(FIRST_STREAM_DAY + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

    async def all_snapshots() -> dict[str, BaselineSnapshot] | None:
        out = {}
        for cid in cids:
            raw = await snapshot_of(redis_client, s, cid)
            snap = BaselineSnapshot.model_validate_json(raw) if raw else None
            if snap is None or snap.as_of != last_ts:
                return None
            out[cid] = snap
        return out

    snaps = await wait_for(all_snapshots, 90, "every customer's snapshot after its readings")
    wrong = []
    for i, cid in enumerate(cids):
        snap = snaps[cid]
        cycles = [(c.start, c.end) for c in snap.baseline.cycles] + [(snap.cycle.start, snap.cycle.end)]
        lengths = [(e - s0).days + 1 for s0, e in cycles[1:]]  # the first may be cut by the history's start
        ok_days = all(s0.day == read_day(i) for s0, _ in cycles[1:])
        ok_len = all((55 <= n <= 62) if months(i) == 2 else (28 <= n <= 31) for n in lengths)
        if not (ok_days and ok_len and snap.cycle.start.day == read_day(i)):
            wrong.append(f"{cid} read_day={read_day(i)} months={months(i)}: {cycles}")
    assert not wrong, "\n".join(wrong)

    async def counted() -> dict[bytes, bytes] | None:  # the metrics mirror follows within a second
        got = await redis_client.hgetall(keys.metrics("worker"))
        return got if int(got.get(b"history_applied", 0)) >= len(history) else None

    counts = await wait_for(counted, 20, "the history counters")
    assert int(counts[b"history_applied"]) == len(history)
    assert int(counts[b"readings_processed"]) == len(readings)
