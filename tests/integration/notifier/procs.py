"""`meterwatch notifier` as a child process (kill -9 and multi-replica tests, the benchmark)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from meterwatch.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_env(settings: Settings) -> dict[str, str]:
    """The MW_* environment that reproduces ``settings`` in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    for name, value in settings.model_dump(mode="json").items():
        raw = getattr(settings, name)
        if hasattr(raw, "get_secret_value"):
            value = raw.get_secret_value()
        if isinstance(value, dict | list):
            value = json.dumps(value)
        env[f"MW_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


class NotifierProcess:
    """`meterwatch notifier` as a child process (for kill -9 and multi-replica tests)."""

    def __init__(
        self, settings: Settings, workdir: Path, name: str = "n", code_root: Path | None = None
    ) -> None:
        self.settings = settings
        self.code_root = code_root  # run the notifier of another checkout (benchmarks: before/after)
        self.port = free_port()
        self.workdir = workdir
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"notifier-{name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> NotifierProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = settings_env(self.settings)
        if self.code_root is not None:
            env["PYTHONPATH"] = str(self.code_root)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "meterwatch.cli", "notifier", "--port", str(self.port)],
                cwd=self.workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.time() + 30
        while time.time() < deadline:
            assert self.proc.poll() is None, f"notifier exited: {self.log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"notifier did not come up: {self.log.read_text()[-2000:]}")

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
