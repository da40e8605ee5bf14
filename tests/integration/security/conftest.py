"""Fixtures of the secured-connection tests: a private SASL_SSL broker and a TLS Redis.

``secure_stack`` (session) makes a CA, starts both servers (``securestack.py``) and stops
them at the end of the session. ``secure_settings`` is an isolated ``Settings`` on them
(unique topics and Redis prefix, the topics created through the secured admin client).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meterwatch.cli.devstack import run_async
from meterwatch.cli.devstack.isolation import isolated_settings
from meterwatch.settings import Settings
from meterwatch.topics import ensure_topics

from .securestack import SecureStack, start_secure_stack


@pytest.fixture(scope="session")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureStack]:
    st = start_secure_stack(tmp_path_factory.mktemp("secure-stack"), Settings())
    try:
        yield st
    finally:
        st.stop()


@pytest.fixture
def secure_settings(secure_stack: SecureStack, tmp_path: Path) -> Settings:
    s = isolated_settings(secure_stack.settings(Settings()), tmp_path / "data")
    run_async(lambda: ensure_topics(s))
    return s
