"""Holidays in the stream (issue #15 item 2), on the real stack: a `meterwatch worker` subprocess.

Two households with the same autumn habit spend Christmas 2023 at home at five times their
use. One's record names its region (`GB-ENG`): the break is no evidence, no alert, and the
baseline snapshot says why (`baselines.calendar.holiday`). The other has no region: the
break is a surge. The stream's alerts are the domain engine's on the same input (the
backtest path): the same alert ids.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from meterwatch.contracts import Alert, BaselineSnapshot, CustomerRecord, MeterReading
from meterwatch.settings import Settings

from .conftest import customer, publish, snapshot_of, wait_for

pytestmark = [pytest.mark.integration]

START, LAST = dt.date(2023, 10, 1), dt.date(2023, 12, 30)


def _readings(meter: str) -> list[dict[str, Any]]:
    """Daily reads: about 7 kWh a day, five times that from Christmas Day on."""
    out = []
    for i in range((LAST - START).days + 1):
        d = START + dt.timedelta(days=i)
        kwh = (6.0 + (i % 5) * 0.5) * (5.0 if d >= dt.date(2023, 12, 25) else 1.0)
        end = dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        out.append({"meter_id": meter, "ts": end.isoformat(), "kwh": round(kwh, 3), "interval_s": 86400})
    return out


def _expected(rec: dict[str, Any], readings: list[dict[str, Any]]) -> list[Alert]:
    eng = Engine()
    cfg = CustomerConfig.from_record(CustomerRecord.model_validate(rec))
    p = Profile.new(cfg.customer_id)
    out: list[Alert] = []
    for r in readings:
        out += eng.process_inplace(p, Reading.from_contract(MeterReading.model_validate(r)), cfg).alerts
    return out


async def test_a_christmas_at_home_alerts_only_the_household_without_a_holiday_calendar(
    mw_settings: Settings, worker_factory: Any, kafka_producer: Any, kafka_consume: Any, redis_client: Any
) -> None:
    s = mw_settings
    gb = customer("c-gb", ["m-gb"], region="GB-ENG")
    plain = customer("c-plain", ["m-plain"])
    await publish(kafka_producer, s.topic_customers, [("c-gb", gb), ("c-plain", plain)])
    worker_factory(s)
    reads = {"c-gb": _readings("m-gb"), "c-plain": _readings("m-plain")}
    want = {cid: _expected(rec, reads[cid]) for cid, rec in (("c-gb", gb), ("c-plain", plain))}
    assert want["c-gb"] == [] and [a.rule for a in want["c-plain"]] == ["sudden_increase"]

    await publish(
        kafka_producer, s.topic_readings, [(r["meter_id"], r) for rows in reads.values() for r in rows]
    )

    async def both_done() -> dict[str, BaselineSnapshot] | None:
        snaps = {}
        for cid in reads:
            raw = await snapshot_of(redis_client, s, cid)
            snap = BaselineSnapshot.model_validate_json(raw) if raw else None
            if snap is None or snap.as_of.date() < LAST:
                return None
            snaps[cid] = snap
        return snaps

    snaps = await wait_for(both_done, 90, "both households' snapshots as of 30 December")
    got = [Alert.model_validate_json(r.value) for r in await kafka_consume(s.topic_alerts, 2, 10)]
    assert [(a.customer_id, a.alert_id) for a in got] == [("c-plain", want["c-plain"][0].alert_id)]
    why = {r.code: r.numbers for r in snaps["c-gb"].reasons}
    assert "baselines.calendar.holiday" in why, snaps["c-gb"].reasons
    assert not any(r.code.startswith("baselines.calendar") for r in snaps["c-plain"].reasons)
