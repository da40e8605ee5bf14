"""Property-based requests against the notifier's own OpenAPI document (schemathesis).

A real uvicorn serves the notifier on loopback (in a thread, over the real Redis and Kafka);
for every operation schemathesis generates valid and invalid requests with an ops token and a
manager token. No answer may be a 5xx, and documented answers must match their schema.
Bounded: a fixed number of examples per operation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.result import Ok

from meterwatch.auth import create_token
from meterwatch.cli.devstack import run_async
from meterwatch.keys import Keys
from meterwatch.settings import Settings
from notifier.app import create_app

from .procs import free_port

pytestmark = pytest.mark.integration
EXAMPLES = 15


@pytest.fixture
def live(nsettings: Settings) -> Iterator[tuple[str, dict[str, Any]]]:
    app = create_app(nsettings, consume=False)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "notifier did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app.openapi()
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _tokens(s: Settings) -> dict[str, str]:
    from redis.asyncio import Redis

    async def make() -> dict[str, str]:
        r = Redis.from_url(s.redis_url)
        try:
            ops, _ = await create_token(r, Keys(s.redis_prefix), "ops")
            mgr, _ = await create_token(r, Keys(s.redis_prefix), "manager", manager_id="mgr-1")
            return {"ops": ops, "manager": mgr}
        finally:
            await r.aclose()

    return run_async(make)


@pytest.mark.parametrize("role", ["ops", "manager"])
def test_no_5xx_and_no_schema_violation(
    live: tuple[str, dict[str, Any]], nsettings: Settings, role: str
) -> None:
    base_url, spec = live
    token = _tokens(nsettings)[role]
    schema = schemathesis.openapi.from_dict(spec)
    headers = {"Authorization": f"Bearer {token}"}
    checks = [not_a_server_error, response_schema_conformance]
    calls = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        op = result.ok()
        strategies = [op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)]

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def run(data: st.DataObject) -> None:
            nonlocal calls
            case = data.draw(st.one_of(*strategies))
            if case.headers and "accept" in {k.lower() for k in case.headers}:
                case.headers = {k: v for k, v in case.headers.items() if k.lower() != "accept"}
            case.call_and_validate(base_url=base_url, headers=headers, checks=checks, timeout=10)
            calls += 1

        run()
    assert calls >= EXAMPLES * 5
