"""The local cluster's rendered configuration (meterwatch/cli/devstack/cluster.py) and the
settings a worker of a cluster test gets (workers.py): pure, no process is started."""

from __future__ import annotations

from pathlib import Path

import pytest

from meterwatch.cli import build_parser
from meterwatch.cli.devstack.cluster import (
    ClusterLayout,
    render_node_config,
    render_redis_node_config,
    render_sentinel_config,
)
from meterwatch.cli.devstack.workers import settings_env
from meterwatch.settings import Settings

LAYOUT = ClusterLayout.at(Path("/srv/mw/cluster"), brokers=3, base_port=19092)


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def _directives(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize("i", [0, 1, 2])
def test_each_node_is_a_broker_and_a_voter_with_its_own_ports_and_data(i: int) -> None:
    props = _props(render_node_config(LAYOUT, i))
    assert props["node.id"] == str(i + 1)
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194"
    assert props["listeners"] == f"PLAINTEXT://127.0.0.1:{19092 + i},CONTROLLER://127.0.0.1:{19192 + i}"
    assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{19092 + i}"
    assert props["log.dirs"] == f"/srv/mw/cluster/kafka{i + 1}/data"


def test_replication_three_min_isr_two_and_internal_topics_replicated() -> None:
    props = _props(render_node_config(LAYOUT, 0))
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["transaction.state.log.replication.factor"] == "3"
    assert props["transaction.state.log.min.isr"] == "2"
    assert props["unclean.leader.election.enable"] == "false"
    assert props["auto.create.topics.enable"] == "false"
    assert props["num.partitions"] == "12"


def test_every_listener_is_on_loopback() -> None:
    for i in range(3):
        for value in _props(render_node_config(LAYOUT, i)).values():
            for part in value.split(","):
                if "://" in part:
                    assert part.split("://", 1)[1].startswith("127.0.0.1:"), part
    for name in ("redis-primary", "redis-replica"):
        assert "bind 127.0.0.1" in _directives(render_redis_node_config(LAYOUT, name))
    for i in range(3):
        assert "bind 127.0.0.1" in _directives(render_sentinel_config(LAYOUT, i))


def test_the_replica_follows_the_primary_and_the_sentinels_watch_it_with_quorum_two() -> None:
    primary = _directives(render_redis_node_config(LAYOUT, "redis-primary"))
    replica = _directives(render_redis_node_config(LAYOUT, "redis-replica"))
    assert "port 19292" in primary and not any(d.startswith("replicaof") for d in primary)
    assert "port 19293" in replica and "replicaof 127.0.0.1 19292" in replica
    ports = set()
    for i in range(3):
        sentinel = _directives(render_sentinel_config(LAYOUT, i))
        assert "sentinel monitor meterwatch 127.0.0.1 19292 2" in sentinel
        ports |= {d for d in sentinel if d.startswith("port ")}
        assert f"dir /srv/mw/cluster/sentinel{i + 1}" in sentinel  # each rewrites its own file
    assert ports == {"port 19392", "port 19393", "port 19394"}


def test_the_settings_of_the_cluster_point_at_three_brokers_and_the_sentinels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = LAYOUT.settings(Settings())
    assert s.kafka_bootstrap == "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
    assert s.redis_sentinels == "127.0.0.1:19392,127.0.0.1:19393,127.0.0.1:19394"
    assert (s.topic_replication, s.topic_min_insync_replicas, s.readings_partitions) == (3, 2, 12)
    for line in LAYOUT.exports():  # what `dev up --brokers 3` prints gives the same settings
        name, value = line.removeprefix("export ").split("=", 1)
        monkeypatch.setenv(name, value)
    from_env = Settings()
    for field in LAYOUT.overrides():
        assert getattr(from_env, field) == getattr(s, field), field


def test_free_layouts_never_reuse_a_port() -> None:
    lay = ClusterLayout.free(Path("/tmp/x"))
    ports = [*lay.brokers, *lay.controllers, lay.redis_primary, lay.redis_replica, *lay.sentinels]
    assert len(ports) == 11


def test_worker_env_carries_the_settings_but_no_secret() -> None:
    s = LAYOUT.settings(Settings(kafka_sasl_password="s3cret", redis_password="pw"))
    env = settings_env(s)
    assert env["MW_KAFKA_BOOTSTRAP"] == s.kafka_bootstrap
    assert env["MW_READINGS_PARTITIONS"] == "12"
    assert "s3cret" not in env.values() and "pw" not in env.values()


@pytest.mark.parametrize("action", ["up", "status", "down"])
def test_dev_commands_take_brokers_1_or_3(action: str) -> None:
    parser = build_parser()
    assert parser.parse_args(["dev", action]).brokers == 1  # as before: the single-node stack
    args = parser.parse_args(["dev", action, "--brokers", "3", "--base-port", "29092"])
    assert (args.brokers, args.base_port) == (3, 29092)
    with pytest.raises(SystemExit):
        parser.parse_args(["dev", action, "--brokers", "2"])
