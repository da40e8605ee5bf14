"""Stored segmenter states: version 3 round trips; versions 1 and 2 (the segmenter before it was
a River pipeline) still load and draw the same segments.

``state_v2.json`` was written by the previous segmenter (``baselines/segments.py`` at commit
ac71530): its state after two passes over 260 synthetic customers, the segment each of 60
probe customers was closest to, and its ``summaries()``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from baselines.segments import STATE_VERSION, Segmenter

FIXTURE = Path(__file__).with_name("state_v2.json")


@pytest.fixture(scope="module")
def v2() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    assert data["state"]["state_version"] == 2
    return data


def _nearest(seg: Segmenter, features: dict[str, float]) -> int:
    z = seg.preprocess.transform_one(seg._known(features))
    return int(seg.clusterer.predict_one(z))


def test_version_2_loads_with_the_same_segments(v2: dict[str, Any]) -> None:
    seg = Segmenter.from_dict(v2["state"])
    assert seg.model_version == v2["state"]["model_version"]
    # the same ids, sizes, labels, kinds; centroids (in the features' units) unchanged
    got = [s.model_dump() for s in seg.summaries()]
    for mine, old in zip(got, v2["summaries"], strict=True):
        assert {k: mine[k] for k in ("id", "size", "label", "labels", "kind", "characteristics")} == {
            k: old[k] for k in ("id", "size", "label", "labels", "kind", "characteristics")
        }
        assert mine["centroid"] == pytest.approx(old["centroid"], rel=1e-4)
    # the converted centres draw the same borders: every probe is closest to the same segment
    assert {c: _nearest(seg, f) for c, f in v2["probes"].items()} == v2["expected"]
    # pending votes survive
    assert seg.pending == {c: (k, n) for c, k, n in v2["state"]["pending"]}


def test_version_2_model_goes_on_learning_and_saves_as_version_3(v2: dict[str, Any]) -> None:
    seg = Segmenter.from_dict(v2["state"])
    current: dict[str, int | None] = dict(seg.members)
    for cid, f in sorted(v2["features"].items()):
        for a in seg.observe(cid, f, current.get(cid)):
            current[a.customer_id] = a.segment.id
    assert sum(s.size for s in seg.summaries()) == len(v2["features"])
    moved = sum(1 for c, k in current.items() if k != v2["state"]["members"][c])
    assert moved <= len(current) * 0.05  # the same features: (almost) nobody moves
    d = seg.to_dict()
    assert d["state_version"] == STATE_VERSION == 3
    assert Segmenter.from_json(json.dumps(d)).to_dict() == d


def test_version_2_without_members_as_the_worker_stores_it(v2: dict[str, Any]) -> None:
    state = {k: v for k, v in v2["state"].items() if k != "members"}
    seg = Segmenter.from_dict(state)
    assert sum(s.size for s in seg.summaries()) == len(v2["features"])  # the stored sizes
    seg.set_members(v2["state"]["members"])  # read back per customer
    assert [s.size for s in seg.summaries()] == [s["size"] for s in v2["summaries"]]


def test_version_1_trusts_the_callers_current_segment(v2: dict[str, Any]) -> None:
    state = copy.deepcopy({k: v for k, v in v2["state"].items() if k not in ("members", "pending", "labels")})
    state["state_version"] = 1
    seg = Segmenter.from_dict(state)
    members = v2["state"]["members"]
    sizes = [s.size for s in seg.summaries()]
    cid = sorted(members)[0]
    # the customer is counted in its current segment already: observing it counts it once
    seg.observe(cid, v2["features"][cid], members[cid])
    assert sum(s.size for s in seg.summaries()) == sum(sizes)
    assert seg.members[cid] == members[cid]  # adopted (the same features: no move)
    # a deleted customer the model never saw shrinks the segment the caller names
    other = sorted(members)[1]
    seg.forget(members[other], other)
    assert sum(s.size for s in seg.summaries()) == sum(sizes) - 1


def test_unknown_and_broken_states_are_refused(v2: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="state_version"):
        Segmenter.from_dict({**v2["state"], "state_version": 4})
    d = Segmenter.from_dict(v2["state"]).to_dict()
    d["clusterer"]["features"] = d["clusterer"]["features"][:1]
    with pytest.raises(ValueError, match="features"):
        Segmenter.from_dict(d)
