"""The worker's workbench writes on the real Redis: alert index, daily archive, segment members."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from redis.asyncio import Redis

from meterwatch import dailyarchive
from meterwatch.alertindex import AlertIndexer, backfill
from meterwatch.contracts import Alert, CycleRef, Explanation, Observed, SegmentRef
from meterwatch.keys import Keys
from meterwatch.settings import Settings
from stream import workbench
from stream.readmodel import ReadModelWriter

pytestmark = pytest.mark.integration


def _raw(value: bytes | str | None) -> bytes | None:
    """A value of the bytes client (decode_responses=False), narrowed for the archive decoder."""
    assert not isinstance(value, str)
    return value


def _alert(cid: str, mid: str | None, day: int, rule: str = "sudden_increase") -> Alert:
    ts = dt.datetime(2025, 3, day, 9, tzinfo=dt.UTC)
    return Alert(
        alert_id=f"{cid}-{rule}-{day}",
        customer_id=cid,
        rule=rule,
        severity="warning",
        cycle=CycleRef(start=dt.date(2025, 3, 1), end=dt.date(2025, 3, 31)),
        observed=Observed(ratio=3.2),
        manager_id=mid,
        triggered_by=ts,
        created_at=ts,
        explanation=Explanation.model_validate({"zh-CN": "x", "en": "x"}),
    )


async def test_new_alerts_enter_the_open_index_once_and_redelivery_never_reopens(
    mw_settings: Settings,
) -> None:
    r = Redis.from_url(mw_settings.redis_url)
    k = Keys(mw_settings.redis_prefix)
    rm = ReadModelWriter(r, k)
    pubsub = r.pubsub()
    await pubsub.subscribe(k.alert_events)
    assert (await pubsub.get_message(timeout=2.0))["type"] == "subscribe"  # subscribed before the writes
    try:
        a1, a2, a3 = _alert("c1", "m1", 2), _alert("c2", "m2", 3), _alert("c3", None, 4)
        for a in (a1, a2, a3):
            rm.add_alert(a)
        await rm.flush()
        assert await r.zrange(k.alert_index("open"), 0, -1) == [
            b"c1-sudden_increase-2",
            b"c2-sudden_increase-3",
            b"c3-sudden_increase-4",
        ]
        assert await r.zrange(k.alert_index("open", "m1"), 0, -1) == [a1.alert_id.encode()]
        assert await r.zscore(k.alert_index("open", "m2"), a2.alert_id) == a2.triggered_by.timestamp()
        assert await r.hget(k.alert_owner, a3.alert_id) == b"c3"
        # the API acknowledged a1 (its state exists, it left "open"): a redelivered a1 stays acknowledged
        await r.hset(k.alert_state(a1.alert_id), "status", "acknowledged")
        await r.zrem(k.alert_index("open"), a1.alert_id)
        await r.zrem(k.alert_index("open", "m1"), a1.alert_id)
        rm.add_alert(a1)
        rm.add_alert(a2)
        await rm.flush()
        assert await r.zrange(k.alert_index("open", "m1"), 0, -1) == []
        assert await r.zcard(k.alert_index("open")) == 2
        events = []
        while (msg := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)) is not None:
            events.append(orjson.loads(msg["data"]))
        assert sorted(e["alert_id"] for e in events) == sorted(a.alert_id for a in (a1, a2, a3))  # once each
        assert {e["status"] for e in events} == {"open"}
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves PubSub.aclose untyped
        await r.aclose()


async def test_backfill_indexes_alerts_mirrored_before_the_index_existed(mw_settings: Settings) -> None:
    r = Redis.from_url(mw_settings.redis_url)
    k = Keys(mw_settings.redis_prefix)
    try:
        a = _alert("c9", "m9", 5)
        await r.hset(k.alert_bodies("c9"), a.alert_id, a.to_json())
        await r.hset(k.alert_bodies("c9"), "junk", b"{not json")
        assert await backfill(r, k) == 1
        assert await r.zrange(k.alert_index("open", "m9"), 0, -1) == [a.alert_id.encode()]
        assert await r.get(k.alert_index_version) == b"1"
    finally:
        await r.aclose()


async def test_daily_records_and_segment_members_are_flushed(mw_settings: Settings) -> None:
    r = Redis.from_url(mw_settings.redis_url)
    k = Keys(mw_settings.redis_prefix)
    rm = ReadModelWriter(r, k)
    try:
        d0 = dt.date(2025, 3, 1).toordinal()
        rm.workbench.add_days(
            "c1", [dailyarchive.DayRecord(d0 + i, 5.0 + i, 5.0, 2.0, 8.0) for i in range(3)]
        )
        workbench.segment_changed(rm, "c1", None, SegmentRef(id=2))
        workbench.segment_changed(rm, "c2", None, SegmentRef(id=2))
        await rm.flush()
        days = dailyarchive.decode(_raw(await r.get(k.daily("c1"))))
        assert [days[d0 + i].kwh for i in range(3)] == [5.0, 6.0, 7.0]
        assert days[d0].band_high == 8.0
        assert await r.zrange(k.segment_members(2), 0, -1) == [b"c1", b"c2"]
        workbench.segment_changed(rm, "c1", SegmentRef(id=2), SegmentRef(id=4))
        workbench.segment_changed(rm, "c2", SegmentRef(id=2), None)  # deleted
        await rm.flush()
        assert await r.zrange(k.segment_members(2), 0, -1) == []
        assert await r.zrange(k.segment_members(4), 0, -1) == [b"c1"]
    finally:
        await r.aclose()


async def test_a_failed_flush_keeps_the_days_for_the_next_one(mw_settings: Settings) -> None:
    good = Redis.from_url(mw_settings.redis_url)
    bad = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    k = Keys(mw_settings.redis_prefix)
    rm = ReadModelWriter(bad, k)
    try:
        rec = dailyarchive.DayRecord(dt.date(2025, 3, 1).toordinal(), 4.0)
        rm.workbench.add_days("c1", [rec])
        await rm.flush()
        assert rm.flush_errors == 1
        rm.redis = good
        rm.workbench.indexer = AlertIndexer(good, k)
        rm._trim = good.register_script("return 0")
        await rm.flush()
        assert dailyarchive.decode(_raw(await good.get(k.daily("c1"))))[rec.day].kwh == 4.0
    finally:
        await bad.aclose()
        await good.aclose()
