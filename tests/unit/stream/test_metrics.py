"""Worker metrics through prometheus_client, and the bind address of /healthz and /metrics."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from meterwatch.settings import Settings
from stream.metrics import MetricsServer, WorkerMetrics, render


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def test_the_exposition_keeps_the_names_labels_and_values() -> None:
    m = WorkerMetrics()
    m.inc("readings_processed", 7)
    m.inc_labelled("duplicates", "redelivered", 3)
    m.inc_labelled("dlq", 'we"ird')
    m.set_gauge("consumer_lag", 12.5)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(render(m, "w1"))
        for s in fam.samples
    }
    assert samples == {
        ("meterwatch_worker_readings_processed_total", (("instance", "w1"),)): 7.0,
        ("meterwatch_worker_duplicates_total", (("instance", "w1"), ("kind", "redelivered"))): 3.0,
        ("meterwatch_worker_dlq_total", (("code", 'we"ird'), ("instance", "w1"))): 1.0,
        ("meterwatch_worker_consumer_lag", (("instance", "w1"),)): 12.5,
    }


def test_redis_deltas_leave_out_the_exact_counters() -> None:
    m = WorkerMetrics()
    m.inc("readings_processed", 2)
    m.inc("readings_in", 2)
    assert m.deltas(exclude=frozenset({"readings_processed"})) == {"readings_in": 2}


@pytest.mark.parametrize("host", ["127.0.0.2"])
async def test_the_server_binds_the_configured_address(host: str, tmp_path: Any) -> None:
    """MW_WORKER_METRICS_HOST (was hard-bound to 127.0.0.1)."""
    port = free_port(host)
    server = MetricsServer(Settings(worker_metrics_host=host, data_dir=tmp_path), WorkerMetrics(), "w0", port)
    await server.start()
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.get(f"http://{host}:{port}/healthz")
            assert r.status_code == 200 and r.json() == {"status": "ok", "instance": "w0"}
            assert (await client.get(f"http://{host}:{port}/metrics")).status_code == 401
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        await server.stop()
        await asyncio.sleep(0)
