"""Weather in the stream (issue #15 item 1), on the real stack: a `meterwatch worker` subprocess.

London-like temperatures from June to December 2013 are published onto the `weather` topic
(`meterwatch publish-weather`'s code, region `*`), then two electric-heating homes' daily
reads. A cold snap (about -4 C) ends the series: one home just heats (expected use: no
alert, the snapshot says `baselines.weather.explained`), the other has a x3 fault on top of
the cold (an alert). The stream's alerts are the domain engine's with the same temperatures
(the backtest path): the same alert ids.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest

from baselines.customer import CustomerConfig
from baselines.engine import Engine
from baselines.profile import Profile
from baselines.readings import Reading
from meterwatch.cli.commands.weather_cmds import publish_weather, weather_days
from meterwatch.cli.weather_file import read_weather
from meterwatch.contracts import Alert, BaselineSnapshot, CustomerRecord, MeterReading
from meterwatch.settings import Settings

from .conftest import customer, publish, snapshot_of, wait_for

pytestmark = [pytest.mark.integration]

START, DAYS = dt.date(2013, 6, 1), 207
LAST = START + dt.timedelta(days=DAYS - 1)


def _temps() -> list[float]:
    rng = random.Random(5)
    out = []
    for i in range(DAYS):
        t = 17.0 - 9.0 * min(1.0, max(0.0, i - 60) / 120) + rng.uniform(-3.0, 3.0)
        out.append(-4.0 + rng.uniform(-1.0, 1.0) if i >= DAYS - 7 else t)
    return out


def _readings(meter: str, temps: list[float], fault: float) -> list[dict[str, Any]]:
    out = []
    for i, t in enumerate(temps):
        d = START + dt.timedelta(days=i)
        kwh = (6.0 + 1.5 * max(0.0, 15.5 - t)) * (0.9 + 0.05 * (i % 5)) * (fault if i >= DAYS - 7 else 1.0)
        end = dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        out.append({"meter_id": meter, "ts": end.isoformat(), "kwh": round(kwh, 3), "interval_s": 86400})
    return out


def _expected(engine: Engine, rec: dict[str, Any], readings: list[dict[str, Any]]) -> list[Alert]:
    cfg = CustomerConfig.from_record(CustomerRecord.model_validate(rec))
    p = Profile.new(cfg.customer_id)
    out: list[Alert] = []
    for r in readings:
        out += engine.process_inplace(p, Reading.from_contract(MeterReading.model_validate(r)), cfg).alerts
    return out


async def test_a_cold_snap_is_expected_use_in_the_stream_as_in_the_backtest(
    mw_settings: Settings,
    worker_factory: Any,
    kafka_producer: Any,
    kafka_consume: Any,
    redis_client: Any,
    tmp_path: Path,
) -> None:
    s = mw_settings
    temps = _temps()
    wfile = tmp_path / "weather.csv"
    rows = [f"*,{(START + dt.timedelta(days=i)).isoformat()},{t:.2f}" for i, t in enumerate(temps)]
    wfile.write_text("region,day,temp_mean_c\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert await publish_weather(s, weather_days(wfile, None)) == DAYS

    recs = {"c-heat": customer("c-heat", ["m-heat"]), "c-fault": customer("c-fault", ["m-fault"])}
    reads = {"c-heat": _readings("m-heat", temps, 1.0), "c-fault": _readings("m-fault", temps, 3.0)}
    weather = read_weather(wfile)
    want = {cid: _expected(Engine(weather=weather), recs[cid], reads[cid]) for cid in recs}
    assert want["c-heat"] == [] and [a.rule for a in want["c-fault"]] == ["sudden_increase"]
    assert [a.rule for a in _expected(Engine(), recs["c-heat"], reads["c-heat"])] == ["sudden_increase"]

    await publish(kafka_producer, s.topic_customers, list(recs.items()))
    worker_factory(s)
    await publish(
        kafka_producer, s.topic_readings, [(r["meter_id"], r) for rows_ in reads.values() for r in rows_]
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

    snaps = await wait_for(both_done, 120, "both households' snapshots as of the cold snap's last day")
    got = [Alert.model_validate_json(r.value) for r in await kafka_consume(s.topic_alerts, 2, 10)]
    assert [(a.customer_id, a.alert_id) for a in got] == [("c-fault", want["c-fault"][0].alert_id)]
    why = {r.code: r.numbers for r in snaps["c-heat"].reasons}
    assert "baselines.weather.explained" in why, snaps["c-heat"].reasons
