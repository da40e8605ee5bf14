"""The `>>>` examples in api/ (pytest's testpaths do not include api/, so run them here)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["api.app", "api.metrics", "api.ratelimit", "api.errors", "api.deps", "api.routes.customers"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    if name in ("api.app", "api.metrics", "api.ratelimit"):
        assert result.attempted > 0
