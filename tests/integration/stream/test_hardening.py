"""Poisoned readings on the real stack (issue #10 items 1, 2, 3, 6): each is dead-lettered with a
named reason, nothing else is booked, and the customer keeps working, also after a restart on an
empty disk (state from the changelogs)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meterwatch.contracts import BaselineSnapshot, DeadLetter
from meterwatch.keys import Keys
from meterwatch.settings import Settings

from .conftest import customer, publish, snapshot_of, wait_for

pytestmark = [pytest.mark.integration]


def r(meter: str, ts: str, kwh: Any = 0.5, **kw: Any) -> dict[str, Any]:
    return {"meter_id": meter, "ts": ts, "kwh": kwh, **kw}


POISON: list[tuple[dict[str, Any] | bytes, str, str]] = [
    (r("m1", "2099-01-01T00:30:00+00:00"), "ts_in_future", "ts"),  # item 1
    (r("m1", "1999-12-31T23:30:00+00:00"), "ts_too_old", "ts"),
    (r("m1", "2024-03-01T03:00:00+00:00", 1e308), "kwh_implausible", "kwh"),  # item 2
    (r("m1", "2024-03-01T03:30:00+00:00", 1e308), "kwh_implausible", "kwh"),
    (r("m1", "2024-03-01T04:00:00+00:00", 1e12), "kwh_implausible", "kwh"),
    (r("m2", "2024-03-01T04:00:00+00:00", 60.0), "kwh_implausible", "kwh"),  # c2's own max_kw (100 kW)
    (
        r("m1", "2024-03-01T04:30:00+00:00", customer_id="c2"),
        "meter_customer_mismatch",
        "customer_id",
    ),  # item 3
    (b'{"meter_id": "m1", "ts": "2024-03-01T05:00:00+00:00", "kwh": true}', "schema", "kwh"),  # item 6
    (b'{"meter_id": "m1", "ts": "2024-03-01T05:30:00+00:00", "kwh": "0.25"}', "schema", "kwh"),
    (b'{"meter_id": "m1", "ts": 1709269200, "kwh": 0.25}', "schema", "ts"),
]
GOOD = [r("m1", f"2024-03-01T0{h}:{m}:00+00:00") for h in (0, 1, 2) for m in ("00", "30")][1:]  # 5 x 0.5


async def test_poisoned_readings_are_dead_lettered_and_the_customer_keeps_working(
    mw_settings: Settings, worker_factory: Any, kafka_producer: Any, kafka_consume: Any, redis_client: Any
) -> None:
    s = mw_settings
    keys = Keys(s.redis_prefix)
    await publish(
        kafka_producer,
        s.topic_customers,
        [("c1", customer("c1", ["m1"])), ("c2", customer("c2", ["m2"], tariff="commercial", max_kw=100.0))],
    )
    first = worker_factory(s)
    items: list[tuple[str, Any]] = [("m1", GOOD[0])]
    items += [("m1", raw) for raw, _, _ in POISON]
    items += [("m1", g) for g in GOOD[1:]]
    await publish(kafka_producer, s.topic_readings, items)

    async def booked(kwh: float) -> BaselineSnapshot | None:
        raw = await snapshot_of(redis_client, s, "c1")
        snap = BaselineSnapshot.model_validate_json(raw) if raw else None
        return snap if snap and snap.cycle.cycle_to_date_kwh == pytest.approx(kwh) else None

    snap = await wait_for(lambda: booked(2.5), 60, "the good readings in the read model")
    assert snap.as_of.isoformat() == "2024-03-01T02:30:00+00:00"  # not 2099
    recs = await kafka_consume(s.topic_dlq, len(POISON) + 1, timeout_s=10)
    letters = [DeadLetter.model_validate_json(x.value) for x in recs]
    assert sorted((d.error.code, d.error.field) for d in letters) == sorted((c, f) for _, c, f in POISON)
    assert all(d.error.message and d.source.topic == s.topic_readings for d in letters)
    raw_of = {d.source.offset: d.raw for d in letters}
    assert json.loads(raw_of[1])["ts"].startswith("2099")  # the original bytes are kept

    # a restart on an empty disk: the customer's state comes back from the changelog and later
    # readings are booked (before: every reading after 2099 was too_late, or a processing_error)
    first.kill9()
    worker_factory(s, "w1")
    later = [r("m1", "2024-03-01T03:00:00+00:00"), r("m1", "2024-03-02T00:30:00+00:00", 1.0)]
    await publish(kafka_producer, s.topic_readings, [("m1", x) for x in later])
    snap = await wait_for(lambda: booked(4.0), 90, "readings after the restart in the read model")
    counts = await redis_client.hgetall(keys.metrics("worker"))
    assert b"dlq:processing_error" not in counts and b"dlq:baselines.readings.too_late" not in counts
    assert int(counts[b"readings_processed"]) == len(GOOD) + len(later)
