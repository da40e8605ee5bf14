"""End to end on the real stack: a `meterwatch worker` subprocess, real Kafka, real Redis."""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
from typing import Any

import pytest

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from meterwatch.contracts import Alert, BaselineSnapshot, CustomerRecord, DeadLetter, MeterReading
from meterwatch.keys import Keys
from meterwatch.settings import Settings

from .conftest import customer, publish, snapshot_of, wait_for

pytestmark = [pytest.mark.integration]

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def surge_readings(meter: str, days: int, surge_from: int, factor: float, seed: int) -> list[dict[str, Any]]:
    """Half-hourly readings of a household using ~8 kWh/day, ``factor`` x from day ``surge_from``."""
    rnd = random.Random(seed)
    out = []
    for day in range(days):
        level = 8.0 * (1 + 0.15 * rnd.uniform(-1, 1)) * (factor if day >= surge_from else 1.0)
        for i in range(48):
            ts = T0 + dt.timedelta(days=day, minutes=30 * (i + 1))
            out.append({"meter_id": meter, "ts": ts.isoformat(), "kwh": round(level / 48, 5)})
    return out


def expected_alerts(cid: str, rec: dict[str, Any], readings: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """What the domain engine says for this stream, computed in-process (the stream must agree)."""
    eng = Engine()
    cfg = CustomerConfig.from_record(CustomerRecord.model_validate(rec))
    p = Profile.new(cid)
    out = []
    for r in readings:
        res = eng.process_inplace(p, Reading.from_contract(MeterReading.model_validate(r)), cfg)
        out += [(a.alert_id, a.rule) for a in res.alerts]
    return out


async def test_surge_produces_exactly_the_expected_alert_and_read_model(
    mw_settings: Settings, worker_factory: Any, kafka_producer: Any, kafka_consume: Any, redis_client: Any
) -> None:
    s = mw_settings
    quiet = customer("c-quiet", ["m-quiet"])
    surging = customer("c-surge", ["m-surge"], manager_id="mgr-7")
    await publish(kafka_producer, s.topic_customers, [("c-quiet", quiet), ("c-surge", surging)])
    worker_factory(s)
    r_quiet = surge_readings("m-quiet", 40, 99, 1.0, seed=1)
    r_surge = surge_readings("m-surge", 40, 32, 5.0, seed=2)
    want = expected_alerts("c-surge", surging, r_surge)
    assert [rule for _, rule in want] == ["sudden_increase"]  # the scenario is a real surge
    assert expected_alerts("c-quiet", quiet, r_quiet) == []
    await publish(kafka_producer, s.topic_readings, [(r["meter_id"], r) for r in r_quiet + r_surge])

    keys = Keys(s.redis_prefix)

    async def snapshot_complete(cid: str) -> BaselineSnapshot | None:
        raw = await snapshot_of(redis_client, s, cid)
        if raw is None:
            return None
        snap = BaselineSnapshot.model_validate_json(raw)
        return snap if snap.as_of >= T0 + dt.timedelta(days=39, hours=23) else None

    snap = await wait_for(lambda: snapshot_complete("c-surge"), 45, "the snapshot of the last reading")
    await wait_for(lambda: snapshot_complete("c-quiet"), 10, "the quiet customer's last reading")
    recs = await kafka_consume(s.topic_alerts, 2, timeout_s=4)  # all processed: no more may come
    alerts = [Alert.model_validate_json(r.value) for r in recs]
    assert [(a.alert_id, a.rule) for a in alerts] == want
    a = alerts[0]
    assert recs[0].key == b"c-surge"
    assert a.customer_id == "c-surge" and a.manager_id == "mgr-7" and a.meter_ids == ["m-surge"]
    assert a.observed.ratio is not None and a.observed.ratio > 3

    assert a.alert_id in snap.open_alerts
    assert snap.baseline.daily_kwh is not None and 6 < snap.baseline.daily_kwh < 10
    assert await redis_client.zrange(keys.alerts("c-surge"), 0, -1) == [a.alert_id.encode()]
    body = await redis_client.hget(keys.alert_bodies("c-surge"), a.alert_id)
    assert Alert.model_validate_json(body).rule == "sudden_increase"
    reg = json.loads(await redis_client.get(keys.customer("c-surge")))
    assert reg["phone"] == "+447700900123" and reg["manager_id"] == "mgr-7"
    assert await redis_client.exists(keys.alerts("c-quiet")) == 0
    assert float(await redis_client.get(keys.heartbeat)) > 0


async def test_malformed_input_goes_to_the_dlq_with_reasons(
    mw_settings: Settings, worker_factory: Any, kafka_producer: Any, kafka_consume: Any, redis_client: Any
) -> None:
    s = mw_settings.model_copy(update={"unknown_meter_policy": "dlq"})
    await publish(kafka_producer, s.topic_customers, [("c1", customer("c1", ["m1"]))])
    worker_factory(s)
    good = {"meter_id": "m1", "ts": "2024-03-01T00:30:00+00:00", "kwh": 0.2}
    bad: list[tuple[str, bytes | None, str, str | None]] = [
        ("m1", b'{"meter_id": "m1", "ts": ', "invalid_json", None),
        ("m1", b"\xff\xfe\x00garbage", "invalid_json", None),
        ("m1", json.dumps({**good, "kwh": -3}).encode(), "schema", "kwh"),
        ("m1", json.dumps({**good, "ts": "2024-03-01T00:30:00"}).encode(), "schema", "ts"),
        ("m1", json.dumps({"meter_id": "m1", "ts": good["ts"]}).encode(), "schema", None),
        ("m1", b"[1, 2, 3]", "schema", None),
        ("m1", b'{"meter_id": "m1", "pad": "' + b"x" * 70_000 + b'"}', "too_large", None),
        ("m1", None, "empty", None),
        ("m-unknown", json.dumps({**good, "meter_id": "m-unknown"}).encode(), "unknown_meter", "meter_id"),
        ("m1", json.dumps({**good, "customer_id": "c-nobody"}).encode(), "unknown_customer", "customer_id"),
    ]
    # good readings around the bad ones: the worker must keep going
    items: list[tuple[str, Any]] = [("m1", good)]
    items += [(k, v) for k, v, _, _ in bad]
    items += [("m1", {**good, "ts": "2024-03-01T01:00:00+00:00"})]
    await publish(kafka_producer, s.topic_readings, items)

    keys = Keys(s.redis_prefix)

    async def all_rejected() -> bool:
        counts = await redis_client.hgetall(keys.metrics("worker"))
        return sum(int(v) for k, v in counts.items() if k.startswith(b"dlq:")) >= len(bad)

    await wait_for(all_rejected, 40, "every bad message to be dead-lettered")
    recs = await kafka_consume(s.topic_dlq, len(bad) + 1, timeout_s=4)
    letters = [DeadLetter.model_validate_json(r.value) for r in recs]
    assert len(letters) == len(bad)  # one per bad message, none for the good ones

    def original(d: DeadLetter) -> bytes | None:
        if d.error.code == "empty":
            return None
        return base64.b64decode(d.raw) if d.raw_encoding == "base64" else d.raw.encode()

    got = sorted(((original(d) or b""), d.error.code, d.error.field) for d in letters)
    want = sorted(((raw or b""), code, field) for _, raw, code, field in bad)
    for (g_raw, g_code, g_field), (w_raw, w_code, w_field) in zip(got, want, strict=True):
        assert g_raw == w_raw
        assert g_code == w_code
        if w_field is not None:
            assert g_field == w_field
    for d in letters:
        assert d.source.topic == s.topic_readings and d.source.offset >= 0
        assert d.error.message
    assert sum(d.raw_encoding == "base64" for d in letters) == 1
    # the good readings after the garbage were processed: the snapshot has both half-hours

    async def two_readings() -> bool:
        raw = await snapshot_of(redis_client, s, "c1")
        return (
            raw is not None
            and abs(BaselineSnapshot.model_validate_json(raw).cycle.cycle_to_date_kwh - 0.4) < 1e-6
        )

    await wait_for(two_readings, 15, "both good readings in the read model")
    counts = await wait_for(
        lambda: redis_client.hgetall(keys.metrics("worker")), 10, "worker metrics in Redis"
    )
    assert int(counts[b"dlq:schema"]) == 4
