"""The local development stack: a real single-node Apache Kafka (KRaft) and a Redis.

Everything is driven by :class:`meterwatch.settings.Settings` (``MW_`` variables):

* Kafka ``settings.kafka_version`` is resolved from Maven Central with the small
  pom in ``deploy/kafka/pom.xml`` and cached under ``settings.cache_dir``
  (``kafka-<version>/libs``, marked complete by a ``.complete`` file, so a warm
  start never calls Maven);
* the broker's ``server.properties`` and Redis's ``redis.conf`` are rendered from
  the templates in ``deploy/`` into ``settings.stack_dir`` (data, logs, pid files);
* both run as background daemons in their own session; ``down`` stops them with
  SIGTERM, waits, then SIGKILL, and checks that their ports are closed.

``up`` is idempotent: a service whose recorded pid is alive and whose port
answers is reused; a port answered by a process this stack did not start is
reported as *external* and reused as well (never stopped by ``down``).

>>> from meterwatch.settings import Settings
>>> s = Settings(data_dir="/tmp/mw-doc", kafka_bootstrap="127.0.0.1:19092")
>>> p = StackPaths.of(s)
>>> p.kafka_pidfile.name, p.redis_pidfile.name
('kafka.pid', 'redis.pid')
>>> "listeners=PLAINTEXT://127.0.0.1:19092" in render_kafka_config(s)
True
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import string
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from meterwatch.settings import Settings

T = TypeVar("T")

#: The repository's ``deploy/`` directory (the pom and the config templates).
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"

KAFKA_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
_COMPLETE_MARKER = ".complete"


class StackError(RuntimeError):
    """The local stack could not be set up; the message says what to do."""


class ServiceStatus(BaseModel):
    """One service of the stack as seen by ``status``."""

    name: str
    address: str
    pid: int | None
    running: bool  # the recorded pid is alive and is this service
    answering: bool  # the port accepts connections
    managed: bool  # started by this stack (so ``down`` stops it)
    log: str


class StackStatus(BaseModel):
    kafka: ServiceStatus
    redis: ServiceStatus
    topics: list[str] | None = None  # None when Kafka does not answer

    @property
    def up(self) -> bool:
        return self.kafka.answering and self.redis.answering


@dataclass(frozen=True)
class StackPaths:
    """Where the stack keeps things (all under ``settings.stack_dir``)."""

    root: Path
    kafka_dir: Path
    kafka_data: Path
    kafka_config: Path
    kafka_pidfile: Path
    redis_dir: Path
    redis_config: Path
    redis_pidfile: Path
    logs: Path
    lock: Path

    @classmethod
    def of(cls, settings: Settings) -> StackPaths:
        root = settings.stack_dir
        return cls(
            root=root,
            kafka_dir=root / "kafka",
            kafka_data=root / "kafka" / "data",
            kafka_config=root / "kafka" / "server.properties",
            kafka_pidfile=root / "kafka.pid",
            redis_dir=root / "redis",
            redis_config=root / "redis" / "redis.conf",
            redis_pidfile=root / "redis.pid",
            logs=root / "logs",
            lock=root / ".lock",
        )

    @property
    def kafka_cds_pending(self) -> Path:
        return self.root / "kafka.cds-pending"

    @property
    def kafka_log(self) -> Path:
        return self.logs / "kafka" / "server.log"

    @property
    def kafka_stdout(self) -> Path:
        return self.logs / "kafka" / "kafka.out"

    @property
    def redis_log(self) -> Path:
        return self.logs / "redis.log"


# --------------------------------------------------------------------------- helpers


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


def _pid_alive(pid: int, marker: str) -> bool:
    """The process ``pid`` exists, is not a zombie, and its command line has ``marker``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    return state not in ("Z", "X") and marker in cmdline


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _locked(paths: StackPaths) -> Iterator[None]:
    """Serialise up/down of one stack between processes (parallel test sessions)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with paths.lock.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _spawn(cmd: list[str], logfile: Path, cwd: Path) -> int:
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


def _stop_pid(pid: int, marker: str, timeout_s: float) -> bool:
    """SIGTERM, wait, then SIGKILL. True when the process ended cleanly (on SIGTERM)."""
    if not _pid_alive(pid, marker):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _pid_alive(pid, marker):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _pid_alive(pid, marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    return False


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _render(template: Path, **values: object) -> str:
    return string.Template(template.read_text()).substitute({k: str(v) for k, v in values.items()})


# --------------------------------------------------------------------------- Kafka


def kafka_home(settings: Settings) -> Path:
    return settings.cache_dir / f"kafka-{settings.kafka_version}"


def kafka_libs(settings: Settings) -> Path:
    return kafka_home(settings) / "libs"


def kafka_cached(settings: Settings) -> bool:
    """The broker jars for ``settings.kafka_version`` are resolved and complete."""
    return (kafka_libs(settings) / _COMPLETE_MARKER).exists()


def ensure_kafka_jars(settings: Settings, *, quiet: bool = True) -> Path:
    """Resolve the pinned Kafka broker and its runtime jars from Maven Central (once)."""
    libs = kafka_libs(settings)
    if kafka_cached(settings):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "Maven (mvn) is needed once to fetch Apache Kafka from Maven Central: "
            "install it (Debian: apt-get install -y maven default-jre-headless) and retry."
        )
    home = kafka_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    staging = home / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        mvn,
        "-B",
        *(["-q"] if quiet else []),
        "-f",
        str(DEPLOY_DIR / "kafka" / "pom.xml"),
        f"-Dmaven.repo.local={settings.cache_dir / 'm2'}",
        f"-Dkafka.version={settings.kafka_version}",
        f"-DoutputDirectory={staging}",
        "dependency:copy-dependencies",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        raise StackError(
            f"resolving Apache Kafka {settings.kafka_version} from Maven Central failed "
            f"(exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}"
        )
    if not any(staging.glob("kafka_2.13-*.jar")):
        raise StackError(f"Maven finished but no kafka_2.13 jar is in {staging}")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    (libs / _COMPLETE_MARKER).write_text(settings.kafka_version + "\n")
    return libs


def render_kafka_config(settings: Settings) -> str:
    paths = StackPaths.of(settings)
    return _render(
        DEPLOY_DIR / "kafka" / "server.properties.tmpl",
        host=settings.kafka_host,
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        log_dirs=paths.kafka_data,
    )


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError(
            "Java 17+ is needed for Kafka: install it (Debian: apt-get install -y default-jre-headless)."
        )
    return java


def java_major(java: str) -> int:
    """The major version of a JVM (``java -XshowSettings:properties``)."""
    proc = subprocess.run(  # noqa: S603
        [java, "-XshowSettings:properties", "-version"], capture_output=True, text=True, check=False
    )
    for line in (proc.stdout + proc.stderr).splitlines():
        name, _, value = line.strip().partition(" = ")
        if name == "java.specification.version":
            return parse_java_version(value)
    raise StackError(f"could not tell the version of {java}:\n{(proc.stdout + proc.stderr)[-1000:]}")


def parse_java_version(spec: str) -> int:
    """
    >>> parse_java_version("17"), parse_java_version("1.8"), parse_java_version("21.0.2")
    (17, 8, 21)
    """
    parts = spec.strip().split(".")
    return int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(parts[0])


def _check_java(settings: Settings) -> None:
    java = _java()
    major = java_major(java)
    if major < 17:
        raise StackError(
            f"Kafka {settings.kafka_version} needs Java 17 or newer; {java} is Java {major}. "
            "Install a newer JVM (Debian: apt-get install -y openjdk-17-jre-headless) "
            "and put it first on PATH."
        )


def _classpath(settings: Settings) -> str:
    """The broker's jars in a fixed order (class-data sharing needs a stable class path)."""
    return os.pathsep.join(str(p) for p in sorted(kafka_libs(settings).glob("*.jar")))


def cds_archive(settings: Settings) -> Path:
    """Where the broker's class-data-sharing archive lives (keyed by JVM, jars and options).

    The first broker start records its classes when it exits (``dev down``);
    later starts map the archive and start about twice as fast. A stale or
    foreign archive is never used: the JVM, the class path and the JVM options
    are part of its name (and the JVM itself ignores an archive that does not fit).
    """
    java = Path(_java()).resolve()
    st = java.stat()
    key = "|".join(
        [str(java), str(st.st_size), str(int(st.st_mtime)), _classpath(settings), settings.kafka_jvm_opts]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return kafka_home(settings) / "cds" / f"kafka-{digest}.jsa"


def _cds_flags(settings: Settings, paths: StackPaths) -> list[str]:
    if not settings.kafka_cds:
        return []
    archive = cds_archive(settings)
    if archive.is_file() and archive.stat().st_size > 0:
        return [f"-XX:SharedArchiveFile={archive}"]
    archive.parent.mkdir(parents=True, exist_ok=True)
    for stale in archive.parent.glob("*.part"):  # left by brokers that never exited cleanly
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 24 * 3600:
                stale.unlink()
    part = archive.with_name(f"{archive.name}.{uuid.uuid4().hex[:8]}.part")
    paths.kafka_cds_pending.write_text(f"{part}\n{archive}\n")
    return [f"-XX:ArchiveClassesAtExit={part}"]


def _promote_cds(paths: StackPaths, clean_exit: bool) -> None:
    """After the broker exited: keep the archive it dumped (only after a clean exit)."""
    try:
        part_s, archive_s = paths.kafka_cds_pending.read_text().split()[:2]
    except (OSError, ValueError):
        return
    part, archive = Path(part_s), Path(archive_s)
    if clean_exit and part.is_file() and part.stat().st_size > 0:
        os.replace(part, archive)
    else:
        part.unlink(missing_ok=True)
    paths.kafka_cds_pending.unlink(missing_ok=True)


def _java_cmd(settings: Settings, main: str, *args: str, extra: tuple[str, ...] = ()) -> list[str]:
    paths = StackPaths.of(settings)
    return [
        _java(),
        *settings.kafka_jvm_opts.split(),
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        *extra,
        f"-Dkafka.logs.dir={paths.kafka_log.parent}",
        f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'kafka' / 'log4j2.xml'}",
        "-cp",
        _classpath(settings),
        main,
        *args,
    ]


def _format_storage(settings: Settings, paths: StackPaths) -> None:
    if (paths.kafka_data / "meta.properties").exists():
        return
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    paths.kafka_data.mkdir(parents=True, exist_ok=True)
    cmd = _java_cmd(settings, STORAGE_TOOL, "format", "-t", cluster_id, "-c", str(paths.kafka_config))
    # the storage tool is a short JVM; keep its heap small
    cmd = [c for c in cmd if not c.startswith(("-Xms", "-Xmx"))]
    cmd.insert(1, "-Xmx256m")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        raise StackError(f"formatting Kafka storage failed:\n{(proc.stdout + proc.stderr)[-3000:]}")


async def _kafka_ready(settings: Settings) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=5000, client_id="meterwatch-stack"
    )
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def _kafka_status(settings: Settings, paths: StackPaths) -> ServiceStatus:
    pid = _read_pid(paths.kafka_pidfile)
    running = pid is not None and _pid_alive(pid, KAFKA_MAIN)
    return ServiceStatus(
        name="kafka",
        address=settings.kafka_bootstrap,
        pid=pid if running else None,
        running=running,
        answering=port_open(settings.kafka_host, settings.kafka_port),
        managed=running,
        log=str(paths.kafka_log),
    )


def start_kafka(settings: Settings, timeout_s: float | None = None) -> ServiceStatus:
    """Start the broker unless it already runs (idempotent); wait until it answers."""
    paths = StackPaths.of(settings)
    st = _kafka_status(settings, paths)
    if st.answering:
        if run_async(lambda: _kafka_ready(settings)):
            return st
        if not st.running:
            raise StackError(
                f"{settings.kafka_bootstrap} is taken by a process that is not a Kafka broker answering "
                "requests; stop it or choose another address with MW_KAFKA_BOOTSTRAP"
            )
        # our broker is still starting: wait for it below
    if not st.running:
        if port_open(settings.kafka_host, settings.kafka_controller_port):
            raise StackError(
                f"the Kafka controller port {settings.kafka_controller_port} is taken by another process; "
                "choose another with MW_KAFKA_CONTROLLER_PORT"
            )
        ensure_kafka_jars(settings)
        _check_java(settings)
        paths.kafka_dir.mkdir(parents=True, exist_ok=True)
        paths.kafka_config.write_text(render_kafka_config(settings))
        _format_storage(settings, paths)
        cmd = _java_cmd(
            settings, KAFKA_MAIN, str(paths.kafka_config), extra=tuple(_cds_flags(settings, paths))
        )
        started = _spawn(cmd, paths.kafka_stdout, paths.root)
        paths.kafka_pidfile.write_text(f"{started}\n")
    pid = _read_pid(paths.kafka_pidfile)
    deadline = time.monotonic() + (timeout_s or settings.stack_timeout_s)
    while time.monotonic() < deadline:
        if pid is None or not _pid_alive(pid, KAFKA_MAIN):
            raise StackError(
                f"Kafka exited during start-up; see {paths.kafka_log} and {paths.kafka_stdout}:\n"
                f"{_tail(paths.kafka_stdout)}"
            )
        if port_open(settings.kafka_host, settings.kafka_port) and run_async(lambda: _kafka_ready(settings)):
            return _kafka_status(settings, paths)
        time.sleep(0.25)
    raise StackError(f"Kafka did not answer on {settings.kafka_bootstrap} in time; see {paths.kafka_log}")


# --------------------------------------------------------------------------- Redis


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


def render_redis_config(settings: Settings) -> str:
    paths = StackPaths.of(settings)
    return _render(
        DEPLOY_DIR / "redis" / "redis.conf.tmpl",
        host=settings.redis_host,
        port=settings.redis_port,
        pidfile=paths.redis_dir / "redis-server.pid",
        logfile=paths.redis_log,
        dir=paths.redis_dir,
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


def _redis_status(settings: Settings, paths: StackPaths) -> ServiceStatus:
    pid = _read_pid(paths.redis_pidfile)
    running = pid is not None and _pid_alive(pid, "redis-server")
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
    st = _redis_status(settings, paths)
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
            return _redis_status(settings, paths)
        paths.redis_dir.mkdir(parents=True, exist_ok=True)
        paths.logs.mkdir(parents=True, exist_ok=True)
        paths.redis_config.write_text(render_redis_config(settings))
        started = _spawn([binary, str(paths.redis_config)], paths.logs / "redis.out", paths.redis_dir)
        paths.redis_pidfile.write_text(f"{started}\n")
    pid = _read_pid(paths.redis_pidfile)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid is None or not _pid_alive(pid, "redis-server"):
            raise StackError(
                f"redis-server exited during start-up; see {paths.redis_log}:\n{_tail(paths.redis_log)}"
            )
        if _redis_ping(settings):
            return _redis_status(settings, paths)
        time.sleep(0.1)
    raise StackError(f"Redis did not answer on {settings.redis_url} in time; see {paths.redis_log}")


# --------------------------------------------------------------------------- the stack


def up(settings: Settings, *, create_topics: bool = True) -> StackStatus:
    """Start (or reuse) Kafka and Redis and create the topics. Idempotent."""
    from meterwatch.topics import ensure_topics, list_topics

    paths = StackPaths.of(settings)
    with _locked(paths):
        redis_st = start_redis(settings)
        kafka_st = start_kafka(settings)
    topics: list[str] | None = None
    if create_topics:
        run_async(lambda: ensure_topics(settings))
        topics = run_async(lambda: list_topics(settings))
    return StackStatus(kafka=kafka_st, redis=redis_st, topics=topics)


def down(settings: Settings, timeout_s: float = 60.0) -> StackStatus:
    """Stop the services this stack started; leaves no process behind."""
    paths = StackPaths.of(settings)
    with _locked(paths):
        stopped_kafka = False
        for pidfile, marker in ((paths.kafka_pidfile, KAFKA_MAIN), (paths.redis_pidfile, "redis-server")):
            pid = _read_pid(pidfile)
            if pid is not None and _pid_alive(pid, marker):
                clean = _stop_pid(pid, marker, timeout_s)
                if marker == KAFKA_MAIN:
                    stopped_kafka = True
                    _promote_cds(paths, clean)
            pidfile.unlink(missing_ok=True)
        if stopped_kafka:  # the sockets close with the process; give the kernel a moment
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and (
                port_open(settings.kafka_host, settings.kafka_port)
                or port_open(settings.kafka_host, settings.kafka_controller_port)
            ):
                time.sleep(0.1)
    return status(settings, with_topics=False)


def status(settings: Settings, *, with_topics: bool = True) -> StackStatus:
    from meterwatch.topics import list_topics

    paths = StackPaths.of(settings)
    kafka_st = _kafka_status(settings, paths)
    topics: list[str] | None = None
    if with_topics and kafka_st.answering:
        try:
            topics = run_async(lambda: asyncio.wait_for(list_topics(settings), 15))
        except Exception:
            topics = None
    return StackStatus(kafka=kafka_st, redis=_redis_status(settings, paths), topics=topics)
