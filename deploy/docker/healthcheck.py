#!/opt/meterwatch/bin/python
"""Container health check of the meterwatch image (Docker HEALTHCHECK, compose).

Finds the meterwatch service running in this container (worker, api or
notifier) from /proc, and asks its ``/healthz`` on 127.0.0.1 at the port it was
started with (``--port`` / ``--metrics-port``, else the MW_ settings). Exit 0
when it answers 200, 1 otherwise (with the reason on stderr).
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

SERVICES = ("worker", "api", "notifier")


def running_service() -> tuple[str, list[str]] | None:
    """(service, its arguments) of the first ``meterwatch <service>`` process."""
    for proc in sorted(Path("/proc").glob("[0-9]*"), key=lambda p: int(p.name)):
        try:
            argv = proc.joinpath("cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        for i, arg in enumerate(args[:-1]):
            if Path(arg).name == "meterwatch" and args[i + 1] in SERVICES:
                return args[i + 1], args[i + 2 :]
    return None


def option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def health_port(service: str, args: list[str]) -> int:
    from meterwatch.settings import Settings

    settings = Settings()
    if service == "worker":
        return int(option(args, "--metrics-port") or settings.worker_metrics_port)
    if service == "api":
        return int(option(args, "--port") or settings.api_port)
    return int(option(args, "--port") or settings.notifier_port)


def main() -> int:
    found = running_service()
    if found is None:
        print("no meterwatch worker/api/notifier process in this container", file=sys.stderr)
        return 1
    service, args = found
    port = health_port(service, args)
    if port == 0:
        print(f"{service}: health endpoint switched off (port 0)", file=sys.stderr)
        return 1
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            ok = resp.status == 200
    except OSError as exc:
        print(f"{service}: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
