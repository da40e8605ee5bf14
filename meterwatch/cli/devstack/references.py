"""The references of ``bench/bench_stream.py``: what other consumers do with the same readings.

Each reads the benchmark's readings topic from the start (no consumer group), after the worker
is done, so that none shares the cores with another:

- ``raw``: aiokafka ``getmany``, bytes only (the ceiling of any Python consumer here);
- ``minimal``: the same + ``orjson.loads`` + a per-meter running kWh sum in a dict (the
  least a Python consumer that does anything pays);
- ``minimal+pydantic``: the same with the project's own ``MeterReading`` validation;
- ``quix`` (``--quix``): a Quix Streams application keeping the per-meter running sum in its
  RocksDB state with a changelog (``bench/quix/quix_sum.py``), in its own venv built from the
  locked ``bench/quix/requirements.txt`` (quixstreams pins an older pydantic than the project;
  ``quix_dir`` is that folder of a checkout: the benchmark passes its own).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from meterwatch.contracts import MeterReading
from meterwatch.settings import Settings


def _minimal(sums: dict[bytes, float]) -> Callable[[Any], None]:
    def fold(rec: Any) -> None:
        v = orjson.loads(rec.value)
        sums[rec.key] = sums.get(rec.key, 0.0) + v["kwh"]

    return fold


def _validated(sums: dict[bytes, float]) -> Callable[[Any], None]:
    def fold(rec: Any) -> None:
        r = MeterReading.model_validate_json(rec.value)
        sums[rec.key] = sums.get(rec.key, 0.0) + (r.kwh or 0.0)

    return fold


async def consumer_rate(s: Settings, n: int, mode: str) -> tuple[float, float]:
    """Readings per second and seconds for ``n`` readings read by the ``mode`` consumer."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    sums: dict[bytes, float] = {}
    fold = {"raw": None, "minimal": _minimal(sums), "minimal+pydantic": _validated(sums)}[mode]
    c = AIOKafkaConsumer(
        bootstrap_servers=s.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
    )
    await c.start()
    try:
        tps = [TopicPartition(s.topic_readings, p) for p in range(s.readings_partitions)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        got = 0
        t0 = 0.0  # the clock starts at the first records (the connection and the first fetch
        # request are not the consumer's work; the worker is timed from 10 % of its work)
        while got < n:
            batch = await c.getmany(timeout_ms=500, max_records=10000)
            if batch and not t0:
                t0 = time.perf_counter()
            for recs in batch.values():
                got += len(recs)
                if fold is not None:
                    for rec in recs:
                        fold(rec)
        el = time.perf_counter() - t0
    finally:
        await c.stop()
    return n / el, el


def quix_python(venv: Path, quix_dir: Path) -> Path:
    """The Python of the Quix Streams venv, created from the locked requirements when missing."""
    py = venv / "bin" / "python"
    stamp = venv / ".requirements"
    requirements = quix_dir / "requirements.txt"
    want = requirements.read_text()
    if py.exists() and stamp.exists() and stamp.read_text() == want:
        return py
    print(f"building the Quix Streams venv in {venv} (once; every version pinned in {requirements})")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)  # noqa: S603 - fixed argv
    pip = [str(py), "-m", "pip", "install", "-q", "--no-deps", "-r", str(requirements)]
    subprocess.run(pip, check=True)  # noqa: S603 - fixed argv
    stamp.write_text(want)
    return py


def quix_rate(
    s: Settings, n: int, venv: Path, quix_dir: Path, timeout_s: float
) -> tuple[float, float] | None:
    """The Quix Streams application's rate on the same topic (None: it did not finish)."""
    py = quix_python(venv, quix_dir)
    with tempfile.TemporaryDirectory(prefix="mw-quix-") as state:
        cmd = [str(py), str(quix_dir / "quix_sum.py"), "--bootstrap", s.kafka_bootstrap]
        cmd += ["--topic", s.topic_readings, "--n", str(n), "--state-dir", state]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
        try:
            out = subprocess.run(  # noqa: S603 - fixed argv
                cmd, capture_output=True, text=True, timeout=timeout_s, env=env
            )
        except subprocess.TimeoutExpired:
            print(f"quix reference: no result within {timeout_s:.0f} s")
            return None
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            rate, el = (float(x) for x in line.split()[1:3])
            return (rate, el) if rate > 0 else None
    print(f"quix reference failed (exit {out.returncode}): {out.stderr[-2000:]}")
    return None
