"""The compose stack runs the demo for real: images built here from Debian packages
(no registry), 3 Kafka nodes, Redis, two workers, the API, the notifier and
Prometheus, all with host networking on 127.0.0.1 at non-default ports
(deploy/compose/local/compose.local.yaml), then torn down with its volumes.

Marked ``docker`` (a separate CI stage: ``pytest -m docker``)."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from meterwatch.cli.devstack import run_async
from meterwatch.settings import Settings
from meterwatch.topics import admin_client, describe_topics

from .tools import COMPOSE_DIR, require, require_engine, run

pytestmark = [pytest.mark.docker, pytest.mark.slow]

KAFKA = "127.0.0.1:39092,127.0.0.1:39093,127.0.0.1:39094"
PORTS = {
    "kafka": [39092, 39093, 39094, 39192, 39193, 39194],
    "redis": [36379],
    "api": [38000],
    "notifier": [38001],
    "workers": [39102, 39103],
    "prometheus": [39090],
}


def _busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _get(url: str, token: str | None = None, timeout: float = 5.0) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.load(resp)


def _wait(what: str, check: Any, timeout_s: float, every_s: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:
            last = exc
        time.sleep(every_s)
    pytest.fail(f"{what}: not reached in {timeout_s:.0f} s (last: {last!r})", pytrace=False)


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.project = f"mwtest{uuid.uuid4().hex[:8]}"
        self.env_file = tmp / "images.env"

    def compose(self, *args: str, timeout: float = 600) -> str:
        cmd = ["docker-compose", "-p", self.project, "--env-file", str(self.env_file)]
        cmd += ["-f", "compose.yaml", "-f", "local/compose.local.yaml", *args]
        return run(cmd, timeout=timeout, cwd=COMPOSE_DIR).stdout

    def exec(self, service: str, *args: str, timeout: float = 600) -> str:
        return self.compose("exec", "-T", service, *args, timeout=timeout)


@pytest.fixture
def stack(tmp_path: Path, local_images: dict[str, str]) -> Iterator[Stack]:
    require_engine()
    require("docker-compose")
    busy = {name: [p for p in ports if _busy(p)] for name, ports in PORTS.items()}
    busy = {k: v for k, v in busy.items() if v}
    if busy:
        pytest.fail(f"ports of the local compose stack are taken: {busy}", pytrace=False)
    st = Stack(tmp_path)
    st.env_file.write_text("".join(f"{k}={v}\n" for k, v in local_images.items()))
    try:
        st.compose("up", "-d", timeout=900)
        yield st
    except BaseException:
        print(st.compose("logs", "--tail", "40", timeout=120))  # shown with the failure
        raise
    finally:
        st.compose("down", "-v", "--remove-orphans", timeout=300)


def _replication(settings: Settings, names: list[str]) -> dict[str, int]:
    async def go() -> dict[str, int]:
        async with admin_client(settings) as admin:
            assert isinstance(admin, AIOKafkaAdminClient)
            meta = await admin.describe_topics(names)
        return {t["topic"]: min(len(p["replicas"]) for p in t["partitions"]) for t in meta}

    return run_async(go)


def test_compose_stack_runs_the_demo(stack: Stack) -> None:
    # every service answers its health endpoint, and Docker's HEALTHCHECK agrees
    # (3 Kafka nodes, Redis, 2 workers, API, notifier)
    for port in (38000, 38001, 39102, 39103):
        _wait(f"/healthz on {port}", lambda p=port: _get(f"http://127.0.0.1:{p}/healthz"), 420)
    states = _wait(
        "every long-running container healthy",
        lambda: (s := stack.compose("ps")) and s.count("(healthy)") == 8 and s,
        300,
        5,
    )
    assert "unhealthy" not in states, states

    # topics: replicated 3 times with min.insync.replicas 2 (the `topics` one-shot)
    settings = Settings(kafka_bootstrap=KAFKA)
    names = ["meter-readings", "alerts", "meterwatch-profiles-changelog"]
    info = run_async(lambda: describe_topics(settings, names))
    assert {n: (info[n].partitions, info[n].configs["min.insync.replicas"]) for n in names} == {
        "meter-readings": (12, "2"),
        "alerts": (12, "2"),
        "meterwatch-profiles-changelog": (12, "2"),
    }
    assert _replication(settings, names) == dict.fromkeys(names, 3)

    # the demo: simulated households published into the stack, their surges alerted
    sim = stack.exec(
        "api",
        "meterwatch",
        "simulate",
        "--customers",
        "20",
        "--days",
        "5",
        "--surge-share",
        "0.1",
        "--no-progress",
        timeout=900,
    )
    surged = re.findall(r"^  (sim-\d+) x[0-9.]+ from ", sim, flags=re.M)
    assert len(surged) == 2, sim
    token = stack.exec("api", "meterwatch", "token", "create", "--role", "ops", "--label", "test").split()[0]

    def alerted() -> list[str]:
        found = []
        for cid in surged:
            body = _get(f"http://127.0.0.1:38000/v1/customers/{cid}/alerts", token)
            if any(a["rule"].startswith("sudden_increase") for a in body["alerts"]):
                found.append(cid)
        return found

    assert _wait("a sudden-increase alert through the Ops API", alerted, 300, 3)

    # Prometheus scrapes every service (workers directly, with the provisioned token)
    def targets() -> dict[str, str]:
        body = _get("http://127.0.0.1:39090/api/v1/targets")
        return {
            f"{t['labels']['job']} {t['labels']['instance']}": t["health"]
            for t in body["data"]["activeTargets"]
        }

    _wait("every target up", lambda: set(targets().values()) == {"up"} and targets(), 120, 5)
    assert sorted(targets()) == [
        "meterwatch-api 127.0.0.1:38000",
        "meterwatch-notifier 127.0.0.1:38001",
        "meterwatch-worker 127.0.0.1:39102",
        "meterwatch-worker 127.0.0.1:39103",
        "prometheus 127.0.0.1:39090",
    ]

    def query(q: str) -> dict[str, float]:
        url = "http://127.0.0.1:39090/api/v1/query?" + urllib.parse.urlencode({"query": q})
        res = _get(url)["data"]["result"]
        return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in res}

    # both workers consumed readings, together all 4800; the recording rules see the customers
    per_worker = _wait(
        "every reading counted by the workers' own /metrics",
        lambda: (
            (q := query("max_over_time(meterwatch_worker_readings_in_total[1h])"))
            and sum(q.values()) == 4800
            and q
        ),
        120,
        5,
    )
    assert len(per_worker) == 2 and min(per_worker.values()) > 0, per_worker
    assert _wait("meterwatch:customers", lambda: query("meterwatch:customers"), 60, 5) == {
        json.dumps({"__name__": "meterwatch:customers"}): 20.0
    }
