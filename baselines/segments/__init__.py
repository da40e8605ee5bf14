"""Online customer segmentation (客户分群): at most 7 balanced, stable, labelled segments.

Interface (what the stream's segmenter agent uses)::

    from baselines.segments import Segmenter, SegmenterConfig, Assignment

    seg = Segmenter(SegmenterConfig(max_segments=settings.max_segments, seed=0))
    # or, on recovery, from the JSON kept in the segmenter's changelog-backed table:
    seg = Segmenter.from_dict(json.loads(raw))          # state versions 1, 2 and 3
    seg.set_members({customer: segment_id, ...})         # when membership is stored per customer

    changed: list[Assignment] = seg.observe(customer_id, features, current=current_segment_or_None)
    seg.forget(current_segment_id, customer_id)          # a customer was deleted (tombstone)
    seg.take_member_changes() -> {customer: segment_id | None}
    seg.summaries() -> list[SegmentSummary]              # for GET /v1/segments
    seg.to_dict(members=False) -> dict                   # JSON-serialisable; NO pickle anywhere
    Assignment(...).to_contract() -> meterwatch.contracts.SegmentAssignment

The model is an ordinary River pipeline (``seg.model``)::

    FeatureSpace() | ClampedStandardScaler() | BalancedKMeans(...)

and ``BalancedKMeans`` (a ``river.base.Clusterer``: ``learn_one`` / ``predict_one``) works in
any River pipeline, e.g. ``preprocessing.StandardScaler() | BalancedKMeans()``.

Modules: :mod:`.features` (feature space, robust scaler), :mod:`.batch` (the warm-up batch
fit), :mod:`.clusterer` (the River clusterer), :mod:`.membership` (customers, votes),
:mod:`.labels` (labels and kinds), :mod:`.segmenter` (the worker-facing facade),
:mod:`.state` (JSON state and the upgrade of older versions). Background: docs/segments.md.

>>> seg = Segmenter(SegmenterConfig(warmup=4, min_segments=2, max_segments=2, seed=0))
>>> out = [a for i in range(4) for a in seg.observe(f"c{i}", {"level_kwh_day": 2.0 + 20 * (i % 2)})]
>>> [(a.customer_id, a.segment.id) for a in out]
[('c0', 0), ('c1', 1), ('c2', 0), ('c3', 1)]
>>> Segmenter.from_dict(seg.to_dict()).to_dict() == seg.to_dict()
True
"""

from baselines.segments.clusterer import BalancedKMeans
from baselines.segments.features import (
    ClampedStandardScaler,
    FeatureSpace,
    is_level_feature,
    transform,
    untransform,
)
from baselines.segments.labels import KINDS, describe, kind_of
from baselines.segments.membership import Membership
from baselines.segments.segmenter import LABEL_REFRESH, Assignment, Segmenter, SegmenterConfig
from baselines.segments.state import STATE_VERSION, STATE_VERSIONS

__all__ = [
    "KINDS",
    "LABEL_REFRESH",
    "STATE_VERSION",
    "STATE_VERSIONS",
    "Assignment",
    "BalancedKMeans",
    "ClampedStandardScaler",
    "FeatureSpace",
    "Membership",
    "Segmenter",
    "SegmenterConfig",
    "describe",
    "is_level_feature",
    "kind_of",
    "transform",
    "untransform",
]
