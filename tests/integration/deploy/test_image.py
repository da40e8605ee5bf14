"""The meterwatch image, built FROM a base made from Debian's packages (no registry):
non-root, the runtime dependencies only, one image whose command picks the service,
and a HEALTHCHECK that follows the service it runs. Marked ``docker``."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid

import pytest

from .tools import run

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _in_image(image: str, script: str) -> str:
    return run(["docker", "run", "--rm", "--network", "host", image, "sh", "-c", script], timeout=120).stdout


def test_image_runs_non_root_with_only_the_runtime_dependencies(local_images: dict[str, str]) -> None:
    image = local_images["METERWATCH_IMAGE"]
    assert (
        run(["docker", "run", "--rm", image, "--version"], timeout=120).stdout.strip() == "meterwatch 0.1.0"
    )
    out = _in_image(
        image,
        "id -u; id -g;"
        " python3 -c 'import faust, rocksdict, river, fastapi, meterwatch, stream, api, notifier'"
        " && echo imports-ok; pip show pytest >/dev/null 2>&1 && echo has-pytest;"
        " find / -xdev -name '*.pem' -path '*build-ca*' 2>/dev/null; ls -ld /var/lib/meterwatch",
    ).split("\n")
    assert out[:3] == ["10001", "10001", "imports-ok"], out
    assert "has-pytest" not in out
    assert out[3].startswith("drwxr-x--- ") and " meterwatch meterwatch " in out[3], out
    config = json.loads(run(["docker", "image", "inspect", image], timeout=60).stdout)[0]["Config"]
    assert config["User"] == "10001:10001"
    assert config["Healthcheck"]["Test"] == ["CMD", "meterwatch-healthcheck"]
    assert config["Entrypoint"] == ["meterwatch-entrypoint"] and config["Cmd"] == ["api"]


def test_healthcheck_follows_the_service(local_images: dict[str, str]) -> None:
    image = local_images["METERWATCH_IMAGE"]
    # nothing of meterwatch runs: unhealthy, with the reason
    probe = subprocess.run(
        ["docker", "run", "--rm", image, "sh", "-c", "meterwatch-healthcheck"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 1 and "no meterwatch worker/api/notifier process" in probe.stderr
    # the notifier on a port of this test, HTTP only (no Kafka), Redis unused by /healthz
    port = _free_port()
    name = f"mwtest-health-{uuid.uuid4().hex[:8]}"
    run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "--health-interval",
            "2s",
            "-e",
            f"MW_NOTIFIER_PORT={port}",
            "-e",
            "MW_REDIS_URL=redis://127.0.0.1:1/0",
            image,
            "notifier",
            "--no-consume",
        ],
        timeout=120,
    )
    try:
        deadline, status = time.monotonic() + 180, ""
        while time.monotonic() < deadline and status != "healthy":
            time.sleep(2)
            status = run(
                ["docker", "inspect", "-f", "{{.State.Health.Status}}", name], timeout=60
            ).stdout.strip()
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=False)
        assert status == "healthy", logs.stdout + logs.stderr
        # the service listens on loopback only (the image's secure default), here on the host's
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)
