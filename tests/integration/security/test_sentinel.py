"""Redis through Sentinel (``MW_REDIS_SENTINELS``): the clients find the master and follow a failover.

A master and a replica (both with a password) and one sentinel (with a password of its own),
all started here on loopback; ``SENTINEL FAILOVER`` promotes the replica. The clients of
``meterwatch.connections`` (async with a bounded, blocking pool as the notifier uses it;
async plain; sync) must write to whichever server is the master.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from meterwatch.connections import check_redis, redis_client, redis_sync_client, redis_target
from meterwatch.settings import Settings

from .securestack import free_port

pytestmark = [pytest.mark.integration]


@dataclass
class SentinelSet:
    master: int
    replica: int
    sentinel: int
    password: str
    sentinel_password: str

    def settings(self) -> Settings:
        return Settings(
            redis_url="redis://unused:6379/2",
            redis_sentinels=f"127.0.0.1:{self.sentinel}",
            redis_sentinel_service="mw-test",
            redis_password=SecretStr(self.password),
            redis_sentinel_password=SecretStr(self.sentinel_password),
        )

    def server(self, port: int, *, password: str | None = None) -> redis.Redis:
        return redis.Redis(port=port, password=password or self.password, socket_timeout=5)


def _conf(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([*lines, ""]))
    return path


@pytest.fixture(scope="module")
def sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """One set for the module (the failover test runs last: it swaps the roles)."""
    tmp_path = tmp_path_factory.mktemp("sentinel")
    st = SentinelSet(free_port(), free_port(), free_port(), secrets.token_hex(8), secrets.token_hex(8))
    common = ["bind 127.0.0.1", f"requirepass {st.password}", f"masterauth {st.password}", 'save ""',
              "appendonly no", f"dir {tmp_path}"]  # fmt: skip
    confs = [
        _conf(tmp_path / "master.conf", [*common, f"port {st.master}"]),
        _conf(tmp_path / "replica.conf", [*common, f"port {st.replica}", f"replicaof 127.0.0.1 {st.master}"]),
    ]
    sentinel_conf = _conf(
        tmp_path / "sentinel.conf",
        [
            "bind 127.0.0.1", f"port {st.sentinel}", f"dir {tmp_path}", f"requirepass {st.sentinel_password}",
            f"sentinel monitor mw-test 127.0.0.1 {st.master} 1",
            f"sentinel auth-pass mw-test {st.password}",
            "sentinel down-after-milliseconds mw-test 2000",
            "sentinel failover-timeout mw-test 10000",
        ],
    )  # fmt: skip
    procs = [subprocess.Popen(["redis-server", str(c)], stdout=subprocess.DEVNULL) for c in confs]
    procs.append(
        subprocess.Popen(["redis-server", str(sentinel_conf), "--sentinel"], stdout=subprocess.DEVNULL)
    )
    try:
        sentinel = st.server(st.sentinel, password=st.sentinel_password)
        deadline = time.monotonic() + 30
        while True:  # the sentinel knows the replica and the replica is in sync
            try:
                known = sentinel.sentinel_slaves("mw-test")
                link = st.server(st.replica).info("replication").get("master_link_status")
                if known and link == "up":
                    break
            except redis.RedisError:
                pass
            assert time.monotonic() < deadline, "the sentinel set did not come up"
            time.sleep(0.2)
        yield st
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=10)


def _role(st: SentinelSet, port: int) -> str:
    return str(st.server(port).info("replication")["role"])


def test_a_wrong_password_behind_the_sentinel_is_one_clear_error(sentinel_set: SentinelSet) -> None:
    from meterwatch.connections import CredentialsError

    s = sentinel_set.settings().model_copy(update={"redis_password": SecretStr("wrong")})
    with pytest.raises(CredentialsError) as info:
        check_redis(s)
    assert str(info.value).startswith(
        f"Redis at Sentinel master 'mw-test' via 127.0.0.1:{sentinel_set.sentinel}"
    )
    assert "wrong" not in str(info.value) and sentinel_set.password not in str(info.value)


async def test_clients_find_the_master_and_follow_a_failover(sentinel_set: SentinelSet) -> None:
    st, s = sentinel_set, sentinel_set.settings()
    assert redis_target(s) == f"Sentinel master 'mw-test' via 127.0.0.1:{st.sentinel}"
    check_redis(s)  # the credentials are accepted
    pooled = redis_client(s, pool_timeout=5, decode_responses=True, max_connections=4)  # as the notifier's
    plain = redis_client(s)
    sync = redis_sync_client(s)
    try:
        await pooled.set("k", "before")
        assert await plain.get("k") == b"before" and sync.get("k") == b"before"
        # on the master, in the db of MW_REDIS_URL
        assert redis.Redis(port=st.master, password=st.password, db=2).get("k") == b"before"
        assert _role(st, st.master) == "master"

        sentinel = st.server(st.sentinel, password=st.sentinel_password)
        deadline = time.monotonic() + 45
        while True:  # NOGOODSLAVE until the sentinel has a fresh INFO of the replica (every 10 s)
            try:
                sentinel.sentinel_failover("mw-test")
                break
            except redis.ResponseError as exc:
                assert "NOGOODSLAVE" in str(exc) and time.monotonic() < deadline, exc
                await asyncio.sleep(0.5)
        # promoted, and the old master turned into its replica (until then the old master still
        # takes writes: Redis replication is asynchronous, that window is Sentinel's, not ours)
        while (_role(st, st.replica), _role(st, st.master)) != ("master", "slave"):
            assert time.monotonic() < deadline, "the failover did not complete"
            await asyncio.sleep(0.2)

        async def write(client: object, value: str) -> None:
            for _ in range(50):  # a connection to the old master fails once, then the pool asks again
                try:
                    await client.set("k", value)  # type: ignore[attr-defined]
                    return
                except (redis.ConnectionError, redis.ReadOnlyError, redis.TimeoutError):
                    await asyncio.sleep(0.2)
            raise AssertionError("never wrote to the new master")

        await write(pooled, "after")
        await write(plain, "after2")
        promoted = redis.Redis(port=st.replica, password=st.password, db=2)
        assert promoted.get("k") == b"after2"
        for _ in range(50):
            try:
                sync.set("k3", "sync")
                break
            except (redis.ConnectionError, redis.ReadOnlyError, redis.TimeoutError):
                await asyncio.sleep(0.2)
        assert promoted.get("k3") == b"sync"
    finally:
        await pooled.aclose()
        await plain.aclose()
        sync.close()
