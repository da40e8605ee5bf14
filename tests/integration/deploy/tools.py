"""Shared helpers of the deployment tests: required tools (a missing one FAILS the test
with the install command; never a skip), and running commands with their output kept."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_DIR = ROOT / "deploy" / "compose"

#: tool -> how to get it (Debian packages on the CI machine)
INSTALL = {
    "docker": "apt-get install -y docker.io (and start the engine: dockerd, or systemctl start docker)",
    "docker-compose": "apt-get install -y docker-compose",
    "debootstrap": "apt-get install -y debootstrap",
}


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed; install it: {INSTALL.get(tool, tool)}", pytrace=False)
    return path


def require_engine() -> None:
    require("docker")
    proc = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(
            "the Docker engine does not answer (`docker info` failed): start it "
            f"(nohup dockerd >/var/log/dockerd.log 2>&1 &):\n{proc.stderr[-1500:]}",
            pytrace=False,
        )


def run(cmd: list[str], timeout: float, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` from ``cwd`` (the repository root); fail the test with its output when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-4000:]}", pytrace=False
        )
    return proc
