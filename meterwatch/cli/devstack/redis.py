"""The local Redis: the server binary (apt-get when missing and root), start and status."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from meterwatch.cli.devstack.paths import ServiceStatus, StackError, StackPaths, render_redis_config
from meterwatch.cli.devstack.procs import pid_alive, port_open, read_pid, spawn_detached, tail
from meterwatch.settings import Settings


def ensure_redis_server() -> str:
    """The path of ``redis-server``; installs it with apt-get when missing and root."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "redis-server"]):
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
            if proc.returncode != 0:
                raise StackError(f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-2000:]}")
        found = shutil.which("redis-server")
        if found:
            return found
    raise StackError(
        "redis-server is not installed: install it (Debian/Ubuntu: sudo apt-get install -y redis-server; "
        "macOS: brew install redis) and retry."
    )


def _redis_ping(settings: Settings) -> bool:
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def redis_status(settings: Settings, paths: StackPaths) -> ServiceStatus:
    pid = read_pid(paths.redis_pidfile)
    running = pid is not None and pid_alive(pid, "redis-server")
    return ServiceStatus(
        name="redis",
        address=settings.redis_url,
        pid=pid if running else None,
        running=running,
        answering=port_open(settings.redis_host, settings.redis_port),
        managed=running,
        log=str(paths.redis_log),
    )


def start_redis(settings: Settings, timeout_s: float = 30.0) -> ServiceStatus:
    paths = StackPaths.of(settings)
    st = redis_status(settings, paths)
    if st.answering:
        if _redis_ping(settings):
            return st
        if not st.running:
            raise StackError(
                f"{settings.redis_host}:{settings.redis_port} is taken by a process that does not answer "
                "Redis PING; stop it or choose another port with MW_REDIS_URL"
            )
    if not st.running:
        binary = ensure_redis_server()
        if _redis_ping(settings):  # e.g. apt-get just started the distribution's own service
            return redis_status(settings, paths)
        paths.redis_dir.mkdir(parents=True, exist_ok=True)
        paths.logs.mkdir(parents=True, exist_ok=True)
        paths.redis_config.write_text(render_redis_config(settings))
        started = spawn_detached([binary, str(paths.redis_config)], paths.logs / "redis.out", paths.redis_dir)
        paths.redis_pidfile.write_text(f"{started}\n")
    pid = read_pid(paths.redis_pidfile)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid is None or not pid_alive(pid, "redis-server"):
            raise StackError(
                f"redis-server exited during start-up; see {paths.redis_log}:\n{tail(paths.redis_log)}"
            )
        if _redis_ping(settings):
            return redis_status(settings, paths)
        time.sleep(0.1)
    raise StackError(f"Redis did not answer on {settings.redis_url} in time; see {paths.redis_log}")
