"""Fixtures shared by every integration package.

* ``private_kafka``: a Kafka broker of its own (own ports, data and cache dirs, started from the
  cached jars of the dev stack) for outage tests: ``.start()``, ``.kill9()``, ``.start()`` again
  on the same data; stopped at teardown. The shared stack is never touched.
* ``warning_lines``: ``warning_lines(log, offset)`` counts the WARNING+ lines a service wrote
  after byte ``offset`` of its log, by (logger, first three words of the message), to check
  that an outage gives one line per cause per interval, not a flood.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from meterwatch.settings import Settings

# the services' format ("date time LEVEL logger: message") and Faust's ("[date time] [pid] [LEVEL] message")
_LINE = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) (\S+): (.*)$")
_FAUST_LINE = re.compile(r"^\[[^\]]+\] \[(\d+)\] \[(WARNING|ERROR|CRITICAL)\] (.*)$")

WarningLines = Callable[[Path, int], "collections.Counter[tuple[str, str]]"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateKafka:
    """A Kafka broker of its own (own ports, data and cache dirs) for outage tests.

    The shared stack is never touched: the broker is started from the cached jars (linked
    into a private cache, without a class-data-sharing archive) and killed with SIGKILL to
    simulate an outage, then started again on the same data.
    """

    def __init__(self, workdir: Path) -> None:
        from meterwatch.cli.devstack import ensure_kafka_jars, kafka_libs

        base = Settings()
        ensure_kafka_jars(base)
        cache = workdir / "kafka-cache"
        libs = cache / f"kafka-{base.kafka_version}" / "libs"
        libs.parent.mkdir(parents=True, exist_ok=True)
        if not libs.exists():
            libs.symlink_to(kafka_libs(base))
        self.settings = Settings(
            kafka_bootstrap=f"127.0.0.1:{_free_port()}",
            kafka_controller_port=_free_port(),
            data_dir=workdir / "kafka-data",
            cache_dir=cache,
            kafka_jvm_opts="-Xms128m -Xmx384m",
            kafka_cds=False,
        )

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap

    def start(self) -> PrivateKafka:
        from meterwatch.cli.devstack import start_kafka

        start_kafka(self.settings, timeout_s=150)
        return self

    def kill9(self) -> None:
        from meterwatch.cli.devstack import StackPaths, port_open

        pidfile = StackPaths.of(self.settings).kafka_pidfile
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.time() + 20
        while time.time() < deadline and port_open("127.0.0.1", self.settings.kafka_port):
            time.sleep(0.1)

    def stop(self) -> None:
        from meterwatch.cli.devstack import down

        down(self.settings, timeout_s=30)


def count_warning_lines(log: Path, offset: int) -> collections.Counter[tuple[str, str]]:
    """WARNING+ lines written after ``offset``, counted by (logger, first words of the message)."""
    text = log.read_bytes()[offset:].decode("utf-8", "replace")
    out: collections.Counter[tuple[str, str]] = collections.Counter()
    for line in text.splitlines():
        m = _LINE.match(line) or _FAUST_LINE.match(line)
        if m:
            source = m.group(2) if m.re is _LINE else f"pid {m.group(1)}"
            out[(source, " ".join(m.group(3).split()[:3]))] += 1
    return out


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[PrivateKafka]:
    broker = PrivateKafka(tmp_path / "private-kafka")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def warning_lines() -> WarningLines:
    return count_warning_lines
