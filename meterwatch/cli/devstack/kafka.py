"""The local Kafka broker: jars from Maven Central (cached), Java, storage, start and status."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from meterwatch.cli.devstack.paths import (
    DEPLOY_DIR,
    ServiceStatus,
    StackError,
    StackPaths,
    render_kafka_config,
)
from meterwatch.cli.devstack.procs import pid_alive, port_open, read_pid, run_async, spawn_detached, tail
from meterwatch.settings import Settings

KAFKA_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
_COMPLETE_MARKER = ".complete"


def kafka_home(settings: Settings) -> Path:
    return settings.cache_dir / f"kafka-{settings.kafka_version}"


def kafka_libs(settings: Settings) -> Path:
    return kafka_home(settings) / "libs"


def kafka_cached(settings: Settings) -> bool:
    """The broker jars for ``settings.kafka_version`` are resolved and complete."""
    return (kafka_libs(settings) / _COMPLETE_MARKER).exists()


class MavenProgress:
    """Counts Maven's downloads and says so about every ``every`` files (``dev fetch``).

    >>> lines = []
    >>> m = MavenProgress(lines.append, every=2)
    >>> for text in ["[INFO] Scanning", "Downloaded from central: https://x/a.jar (1 kB at 1 kB/s)",
    ...              "Downloaded from central: https://x/b.pom (2 kB at 1 kB/s)"]:
    ...     m.feed(text)
    >>> m.downloaded, lines
    (2, ['  Maven: 2 files downloaded'])
    """

    def __init__(self, say: Callable[[str], None], every: int = 25) -> None:
        self.say = say
        self.every = every
        self.downloaded = 0

    def feed(self, line: str) -> None:
        if line.removeprefix("[INFO] ").startswith("Downloaded from"):
            self.downloaded += 1
            if self.downloaded % self.every == 0:
                self.say(f"  Maven: {self.downloaded} files downloaded")


def _run_maven(cmd: list[str], say: Callable[[str], None] | None) -> tuple[int, str]:
    """Run Maven; with ``say``, report its download count as it goes. (exit status, output tail)."""
    if say is None:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        return done.returncode, (done.stdout + done.stderr)[-3000:]
    progress = MavenProgress(say)
    tail: list[str] = []
    with subprocess.Popen(  # noqa: S603 - fixed argv
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            progress.feed(line)
            tail = [*tail[-40:], line.rstrip()]
    say(f"  Maven: done, {progress.downloaded} files downloaded")
    return proc.returncode, "\n".join(tail)[-3000:]


def ensure_kafka_jars(
    settings: Settings, *, quiet: bool = True, say: Callable[[str], None] | None = None
) -> Path:
    """Resolve the pinned Kafka broker and its runtime jars from Maven Central (once).

    ``say`` (e.g. print to stderr) gets a line when the download starts and Maven's
    download count as it goes; without it Maven runs silently.
    """
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
        *(["-q"] if quiet and say is None else []),
        "-f",
        str(DEPLOY_DIR / "kafka" / "pom.xml"),
        f"-Dmaven.repo.local={settings.cache_dir / 'm2'}",
        f"-Dkafka.version={settings.kafka_version}",
        f"-DoutputDirectory={staging}",
        "dependency:copy-dependencies",
    ]
    if say is not None:
        say(f"fetching Apache Kafka {settings.kafka_version} from Maven Central (once; cached in {home})")
    code, output = _run_maven(cmd, say)
    if code != 0:
        raise StackError(
            f"resolving Apache Kafka {settings.kafka_version} from Maven Central failed "
            f"(exit {code}):\n{output}"
        )
    if not any(staging.glob("kafka_2.13-*.jar")):
        raise StackError(f"Maven finished but no kafka_2.13 jar is in {staging}")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    (libs / _COMPLETE_MARKER).write_text(settings.kafka_version + "\n")
    return libs


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


def promote_cds(paths: StackPaths, clean_exit: bool) -> None:
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


def new_cluster_id() -> str:
    """A random Kafka cluster id (URL-safe base64 of 16 bytes) that does not start with "-".

    One id in 64 would otherwise start with "-", which the storage tool's `-t` reads as an
    option ("expected one argument"); Kafka's own Uuid.randomUuid redraws those too.

    >>> cid = new_cluster_id()
    >>> len(cid), cid.startswith("-")
    (22, False)
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _format_storage(settings: Settings, paths: StackPaths) -> None:
    if (paths.kafka_data / "meta.properties").exists():
        return
    cluster_id = new_cluster_id()
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

    from meterwatch.connections import kafka_client_kwargs

    admin = AIOKafkaAdminClient(
        **kafka_client_kwargs(settings), request_timeout_ms=5000, client_id="meterwatch-stack"
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


def kafka_status(settings: Settings, paths: StackPaths) -> ServiceStatus:
    pid = read_pid(paths.kafka_pidfile)
    running = pid is not None and pid_alive(pid, KAFKA_MAIN)
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
    st = kafka_status(settings, paths)
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
        started = spawn_detached(cmd, paths.kafka_stdout, paths.root)
        paths.kafka_pidfile.write_text(f"{started}\n")
    pid = read_pid(paths.kafka_pidfile)
    deadline = time.monotonic() + (timeout_s or settings.stack_timeout_s)
    while time.monotonic() < deadline:
        if pid is None or not pid_alive(pid, KAFKA_MAIN):
            raise StackError(
                f"Kafka exited during start-up; see {paths.kafka_log} and {paths.kafka_stdout}:\n"
                f"{tail(paths.kafka_stdout)}"
            )
        if port_open(settings.kafka_host, settings.kafka_port) and run_async(lambda: _kafka_ready(settings)):
            return kafka_status(settings, paths)
        time.sleep(0.25)
    raise StackError(f"Kafka did not answer on {settings.kafka_bootstrap} in time; see {paths.kafka_log}")
