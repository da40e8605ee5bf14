"""The auto-pipelined hot-path client, against the real Redis."""

from __future__ import annotations

import asyncio
import socket

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.muxredis import MuxRedis
from meterwatch.keys import Keys
from meterwatch.settings import Settings

pytestmark = pytest.mark.integration


async def test_concurrent_commands_get_their_own_replies(
    api_settings: Settings, redis: Redis, keys: Keys
) -> None:
    n = 500
    await redis.mset({keys.baseline(f"c{i}"): f"value-{i}" for i in range(n)})
    await redis.hset(keys.alert_bodies("h"), "a", "1")  # a key of the wrong type
    mux = MuxRedis(api_settings.redis_url)
    try:

        async def one(i: int) -> object:
            if i % 50 == 7:
                try:
                    await mux.get(keys.alert_bodies("h"))  # WRONGTYPE: an error reply mid-stream
                except ResponseError as exc:
                    return f"error {exc}"
            return await mux.get(keys.baseline(f"c{i}"))

        got = await asyncio.gather(*(one(i) for i in range(n)))
        for i, value in enumerate(got):
            if i % 50 == 7:
                assert isinstance(value, str) and "WRONGTYPE" in value
            else:
                assert value == f"value-{i}".encode()
        assert await mux.get(keys.baseline("missing")) is None
        assert await mux.mget(keys.baseline("c1"), keys.baseline("nope"), keys.baseline("c2")) == [
            b"value-1",
            None,
            b"value-2",
        ]
    finally:
        await mux.aclose()


async def test_reconnects_after_the_connection_drops(
    api_settings: Settings, redis: Redis, keys: Keys
) -> None:
    await redis.set(keys.baseline("x"), "1")
    mux = MuxRedis(api_settings.redis_url)
    try:
        assert await mux.get(keys.baseline("x")) == b"1"
        # Redis drops this connection (as on a restart or an idle timeout)
        client_id = await mux.execute("CLIENT", "ID")
        await redis.client_kill_filter(_id=str(client_id))  # CLIENT KILL ID <id>
        await asyncio.sleep(0.1)
        assert await mux.get(keys.baseline("x")) == b"1"
    finally:
        await mux.aclose()


async def test_silent_connection_times_out_and_recovers(
    api_settings: Settings, redis: Redis, keys: Keys
) -> None:
    await redis.set(keys.baseline("x"), "1")
    mux = MuxRedis(api_settings.redis_url, timeout_s=0.4)
    try:
        assert await mux.get(keys.baseline("x")) == b"1"
        # BLPOP blocks only this connection for 3 s: the GET queued behind it gets no reply
        blocked = asyncio.ensure_future(mux.execute("BLPOP", keys.ns("never"), 3))
        await asyncio.sleep(0.05)  # BLPOP is on the wire first
        with pytest.raises(RedisTimeoutError):
            await mux.get(keys.baseline("x"))
        with pytest.raises(RedisTimeoutError):
            await blocked
        assert await mux.get(keys.baseline("x")) == b"1"  # a fresh connection
    finally:
        await mux.aclose()


async def test_unreachable_redis_is_a_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mux = MuxRedis(f"redis://127.0.0.1:{port}/0", timeout_s=0.5)
    with pytest.raises(RedisConnectionError):
        await mux.get("k")
    await mux.aclose()


def test_rejects_non_redis_urls() -> None:
    with pytest.raises(ValueError, match="scheme"):
        MuxRedis("rediss://127.0.0.1:6380/0")
