"""The dev stack's Kafka cluster id never starts with "-" (the storage tool would read it as an option)."""

from __future__ import annotations

import uuid

import pytest

from meterwatch.cli.devstack import kafka


def test_an_id_that_would_start_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x04" + bytes(15))])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(drawn))  # the module kafka.py imported
    cid = kafka.new_cluster_id()
    assert cid == "BAAAAAAAAAAAAAAAAAAAAA"  # the second draw: the first encodes as "-AAA..."
