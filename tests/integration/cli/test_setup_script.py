"""deploy/setup.sh on the real machine: apt-get waits for a held dpkg lock and says so."""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
LOCK = Path("/var/lib/dpkg/lock-frontend")


def _setup_function(call: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = f'MW_SETUP_FUNCTIONS_ONLY=1 source "{ROOT}/deploy/setup.sh"; {call}'
    return subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        check=False,
    )


def test_apt_get_waits_for_the_dpkg_lock_and_says_what_it_waits_for() -> None:
    assert os.geteuid() == 0 and LOCK.exists(), "the set-up installs system packages as root with apt-get"
    fd = os.open(LOCK, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)  # what another apt/dpkg process does (waits if one really runs)
        release = threading.Timer(3.0, lambda: fcntl.lockf(fd, fcntl.LOCK_UN))
        release.start()
        # an install that changes nothing (already installed, no upgrade) but needs the lock
        proc = _setup_function(
            "mw_apt_get install -y -q --no-upgrade --no-install-recommends redis-server >/dev/null",
            MW_APT_LOCK_TIMEOUT_S="120",
        )
        release.join()
    finally:
        os.close(fd)
    assert proc.returncode == 0, proc.stderr  # before: exit 100 at once
    assert "waiting" in proc.stderr and str(LOCK) in proc.stderr and f"process {os.getpid()}" in proc.stderr


def _browser_packages(
    tmp_path: Path, present: tuple[str, ...]
) -> tuple[subprocess.CompletedProcess[str], str]:
    """mw_browser_packages with only `present` of chromium/chromedriver on PATH; apt-get recorded."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("id",):
        (bindir / tool).symlink_to(
            subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        )
    for tool in (*present, "apt-get"):
        (bindir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bindir / tool).chmod(0o755)
    calls = tmp_path / "apt-calls"
    # the real apt helper is replaced by one that records its arguments (nothing is installed)
    proc = _setup_function(
        f'mw_apt_get() {{ echo "$*" >> "{calls}"; }}; PATH="{bindir}"; mw_browser_packages'
    )
    return proc, calls.read_text() if calls.exists() else ""


def test_the_browser_test_packages_are_installed_with_the_apt_helper_when_missing(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "the set-up installs system packages as root with apt-get"
    proc, calls = _browser_packages(tmp_path, present=())
    assert proc.returncode == 0, proc.stderr
    assert "update" in calls and "install -y -q --no-install-recommends chromium chromium-driver" in calls
    assert "installing the browser" in proc.stderr


def test_nothing_is_installed_when_chromium_and_its_driver_are_there(tmp_path: Path) -> None:
    proc, calls = _browser_packages(tmp_path, present=("chromium", "chromedriver"))
    assert proc.returncode == 0, proc.stderr
    assert calls == ""
