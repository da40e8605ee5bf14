"""The profile stage under ``agent.test_context()`` with a memory store: state, holding, counters, outputs."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import orjson
import pytest

from baselines.customer import CustomerConfig
from baselines.engine import Engine, StepResult
from baselines.profile import Profile
from baselines.readings import Reading
from meterwatch.contracts import Alert, CustomerRecord, DeadLetter, MeterReading, Reason, SegmentRef
from meterwatch.settings import Settings
from stream.envelope import Envelope
from stream.readings_group import encode_group, item
from stream.state import COUNTERS_KEY, PartitionCounters
from stream.worker import Worker

from .conftest import NOW, MemoryOutputs, dumps, reading, record

P = 1  # the by-customer partition the tests use


def group(worker: Worker, *readings: tuple[str, int, dict[str, Any]], source_partition: int = 0) -> bytes:
    topic = worker.ctx.names.readings
    return encode_group(topic, [item(cid, source_partition, off, dumps(r)) for cid, off, r in readings])


def customer_env(cid: str, meters: list[str], **kw: Any) -> bytes:
    rec = CustomerRecord.model_validate(record(cid, meters, **kw))
    return Envelope(kind="customer", customer_id=cid, customer=rec).dumps()


def history_env(cid: str, days: list[tuple[str, float]]) -> bytes:
    rows = [{"customer_id": cid, "day": d, "kwh": k} for d, k in days]
    return Envelope.model_validate({"kind": "history", "customer_id": cid, "history": rows}).dumps()


def half_hours(meter: str, day: dt.date, n: int, kwh: float = 0.25) -> list[dict[str, Any]]:
    t0 = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return [reading(meter, (t0 + dt.timedelta(minutes=30 * (i + 1))).isoformat(), kwh) for i in range(n)]


def stored(worker: Worker, cid: str) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(worker.wapp.profiles_table.data[cid.encode()])
    return value


def counters(worker: Worker) -> PartitionCounters:
    return PartitionCounters.decode(worker.wapp.profiles_table.data.get(COUNTERS_KEY))


def letters(worker: Worker, out: MemoryOutputs) -> list[DeadLetter]:
    return [DeadLetter.model_validate_json(v or b"") for _, _, v in out.records[worker.ctx.names.dlq]]


async def test_readings_update_the_stored_value_changelog_and_counters(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    worker, out = stage_worker
    rs = half_hours("m1", dt.date(2024, 5, 1), 4)
    async with worker.agents["profiles"].test_context() as agent:
        await agent.put(customer_env("c1", ["m1"]), partition=P)
        await agent.put(group(worker, *[("c1", 10 + i, r) for i, r in enumerate(rs)]), partition=P)
    value = stored(worker, "c1")
    assert value["v"] == 2 and value["o"] == {"0": 13} and value["w"][1:] == [4, 0]
    assert Profile.from_dict(value["p"]).open_days[dt.date(2024, 5, 1).toordinal()].kwh == pytest.approx(1.0)
    assert (counters(worker).readings, counters(worker).duplicates) == (4, 0)
    changelog = out.records[worker.ctx.names.profiles_changelog]
    assert {p for p, _, _ in changelog} == {P}
    assert changelog[-1][1] == COUNTERS_KEY  # the counters come last in their partition
    assert worker.ctx.metrics.counters["readings_processed"] == 4
    (rec,) = out.records[worker.ctx.names.customers_changelog]
    assert rec[:2] == (P, b"c1") and json.loads(rec[2] or b"")["customer_id"] == "c1"


async def test_redelivered_readings_are_labelled_and_not_counted(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    """Issue #10 item 7: redeliveries after a crash were counted as duplicates{kind="reading"}."""
    worker, out = stage_worker
    rs = half_hours("m1", dt.date(2024, 5, 1), 3)
    batch = group(worker, *[("c1", 10 + i, r) for i, r in enumerate(rs)])
    async with worker.agents["profiles"].test_context() as agent:
        await agent.put(customer_env("c1", ["m1"]), partition=P)
        await agent.put(batch, partition=P)
        await agent.put(batch, partition=P)  # the same source offsets again: a redelivery
        await agent.put(group(worker, ("c1", 20, rs[0])), partition=P)  # the same reading, sent again
    labelled = worker.ctx.metrics.labelled["duplicates"]
    assert dict(labelled) == {"redelivered": 3, "reading": 1}
    assert worker.ctx.metrics.counters["readings_processed"] == 3
    assert (counters(worker).readings, counters(worker).duplicates) == (3, 1)
    assert letters(worker, out) == []


async def test_counters_recover_a_write_that_landed_after_the_stored_counters(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    """A kill -9 landed a customer's value but not its partition's counters: the load counts it."""
    worker, _ = stage_worker
    data = worker.wapp.profiles_table.data
    data[COUNTERS_KEY] = PartitionCounters(offset=5, readings=10, duplicates=0).encode()
    data[b"c7"] = dumps({"v": 2, "p": None, "s": None, "f": -1, "o": {"0": 99}, "w": [9, 3, 1]})
    data[b"c8"] = dumps({"v": 2, "p": None, "s": None, "f": -1, "w": [4, 2, 0]})  # counted already
    worker.wapp.customers_table.data[b"c7"] = CustomerRecord(customer_id="c7").model_dump_json().encode()
    async with worker.agents["profiles"].test_context() as agent:
        await agent.put(
            group(
                worker,
                ("c7", 100, reading("m7", "2024-05-01T00:30:00Z")),  # a new reading
                ("c8", 50, reading("m8", "2024-05-01T00:30:00Z")),  # no registry record: held
            ),
            partition=P,
        )
    c = counters(worker)
    assert (c.readings, c.duplicates) == (10 + 3 + 1, 0 + 1)  # stored + recovered c7 write + new
    assert worker.profiles.cache[P]["c8"].pending


async def test_inputs_before_the_registry_record_are_held_then_folded_under_its_read_day(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    """Issue #10 item 8: history/readings before the record were folded under read day 1."""
    worker, _ = stage_worker
    days = [((dt.date(2024, 4, 1) + dt.timedelta(days=i)).isoformat(), 8.0) for i in range(40)]
    async with worker.agents["profiles"].test_context() as agent:
        await agent.put(history_env("c1", days), partition=P)
        await agent.put(group(worker, ("c1", 1, reading("m1", "2024-05-11T00:30:00Z"))), partition=P)
        held = stored(worker, "c1")
        assert held["p"] is None and len(held["q"]) == 2
        assert worker.ctx.metrics.counters["history_awaiting_registry"] == 1
        assert worker.ctx.metrics.counters["awaiting_registry"] == 1
        await agent.put(customer_env("c1", ["m1"], read_day=12, cycle_months=2), partition=P)
    st = worker.profiles.cache[P]["c1"]
    assert st.profile is not None and st.pending == []
    snap = worker.ctx.engine.snapshot(
        st.profile, CustomerConfig.from_record(st.record or CustomerRecord(customer_id="c1")), None, NOW
    )
    assert snap.cycle.start.day == 12 and (snap.cycle.end - snap.cycle.start).days >= 58  # 2 months
    assert all(c.start.day == 12 for c in snap.baseline.cycles)
    assert worker.ctx.metrics.counters["readings_processed"] == 1


async def test_a_changed_read_day_rebuilds_the_cycles(stage_worker: tuple[Worker, MemoryOutputs]) -> None:
    worker, _ = stage_worker
    days = [((dt.date(2024, 3, 1) + dt.timedelta(days=i)).isoformat(), 8.0) for i in range(70)]
    async with worker.agents["profiles"].test_context() as agent:
        await agent.put(customer_env("c1", ["m1"]), partition=P)
        await agent.put(history_env("c1", days), partition=P)
        await agent.put(customer_env("c1", ["m1"], read_day=20), partition=P)
    st = worker.profiles.cache[P]["c1"]
    assert st.profile is not None
    assert worker.ctx.metrics.counters["cycles_rebuilt"] == 1
    assert {dt.date.fromordinal(c.start).day for c in st.profile.open_cycles} == {20}
    assert Profile.from_dict(stored(worker, "c1")["p"]).open_cycles == st.profile.open_cycles


async def test_a_version_1_value_is_read_and_rewritten_as_version_2(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    worker, _ = stage_worker
    cfg = CustomerConfig("c1", timezone="UTC")
    prof = Profile.new("c1")
    first = MeterReading.model_validate(reading("m1", "2024-05-02T00:30:00Z"))
    Engine().process_inplace(prof, Reading.from_contract(first), cfg)  # applied before (offset 41)
    v1 = {"p": prof.to_dict(), "s": {"id": 3, "label": "x"}, "f": 19000, "o": {"0": 41}}
    worker.wapp.profiles_table.data[b"c1"] = dumps(v1)
    worker.wapp.customers_table.data[b"c1"] = (
        CustomerRecord(customer_id="c1", timezone="UTC").model_dump_json().encode()
    )
    async with worker.agents["profiles"].test_context() as agent:
        await agent.put(
            group(
                worker,
                ("c1", 41, reading("m1", "2024-05-02T00:30:00Z")),
                ("c1", 42, reading("m1", "2024-05-02T01:00:00Z")),
            ),
            partition=P,
        )
    value = stored(worker, "c1")
    assert value["v"] == 2 and value["s"]["id"] == 3 and value["f"] == 19000 and value["o"] == {"0": 42}
    assert worker.ctx.metrics.counters["readings_processed"] == 1  # offset 41 was applied before
    assert worker.ctx.metrics.labelled["duplicates"]["redelivered"] == 1


async def test_an_unreadable_stored_profile_does_not_disable_the_customer(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    """Issue #10 item 2: a profile stored with inf (JSON null) failed every later reading."""
    worker, out = stage_worker
    poisoned = Profile.new("c1").to_dict() | {"co": [[739000, 739030, None, 1.0]]}
    worker.wapp.profiles_table.data[b"c1"] = dumps({"p": poisoned, "s": None, "f": -1})
    worker.wapp.customers_table.data[b"c1"] = (
        CustomerRecord(customer_id="c1", timezone="UTC").model_dump_json().encode()
    )
    async with worker.agents["profiles"].test_context() as agent:
        await agent.put(group(worker, ("c1", 1, reading("m1", "2024-05-02T00:30:00Z"))), partition=P)
    assert worker.ctx.metrics.counters["state_unreadable"] == 1
    assert worker.ctx.metrics.counters["readings_processed"] == 1
    assert letters(worker, out) == []


async def test_history_rows_beyond_the_meter_rating_or_in_the_future_are_dead_lettered(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    worker, out = stage_worker
    async with worker.agents["profiles"].test_context() as agent:
        await agent.put(customer_env("c1", ["m1"], max_kw=2.0), partition=P)
        await agent.put(
            history_env("c1", [("2024-05-01", 40.0), ("2024-05-02", 49.0), ("2099-01-01", 1.0)]), partition=P
        )
    assert [(d.error.code, json.loads(d.raw)["day"]) for d in letters(worker, out)] == [
        ("kwh_implausible", "2024-05-02"),
        ("ts_in_future", "2099-01-01"),
    ]
    assert worker.ctx.metrics.counters["history_applied"] == 1


async def test_a_deleted_customer_dead_letters_what_it_held_and_leaves_the_tables(
    stage_worker: tuple[Worker, MemoryOutputs],
) -> None:
    worker, out = stage_worker
    async with worker.agents["profiles"].test_context() as agent:
        await agent.put(customer_env("c1", ["m1"]), partition=P)
        await agent.put(group(worker, ("c1", 1, reading("m1", "2024-05-02T00:30:00Z"))), partition=P)
        await agent.put(group(worker, ("c2", 2, reading("m2", "2024-05-02T00:30:00Z"))), partition=P)
        await agent.put(Envelope(kind="customer_deleted", customer_id="c1").dumps(), partition=P, wait=False)
        await agent.put(Envelope(kind="customer_deleted", customer_id="c2").dumps(), partition=P)
    assert b"c1" not in worker.wapp.profiles_table.data and b"c1" not in worker.wapp.customers_table.data
    tombstones = [k for _, k, v in out.records[worker.ctx.names.profiles_changelog] if v is None]
    assert set(tombstones) >= {b"c1", b"c2"}
    (letter,) = letters(worker, out)
    assert (letter.error.code, letter.source.offset) == ("unknown_meter", 2)
    forgets = [v for v in out.values(worker.ctx.names.features) if v["forget"]]
    assert {v["customer_id"] for v in forgets} == {"c1", "c2"}


class ConflictEngine(Engine):
    """The domain's report of a second, different value for a booked slot (engine's part of #10.5)."""

    def process_inplace(
        self,
        p: Profile,
        reading: Reading,
        customer: CustomerConfig,
        segment: SegmentRef | None = None,
        *,
        emit: bool = True,
    ) -> StepResult:
        if reading.value == 0.4:
            why = Reason(
                code="baselines.readings.conflicting_duplicate",
                message="slot already booked",
                numbers={"booked_kwh": 0.25, "new_kwh": 0.4},
            )
            return StepResult(p, [], why, False)
        return super().process_inplace(p, reading, customer, segment, emit=emit)


class AlertEngine(Engine):
    def process_inplace(
        self,
        p: Profile,
        reading: Reading,
        customer: CustomerConfig,
        segment: SegmentRef | None = None,
        *,
        emit: bool = True,
    ) -> StepResult:
        res = super().process_inplace(p, reading, customer, segment, emit=emit)
        ts = dt.datetime.fromtimestamp(reading.ts, dt.UTC)
        alert = Alert.model_validate(
            {
                "alert_id": "a1",
                "customer_id": customer.customer_id,
                "rule": "sudden_increase",
                "cycle": {"start": "2024-05-01", "end": "2024-05-31"},
                "observed": {},
                "triggered_by": ts,
                "created_at": ts,
                "explanation": {"zh-CN": "x", "en": "x"},
            }
        )
        return res._replace(alerts=[alert])


async def test_alerts_are_outputs_of_the_batch_keyed_by_customer(settings: Settings) -> None:
    out = MemoryOutputs()
    worker = Worker(
        settings, store="memory://", out=out, clock=lambda: NOW, engine=AlertEngine(), batch_within_s=0.001
    )
    async with worker.agents["profiles"].test_context() as agent:
        await agent.put(customer_env("c1", ["m1"]), partition=P)
        await agent.put(group(worker, ("c1", 1, reading("m1", "2024-05-02T00:30:00Z"))), partition=P)
    ((_, key, value),) = out.records[worker.ctx.names.alerts]
    assert key == b"c1" and json.loads(value or b"")["alert_id"] == "a1"
    assert worker.ctx.metrics.labelled["alerts"]["sudden_increase"] == 1


@pytest.mark.parametrize("engine_cls", [ConflictEngine])
async def test_a_conflicting_duplicate_is_dead_lettered_with_both_values(
    settings: Settings, engine_cls: type[Engine]
) -> None:
    """Issue #10 item 5 (stream side): the domain's conflicting-duplicate report reaches the DLQ."""
    out = MemoryOutputs()
    worker = Worker(
        settings, store="memory://", out=out, clock=lambda: NOW, engine=engine_cls(), batch_within_s=0.001
    )
    async with worker.agents["profiles"].test_context() as agent:
        await agent.put(customer_env("c1", ["m1"]), partition=P)
        await agent.put(
            group(
                worker,
                ("c1", 1, reading("m1", "2024-05-02T00:30:00Z", 0.25)),
                ("c1", 2, reading("m1", "2024-05-02T00:30:00Z", 0.4)),
            ),
            partition=P,
        )
    (letter,) = letters(worker, out)
    assert letter.error.code == "conflicting_duplicate"
    assert "booked_kwh=0.25" in letter.error.message and "new_kwh=0.4" in letter.error.message
    assert json.loads(letter.raw)["kwh"] == 0.4 and letter.source.offset == 2


class _Msg:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class _Ev:
    def __init__(self, offset: int) -> None:
        self.message = _Msg(offset)


def test_offsets_the_consumer_skipped_are_counted_redeliveries_are_not(
    stage_worker: tuple[Worker, MemoryOutputs], caplog: pytest.LogCaptureFixture
) -> None:
    worker, _ = stage_worker
    stage = worker.profiles
    stage.check_order(P, [_Ev(2), _Ev(3)])
    stage.check_order(P, [_Ev(2), _Ev(3), _Ev(4)])  # redelivered after a rebalance: no gap
    assert worker.ctx.metrics.counters["delivery_gaps"] == 0
    stage.check_order(P, [_Ev(5), _Ev(5), _Ev(7)])  # 6 never came (what Faust's seek race did)
    assert worker.ctx.metrics.counters["delivery_gaps"] == 1
    assert "offsets 6..6 were never delivered" in caplog.text
    stage.revoke({P})  # a new owner starts from wherever the consumer starts
    stage.check_order(P, [_Ev(40)])
    assert worker.ctx.metrics.counters["delivery_gaps"] == 1
