"""A group of ``meterwatch worker`` processes for cluster tests and benchmarks.

Each worker is a child process started with the group's settings as ``MW_`` variables
(secrets are not passed on the command line or in the environment; the cluster runs
without them), its own ``--instance`` (RocksDB directory) and its own log file.
``kill9`` simulates a crash, ``terminate`` a clean stop (SIGTERM, as a rolling restart
does), ``stop_all`` leaves nothing behind (for teardowns).

>>> from meterwatch.settings import Settings
>>> env = settings_env(Settings(kafka_bootstrap="127.0.0.1:19092,127.0.0.1:19093"))
>>> env["MW_KAFKA_BOOTSTRAP"], "MW_KAFKA_SASL_PASSWORD" in env
('127.0.0.1:19092,127.0.0.1:19093', False)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from meterwatch.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The process environment without ``MW_`` variables, plus ``settings`` as ``MW_`` variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    for name, value in settings.model_dump(mode="json").items():
        if value is None or name.endswith("_file") or hasattr(getattr(settings, name), "get_secret_value"):
            continue
        env[f"MW_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


class WorkerGroup:
    """``meterwatch worker`` processes ``w0``, ``w1``, ... sharing ``settings.app_id``."""

    def __init__(self, settings: Settings, workdir: Path, batch: int | None = None) -> None:
        self.settings = settings
        self.workdir = workdir
        self.batch = batch
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        workdir.mkdir(parents=True, exist_ok=True)

    def log(self, i: int) -> Path:
        return self.workdir / f"worker-w{i}.log"

    def start(self, i: int) -> None:
        cmd = [sys.executable, "-m", "meterwatch.cli", "worker", "--instance", f"w{i}", "--metrics-port", "0"]
        if self.batch is not None:
            cmd += ["--batch", str(self.batch)]
        with self.log(i).open("ab") as out:
            self.procs[i] = subprocess.Popen(  # noqa: S603 - fixed argv
                cmd, env=settings_env(self.settings), cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT
            )

    def alive(self, i: int) -> bool:
        return i in self.procs and self.procs[i].poll() is None

    def dead(self) -> list[int]:
        """The workers that exited without being told to (a crash): their numbers."""
        return [i for i, p in self.procs.items() if p.poll() is not None]

    def kill9(self, i: int) -> None:
        proc = self.procs.pop(i)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)

    def terminate(self, i: int, timeout_s: float = 60.0) -> int:
        """SIGTERM and wait (SIGKILL after ``timeout_s``); the exit status."""
        proc = self.procs.pop(i)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            return -9

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for i in list(self.procs):
            proc = self.procs.pop(i)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the running workers so far (``/proc``; 0 where unreadable)."""
        total = 0.0
        for proc in self.procs.values():
            try:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def tails(self, lines: int = 30) -> str:
        out = []
        for log in sorted(self.workdir.glob("worker-w*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)
