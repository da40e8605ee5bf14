"""Processes of the local stack: ports, pid files, a lock, detached start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

from meterwatch.cli.devstack.paths import StackPaths

T = TypeVar("T")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``.

    >>> port_open("127.0.0.1", 1)
    False
    """
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running loop.

    It runs in a fresh thread with its own event loop, so it never disturbs the
    caller's loop (pytest-asyncio, Faust).

    >>> async def two() -> int:
    ...     return 2
    >>> run_async(two)
    2
    """
    box: dict[str, object] = {}

    def target() -> None:
        async def main() -> T:
            return await factory()

        try:
            box["value"] = asyncio.run(main())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="meterwatch-run-async")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def pid_alive(pid: int, marker: str) -> bool:
    """The process ``pid`` exists, is not a zombie, and its command line has ``marker``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    return state not in ("Z", "X") and marker in cmdline


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def locked(paths: StackPaths) -> Iterator[None]:
    """Serialise up/down of one stack between processes (parallel test sessions)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with paths.lock.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def spawn_detached(cmd: list[str], logfile: Path, cwd: Path) -> int:
    """Start ``cmd`` detached (own session, stdin closed, output to ``logfile``); return its pid.

    A short-lived ``sh`` backgrounds the command and is reaped at once, so the
    daemon outlives this process and no ``Popen`` object is left behind.
    """
    logfile.parent.mkdir(parents=True, exist_ok=True)
    script = 'exec 0</dev/null; "$@" >>"$MW_SPAWN_LOG" 2>&1 & echo $!'
    env = dict(os.environ, MW_SPAWN_LOG=str(logfile))
    out = subprocess.run(  # noqa: S603 - fixed argv, no shell interpolation of data
        ["/bin/sh", "-c", script, "sh", *cmd],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        start_new_session=True,
    )
    return int(out.stdout.strip())


def stop_pid(pid: int, marker: str, timeout_s: float) -> bool:
    """SIGTERM, wait, then SIGKILL. True when the process ended cleanly (on SIGTERM)."""
    if not pid_alive(pid, marker):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid, marker):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid, marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    return False


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
