"""``Segmenter``: the customers' segments, online — a River pipeline plus the customers' record.

The model is an ordinary River pipeline, ``FeatureSpace() | ClampedStandardScaler() |
BalancedKMeans(track_sizes=False)`` (``self.model``). Around it the segmenter keeps what a
pipeline cannot know: which customer is where (:class:`~baselines.segments.membership.Membership`,
which counts every customer once and makes moves wait for ``votes`` agreeing updates), the
warm-up buffer of customers (fitted once ``warmup`` customers are known, or earlier when a
customer's features come back: the whole population has been seen), and the labels.

>>> seg = Segmenter(SegmenterConfig(warmup=6, min_segments=2, max_segments=2, seed=1))
>>> out = []
>>> for i in range(6):
...     level = 2.0 if i % 2 else 20.0
...     out += seg.observe(f"c{i}", {"level_kwh_day": level, "night_share": 0.3 if i % 2 else 0.2})
>>> sorted((a.customer_id, a.segment.id) for a in out)[:2]
[('c0', 1), ('c1', 0)]
>>> [(s.size, s.label) for s in seg.summaries()]
[(3, 'low, night-time use'), (3, 'high, daytime use')]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from river import compose

from baselines.segments.clusterer import BalancedKMeans
from baselines.segments.features import ClampedStandardScaler, FeatureSpace, untransform
from baselines.segments.labels import Label, kind_of, unique_labels
from baselines.segments.membership import Membership
from meterwatch.contracts import SegmentAssignment, SegmentRef, SegmentSummary

LABEL_REFRESH = 100  # centres move slowly: labels are recomputed every LABEL_REFRESH learned updates


@dataclass(frozen=True)
class SegmenterConfig:
    """Tuning of the segmenter (defaults fit the London evaluation; see docs/segments.md)."""

    max_segments: int = 7
    min_segments: int = 5
    min_share: float = 0.05
    max_share: float = 0.40
    warmup: int = 300
    min_fit: int = 20  # smallest population fitted early when a customer's features come back
    margin: float = 0.25
    balance: float = 1.0
    clip: float = 3.0
    lr_floor: float = 0.0005
    rebalance_every: int = 250
    seed: int = 0
    votes: int = 2  # consecutive updates that must agree before a customer moves
    max_pending: int = 20000  # bound on remembered pending votes (oldest dropped first)
    initial_segments: int | None = None  # fixed k for the warm-up fit (None: chosen from the data)

    def clusterer(self) -> BalancedKMeans:
        """The River clusterer these settings describe (sizes kept by the segmenter)."""
        return BalancedKMeans(
            n_clusters=self.max_segments,
            min_clusters=self.min_segments,
            min_share=self.min_share,
            max_share=self.max_share,
            warmup=self.warmup,
            balance=self.balance,
            clip=self.clip,
            margin=self.margin,
            lr_floor=self.lr_floor,
            rebalance_every=self.rebalance_every,
            initial_clusters=self.initial_segments,
            track_sizes=False,
            seed=self.seed,
        )


@dataclass(frozen=True)
class Assignment:
    """A customer's segment as decided by the segmenter."""

    customer_id: str
    segment: SegmentRef
    model_version: int

    def to_contract(self) -> SegmentAssignment:
        """The message for the segment-assignments topic."""
        return SegmentAssignment(
            customer_id=self.customer_id, segment=self.segment, model_version=self.model_version
        )


class Segmenter:
    """One online clustering model for all customers (see the module docstring)."""

    def __init__(self, config: SegmenterConfig | None = None) -> None:
        self.config = config or SegmenterConfig()
        if not 1 <= self.config.max_segments <= 7:
            raise ValueError("max_segments must be between 1 and 7")
        self.feature_names: list[str] = []
        self.scaler = ClampedStandardScaler(width=2.0 * self.config.clip)
        self.clusterer = self.config.clusterer()
        self.space = FeatureSpace()
        # two pipelines over the same step objects (``|`` would extend a pipeline in place)
        self.preprocess = compose.Pipeline(self.space, self.scaler)
        self.model = compose.Pipeline(self.space, self.scaler, self.clusterer)
        # warm-up: customer -> features in the model's space (FeatureSpace output)
        self.buffer: dict[str, dict[str, float]] = {}
        self.membership = Membership(self.config.votes, self.config.max_pending)
        self.n_learned = 0
        self.labels: dict[int, Label] = {}
        self.labels_key: list[int] = []
        self.kinds: dict[int, str] = {}  # derived from the centres with the labels (not persisted)

    # ---- the worker's API --------------------------------------------------------------------

    @property
    def fitted(self) -> bool:
        """True once the warm-up fit has placed the segments."""
        return self.clusterer.fitted

    @property
    def model_version(self) -> int:
        """Bumps when segments are (re)fitted, split or merged."""
        return int(self.clusterer.version)

    @property
    def members(self) -> dict[str, int]:
        """customer -> the segment the model counts it in (ids may have been merged: :meth:`resolve`)."""
        return self.membership.members

    @property
    def pending(self) -> dict[str, tuple[int, int]]:
        """customer -> (segment its updates prefer, consecutive updates so far)."""
        return self.membership.pending

    def observe(
        self, customer_id: str, features: Mapping[str, float], current: int | None = None
    ) -> list[Assignment]:
        """Learn from a customer's features and return the assignments that changed.

        Usually 0 or 1; during the warm-up 0; when the model is first fitted, one per buffered
        customer; when a tiny segment was merged away, one more per member it had.
        ``current`` is the segment the caller believes the customer is in.

        >>> seg = Segmenter(SegmenterConfig(warmup=4, min_segments=2, max_segments=2))
        >>> _ = [seg.observe(f"c{i}", {"level_kwh_day": 2.0 + 20 * (i % 2)}) for i in range(4)]
        >>> seg.observe("c0", {"level_kwh_day": 2.1}, current=0)  # no change: nothing to send
        []
        >>> [(a.customer_id, a.segment.id) for a in seg.observe("c9", {"level_kwh_day": 21.0})]
        [('c9', 1)]
        """
        x = self._known(features)
        if not self.fitted:
            repeat = customer_id in self.buffer
            self._learn(x)
            self.buffer[customer_id] = self.space.transform_one(x)
            cfg = self.config
            if len(self.buffer) >= cfg.warmup or (repeat and len(self.buffer) >= cfg.min_fit):
                return self._fit_buffer()
            return []
        merges = len(self.clusterer.redirect)
        z = self._learn(x)
        before = self.members.get(customer_id)
        ref = self._assign(customer_id, z, current)
        # the caller's ``current`` may be stale (an earlier assignment still in flight): hand the
        # assignment out again whenever the model's own record of the customer changed
        moved = self.members.get(customer_id) != before
        out = [] if ref.id == current and not moved else [Assignment(customer_id, ref, self.model_version)]
        if len(self.clusterer.redirect) != merges:
            out.extend(self._hand_over_merged(skip=customer_id))
        return out

    def _hand_over_merged(self, skip: str) -> list[Assignment]:
        """After a merge, every member still recorded under a merged-away id is handed to its
        successor, with an assignment each: their snapshots, alerts and per-segment rules name
        a live segment again (merges are rare and only take tiny segments)."""
        live = self.clusterer.centres
        out: list[Assignment] = []
        for cid, k in list(self.members.items()):
            if k in live or cid == skip:
                continue
            r = self.resolve(k)
            self.membership.set(cid, r)
            if r is not None:
                out.append(Assignment(cid, self.ref(r), self.model_version))
        return out

    def learn(self, features: Mapping[str, float]) -> None:
        """Update the scaler and (once fitted) move the winning centre towards ``features``.

        The same as ``self.model.learn_one(features)`` (before the fit: the scaler only).

        >>> seg = Segmenter(SegmenterConfig(warmup=4, min_segments=2, max_segments=2))
        >>> _ = [seg.observe(f"c{i}", {"level_kwh_day": 2.0 + 20 * (i % 2)}) for i in range(4)]
        >>> n = seg.clusterer.n_learned; seg.learn({"level_kwh_day": 3.0}); seg.clusterer.n_learned - n
        1
        """
        self._learn(self._known(features))

    def assign(
        self, customer_id: str, features: Mapping[str, float], current: int | None = None
    ) -> SegmentRef:
        """The customer's segment (with hysteresis), updating the size counters; no learning.

        ``current`` is a hint only: the model counts each customer once, in the segment it last
        assigned it to, so a customer whose features arrive again before its assignment came
        back is not counted twice, and a move decrements the old segment.

        >>> seg = Segmenter(SegmenterConfig(warmup=4, min_segments=2, max_segments=2))
        >>> _ = [seg.observe(f"c{i}", {"level_kwh_day": 2.0 + 20 * (i % 2)}) for i in range(4)]
        >>> seg.assign("new", {"level_kwh_day": 25.0}).id, seg.summaries()[1].size
        (1, 3)
        """
        if not self.fitted:
            return SegmentRef(id=None, label=None)
        return self._assign(
            customer_id, self._scaled(self.space.transform_one(self._known(features))), current
        )

    def _learn(self, x: dict[str, float]) -> dict[str, float]:
        """``self.model.learn_one(x)`` step by step (the clusterer only once fitted); returns
        the standardised features, so that the assignment does not compute them again."""
        xt = self.space.transform_one(x)
        self.scaler.learn_one(xt)
        z = self._scaled(xt)
        if self.fitted:
            self.clusterer.learn_one(z)
        self.n_learned += 1
        return z

    def _assign(self, customer_id: str, z: dict[str, float], current: int | None) -> SegmentRef:
        resolve = self.clusterer.resolve
        prev = self.membership.counted_in(customer_id, current, resolve)
        held = prev if prev is not None else resolve(current)
        chosen = self.clusterer.choose(self.clusterer.penalised(z), held)
        if held is not None and chosen != held:  # closer by the margin: a vote for the move
            if not self.membership.vote(customer_id, chosen):
                chosen = held
        else:
            self.membership.drop_vote(customer_id)
        if chosen != prev:
            self.clusterer.move(prev, chosen)
        if self.members.get(customer_id) != chosen:  # new, moved, or its old id was merged away
            self.membership.set(customer_id, chosen)
        return self.ref(chosen)

    def ref(self, segment_id: int) -> SegmentRef:
        """The reference carried on alerts and snapshots: id, label, kind.

        >>> seg = Segmenter(SegmenterConfig(warmup=4, min_segments=2, max_segments=2))
        >>> _ = [seg.observe(f"c{i}", {"level_kwh_day": 2.0 + 20 * (i % 2)}) for i in range(4)]
        >>> seg.ref(1)
        SegmentRef(id=1, label='high use', kind='premium')
        """
        return SegmentRef(id=segment_id, label=self.label_of(segment_id), kind=self.kind_of(segment_id))

    def resolve(self, segment_id: int | None) -> int | None:
        """The live segment that ``segment_id`` stands for now (after merges), or None.

        >>> Segmenter().resolve(3)  # nothing fitted yet
        """
        return self.clusterer.resolve(segment_id)

    def forget(self, current: int | None, customer_id: str | None = None) -> None:
        """A customer left (deleted): drop it from the model and shrink its segment's size.

        With ``customer_id`` the model's own record decides (idempotent: forgetting twice, or
        forgetting a customer that was never assigned, changes nothing); ``current`` alone
        (the caller's belief) is only used for a version-1 state, which had no record.

        >>> seg = Segmenter(SegmenterConfig(warmup=4, min_segments=2, max_segments=2))
        >>> _ = [seg.observe(f"c{i}", {"level_kwh_day": 2.0 + 20 * (i % 2)}) for i in range(4)]
        >>> seg.forget(1, "c1"); seg.forget(1, "c1"); [s.size for s in seg.summaries()]
        [2, 1]
        """
        if customer_id is not None:
            self.buffer.pop(customer_id, None)
        k = self.membership.forget(customer_id, current, self.clusterer.resolve)
        if k is not None and self.clusterer.sizes.get(k, 0.0) > 0:
            self.clusterer.move(k, None)

    def take_member_changes(self) -> dict[str, int | None]:
        """Customers whose membership changed since the last call (None: forgotten).

        For a caller that persists ``members`` itself, one record per customer (see
        ``to_dict(members=False)`` and :meth:`set_members`).

        >>> seg = Segmenter(SegmenterConfig(warmup=4, min_segments=2, max_segments=2))
        >>> _ = [seg.observe(f"c{i}", {"level_kwh_day": 2.0 + 20 * (i % 2)}) for i in range(4)]
        >>> seg.take_member_changes()
        {'c0': 0, 'c1': 1, 'c2': 0, 'c3': 1}
        >>> seg.take_member_changes()
        {}
        """
        return self.membership.take_changes()

    def set_members(self, members: Mapping[str, int]) -> None:
        """Install the membership (e.g. read back per customer) and recount the sizes from it.

        >>> seg = Segmenter(SegmenterConfig(warmup=4, min_segments=2, max_segments=2))
        >>> _ = [seg.observe(f"c{i}", {"level_kwh_day": 2.0 + 20 * (i % 2)}) for i in range(4)]
        >>> seg.set_members({"c0": 0, "c1": 1, "x": 1}); [s.size for s in seg.summaries()]
        [1, 2]
        """
        self.membership.install(members, self.clusterer.resolve)
        self.clusterer.set_sizes(self.membership.sizes(sorted(self.clusterer.centres), self.resolve))

    # ---- description -------------------------------------------------------------------------

    def zcentre(self, segment_id: int) -> dict[str, float]:
        """The centre of a live segment in standard units (features without spread left out).

        >>> seg = Segmenter(SegmenterConfig(warmup=4, min_segments=2, max_segments=2))
        >>> _ = [seg.observe(f"c{i}", {"level_kwh_day": 2.0 + 20 * (i % 2)}) for i in range(4)]
        >>> {f: round(v, 2) for f, v in seg.zcentre(1).items()}
        {'level_kwh_day': 1.0}
        """
        c = self.clusterer.centres[segment_id]
        return {f: v for f, v in zip(self.clusterer.features, c, strict=True) if self.scaler.std(f) > 0}

    def centroid(self, segment_id: int) -> dict[str, float]:
        """The centre of a live segment in the features' own units.

        >>> seg = Segmenter(SegmenterConfig(warmup=4, min_segments=2, max_segments=2))
        >>> _ = [seg.observe(f"c{i}", {"level_kwh_day": 2.0 + 20 * (i % 2)}) for i in range(4)]
        >>> {f: round(v, 2) for f, v in seg.centroid(1).items()}
        {'level_kwh_day': 22.0}
        """
        z = dict(zip(self.clusterer.features, self.clusterer.centres[segment_id], strict=True))
        out = {}
        for f in self.feature_names:
            value = float(self.scaler.means.get(f, 0.0)) + z.get(f, 0.0) * self.scaler.std(f)
            out[f] = untransform(f, value)
        return out

    def _describe(self, segment_id: int) -> Label:
        if segment_id not in self.clusterer.centres:
            return "unknown segment", "未知客户群", []
        self._refresh_labels()
        return self.labels[segment_id]

    def _refresh_labels(self) -> None:
        """Labels (and kinds) of all segments, recomputed when the model moved on."""
        key = [self.model_version, self.clusterer.n_learned // LABEL_REFRESH, *sorted(self.clusterer.centres)]
        if key != self.labels_key or set(self.labels) != set(self.clusterer.centres):
            self.labels = unique_labels({k: self.zcentre(k) for k in self.clusterer.centres})
            self.labels_key = key
            self.kinds = {}

    def label_of(self, segment_id: int) -> str:
        """Human label (en).

        >>> seg = Segmenter(SegmenterConfig(warmup=4, min_segments=2, max_segments=2))
        >>> _ = [seg.observe(f"c{i}", {"level_kwh_day": 2.0 + 20 * (i % 2)}) for i in range(4)]
        >>> seg.label_of(0), seg.labels_of(0), seg.kind_of(0)
        ('low use', {'en': 'low use', 'zh-CN': '用电量小'}, 'ordinary')
        """
        return self._describe(segment_id)[0]

    def labels_of(self, segment_id: int) -> dict[str, str]:
        """The label per language: {"en": ..., "zh-CN": ...}."""
        en, zh, _ = self._describe(segment_id)
        return {"en": en, "zh-CN": zh}

    def kind_of(self, segment_id: int) -> str:
        """ordinary | premium | potential | sensitive | risk (see :func:`labels.kind_of`)."""
        if segment_id not in self.clusterer.centres:
            return "ordinary"
        self._refresh_labels()
        kind = self.kinds.get(segment_id)
        if kind is None:
            kind = self.kinds[segment_id] = kind_of(self.zcentre(segment_id))
        return kind

    def summaries(self) -> list[SegmentSummary]:
        """One entry per live segment, for ``GET /v1/segments``.

        >>> seg = Segmenter(SegmenterConfig(warmup=4, min_segments=2, max_segments=2))
        >>> _ = [seg.observe(f"c{i}", {"level_kwh_day": 2.0 + 20 * (i % 2)}) for i in range(4)]
        >>> s = seg.summaries()[1]; s.id, s.size, s.label, s.kind, s.centroid
        (1, 2, 'high use', 'premium', {'level_kwh_day': 22.0})
        """
        out = []
        for k in sorted(self.clusterer.centres):
            en, zh, chars = self._describe(k)
            out.append(
                SegmentSummary(
                    id=k,
                    label=en,
                    size=int(self.clusterer.sizes.get(k, 0.0)),
                    centroid={n: round(v, 4) for n, v in self.centroid(k).items()},
                    characteristics=chars,
                    kind=self.kind_of(k),
                    labels={"en": en, "zh-CN": zh},
                )
            )
        return out

    # ---- persistence (explicit JSON; never pickle) -------------------------------------------

    def to_dict(self, members: bool = True) -> dict[str, Any]:
        """The state as plain JSON; ``members=False`` leaves out the per-customer membership
        (for a caller that stores it per customer: it grows with the population).

        >>> seg = Segmenter(SegmenterConfig(warmup=4, min_segments=2, max_segments=2))
        >>> _ = [seg.observe(f"c{i}", {"level_kwh_day": 2.0 + 20 * (i % 2)}) for i in range(4)]
        >>> d = seg.to_dict(members=False); d["state_version"], "members" in d, json.loads(json.dumps(d)) == d
        (3, False, True)
        """
        from baselines.segments import state

        return state.dump(self, members=members)

    def to_json(self) -> bytes:
        """:meth:`to_dict` as compact, sorted JSON."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Segmenter:
        """A segmenter from any supported state (versions 1, 2 and 3).

        >>> seg = Segmenter(SegmenterConfig(warmup=4, min_segments=2, max_segments=2))
        >>> _ = [seg.observe(f"c{i}", {"level_kwh_day": 2.0 + 20 * (i % 2)}) for i in range(4)]
        >>> Segmenter.from_dict(seg.to_dict()).summaries() == seg.summaries()
        True
        """
        from baselines.segments import state

        return state.load(cls, d)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Segmenter:
        """:meth:`from_dict` of JSON text."""
        return cls.from_dict(json.loads(raw))

    # ---- internals ---------------------------------------------------------------------------

    def use_clusterer(self, clusterer: BalancedKMeans) -> None:
        """Replace the clusterer (e.g. one restored from its state) in the pipeline."""
        self.clusterer = clusterer
        self.model = compose.Pipeline(self.space, self.scaler, self.clusterer)

    def _known(self, features: Mapping[str, float]) -> dict[str, float]:
        """The features of the model's schema (fixed by the first customer seen)."""
        if not self.feature_names:
            self.feature_names = sorted(features)
        return {n: features[n] for n in self.feature_names if n in features}

    def _scaled(self, x: dict[str, float]) -> dict[str, float]:
        z: dict[str, float] = self.scaler.transform_one(x)  # type: ignore[no-untyped-call]  # River: untyped
        return z

    def _fit_buffer(self) -> list[Assignment]:
        ids = sorted(self.buffer)
        labels = self.clusterer.fit([self._scaled(self.buffer[c]) for c in ids])
        self.membership.clear()
        out = []
        for cid, k in zip(ids, labels, strict=True):
            self.membership.set(cid, k)
            out.append(Assignment(cid, self.ref(k), self.model_version))
        self.buffer = {}
        return out
