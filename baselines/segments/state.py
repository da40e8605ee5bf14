"""The segmenter's state as plain JSON (never pickle), and the upgrade of older states.

Version 3 (written now)::

    {"state_version": 3, "config": {...SegmenterConfig...}, "feature_names": [...],
     "scaler": {"counts", "means", "vars"},            # the ClampedStandardScaler
     "clusterer": {...BalancedKMeans.to_dict()...},     # centres in standard units
     "buffer": {customer: {feature: value}},            # warm-up, in the model's space
     "pending": [[customer, segment, votes], ...],      # oldest first
     "n_learned": int,
     "labels": {"key": [...], "labels": [[id, en, zh, characteristics], ...]},
     "members": {customer: segment}}                    # left out by to_dict(members=False)

Versions 1 and 2 (the segmenter before it was a River pipeline) kept the centres in the
model's space (log levels) and measured distances in the scaler's standard units; they are
converted on load: ``z = (pos - mean) / sd`` under the stored scaler, so the loaded model
draws the same borders. Version 1 had no membership (sizes were counted from the caller's
``current``): the loaded model trusts ``current`` for a customer it does not know.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from baselines.segments.clusterer import BalancedKMeans

if TYPE_CHECKING:
    from baselines.segments.segmenter import Segmenter

STATE_VERSION = 3
STATE_VERSIONS = (1, 2, 3)  # 1: no membership; 1-2: centres in the model's space (converted on load)


def dump(seg: Segmenter, members: bool = True) -> dict[str, Any]:
    """The state of ``seg`` (see the module docstring); ``members=False`` leaves out the membership.

    >>> from baselines.segments.segmenter import Segmenter
    >>> d = dump(Segmenter()); d["state_version"], d["clusterer"]["params"]["n_clusters"], d["members"]
    (3, 7, {})
    """
    d: dict[str, Any] = {
        "state_version": STATE_VERSION,
        "config": asdict(seg.config),
        "feature_names": list(seg.feature_names),
        "scaler": seg.scaler.state(),
        "clusterer": seg.clusterer.to_dict(),
        "buffer": {c: dict(x) for c, x in seg.buffer.items()},
        "pending": [[c, k, n] for c, (k, n) in seg.pending.items()],
        "n_learned": seg.n_learned,
        # derived, but kept so that a restored model labels exactly as the original did
        "labels": {
            "key": list(seg.labels_key),
            "labels": [[k, en, zh, chars] for k, (en, zh, chars) in sorted(seg.labels.items())],
        },
    }
    if members:
        d["members"] = dict(seg.members)
    return d


def load(cls: type[Segmenter], d: Mapping[str, Any]) -> Segmenter:
    """A segmenter of class ``cls`` from a state of any supported version.

    >>> from baselines.segments.segmenter import Segmenter
    >>> load(Segmenter, dump(Segmenter())).config.max_segments
    7
    """
    version = d.get("state_version")
    if version not in STATE_VERSIONS:
        raise ValueError(f"unsupported segmenter state_version {version!r}")
    if version in (1, 2):
        d = upgrade(d)
    from baselines.segments.segmenter import SegmenterConfig

    seg = cls(SegmenterConfig(**d["config"]))
    seg.feature_names = [str(n) for n in d["feature_names"]]
    seg.scaler.load_state(d["scaler"])
    seg.use_clusterer(BalancedKMeans.from_dict(d["clusterer"]))
    seg.buffer = {str(c): {str(f): float(v) for f, v in x.items()} for c, x in d["buffer"].items()}
    seg.membership.pending = {str(c): (int(k), int(n)) for c, k, n in d.get("pending", [])}
    seg.n_learned = int(d["n_learned"])
    labels = d.get("labels") or {}
    seg.labels_key = [int(v) for v in labels.get("key", [])]
    seg.labels = {
        int(k): (str(en), str(zh), [str(c) for c in ch]) for k, en, zh, ch in labels.get("labels", [])
    }
    if version == 1:
        seg.membership.adopt_current = True
    elif "members" in d:
        seg.set_members(d["members"])
    return seg


def upgrade(d: Mapping[str, Any]) -> dict[str, Any]:
    """A version-1 or -2 state rewritten as version 3 (centres converted to standard units).

    >>> old = {"state_version": 2, "config": {"max_segments": 2, "min_segments": 2},
    ...        "feature_names": ["level_kwh_day"],
    ...        "scaler": {"counts": {"level_kwh_day": 9}, "means": {"level_kwh_day": 1.0},
    ...                   "vars": {"level_kwh_day": 4.0}},
    ...        "centres": {"0": {"pos": [0.0], "count": 5.0, "spread": [1.0]},
    ...                    "1": {"pos": [3.0], "count": 4.0, "spread": [2.0]}},
    ...        "sizes": {"0": 5, "1": 4}, "buffer": {}, "redirect": {}, "next_id": 2,
    ...        "model_version": 1, "n_learned": 9}
    >>> new = upgrade(old)
    >>> new["clusterer"]["centres"], new["clusterer"]["spreads"]
    ({'0': [-0.5], '1': [1.0]}, {'0': [0.25], '1': [0.5]})
    """
    from baselines.segments.segmenter import LABEL_REFRESH, SegmenterConfig

    cfg = SegmenterConfig(**d["config"])
    names = [str(n) for n in d["feature_names"]]
    clusterer = _clusterer(cfg.clusterer(), d, names)
    n_learned = int(d["n_learned"])
    labels = d.get("labels", [])
    out: dict[str, Any] = {
        "state_version": STATE_VERSION,
        "config": asdict(cfg),
        "feature_names": names,
        "scaler": {k: dict(d["scaler"][k]) for k in ("counts", "means", "vars")},
        "clusterer": clusterer.to_dict(),
        "buffer": {str(c): dict(zip(names, vec, strict=True)) for c, vec in d["buffer"].items()},
        "pending": list(d.get("pending", [])),
        "n_learned": n_learned,
        "labels": {
            # valid until the model moves on (the same key the loaded model computes)
            "key": [clusterer.version, n_learned // LABEL_REFRESH, *sorted(clusterer.centres)]
            if labels
            else [],
            "labels": labels,
        },
    }
    if "members" in d:
        out["members"] = dict(d["members"])
    return out


def _clusterer(clusterer: BalancedKMeans, d: Mapping[str, Any], names: list[str]) -> BalancedKMeans:
    """The version-1/2 centres (model space) as ``clusterer`` state (standard units, sorted features)."""
    sc = d["scaler"]
    means = [float(sc["means"].get(n, 0.0)) for n in names]
    variances = [float(sc["vars"].get(n, 0.0)) for n in names]
    sds = [math.sqrt(v) if v > 1e-12 else 0.0 for v in variances]
    order = sorted(range(len(names)), key=lambda i: names[i])  # the clusterer keeps features sorted

    def z(pos: list[float]) -> list[float]:
        return [(float(pos[i]) - means[i]) / sds[i] if sds[i] > 0 else 0.0 for i in order]

    def zspread(spread: list[float]) -> list[float]:
        return [float(spread[i]) / variances[i] if sds[i] > 0 else 0.0 for i in order]

    clusterer.features = [names[i] for i in order]
    clusterer.centres = {int(k): z(c["pos"]) for k, c in d["centres"].items()}
    clusterer.spreads = {int(k): zspread(c["spread"]) for k, c in d["centres"].items()}
    clusterer.counts = {int(k): float(c["count"]) for k, c in d["centres"].items()}
    clusterer.sizes = {int(k): float(v) for k, v in d["sizes"].items()}
    clusterer.redirect = {int(k): int(v) for k, v in d["redirect"].items()}
    clusterer.next_id = int(d["next_id"])
    clusterer.version = int(d["model_version"])
    clusterer.n_learned = int(d["n_learned"])
    return clusterer
