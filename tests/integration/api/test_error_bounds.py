"""Error answers of the Ops API are bounded and never repeat the request's input (issue #10, item 12)."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Tokens, bearer

pytestmark = pytest.mark.integration


async def test_validation_errors_name_the_parameter_but_never_echo_it(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    h = bearer(tokens.ops)
    for path in (
        "/v1/customers/c1/alerts?limit=" + "9" * 5000,
        "/v1/customers/c1/alerts?rule=" + "x" * 5000,
        "/v1/customers/" + "y" * 5000,
    ):
        r = await client.get(path, headers=h)
        assert r.status_code == 422
        assert len(r.content) < 1000
        assert "9" * 100 not in r.text and "x" * 100 not in r.text and "y" * 100 not in r.text
        assert r.json()["error"] == "invalid_request" and r.json()["details"]


async def test_many_bad_ids_give_a_bounded_list_of_details(client: httpx.AsyncClient, tokens: Tokens) -> None:
    ids = "&".join(f"customer_id={'z' * 70}{i}" for i in range(150))
    r = await client.get(f"/v1/baselines?{ids}", headers=bearer(tokens.ops))
    assert r.status_code == 422
    body = r.json()
    assert len(body["details"]) <= 20
    assert "errors in all" in body["message"] or len(body["details"]) < 20
    assert "z" * 70 not in r.text
