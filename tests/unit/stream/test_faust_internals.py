"""The resume-after-recovery fix around Faust's ``Recovery.on_recovery_completed``.

The method under test is Faust's own (faust-streaming's ``Recovery``), run with
a recording stand-in for the recovery service and its consumer: what matters
is the order in which the consumer is sought, the stream queues are cleared
(``flow_control.resume()``) and the stream partitions are resumed. A Faust
upgrade that changes that order, or renames what the fix holds back, fails here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from faust.tables.recovery import Recovery as _RecoveryClass

from stream.faust_internals import install_resume_after_recovery

Recovery: Any = _RecoveryClass  # called with a stand-in for ``self``

STREAM_TP = ("t-by-customer", 0)
CHANGELOG_TP = ("t-profiles-changelog", 0)


class _Signal:
    async def send(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Log:
    def info(self, *args: Any, **kwargs: Any) -> None:
        return None

    dev = warning = info


class _Consumer:
    """Records seeks, resumes and whether the fetch position was set when partitions resumed."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.seeking = False

    def assignment(self) -> set[tuple[str, int]]:
        return {STREAM_TP, CHANGELOG_TP}

    def resume_partitions(self, tps: Any) -> None:
        tps = set(tps)
        self.calls.append(f"resume {sorted(tps)}" + (" during seek" if self.seeking else ""))

    async def perform_seek(self) -> None:
        self.seeking = True
        self.calls.append("seek start")
        await asyncio.sleep(0.01)  # the fetcher runs meanwhile: nothing may be resumed yet
        self.calls.append("seek done")
        self.seeking = False

    def resume_flow(self) -> None:
        self.calls.append("resume flow")


class _Recovery:
    """What ``Recovery.on_recovery_completed`` reads of its service and app."""

    def __init__(self, generation: int, calls: list[str]) -> None:
        consumer = _Consumer(calls)
        self.log = _Log()
        self.tables: _Tables = _Tables()
        self.actives_for_table: dict[Any, Any] = {}
        self.standbys_for_table: dict[Any, Any] = {}
        self.completed = asyncio.Event()
        self.calls = calls
        flow_control = type("F", (), {"resume": lambda _self: calls.append("resume flow control")})()
        fetcher = type("Fe", (), {"maybe_start": _noop})()
        assignor = type("A", (), {"assigned_standbys": lambda _self: set()})()
        self.app = type(
            "App",
            (),
            {
                "consumer": consumer,
                "consumer_generation_id": generation,
                "on_rebalance_complete": _Signal(),
                "flow_control": flow_control,
                "_fetcher": fetcher,
                "assignor": assignor,
                "conf": type("C", (), {"broker_request_timeout": 5.0})(),
                "on_rebalance_end": lambda _self: None,
            },
        )()

    def _set_recovery_ended(self) -> None:
        return None

    def _is_changelog_tp(self, tp: tuple[str, int]) -> bool:
        return tp[0].endswith("-changelog")

    async def _wait(self, coro: Awaitable[Any], timeout: float | None = None) -> None:  # noqa: ASYNC109 (Faust's signature)
        await coro


async def _noop(*args: Any) -> None:
    return None


def _run(generation: int, current: int, consumers: list[_Consumer] | None = None) -> list[str]:
    calls: list[str] = []
    rec = _Recovery(current, calls)
    if consumers is not None:
        consumers.append(rec.app.consumer)
    rec.tables = _Tables()  # the recovery's "tables" is the TableManager: a mapping with two callbacks
    asyncio.run(Recovery.on_recovery_completed(rec, generation))
    return calls


class _Tables(dict[str, Any]):
    def on_actives_ready(self) -> None:
        return None

    def on_standbys_ready(self) -> None:
        return None


def test_faust_alone_resumes_the_stream_partitions_before_it_clears_their_queues() -> None:
    """The defect the fix is for (if Faust fixes it, this test says so and the fix can go)."""
    original = getattr(Recovery.on_recovery_completed, "__wrapped__", Recovery.on_recovery_completed)
    calls: list[str] = []
    rec = _Recovery(3, calls)
    rec.tables = _Tables()
    asyncio.run(original(rec, 3))
    resumed = calls.index(f"resume {[STREAM_TP]}")
    assert resumed < calls.index("seek done") < calls.index("resume flow control")


def test_after_install_the_stream_partitions_resume_after_the_seek_and_the_queue_clear() -> None:
    install_resume_after_recovery()
    install_resume_after_recovery()  # idempotent: one wrapper, not two
    assert not hasattr(Recovery.on_recovery_completed.__wrapped__, "__wrapped__")
    consumers: list[_Consumer] = []
    calls = _run(generation=3, current=3, consumers=consumers)
    assert calls == ["seek start", "seek done", "resume flow control", "resume flow", f"resume {[STREAM_TP]}"]
    assert "resume_partitions" not in vars(consumers[0])  # the consumer's own method is back


def test_a_rebalance_during_the_recovery_leaves_the_partitions_to_the_next_recovery() -> None:
    install_resume_after_recovery()
    # the generation moved on: Faust returns before seeking or resuming, with or without the fix
    original = Recovery.on_recovery_completed.__wrapped__
    alone: list[str] = []
    rec = _Recovery(4, alone)
    rec.tables = _Tables()
    asyncio.run(original(rec, 3))
    assert _run(generation=3, current=4) == alone == []


# ------------------------------------------------------------------ fetch only what is asked for


class _Thread:
    """Stands in for Faust's consumer thread: records what the fetch is asked for, while it waits."""

    def __init__(self) -> None:
        self.asked: list[Any] = []


async def _waiting_fetch(self: _Thread, consumer: Any, active: Any, **kwargs: Any) -> dict[str, Any]:
    self.asked.append(active)
    await asyncio.sleep(0.01)  # aiokafka waits for records; meanwhile Faust pauses partitions
    return {"asked_at_return": set(active) if active is not None else None}


def test_the_fetch_gets_a_snapshot_of_the_active_partitions_and_never_an_empty_set() -> None:
    import faust.transport.drivers.aiokafka as driver

    from stream.faust_internals import install_fetch_only_active

    saved = driver.AIOKafkaConsumerThread._fetch_records
    try:
        driver.AIOKafkaConsumerThread._fetch_records = _waiting_fetch  # type: ignore[assignment]
        install_fetch_only_active()
        install_fetch_only_active()  # idempotent
        fetch: Any = driver.AIOKafkaConsumerThread._fetch_records
        thread = _Thread()
        live = {CHANGELOG_TP}

        async def pause_during_the_wait() -> dict[str, Any]:
            task = asyncio.ensure_future(fetch(thread, None, live, timeout=1.0))
            await asyncio.sleep(0)
            live.discard(CHANGELOG_TP)  # what "Done reading from changelog topics" does
            result: dict[str, Any] = await task
            return result

        got = asyncio.run(pause_during_the_wait())
        # aiokafka reads an empty set as "every partition": the fetch must keep what it was asked
        assert got["asked_at_return"] == {CHANGELOG_TP} and live == set()
        assert asyncio.run(fetch(thread, None, set())) == {}  # an empty set fetches nothing
        assert len(thread.asked) == 1
        assert asyncio.run(fetch(thread, None, None)) == {"asked_at_return": None}  # client-only: all
    finally:
        driver.AIOKafkaConsumerThread._fetch_records = saved  # type: ignore[method-assign]
