"""README command 1 (`bash deploy/demo.sh`) on an alternate stack: it runs, and `stop` leaves nothing."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from meterwatch.cli.devstack import port_open
from meterwatch.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pids_of(data_dir: Path) -> list[int]:
    """Processes whose command line mentions this demo's data dir or that run with it in their env."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if str(data_dir).encode() in (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes():
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if stat not in ("Z", "X"):
                    found.append(int(proc.name))
        except OSError:
            continue
    return [p for p in found if p != os.getpid()]


def _closing_lines_work(out: str, token: Path) -> None:
    """The demo's last lines: how to reach `meterwatch`, and curl lines that work as printed."""
    import json

    assert "bin/activate" in out and "bin/meterwatch --help" in out
    surged = set(re.findall(r"^  (\S+) \(injected x[0-9.]+\): sudden_increase", out, re.M))
    curl = re.search(r"^    (curl .*/v1/customers/(\S+)/alerts)$", out, re.M)
    assert curl is not None and curl.group(2) in surged, out  # a real surged household of this run
    line = curl.group(1).replace("$TOKEN", token.read_text().strip())
    answer = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=30, check=False)
    alerts = json.loads(answer.stdout)["alerts"]
    assert any(a["rule"] == "sudden_increase" for a in alerts), answer.stdout
    # the demo's households are on a peak/valley plan: the alerts quote the bill in yuan
    for a in alerts:
        m = a["money"]
        assert m["currency"] == "CNY" and m["projected"] >= m["to_date"] > 0, a
    bill = r"^  \S+ \(injected x[0-9.]+\): sudden_increase.*\[bill CNY [0-9.]+ to date, [0-9.]+ projected\]$"
    assert re.search(bill, out, re.M), out
    # the workbench: its URL, and a manager token whose worklist holds that household's open alert
    wb = re.search(r"^Workbench \(the account manager's page\): (http://\S+/)$", out, re.M)
    told = re.search(r"^  sign in as (\S+) \(the manager of (\S+)\) with the token in (\S+)$", out, re.M)
    assert wb is not None and told is not None and told.group(2) == curl.group(2), out
    mtoken = Path(told.group(3))
    assert mtoken.stat().st_mode & 0o077 == 0 and mtoken.read_text().strip() not in out  # not in a log
    import httpx

    with httpx.Client(base_url=wb.group(1), timeout=30) as c:
        assert c.get("/", follow_redirects=False).headers["location"].startswith("/signin")
        mine = c.get(
            "/v1/alerts",
            params={"status": "open"},
            headers={"Authorization": f"Bearer {mtoken.read_text().strip()}"},
        )
    assert mine.status_code == 200, mine.text
    items = mine.json()["items"]
    assert curl.group(2) in {a["customer_id"] for a in items}
    assert {a["manager_id"] for a in items} == {told.group(1)}


@pytest.mark.integration
@pytest.mark.slow
def test_demo_script_runs_the_system_and_stop_leaves_nothing(tmp_path: Path) -> None:
    ports = {name: _free_port() for name in ("kafka", "ctrl", "redis", "api", "notifier", "metrics", "web")}
    data_dir = tmp_path / "demo-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    env.update(
        MW_KAFKA_BOOTSTRAP=f"127.0.0.1:{ports['kafka']}",
        MW_KAFKA_CONTROLLER_PORT=str(ports["ctrl"]),
        MW_REDIS_URL=f"redis://127.0.0.1:{ports['redis']}/0",
        MW_DATA_DIR=str(data_dir),
        MW_CACHE_DIR=str(Settings().cache_dir),
        MW_API_PORT=str(ports["api"]),
        MW_NOTIFIER_PORT=str(ports["notifier"]),
        MW_WORKER_METRICS_PORT=str(ports["metrics"]),
        MW_WORKER_WEB_PORT=str(ports["web"]),
        MW_DEMO_CUSTOMERS="20",
        MW_DEMO_DAYS="5",
        MW_DEMO_WAIT_S="90",
    )
    try:
        up = subprocess.run(
            ["bash", "deploy/demo.sh"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=420,
            check=False,
        )
        out = up.stdout + up.stderr
        assert up.returncode == 0, out
        assert f"Kafka bootstrap: 127.0.0.1:{ports['kafka']}" in out
        assert "meterwatch demo is running." in out
        # the demo shows the headline feature: the injected surges are told (the simulator
        # surges 10 % of the households at 3-6x from an onset with at least 3 whole days after it)
        told = re.search(r"sudden-increase alerts for (\d+) of (\d+) surged households", out)
        assert told is not None, out
        assert int(told.group(2)) == 2 and int(told.group(1)) >= 1, out
        assert port_open("127.0.0.1", ports["kafka"]) and port_open("127.0.0.1", ports["redis"])
        # every service the project has by now was started and answers
        if "api: started" in out:
            assert port_open("127.0.0.1", ports["api"]), out
        if "notifier: started" in out:
            assert port_open("127.0.0.1", ports["notifier"]), out
        token = data_dir / "stack" / "demo" / "ops-token"
        if token.exists():
            assert token.stat().st_mode & 0o077 == 0  # the token file is private
        _closing_lines_work(out, token)
        status = subprocess.run(
            ["bash", "deploy/demo.sh", "status"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "kafka  up" in status.stdout
    finally:
        stop = subprocess.run(
            ["bash", "deploy/demo.sh", "stop"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "nothing left running" in stop.stdout
    for name, port in ports.items():
        assert not port_open("127.0.0.1", port), f"{name} port {port} still open"
    assert _pids_of(data_dir) == []
