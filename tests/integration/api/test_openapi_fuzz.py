"""Property-based tests against the app's own OpenAPI document (schemathesis).

A real uvicorn serves the app on loopback over the real Redis, seeded with a
few customers of two managers. For every operation, schemathesis generates
valid (positive) and invalid (negative) requests; each answer must not be a
5xx and must match the documented schema for its status code (ErrorBody for
4xx, the models for 200). Bounded: a fixed number of examples per operation.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import ignored_auth, not_a_server_error, response_schema_conformance
from schemathesis.core.result import Ok

from .conftest import LiveServer, ReadModel, Tokens

pytestmark = pytest.mark.integration

EXAMPLES = 25
SEEDED = ["MAC000002", "c-b", "c.3:x@y-z"]


@pytest.fixture
async def seeded(rm: ReadModel) -> ReadModel:
    for cid, mgr in zip(SEEDED, ["mgr-a", "mgr-b", "mgr-a"], strict=True):
        await rm.customer(cid, mgr)
        await rm.baseline(cid, mgr)
        for day, rule in [(2, "sudden_increase"), (5, "same_period_reached")]:
            await rm.alert(cid, mgr, rule, day)
    await rm.segments(4)
    await rm.heartbeat()
    await rm.redis.hset(rm.keys.metrics("worker"), mapping={"readings_processed_total": 5})
    return rm


def _fuzz(base_url: str, spec: dict[str, Any], token: str) -> int:
    schema = schemathesis.openapi.from_dict(spec)
    headers = {"Authorization": f"Bearer {token}"}
    checks = [not_a_server_error, response_schema_conformance, ignored_auth]
    calls = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        op = result.ok()
        strategies = [op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)]
        if "{customer_id}" in op.path:  # also hit customers that exist, with fuzzed queries
            strategies += [op.as_strategy(path_parameters={"customer_id": cid}) for cid in SEEDED]

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
            case.call_and_validate(base_url=base_url, headers=headers, checks=checks, timeout=10)
            calls += 1

        run()
    return calls


@pytest.mark.parametrize("role", ["ops", "mgr_a"])
def test_no_5xx_and_no_schema_violation(
    live_api: LiveServer, tokens: Tokens, seeded: ReadModel, role: str
) -> None:
    calls = _fuzz(live_api.base_url, live_api.app.openapi(), getattr(tokens, role))
    assert calls >= EXAMPLES * 4  # every operation was exercised
