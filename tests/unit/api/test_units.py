"""Logic-level properties of the API's building blocks (no network)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.deps import TokenCache
from api.metrics import decode_counters, parse_field
from api.ratelimit import RateLimiter
from meterwatch.auth import TokenRecord


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=20),
    times=st.lists(st.floats(min_value=0, max_value=600, allow_nan=False), max_size=120),
)
def test_one_process_admits_exactly_the_limit_per_minute(limit: int, times: list[float]) -> None:
    rl = RateLimiter(limit=limit, sync=None)
    admitted: Counter[int] = Counter()
    asked: Counter[int] = Counter()
    for t in sorted(times):
        window = int(t // 60)
        asked[window] += 1
        retry = rl.admit("tok", now=t)
        if retry == 0:
            admitted[window] += 1
        else:
            end = (window + 1) * 60
            assert 1 <= retry <= 60 and end <= t + retry < end + 1  # just after the window ends
    for window, n in asked.items():
        assert admitted[window] == min(n, limit)


def test_tokens_are_limited_independently() -> None:
    rl = RateLimiter(limit=2, sync=None)
    assert [rl.admit("a", now=5.0) for _ in range(3)] == [0, 0, 55]
    assert rl.admit("b", now=5.0) == 0


def test_limit_zero_means_off() -> None:
    rl = RateLimiter(limit=0, sync=None)
    assert all(rl.admit("a", now=1.0) == 0 for _ in range(1000))


async def test_background_sync_learns_the_shared_total() -> None:
    redis_total = 0
    calls: list[int] = []

    async def sync(token_id: str, window: int, count: int) -> int:
        nonlocal redis_total
        calls.append(count)
        redis_total += count
        return redis_total + 5  # 5 requests were served by other processes

    rl = RateLimiter(limit=10, sync=sync, sync_s=0.01)
    now = 600.0
    assert [rl.admit("t", now=now) for _ in range(4)] == [0, 0, 0, 0]
    for _ in range(50):  # let the background task add the burst
        await asyncio.sleep(0.01)
        if sum(calls) == 4:
            break
    assert calls == [4]  # the burst went to Redis in one INCRBY
    # 4 here + 5 elsewhere = 9: one more is allowed, then the limit holds
    assert rl.admit("t", now=now) == 0
    assert rl.admit("t", now=now) > 0
    await rl.aclose()


def test_token_cache_expires_and_caches_unknown_tokens() -> None:
    cache = TokenCache(ttl_s=60)
    rec = TokenRecord(token_id="x", role="ops", created_at=dt.datetime.now(dt.UTC))
    assert cache.get("h1") == (False, None)
    cache.put("h1", rec)
    cache.put("h2", None)
    assert cache.get("h1") == (True, rec)
    assert cache.get("h2") == (True, None)  # negative entry: no Redis call for a bad token
    off = TokenCache(ttl_s=0)
    off.put("h1", rec)
    assert off.get("h1") == (False, None)


@given(st.text(max_size=80))
def test_any_metrics_field_gives_a_valid_prometheus_name(field: str) -> None:
    import re

    name, labels = parse_field(field)
    assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name)
    for k in labels:
        assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", k)


def test_decode_counters_drops_non_numbers() -> None:
    raw: dict[bytes | str, bytes | str] = {b"a": b"1", b"b": b"x", "c": "2.5", b"d": b"nan", b"e": b"inf"}
    assert decode_counters(raw) == {"a": 1.0, "c": 2.5}


def test_snapshots_are_not_built_for_a_customer_the_caller_may_not_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import datetime as dt

    import api.snapshots as mod
    from baselines.engine import Engine
    from baselines.readview import snapshot_from_state
    from meterwatch.keys import Keys

    built: list[str] = []

    def spy(*args: Any, **kw: Any) -> bytes | None:
        built.append("x")
        return snapshot_from_state(*args, **kw)

    monkeypatch.setattr(mod, "snapshot_from_state", spy)
    snaps = mod.Snapshots(Engine(), Keys("t:"), clock=lambda: dt.datetime(2024, 5, 3, tzinfo=dt.UTC))
    rec = b'{"customer_id":"c1","manager_id":"mgr-a","meter_ids":["m"]}'
    state = b'{"v":2,"p":{"v":2,"id":"c1"},"s":null,"f":-1}'
    assert snaps.view(state, None, rec, lambda r: False) is None
    assert built == []  # the record decided: nothing was built
    assert snaps.view(state, None, rec, lambda r: True) is not None and built == ["x"]
    assert snaps.view(b'{"v":2,"p":"x"}', None, rec) is None  # a build that raises: no snapshot
