"""Run the doctests of this area's modules (outside the default `testpaths`)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["stream.segments", "stream.simulate", "stream.publish", "stream.segment_features"]


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no doctest examples"
    assert result.failed == 0
