"""Waiting until a running worker has consumed a topic (``simulate --wait-for-worker``).

A worker is *live* when its consumer group (``settings.app_id``) has active members; a
group that only remembers committed offsets from an earlier run is not a worker. The wait
ends at once when the topic is consumed, after ``first_commit_s`` when no member joins,
after ``stall_s`` when the group's committed offsets stop moving, and after ``timeout_s``
in any case; each outcome is one line that says which.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from meterwatch.settings import Settings

#: group states in which the group has (or is getting) active members
LIVE_STATES = ("Stable", "PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling")


async def group_members(admin: Any, group_id: str) -> tuple[str, int]:
    """(state, number of active members) of a consumer group (``("Dead", 0)`` when unknown)."""
    # one group per request: aiokafka 0.14 misreads a DescribeGroups answer for several groups
    for resp in await admin.describe_consumer_groups([group_id]):
        for g in resp.to_object().get("groups", []):
            if g.get("group") == group_id:
                return str(g.get("state") or "Dead"), len(g.get("members") or [])
    return "Dead", 0


async def _partitions(admin: Any, topic: str) -> list[Any]:
    from aiokafka.structs import TopicPartition

    meta = await admin.describe_topics([topic])
    parts = sorted(
        int(p["partition"]) for t in meta if t.get("error_code") == 0 for p in t.get("partitions", [])
    )
    return [TopicPartition(topic, p) for p in parts]


def _say_nothing(_: str) -> None:
    return None


async def wait_until_consumed(
    settings: Settings,
    topic: str,
    timeout_s: float,
    first_commit_s: float = 15.0,
    poll_s: float = 0.5,
    stall_s: float = 60.0,
    say: Callable[[str], None] = _say_nothing,
) -> tuple[bool, str]:
    """Wait until the worker's consumer group (``settings.app_id``) has consumed ``topic`` to its end.

    Returns (done, message); ``say`` gets a line when the wait starts and every ~10 s.
    """
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    from meterwatch.connections import kafka_client_kwargs

    consumer = AIOKafkaConsumer(**kafka_client_kwargs(settings), group_id=None, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings), client_id="meterwatch-publisher")
    await consumer.start()
    try:
        await admin.start()
        try:
            tps = await _partitions(admin, topic)
            if not tps:
                return False, f"topic {topic} not found"
            end = await consumer.end_offsets(tps)
            return await _wait(
                settings, admin, topic, tps, end, timeout_s, first_commit_s, poll_s, stall_s, say
            )
        finally:
            await admin.close()
    finally:
        await consumer.stop()


async def _wait(  # the knobs of one loop, passed through from wait_until_consumed
    settings: Settings,
    admin: Any,
    topic: str,
    tps: list[Any],
    end: dict[Any, int],
    timeout_s: float,
    first_commit_s: float,
    poll_s: float,
    stall_s: float,
    say: Callable[[str], None],
) -> tuple[bool, str]:
    loop = asyncio.get_running_loop()
    group = settings.app_id
    total = sum(end.values())
    say(
        f"waiting (at most {timeout_s:.0f} s) for a running worker (consumer group {group}) "
        f"to consume the {total} messages of {topic}"
    )
    t0 = last_move = last_say = loop.time()
    seen_total = -1
    while True:
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
        seen = {tp: c.offset for tp, c in committed.items() if c is not None and c.offset >= 0}
        behind = sum(max(0, end[tp] - seen.get(tp, 0)) for tp in tps)
        now = loop.time()
        waited = now - t0
        if behind == 0:
            return True, f"the worker ({group}) has consumed {topic} ({waited:.1f}s)"
        state, members = await group_members(admin, group)
        if members == 0 and state not in LIVE_STATES and waited >= first_commit_s:
            how = "no committed offsets" if not seen else f"{behind} messages behind, group state {state}"
            return False, (
                f"no worker is running: consumer group {group} has no active members after "
                f"{waited:.0f}s ({how}); not waiting for it (start one with `meterwatch worker`)"
            )
        if sum(seen.values()) != seen_total:
            seen_total, last_move = sum(seen.values()), now
        elif now - last_move > stall_s:
            return False, f"the worker ({group}) has not consumed anything of {topic} for {stall_s:.0f}s"
        if waited > timeout_s:
            return False, f"{behind} messages of {topic} still unconsumed after {timeout_s:.0f}s"
        if now - last_say >= 10:
            last_say = now
            say(f"  ... {behind} of {total} still to consume ({members} worker member(s), {waited:.0f}s)")
        await asyncio.sleep(poll_s)
