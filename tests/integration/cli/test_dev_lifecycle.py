"""`meterwatch dev up|down` on an ALTERNATE stack (own ports and data dir), never the shared one."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meterwatch.cli.devstack import (
    StackError,
    StackPaths,
    cds_archive,
    ensure_kafka_jars,
    kafka_libs,
    port_open,
    render_redis_config,
    start_kafka,
)
from meterwatch.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _cli(env: dict[str, str], *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    code = "import sys; from meterwatch.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.integration
@pytest.mark.slow
def test_dev_up_is_idempotent_and_down_leaves_nothing_running(tmp_path: Path) -> None:
    kafka_port, ctrl_port, redis_port = _free_port(), _free_port(), _free_port()
    base = Settings()
    ensure_kafka_jars(base)
    # a private cache that shares the resolved jars: the class-data-sharing archive starts empty
    cache = tmp_path / "cache"
    (cache / f"kafka-{base.kafka_version}").mkdir(parents=True)
    (cache / f"kafka-{base.kafka_version}" / "libs").symlink_to(kafka_libs(base))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    env.update(
        MW_KAFKA_BOOTSTRAP=f"127.0.0.1:{kafka_port}",
        MW_KAFKA_CONTROLLER_PORT=str(ctrl_port),
        MW_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        MW_DATA_DIR=str(tmp_path / "data"),
        MW_CACHE_DIR=str(cache),
        MW_KAFKA_JVM_OPTS="-Xms128m -Xmx512m",
        MW_READINGS_PARTITIONS="2",
    )
    settings = Settings.model_validate({k[3:].lower(): v for k, v in env.items() if k.startswith("MW_")})
    archive = cds_archive(settings)
    pids: list[int] = []
    try:
        first = _cli(env, "dev", "up")
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"Kafka bootstrap: 127.0.0.1:{kafka_port}" in first.stdout
        assert f"Redis URL:       redis://127.0.0.1:{redis_port}/0" in first.stdout
        st1 = json.loads(_cli(env, "dev", "status", "--json").stdout)
        assert st1["kafka"]["running"] and st1["redis"]["running"]
        pids = [st1["kafka"]["pid"], st1["redis"]["pid"]]
        assert "meter-readings" in st1["topics"] and "customers" in st1["topics"]
        # data and logs live under MW_DATA_DIR
        assert Path(st1["kafka"]["log"]).is_file()
        assert str(tmp_path / "data") in st1["kafka"]["log"]
        assert "-XX:ArchiveClassesAtExit=" in _cmdline(pids[0])  # no archive yet: record one

        second = _cli(env, "dev", "up")
        assert second.returncode == 0, second.stderr
        st2 = json.loads(_cli(env, "dev", "status", "--json").stdout)
        assert [st2["kafka"]["pid"], st2["redis"]["pid"]] == pids
    finally:
        down = _cli(env, "dev", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "nothing left running" in down.stdout
    assert pids and not any(_alive(p) for p in pids)
    for port in (kafka_port, ctrl_port, redis_port):
        assert not port_open("127.0.0.1", port)
    assert _cli(env, "dev", "status").returncode != 0  # down: status says so with its exit code
    # the clean shutdown left a class-data-sharing archive; the next start maps it
    assert archive.is_file() and archive.stat().st_size > 1_000_000
    assert list(archive.parent.glob("*.part")) == []
    try:
        third = _cli(env, "dev", "up", "--no-topics")
        assert third.returncode == 0, third.stdout + third.stderr
        kafka_pid = json.loads(_cli(env, "dev", "status", "--json").stdout)["kafka"]["pid"]
        assert kafka_pid not in pids
        assert f"-XX:SharedArchiveFile={archive}" in _cmdline(kafka_pid)
        # the broker kept its data: the topics created by the first `up` are there
        assert "meter-readings" in json.loads(_cli(env, "dev", "status", "--json").stdout)["topics"]
    finally:
        assert _cli(env, "dev", "down").returncode == 0
    assert not _alive(kafka_pid)
    assert not port_open("127.0.0.1", kafka_port) and not port_open("127.0.0.1", redis_port)
    # the shared stack was not touched
    assert port_open(base.kafka_host, base.kafka_port) and port_open(base.redis_host, base.redis_port)


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_taken_controller_port_gives_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = int(blocker.getsockname()[1])
        s = Settings(
            kafka_bootstrap=f"127.0.0.1:{_free_port()}",
            kafka_controller_port=taken,
            data_dir=tmp_path,
        )
        t0 = time.monotonic()
        with pytest.raises(StackError, match="MW_KAFKA_CONTROLLER_PORT"):
            start_kafka(s)
        assert time.monotonic() - t0 < 30  # it did not wait for a broker that cannot start
    assert not StackPaths.of(s).kafka_pidfile.exists()


def test_redis_config_binds_loopback_and_keeps_data_under_data_dir(tmp_path: Path) -> None:
    s = Settings(redis_url="redis://127.0.0.1:16999/0", data_dir=tmp_path)
    conf = dict(
        line.split(None, 1)
        for line in render_redis_config(s).splitlines()
        if line and not line.startswith("#")
    )
    assert conf["bind"] == "127.0.0.1"
    assert conf["port"] == "16999"
    assert conf["dir"].startswith(str(tmp_path))
    assert conf["appendonly"] == "yes"


def test_settings_come_from_mw_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MW_KAFKA_BOOTSTRAP", "127.0.0.1:29092")
    monkeypatch.setenv("MW_REDIS_URL", "redis://127.0.0.1:26379/2")
    monkeypatch.setenv("MW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MW_READINGS_PARTITIONS", "6")
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "127.0.0.1:1")  # no prefix: ignored
    s = Settings()
    assert (s.kafka_port, s.redis_port, s.readings_partitions) == (29092, 26379, 6)
    assert s.stack_dir == tmp_path / "stack"
    with pytest.raises(ValueError):
        monkeypatch.setenv("MW_READINGS_PARTITIONS", "many")
        Settings()


def test_a_port_taken_by_something_else_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    from meterwatch.cli.devstack import start_redis

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = int(blocker.getsockname()[1])
        s = Settings(redis_url=f"redis://127.0.0.1:{port}/0", data_dir=tmp_path)
        with pytest.raises(StackError, match="MW_REDIS_URL"):
            start_redis(s)
        k = Settings(
            kafka_bootstrap=f"127.0.0.1:{port}", kafka_controller_port=_free_port(), data_dir=tmp_path
        )
        with pytest.raises(StackError, match="MW_KAFKA_BOOTSTRAP"):
            start_kafka(k)


@pytest.mark.parametrize("ci", ["true", ""])
def test_unavailable_stack_fails_the_run_and_never_skips(tmp_path: Path, ci: str) -> None:
    """The session fixture on a stack that cannot start: the run fails (CI=true stops it at once)."""
    from meterwatch.cli.devstack import down

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = int(blocker.getsockname()[1])
        s = Settings(
            kafka_bootstrap=f"127.0.0.1:{_free_port()}",
            kafka_controller_port=taken,  # Kafka cannot start
            redis_url=f"redis://127.0.0.1:{_free_port()}/0",
            data_dir=tmp_path / "data",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("MW_") and k != "CI"}
        env.update(
            CI=ci,
            MW_KAFKA_BOOTSTRAP=s.kafka_bootstrap,
            MW_KAFKA_CONTROLLER_PORT=str(taken),
            MW_REDIS_URL=s.redis_url,
            MW_DATA_DIR=str(s.data_dir),
        )
        root = Path(__file__).resolve().parents[3]
        target = "tests/integration/cli/test_stack_integration.py"
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", target],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            down(s)  # the fixture may have started Redis before Kafka failed
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "local stack (Kafka + Redis) is not available" in out
    assert "MW_KAFKA_CONTROLLER_PORT" in out
    assert not re.search(r"\d+ skipped", out), out
    errors = re.search(r"(\d+) errors?", out)
    if ci:  # the session stops at the first failure instead of erroring every test
        assert len(re.findall("is not available", out)) == 1, out
        assert not re.search(r"\d+ passed", out), out
    else:  # every test that needs the stack errors with the reason
        assert errors is not None and int(errors.group(1)) >= 6, out


def test_missing_redis_without_root_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from meterwatch.cli.devstack import ensure_redis_server

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(StackError, match=r"apt-get install -y redis-server"):
        ensure_redis_server()


def test_missing_maven_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(StackError, match=r"apt-get install -y maven"):
        ensure_kafka_jars(Settings(cache_dir=tmp_path))
    assert not (tmp_path / "kafka-4.1.1" / "libs").exists()


def test_the_local_jvm_is_recent_enough_for_kafka() -> None:
    import shutil

    from meterwatch.cli.devstack import java_major

    java = shutil.which("java")
    assert java is not None
    assert java_major(java) >= 17
