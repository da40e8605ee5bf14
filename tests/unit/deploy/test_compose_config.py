"""The compose files are valid (`docker-compose config`, which needs no engine) and say
what docs/deployment.md says: 3 KRaft nodes with replication 3 / min ISR 2, one image for
the three services, published ports on loopback only, Grafana behind a profile, and a
host-network variant (compose.local.yaml) that stays on 127.0.0.1 away from the default
ports. docker-compose is Debian's package; missing, the test fails (never skips)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "deploy" / "compose"
MW_SERVICES = ("worker", "api", "notifier", "topics", "scrape-token")
KAFKA = ("kafka-1", "kafka-2", "kafka-3")


def config(*files: str) -> dict[str, Any]:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose is not installed: apt-get install -y docker-compose", pytrace=False)
    args = [a for f in files for a in ("-f", f)]
    proc = subprocess.run(
        [tool, "-p", "mwconfig", *args, "config"],
        cwd=COMPOSE,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    rendered: dict[str, Any] = yaml.safe_load(proc.stdout)
    return rendered


def test_users_stack() -> None:
    cfg = config("compose.yaml", "compose.override.yaml")
    svc = cfg["services"]
    assert set(svc) == {*KAFKA, "redis", *MW_SERVICES, "prometheus", "grafana"}
    assert {svc[s]["image"] for s in MW_SERVICES} == {"meterwatch:0.1.0"}
    assert {svc[k]["image"] for k in KAFKA} == {"apache/kafka:4.1.1"}
    ids = {svc[k]["environment"]["KAFKA_NODE_ID"] for k in KAFKA}
    assert ids == {"1", "2", "3"}
    for k in KAFKA:
        env = svc[k]["environment"]
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert (env["KAFKA_DEFAULT_REPLICATION_FACTOR"], env["KAFKA_MIN_INSYNC_REPLICAS"]) == ("3", "2")
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
    assert svc["topics"]["environment"]["TOPIC_REPLICATION"] == "3"
    for name in ("worker", "api", "notifier"):
        assert svc[name]["environment"]["MW_KAFKA_BOOTSTRAP"] == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
        assert svc[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    # the worker scales (`--scale worker=N`): no fixed name, no published port
    assert "ports" not in svc["worker"] and "container_name" not in svc["worker"]
    published = [p for s in svc.values() for p in s.get("ports", [])]
    assert published and all(p.startswith("127.0.0.1:") for p in published), published  # v1: short syntax
    assert svc["grafana"]["profiles"] == ["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["prometheus"]["volumes"]}  # v1: src:target[:ro]
    assert Path(mounts["/etc/prometheus/rules"]) == ROOT / "deploy" / "observability" / "prometheus" / "rules"


def test_local_stack_stays_on_loopback_away_from_the_default_ports() -> None:
    cfg = config("compose.yaml", "local/compose.local.yaml")
    svc = cfg["services"]
    assert {s.get("network_mode") for s in svc.values()} == {"host"}
    assert not any("ports" in s for s in svc.values())
    assert {"worker", "worker-2"} <= set(svc)
    text = yaml.safe_dump({n: {k: v for k, v in s.items() if k != "image"} for n, s in svc.items()})
    hosts = set(re.findall(r"(?:://|@|\b)(\d+\.\d+\.\d+\.\d+|0\.0\.0\.0|kafka-\d|redis)(?=:\d)", text))
    assert hosts == {"127.0.0.1"}, hosts
    ports = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", text)}
    assert ports and not ports & {9092, 9093, 6379, 8000, 8001, 9090, 9102, 3000}, sorted(ports)
    for name in ("worker", "worker-2", "api", "notifier"):
        env = svc[name]["environment"]
        assert env["MW_KAFKA_BOOTSTRAP"] == "127.0.0.1:39092,127.0.0.1:39093,127.0.0.1:39094"
        assert env["MW_REDIS_URL"] == "redis://127.0.0.1:36379/0"
    assert {
        svc["worker"]["environment"]["WORKER_INSTANCE"],
        svc["worker-2"]["environment"]["WORKER_INSTANCE"],
    } == {
        "w1",
        "w2",
    }
