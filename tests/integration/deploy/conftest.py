"""Images for the ``docker`` tests, built once per session from Debian packages."""

from __future__ import annotations

import re

import pytest

from .tools import require, require_engine, run


@pytest.fixture(scope="session")
def local_images() -> dict[str, str]:
    """METERWATCH_IMAGE, KAFKA_IMAGE, REDIS_IMAGE, PROMETHEUS_IMAGE -> tag (build-images.sh, cached)."""
    require_engine()
    require("debootstrap")
    out = run(["bash", "deploy/compose/local/build-images.sh"], timeout=2400).stdout
    images = dict(ln.split("=", 1) for ln in out.splitlines() if re.fullmatch(r"[A-Z_]+_IMAGE=\S+", ln))
    assert sorted(images) == ["KAFKA_IMAGE", "METERWATCH_IMAGE", "PROMETHEUS_IMAGE", "REDIS_IMAGE"], out
    return images
