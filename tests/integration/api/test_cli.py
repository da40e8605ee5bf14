"""`meterwatch token create|list|revoke` and `meterwatch api`, as an operator runs them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from meterwatch.settings import Settings

from .conftest import ReadModel

pytestmark = pytest.mark.integration


def settings_env(settings: Settings, **extra: Any) -> dict[str, str]:
    """The MW_* environment that reproduces ``settings`` in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MW_")}
    merged = settings.model_copy(update=extra)
    dumped = merged.model_dump(mode="json")
    for name, value in dumped.items():
        raw = getattr(merged, name)
        if isinstance(raw, SecretStr):
            value = raw.get_secret_value()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, dict | list) or value is None:
            value = json.dumps(value)
        env[f"MW_{name.upper()}"] = str(value)
    return env


def mw(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meterwatch.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_token_commands(api_settings: Settings, tmp_path: Path) -> None:
    env = settings_env(api_settings)
    made = mw(
        env, "token", "create", "--role", "manager", "--manager-id", "mgr-7", "--label", "alice", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("mw_") and len(token.splitlines()) == 1
    assert "mgr-7" in made.stderr and token not in made.stderr
    token_id = token.split("_")[1]

    assert mw(env, "token", "create", "--role", "manager", cwd=tmp_path).returncode == 2
    assert mw(env, "token", "create", "--role", "ops", "--manager-id", "x", cwd=tmp_path).returncode == 2
    bad = mw(env, "token", "create", "--role", "root", cwd=tmp_path)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr

    listed = mw(env, "token", "list", "--json", cwd=tmp_path)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["token_id"], r["role"], r["manager_id"], r["label"], r["valid"]) for r in rows] == [
        (token_id, "manager", "mgr-7", "alice", True)
    ]
    secret = token.split("_", 2)[2]
    assert secret not in listed.stdout and secret not in mw(env, "token", "list", cwd=tmp_path).stdout

    assert mw(env, "token", "revoke", token_id, cwd=tmp_path).returncode == 0
    assert mw(env, "token", "revoke", "nope", cwd=tmp_path).returncode == 1
    rows = [json.loads(line) for line in mw(env, "token", "list", "--json", cwd=tmp_path).stdout.splitlines()]
    assert rows[0]["revoked"] is True and rows[0]["valid"] is False
    table = mw(env, "token", "list", cwd=tmp_path).stdout
    assert token_id in table and "revoked" in table


def test_token_commands_without_redis_fail_clearly(api_settings: Settings, tmp_path: Path) -> None:
    env = settings_env(api_settings, redis_url=f"redis://127.0.0.1:{_free_port()}/0")
    for args in (["create", "--role", "ops"], ["list"], ["revoke", "abc"]):
        out = mw(env, "token", *args, cwd=tmp_path)
        assert out.returncode == 3, out.stderr
        assert out.stderr.startswith("error: cannot use Redis at redis://127.0.0.1:"), out.stderr
        assert "Traceback" not in out.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_api_service_serves_a_baseline_to_a_cli_token(
    api_settings: Settings, rm: ReadModel, tmp_path: Path
) -> None:
    port = _free_port()
    env = settings_env(api_settings, api_port=port)
    token = mw(env, "token", "create", "--role", "ops", cwd=tmp_path).stdout.strip()
    await rm.baseline("MAC000002", "mgr-1", kwh=7.5)
    await rm.heartbeat()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "meterwatch.cli", "api",
        env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await c.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.returncode is None and time.monotonic() < deadline, "api did not start"
                await asyncio.sleep(0.1)
            assert (await c.get("/readyz")).status_code == 200
            r = await c.get("/v1/customers/MAC000002/baseline", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200 and r.json()["cycle"]["cycle_to_date_kwh"] == 7.5
            assert "server" not in r.headers
            r = await c.get("/v1/customers/MAC000002/baseline")
            assert r.status_code == 401
    finally:
        proc.terminate()
        raw, _ = await asyncio.wait_for(proc.communicate(), timeout=20)
    out = raw.decode()
    # uvicorn shuts down cleanly, then re-raises SIGTERM to exit with the signal's status
    assert proc.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in out, out
    assert token not in out  # the secret never reaches the log
