"""Registry-driven flows on the real stack: unknown meters wait (then resolve or dead-letter),
customer tombstones delete, and bootstrap history lives in the tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from meterwatch.contracts import BaselineSnapshot, CustomerRecord, DeadLetter, HistoryRow, MeterReading
from meterwatch.keys import Keys
from meterwatch.settings import Settings

from .conftest import customer, daily_readings, publish, snapshot_of, wait_for

pytestmark = [pytest.mark.integration]


async def test_unknown_meter_waits_for_its_customer_and_expires_to_the_dlq(
    mw_settings: Settings, worker_factory: Any, kafka_producer: Any, kafka_consume: Any, redis_client: Any
) -> None:
    s = mw_settings.model_copy(update={"unknown_meter_policy": "wait", "unknown_meter_wait_s": 6.0})
    keys = Keys(s.redis_prefix)
    worker_factory(s)
    late = daily_readings("m-late", dt.date(2024, 3, 1), 1, 4.8)[:10]  # 10 x 0.1 kWh
    never = daily_readings("m-never", dt.date(2024, 3, 1), 1, 4.8)[:2]
    await publish(kafka_producer, s.topic_readings, [(r["meter_id"], r) for r in late + never])

    async def parked() -> bool:
        n = await redis_client.hget(keys.metrics("worker"), "parked")
        return n is not None and int(n) == len(late) + len(never)

    await wait_for(parked, 40, "the readings of unknown meters to be parked")
    assert await snapshot_of(redis_client, s, "c-late") is None
    await publish(kafka_producer, s.topic_customers, [("c-late", customer("c-late", ["m-late"]))])

    async def resolved() -> BaselineSnapshot | None:
        raw = await snapshot_of(redis_client, s, "c-late")
        snap = BaselineSnapshot.model_validate_json(raw) if raw else None
        return snap if snap and abs(snap.cycle.cycle_to_date_kwh - 1.0) < 1e-6 else None

    await wait_for(resolved, 20, "the parked readings to be processed once the customer is known")

    async def expired() -> bool:
        n = await redis_client.hget(keys.metrics("worker"), "dlq:unknown_meter")
        return n is not None and int(n) >= len(never)

    await wait_for(expired, 30, "the readings of the never-registered meter to expire")
    recs = await kafka_consume(s.topic_dlq, 3, timeout_s=4)
    letters = [DeadLetter.model_validate_json(r.value) for r in recs]
    assert [d.error.code for d in letters] == ["unknown_meter", "unknown_meter"]
    assert all("m-never" in d.raw and "waited" in d.error.message for d in letters)
    assert {d.source.topic for d in letters} == {s.topic_readings}

    # a tombstone deletes the customer: registry copy and baseline leave Redis
    assert await redis_client.exists(keys.customer("c-late"), keys.state("c-late")) == 2
    await publish(kafka_producer, s.topic_customers, [("c-late", None)])

    async def deleted() -> bool:
        left: int = await redis_client.exists(
            keys.customer("c-late"), keys.state("c-late"), keys.baseline("c-late")
        )
        return left == 0

    await wait_for(deleted, 15, "the tombstone to delete the customer")
    assert await snapshot_of(redis_client, s, "c-late") is None


async def test_bootstrap_history_feeds_same_period_rules_from_the_first_reading(
    mw_settings: Settings, worker_factory: Any, kafka_producer: Any, kafka_consume: Any, redis_client: Any
) -> None:
    s = mw_settings
    keys = Keys(s.redis_prefix)
    rec = customer("c-hist", ["m-hist"], read_day=1)
    await publish(kafka_producer, s.topic_customers, [("c-hist", rec)])
    # a year and a bit of daily history, ending the day before the stream starts
    first_stream_day = dt.date(2024, 3, 1)
    rows = [
        HistoryRow(customer_id="c-hist", day=first_stream_day - dt.timedelta(days=i), kwh=5.0 + (i % 7) * 0.5)
        for i in range(400, 0, -1)
    ]
    worker_factory(s)
    await publish(kafka_producer, s.topic_history, [("c-hist", r.model_dump(mode="json")) for r in rows])

    # as `meterwatch simulate --pause-after-history` does: the history and the readings are two
    # topics read by two stages, so nothing orders them; history that reaches the profile after
    # later readings cannot fill the cycles those readings already laid out
    async def history_loaded() -> bool:
        n = await redis_client.hget(keys.metrics("worker"), "history_applied")
        return n is not None and int(n) == len(rows)

    await wait_for(history_loaded, 40, "the history to be applied")
    readings = daily_readings("m-hist", first_stream_day, 1, 4.8)[:4]
    await publish(kafka_producer, s.topic_readings, [(r["meter_id"], r) for r in readings])

    eng = Engine()
    cfg = CustomerConfig.from_record(CustomerRecord.model_validate(rec))
    prof = eng.load_history(Profile.new("c-hist"), rows, cfg)
    for r in readings:
        eng.process_inplace(prof, Reading.from_contract(MeterReading.model_validate(r)), cfg)
    want = eng.snapshot(prof, cfg, None, dt.datetime.now(dt.UTC))
    assert want.same_period.kwh  # the first streamed cycle already has its same-period cycle

    async def with_history() -> BaselineSnapshot | None:
        raw = await snapshot_of(redis_client, s, "c-hist")
        snap = BaselineSnapshot.model_validate_json(raw) if raw else None
        last_ts = dt.datetime.fromisoformat(readings[-1]["ts"])
        return snap if snap and snap.as_of == last_ts else None

    snap = await wait_for(with_history, 40, "history and the first readings in the read model")
    assert snap.same_period.start == want.same_period.start
    assert snap.same_period.kwh is not None and abs(snap.same_period.kwh - want.same_period.kwh) < 0.02
    assert len(snap.baseline.cycles) == len(want.baseline.cycles) >= 12
    assert abs(snap.cycle.cycle_to_date_kwh - 0.4) < 1e-6
    n = await redis_client.hget(keys.metrics("worker"), "history_rows")
    assert int(n) == len(rows)
