"""bench/bench_recovery.py's filler: replicated values are what the worker itself would store and read.

The benchmark fills the worker's changelogs with template values whose placeholder ids are
replaced in the encoded bytes. These tests check that this equals encoding the state under
the new ids, and that the values go through the worker's real RocksDB table (Faust's
changelog apply, ``Table.get``) and decode (``stream.state.decode_customer``) as the
customer's own.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from meterwatch.contracts import CustomerRecord
from meterwatch.settings import Settings
from stream.app import build_app
from stream.produce import partition_for
from stream.state import CustomerState, decode_customer, encode_customer

BENCH = Path(__file__).resolve().parents[3] / "bench" / "bench_recovery.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_recovery", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_recovery"] = mod  # dataclasses resolve the module by name
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def templates(bench: ModuleType) -> list[Any]:
    return list(bench.build_templates(3))


def test_templates_are_folded_profiles_with_placeholder_ids(bench: ModuleType, templates: list[Any]) -> None:
    for t in templates:
        st = CustomerState(bench.PLACEHOLDER_CUSTOMER)
        decode_customer(st, t.profile)
        assert st.profile is not None and st.profile.customer_id == bench.PLACEHOLDER_CUSTOMER
        assert st.profile.closed_cycles  # the two years of history were folded
        assert st.profile.latest_ts is not None  # and the half-hourly readings
        rec = CustomerRecord.model_validate_json(t.record)
        assert (rec.customer_id, rec.meter_ids) == (bench.PLACEHOLDER_CUSTOMER, [bench.PLACEHOLDER_METER])
    assert len({t.profile for t in templates}) == len(templates)  # different households


def test_replica_bytes_equal_encoding_under_the_new_ids(bench: ModuleType, templates: list[Any]) -> None:
    cid, meter = bench.customer_ids(123_456)
    for t in templates:
        key, record, profile = bench.replicate(t, cid, meter)
        assert key == cid.encode()
        rec = CustomerRecord.model_validate_json(t.record).model_copy(
            update={"customer_id": cid, "meter_ids": [meter]}
        )
        assert record == rec.model_dump_json().encode()
        st = CustomerState(cid)
        decode_customer(st, t.profile)
        assert st.profile is not None
        st.profile.customer_id = cid
        assert profile == encode_customer(st)


def test_replicas_restore_through_the_worker_table(
    bench: ModuleType, templates: list[Any], tmp_path: Path
) -> None:
    """Applied as Faust applies changelog records, each replica reads back as its own customer."""
    settings = Settings().model_copy(update={"data_dir": tmp_path})
    wapp = build_app(settings, "t")  # the worker's RocksDB tables (no broker needed to apply records)
    table = wapp.profiles_table
    parts = settings.readings_partitions
    events = []
    for i in range(20):
        key, _, profile = bench.replicate(templates[i % len(templates)], *bench.customer_ids(i))
        p = partition_for(key, parts)
        tp = TP(wapp.names.profiles_changelog, p)
        msg = SimpleNamespace(tp=tp, offset=i, partition=p, key=key, value=profile)
        events.append(SimpleNamespace(message=msg, key=key, value=profile))
    table.apply_changelog_batch(events)
    seen_parts = set()
    for i in range(20):
        cid, _ = bench.customer_ids(i)
        raw = table.get(cid.encode())
        assert raw is not None
        st = CustomerState(cid)
        decode_customer(st, raw)
        assert st.profile is not None and st.profile.customer_id == cid
        seen_parts.add(partition_for(cid.encode(), parts))
    assert len(seen_parts) > 1  # spread over partitions, each in its own RocksDB
    assert table.get(bench.customer_ids(20)[0].encode()) is None
