"""A local cluster on loopback: N KRaft broker+controller nodes and a Redis with failover.

``meterwatch dev up --brokers 3`` and the cluster tests (tests/integration/cluster) use it:

* Kafka: every node is a combined broker+controller started from the dev stack's cached
  Maven jars (``ensure_kafka_jars``); default replication factor 3, ``min.insync.replicas``
  2, the internal topics (consumer offsets, transaction state) replicated 3 times, no
  unclean leader election, no auto-created topics;
* Redis: a primary, a replica and 3 sentinels (``redis-server --sentinel``) watching the
  primary as service ``meterwatch`` (quorum 2), so a dead primary is replaced by the replica.

Every process runs detached with a pid file under ``layout.root`` (``down`` and a test's
teardown stop exactly those); the rendering of the configuration files is pure.

>>> lay = ClusterLayout.at(Path("/tmp/mw-c"), brokers=3, base_port=19092)
>>> lay.bootstrap
'127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094'
>>> voters = "controller.quorum.voters=1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194"
>>> voters in render_node_config(lay, 0)
True
>>> "sentinel monitor meterwatch 127.0.0.1 19292 2" in render_sentinel_config(lay, 0)
True
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from meterwatch.cli.devstack.kafka import (
    KAFKA_MAIN,
    STORAGE_TOOL,
    _java_cmd,
    ensure_kafka_jars,
    new_cluster_id,
)
from meterwatch.cli.devstack.paths import ServiceStatus, StackError
from meterwatch.cli.devstack.procs import (
    pid_alive,
    port_open,
    read_pid,
    run_async,
    spawn_detached,
    stop_pid,
    tail,
)
from meterwatch.cli.devstack.redis import ensure_redis_server
from meterwatch.settings import Settings

HOST = "127.0.0.1"
#: heap of each node: three JVMs share the machine with the workers
NODE_JVM_OPTS = "-Xms128m -Xmx384m"
CLUSTER_PARTITIONS = 12
SENTINEL_SERVICE = "meterwatch"


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports the kernel says are free now (every socket stays bound until all are
    chosen, so one call never gets a port twice).

    >>> ports = free_ports(11); len(set(ports))
    11
    """
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((HOST, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass(frozen=True)
class ClusterLayout:
    """Where the cluster's processes listen and keep their data (all on loopback)."""

    root: Path
    brokers: tuple[int, ...]
    controllers: tuple[int, ...]
    redis_primary: int
    redis_replica: int
    sentinels: tuple[int, ...]

    @classmethod
    def at(cls, root: Path, brokers: int = 3, base_port: int = 19092) -> ClusterLayout:
        """Fixed ports from ``base_port``: brokers +0.., controllers +100.., Redis +200/+201,
        sentinels +300.. (``dev up --brokers 3``: 19092-4, 19192-4, 19292/3, 19392-4)."""
        return cls(
            root=root,
            brokers=tuple(base_port + i for i in range(brokers)),
            controllers=tuple(base_port + 100 + i for i in range(brokers)),
            redis_primary=base_port + 200,
            redis_replica=base_port + 201,
            sentinels=tuple(base_port + 300 + i for i in range(3)),
        )

    @classmethod
    def free(cls, root: Path, brokers: int = 3) -> ClusterLayout:
        """Ports the kernel says are free now (tests and benchmarks: never the dev stack's)."""
        ports = free_ports(2 * brokers + 5)
        return cls(
            root=root,
            brokers=tuple(ports[:brokers]),
            controllers=tuple(ports[brokers : 2 * brokers]),
            redis_primary=ports[2 * brokers],
            redis_replica=ports[2 * brokers + 1],
            sentinels=tuple(ports[2 * brokers + 2 :]),
        )

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{HOST}:{p}" for p in self.brokers)

    @property
    def sentinel_addresses(self) -> str:
        return ",".join(f"{HOST}:{p}" for p in self.sentinels)

    @property
    def replication(self) -> int:
        return min(3, len(self.brokers))

    def overrides(self) -> dict[str, Any]:
        """The settings that point meterwatch at this cluster (and size its topics for it)."""
        return {
            "kafka_bootstrap": self.bootstrap,
            "redis_url": f"redis://{HOST}:{self.redis_primary}/0",
            "redis_sentinels": self.sentinel_addresses,
            "redis_sentinel_service": SENTINEL_SERVICE,
            "topic_replication": self.replication,
            "topic_min_insync_replicas": max(1, self.replication - 1),
            "readings_partitions": CLUSTER_PARTITIONS,
            "customers_partitions": CLUSTER_PARTITIONS,
            "alerts_partitions": CLUSTER_PARTITIONS,
        }

    def exports(self) -> list[str]:
        """``export MW_...=...`` lines for a shell (what ``dev up --brokers 3`` prints).

        >>> ClusterLayout.at(Path("/tmp/x"), 3, 19092).exports()[0]
        'export MW_KAFKA_BOOTSTRAP=127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094'
        """
        return [f"export MW_{k.upper()}={v}" for k, v in self.overrides().items()]

    def settings(self, base: Settings) -> Settings:
        return base.model_copy(update=self.overrides())

    # --- where things are ----------------------------------------------------------------
    def node_dir(self, i: int) -> Path:
        return self.root / f"kafka{i + 1}"

    def redis_dir(self, name: str) -> Path:
        return self.root / name

    def pidfile(self, name: str) -> Path:
        return self.root / f"{name}.pid"

    @property
    def redis_names(self) -> list[str]:
        return ["redis-primary", "redis-replica", *(f"sentinel{i + 1}" for i in range(len(self.sentinels)))]

    def redis_port(self, name: str) -> int:
        if name == "redis-primary":
            return self.redis_primary
        if name == "redis-replica":
            return self.redis_replica
        return self.sentinels[int(name.removeprefix("sentinel")) - 1]


def render_node_config(layout: ClusterLayout, i: int) -> str:
    """``server.properties`` of node ``i`` (0-based; node.id ``i + 1``)."""
    voters = ",".join(f"{n + 1}@{HOST}:{c}" for n, c in enumerate(layout.controllers))
    rf, isr = layout.replication, max(1, layout.replication - 1)
    lines = [
        "# generated by meterwatch/cli/devstack/cluster.py; loopback only",
        "process.roles=broker,controller", f"node.id={i + 1}", f"controller.quorum.voters={voters}",
        f"listeners=PLAINTEXT://{HOST}:{layout.brokers[i]},CONTROLLER://{HOST}:{layout.controllers[i]}",
        f"advertised.listeners=PLAINTEXT://{HOST}:{layout.brokers[i]}",
        "inter.broker.listener.name=PLAINTEXT", "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={layout.node_dir(i) / 'data'}",
        f"num.partitions={CLUSTER_PARTITIONS}",
        f"default.replication.factor={rf}", f"min.insync.replicas={isr}",
        "unclean.leader.election.enable=false",
        f"offsets.topic.replication.factor={rf}", "offsets.topic.num.partitions=12",
        f"transaction.state.log.replication.factor={rf}", f"transaction.state.log.min.isr={isr}",
        f"share.coordinator.state.topic.replication.factor={rf}",
        f"share.coordinator.state.topic.min.isr={isr}",
        "group.initial.rebalance.delay.ms=0", "auto.create.topics.enable=false",
        "broker.session.timeout.ms=6000", "broker.heartbeat.interval.ms=1000",
        "num.network.threads=2", "num.io.threads=2", "background.threads=2", "log.cleaner.threads=1",
        "log.cleaner.dedupe.buffer.size=16777216", "num.replica.fetchers=1",
        "replica.lag.time.max.ms=10000", "",
    ]  # fmt: skip
    return "\n".join(lines)


def render_redis_node_config(layout: ClusterLayout, name: str) -> str:
    """The primary's or the replica's ``redis.conf`` (the replica follows the primary)."""
    d = layout.redis_dir(name)
    lines = [
        "# generated by meterwatch/cli/devstack/cluster.py; loopback only",
        f"bind {HOST}", "protected-mode yes", f"port {layout.redis_port(name)}", "daemonize no",
        f"logfile {d / 'redis.log'}", f"dir {d}", "appendonly yes", "appendfsync everysec",
        "maxmemory 1gb", "maxmemory-policy noeviction", "replica-read-only yes",
    ]  # fmt: skip
    if name == "redis-replica":
        lines.append(f"replicaof {HOST} {layout.redis_primary}")
    return "\n".join([*lines, ""])


def render_sentinel_config(layout: ClusterLayout, i: int) -> str:
    """Sentinel ``i``'s config (the sentinel rewrites it with what it learns: keep it writable).

    A primary that does not answer for 3 s is down for this sentinel; with 2 of 3 agreeing
    the replica is promoted (a failover takes about 5-10 s on loopback).
    """
    d = layout.redis_dir(f"sentinel{i + 1}")
    lines = [
        "# generated by meterwatch/cli/devstack/cluster.py; loopback only",
        f"bind {HOST}", f"port {layout.sentinels[i]}", "daemonize no",
        f"logfile {d / 'sentinel.log'}", f"dir {d}",
        f"sentinel monitor {SENTINEL_SERVICE} {HOST} {layout.redis_primary} 2",
        f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 3000",
        f"sentinel failover-timeout {SENTINEL_SERVICE} 15000",
        f"sentinel parallel-syncs {SENTINEL_SERVICE} 1", "",
    ]  # fmt: skip
    return "\n".join(lines)


class ClusterStatus(BaseModel):
    nodes: list[ServiceStatus]
    topics: list[str] | None = None
    primary: str | None = None  # the Redis primary the sentinels name

    @property
    def up(self) -> bool:
        return all(n.answering for n in self.nodes)


class Cluster:
    """Starts, inspects, kills and stops the processes of a :class:`ClusterLayout`."""

    def __init__(self, layout: ClusterLayout, base: Settings | None = None) -> None:
        self.layout = layout
        self.base = (base or Settings()).model_copy(
            update={"kafka_jvm_opts": NODE_JVM_OPTS, "kafka_cds": False}
        )

    @property
    def kafka_names(self) -> list[str]:
        return [f"kafka{i + 1}" for i in range(len(self.layout.brokers))]

    def _marker(self, name: str) -> str:
        return KAFKA_MAIN if name.startswith("kafka") else "redis-server"

    def pid(self, name: str) -> int | None:
        pid = read_pid(self.layout.pidfile(name))
        return pid if pid is not None and pid_alive(pid, self._marker(name)) else None

    def _spawn(self, name: str, cmd: list[str], log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.layout.pidfile(name).write_text(f"{spawn_detached(cmd, log, self.layout.root)}\n")

    # --- Kafka -----------------------------------------------------------------------------
    def _node_settings(self, i: int) -> Settings:
        return self.base.model_copy(update={"data_dir": self.layout.node_dir(i)})

    def _cluster_id(self) -> str:
        for i in range(len(self.layout.brokers)):
            meta = self.layout.node_dir(i) / "data" / "meta.properties"
            if meta.exists():
                for line in meta.read_text().splitlines():
                    if line.startswith("cluster.id="):
                        return line.split("=", 1)[1].strip()
        return new_cluster_id()

    def start_kafka(self, timeout_s: float = 180.0) -> None:
        """Start the nodes that do not run (idempotent); wait until every broker is registered."""
        ensure_kafka_jars(self.base)
        self.layout.root.mkdir(parents=True, exist_ok=True)
        cluster_id = self._cluster_id()
        for i, name in enumerate(self.kafka_names):
            if self.pid(name) is not None:
                continue
            busy = [p for p in (self.layout.brokers[i], self.layout.controllers[i]) if port_open(HOST, p)]
            if busy:
                raise StackError(
                    f"{name}: port(s) {busy} are taken by another process; choose another base port"
                )
            d = self.layout.node_dir(i)
            d.mkdir(parents=True, exist_ok=True)
            config = d / "server.properties"
            config.write_text(render_node_config(self.layout, i))
            if not (d / "data" / "meta.properties").exists():
                fmt = _java_cmd(
                    self._node_settings(i), STORAGE_TOOL, "format", "-t", cluster_id, "-c", str(config)
                )
                done = subprocess.run(fmt, capture_output=True, text=True, check=False)  # noqa: S603
                if done.returncode != 0:
                    raise StackError(f"formatting {name} failed: {(done.stdout + done.stderr)[-1500:]}")
            self._spawn(name, _java_cmd(self._node_settings(i), KAFKA_MAIN, str(config)), d / "kafka.out")
        deadline = time.monotonic() + timeout_s
        while not run_async(lambda: self._brokers_registered(len(self.layout.brokers))):
            dead = [n for n in self.kafka_names if self.pid(n) is None]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"not all registered within {timeout_s:.0f} s"
                raise StackError(
                    f"the {len(self.kafka_names)}-node Kafka cluster did not come up ({why}):" + self._tails()
                )
            time.sleep(1)

    def _tails(self) -> str:
        return "".join(
            f"\n--- {n}\n{tail(self.layout.node_dir(i) / 'kafka.out', 15)}"
            for i, n in enumerate(self.kafka_names)
        )

    async def _brokers_registered(self, n: int) -> bool:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.layout.bootstrap, request_timeout_ms=5000)
        quiet = logging.getLogger("aiokafka")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)  # "Unable connect" while the nodes start is expected
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            return len(cluster["brokers"]) >= n
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
            quiet.setLevel(level)

    # --- Redis -----------------------------------------------------------------------------
    def start_redis(self, timeout_s: float = 60.0) -> None:
        """Start the primary, the replica and the sentinels that do not run; wait until the
        sentinels know each other and the replica (so a failover can happen)."""
        binary = ensure_redis_server()
        for name in self.layout.redis_names:
            if self.pid(name) is not None:
                continue
            port = self.layout.redis_port(name)
            if port_open(HOST, port):
                raise StackError(f"{name}: port {port} is taken by another process; choose another base port")
            d = self.layout.redis_dir(name)
            d.mkdir(parents=True, exist_ok=True)
            if name.startswith("sentinel"):
                conf = d / "sentinel.conf"
                if not conf.exists():  # the sentinel keeps what it learned (e.g. a failover) in it
                    conf.write_text(
                        render_sentinel_config(self.layout, int(name.removeprefix("sentinel")) - 1)
                    )
                self._spawn(name, [binary, str(conf), "--sentinel"], d / "out.log")
            else:
                conf = d / "redis.conf"
                if not conf.exists():  # after a failover the sentinels rewrote who follows whom
                    conf.write_text(render_redis_node_config(self.layout, name))
                self._spawn(name, [binary, str(conf)], d / "out.log")
        deadline = time.monotonic() + timeout_s
        while not self._sentinels_ready():
            dead = [n for n in self.layout.redis_names if self.pid(n) is None]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"not ready within {timeout_s:.0f} s"
                raise StackError(f"Redis with sentinels did not come up ({why})")
            time.sleep(0.25)

    def _sentinel_info(self, port: int) -> dict[str, Any] | None:
        import redis

        client = redis.Redis(host=HOST, port=port, socket_timeout=1, socket_connect_timeout=1)
        try:
            info = client.sentinel_master(SENTINEL_SERVICE)
            return info if isinstance(info, dict) else None
        except redis.RedisError:
            return None
        finally:
            client.close()

    def _sentinels_ready(self) -> bool:
        others = len(self.layout.sentinels) - 1
        for port in self.layout.sentinels:
            info = self._sentinel_info(port)
            if info is None or int(info.get("num-other-sentinels", 0)) < others:
                return False
            if int(info.get("num-slaves", 0)) < 1 or not info.get("is_master") or info.get("is_odown"):
                return False
        return True

    def redis_primary(self) -> int | None:
        """The port of the Redis primary as the first answering sentinel names it."""
        for port in self.layout.sentinels:
            info = self._sentinel_info(port)
            if info is not None:
                return int(info["port"])
        return None

    # --- all -------------------------------------------------------------------------------
    def start(self) -> Cluster:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        self.start_redis()
        self.start_kafka()
        return self

    def kill9(self, name: str) -> None:
        """SIGKILL one process (``kafka2``, ``redis-primary``, ...) and wait until it is gone."""
        pid = self.pid(name)
        if pid is None:
            raise StackError(f"{name} is not running")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while pid_alive(pid, self._marker(name)) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self, timeout_s: float = 30.0) -> list[str]:
        """SIGTERM every process (all at once), SIGKILL what is left; returns what was running."""
        names = [*self.kafka_names, *self.layout.redis_names]
        running = {n: p for n in names if (p := self.pid(n)) is not None}
        for pid in running.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(pid_alive(p, self._marker(n)) for n, p in running.items()):
            time.sleep(0.1)
        for n, p in running.items():
            stop_pid(p, self._marker(n), 0.1)  # whatever still runs gets SIGKILL
        for n in names:
            self.layout.pidfile(n).unlink(missing_ok=True)
        return list(running)

    def status(self) -> ClusterStatus:
        nodes = []
        for i, name in enumerate(self.kafka_names):
            nodes.append(
                self._service(name, f"{HOST}:{self.layout.brokers[i]}", self.layout.node_dir(i) / "kafka.out")
            )
        for name in self.layout.redis_names:
            log = self.layout.redis_dir(name) / (
                "sentinel.log" if name.startswith("sentinel") else "redis.log"
            )
            nodes.append(self._service(name, f"{HOST}:{self.layout.redis_port(name)}", log))
        primary = self.redis_primary()
        return ClusterStatus(nodes=nodes, primary=f"{HOST}:{primary}" if primary else None)

    def _service(self, name: str, address: str, log: Path) -> ServiceStatus:
        pid = self.pid(name)
        host, port = address.rsplit(":", 1)
        return ServiceStatus(
            name=name, address=address, pid=pid, running=pid is not None,
            answering=port_open(host, int(port)), managed=pid is not None, log=str(log),
        )  # fmt: skip
