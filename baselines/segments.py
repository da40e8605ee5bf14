"""Online customer segmentation (客户分群): at most 7 balanced, stable, labelled segments.

Interface (what the stream's segmenter agent uses)
--------------------------------------------------

```python
from baselines.segments import Segmenter, SegmenterConfig, Assignment

seg = Segmenter(SegmenterConfig(max_segments=settings.max_segments, seed=0))
# or, on recovery, from the JSON kept in the segmenter's changelog-backed table:
seg = Segmenter.from_dict(json.loads(raw))

# one call per SegmentFeatures message (customer partition -> single-partition features topic):
changed: list[Assignment] = seg.observe(customer_id, features, current=current_segment_id_or_None)
#   learns from the features, assigns the customer (with hysteresis) and returns every
#   assignment that must flow back (usually 0 or 1; during the warm-up 0; when the model
#   is first fitted, one per buffered customer).  Assignment(customer_id, segment: SegmentRef,
#   model_version) -> meterwatch.contracts.SegmentAssignment via .to_contract().
seg.forget(current_segment_id)           # a customer was deleted (tombstone)
seg.summaries() -> list[SegmentSummary]  # for GET /v1/segments (Redis key Keys.segments)
seg.label_of(segment_id) -> str          # human label (en); labels_of(id) -> {"en", "zh-CN"}
seg.kind_of(segment_id) -> str           # ordinary | premium | potential | sensitive | risk
seg.to_dict() -> dict                    # JSON-serialisable state; NO pickle anywhere
seg.model_version                        # bumps when segments are (re)fitted, split or merged
```

Lower-level pieces are public too: ``learn(features)`` (update the model only) and
``assign(customer_id, features, current)`` (no learning).

How it works
------------
* Features (named floats, e.g. from ``baselines.engine.Engine.segment_features``) are
  transformed: level-like features (names containing ``level`` or ending in ``_kwh``)
  go through ``log1p``; every value is clipped to a sane range.
* River's online ``preprocessing.StandardScaler`` keeps running means and variances
  (``learn_one`` returns ``None`` in current River, so the scaler is updated in place);
  its state is persisted explicitly (counts, means, variances) and rebuilt on load.
* Centres live in the transformed space; distances are measured in standard units
  (z-scores under the current scaler), clipped at ``clip`` so that one extreme feature
  cannot dominate.
* Balance: the assignment distance is multiplied by a size penalty
  ``(share_k * K) ** balance`` (frequency-sensitive competitive learning), so crowded
  segments repel and small ones attract border customers.  A periodic rebalance step
  splits a segment above ``max_share`` and merges one below ``min_share``.
  River's own ``cluster.KMeans`` has no size control and initialises centres at random,
  which is why the clustering core is our own (plain numpy-free Python, deterministic).
* The first ``warmup`` customers are buffered (or fewer, at least ``min_fit``, when a
  buffered customer's features arrive again: the whole population has been seen); the
  model is then fitted on the buffer
  (k-means++ with a fixed seed, k chosen from ``min_segments..max_segments`` by the
  Calinski-Harabasz score among fits that meet the size bounds).
* Hysteresis: a customer who has a segment moves only when the new segment is closer
  by the relative ``margin`` (penalised distances) on ``votes`` consecutive updates
  (the pending votes are part of the persisted state), so alternating updates near a
  border do not flip the customer back and forth.

>>> seg = Segmenter(SegmenterConfig(warmup=6, min_segments=2, max_segments=2, seed=1))
>>> out = []
>>> for i in range(6):
...     level = 2.0 if i % 2 else 20.0
...     out += seg.observe(f"c{i}", {"level_kwh": level, "night_share": 0.3 if i % 2 else 0.2})
>>> sorted((a.customer_id, a.segment.id) for a in out)[:2]
[('c0', 1), ('c1', 0)]
>>> seg.summaries()[0].size, seg.summaries()[1].size
(3, 3)
>>> Segmenter.from_dict(seg.to_dict()).to_dict() == seg.to_dict()
True
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from river import preprocessing

from meterwatch.contracts import SegmentAssignment, SegmentRef, SegmentSummary

STATE_VERSION = 2
STATE_VERSIONS = (1, 2)  # 1: no membership (sizes were counted from the caller's `current`)
LABEL_REFRESH = 100


# --------------------------------------------------------------------------------------
# configuration and small value types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmenterConfig:
    """Tuning of the segmenter (defaults fit the London evaluation; see the README, section Segments)."""

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


@dataclass(frozen=True)
class Assignment:
    """A customer's segment as decided by the segmenter."""

    customer_id: str
    segment: SegmentRef
    model_version: int

    def to_contract(self) -> SegmentAssignment:
        return SegmentAssignment(
            customer_id=self.customer_id, segment=self.segment, model_version=self.model_version
        )


@dataclass
class _Centre:
    pos: list[float]
    count: float = 0.0
    spread: list[float] = field(default_factory=list)


def is_level_feature(name: str) -> bool:
    """Level-like (heavy-tailed, non-negative) features get a log transform.

    >>> is_level_feature("level_kwh_day"), is_level_feature("arrears_amount"), is_level_feature("trend")
    (True, True, False)
    """
    return (
        "level" in name
        or name.endswith("_kwh")
        or "_kwh_" in name
        or name.endswith("_amount")
        or name.endswith("_count")
    )


def transform(name: str, value: float) -> float:
    """Feature value -> the space the model works in (log for levels; NaN/inf -> 0; clipped).

    >>> round(transform("level_kwh_day", math.e - 1), 6)
    1.0
    >>> transform("trend", float("nan")), transform("trend", 1e12)
    (0.0, 1000000.0)
    """
    if not math.isfinite(value):
        return 0.0
    if is_level_feature(name):
        return math.log1p(max(value, 0.0))
    return max(-1e6, min(1e6, value))


def untransform(name: str, value: float) -> float:
    """Inverse of :func:`transform` (for reporting centroids in the feature's own units).

    >>> round(untransform("level_kwh_day", transform("level_kwh_day", 7.9)), 6)
    7.9
    """
    return math.expm1(value) if is_level_feature(name) else value


# --------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------

# keyword in the feature name -> (high en, high zh, low en, low zh); None = no label on that side
_VOCAB: list[tuple[tuple[str, ...], tuple[str | None, str | None, str | None, str | None]]] = [
    (("level",), ("high use", "用电量大", "low use", "用电量小")),
    (("variab", "volatil", "cv"), ("volatile", "波动大", "steady", "用电平稳")),
    (("season",), ("strongly seasonal", "季节性强", "flat across seasons", "四季平稳")),
    (("trend", "growth"), ("growing use", "用电增长", "declining use", "用电下降")),
    (("night",), ("night-time use", "夜间用电多", "daytime use", "白天用电为主")),
    (("weekend",), ("home at weekends", "周末用电多", "weekday use", "工作日用电多")),
    (("zero", "vacan"), ("often vacant", "常有空置", None, None)),
    (("arrears",), ("in arrears", "有欠费", None, None)),
    (("complaint",), ("complaint-prone", "投诉较多", None, None)),
    (("rented", "occupancy"), ("renters", "租户", "homeowners", "自有住房")),
    (("tariff",), ("commercial/industrial", "工商业", "residential", "居民")),
]


_USE_ADJECTIVES = frozenset({"volatile", "steady"})


def _vocab(name: str) -> tuple[str | None, str | None, str | None, str | None]:
    for keys, words in _VOCAB:
        if any(k in name for k in keys):
            return words
    return (f"high {name}", f"{name}高", f"low {name}", f"{name}低")


def describe(z: Mapping[str, float], threshold: float = 0.5, top: int = 2) -> tuple[str, str, list[str]]:
    """Label a centre from its z-scores: (label en, label zh-CN, characteristics).

    >>> describe({"level_kwh": 1.2, "variability": 0.8, "trend": 0.1})[:2]
    ('high, volatile use', '用电量大、波动大')
    >>> describe({"level_kwh": -0.1, "variability": 0.2})[:2]
    ('ordinary, typical use', '普通用电')
    >>> describe({"level_kwh": -0.9, "arrears_amount": 2.0})[:2]
    ('in arrears, low use', '有欠费、用电量小')
    >>> describe({"level_kwh": 0.9, "weekend_ratio": 0.6})[0]
    'high use, home at weekends'
    """
    ranked = sorted(z.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
    en: list[str] = []
    zh: list[str] = []
    chars: list[str] = []
    for name, value in ranked:
        hi_en, hi_zh, lo_en, lo_zh = _vocab(name)
        word_en, word_zh = (hi_en, hi_zh) if value > 0 else (lo_en, lo_zh)
        if abs(value) >= threshold and word_en is not None and word_zh is not None:
            chars.append(f"{word_en} ({name} {value:+.1f} sd)")
            if len(en) < top and word_en not in en:
                en.append(word_en)
                zh.append(word_zh)
    if not en:
        return "ordinary, typical use", "普通用电", chars or ["close to the average customer"]
    # "high use" + "volatile" reads better as "high, volatile use"; "high use" + "renters" does not
    if len(en) == 2 and en[0].endswith(" use") and en[1].endswith(" use"):
        label = f"{en[0][:-4]}, {en[1]}"
    elif len(en) == 2 and en[0].endswith(" use") and en[1] in _USE_ADJECTIVES:
        label = f"{en[0][:-4]}, {en[1]} use"
    else:
        label = ", ".join(en)
    return label, "、".join(zh), chars


KINDS = ("ordinary", "premium", "potential", "sensitive", "risk")


def kind_of(z: Mapping[str, float], threshold: float = 0.5) -> str:
    """The segment's kind in the source documents' terms, from its centre's z-scores.

    risk: in arrears (credit risk); sensitive: complaint-prone, or volatile / strongly
    seasonal use (bill shocks); potential: growing use; premium: high, steady use;
    ordinary: the rest.

    >>> kind_of({"level_kwh_day": 1.0, "variability": -0.2}), kind_of({"trend": 0.9, "level_kwh_day": 0.8})
    ('premium', 'potential')
    >>> kind_of({"arrears_amount": 1.2, "trend": 2.0}), kind_of({"variability": 0.7}), kind_of({})
    ('risk', 'sensitive', 'ordinary')
    """

    def top(*keys: str) -> float:
        vals = [v for n, v in z.items() if any(k in n for k in keys)]
        return max(vals) if vals else 0.0

    if top("arrears") >= threshold:
        return "risk"
    if top("complaint") >= threshold:
        return "sensitive"
    if top("trend", "growth") >= threshold:
        return "potential"
    if top("level") >= threshold and top("variab", "volatil") < threshold:
        return "premium"
    if top("variab", "volatil") >= threshold or top("season") >= 2 * threshold:
        return "sensitive"
    return "ordinary"


# --------------------------------------------------------------------------------------
# the segmenter
# --------------------------------------------------------------------------------------


class Segmenter:
    """One online clustering model for all customers (see the module docstring)."""

    def __init__(self, config: SegmenterConfig | None = None) -> None:
        self.config = config or SegmenterConfig()
        if not 1 <= self.config.max_segments <= 7:
            raise ValueError("max_segments must be between 1 and 7")
        self.feature_names: list[str] = []
        self.scaler = preprocessing.StandardScaler()
        self.centres: dict[int, _Centre] = {}
        self.sizes: dict[int, int] = {}
        self.buffer: dict[str, list[float]] = {}
        self.redirect: dict[int, int] = {}
        self.pending: dict[str, tuple[int, int]] = {}
        # customer -> the segment the model counts it in (the authority for ``sizes``; ids of
        # merged segments are resolved through ``redirect``)
        self.members: dict[str, int] = {}
        self._member_changes: dict[str, int | None] = {}
        # a version-1 state has sizes but no members: trust the caller's ``current`` for a
        # customer the model does not know yet (it was counted there)
        self._adopt_current = False
        self.next_id = 0
        self.model_version = 0
        self.n_learned = 0
        self._labels: dict[int, tuple[str, str, list[str]]] = {}
        self._stds_cache: list[float] | None = None

    # ---- public API ------------------------------------------------------------------

    @property
    def fitted(self) -> bool:
        return bool(self.centres)

    def observe(
        self, customer_id: str, features: Mapping[str, float], current: int | None = None
    ) -> list[Assignment]:
        """Learn from a customer's features and return the assignments that changed."""
        if not self.fitted:
            repeat = customer_id in self.buffer
            self.learn(features)
            self.buffer[customer_id] = self._vector(features)
            # fit once `warmup` customers are known, or earlier when a customer comes back
            # (a full round of a smaller population has been seen)
            if len(self.buffer) >= self.config.warmup or (repeat and len(self.buffer) >= self.config.min_fit):
                return self._fit_buffer()
            return []
        self.learn(features)
        before = self.members.get(customer_id)
        ref = self.assign(customer_id, features, current)
        # the caller's ``current`` may be stale (an earlier assignment still in flight): hand the
        # assignment out again whenever the model's own record of the customer changed
        moved = self.members.get(customer_id) != before
        out = [] if ref.id == current and not moved else [Assignment(customer_id, ref, self.model_version)]
        if self.n_learned % self.config.rebalance_every == 0:
            self._rebalance()
        return out

    def learn(self, features: Mapping[str, float]) -> None:
        """Update the scaler and (once fitted) move the winning centre towards ``features``."""
        if not self.feature_names:
            self.feature_names = sorted(features)
            self._stds_cache = None
        x = self._winsorize(self._vector(features))
        self.scaler.learn_one(dict(zip(self.feature_names, x, strict=True)))  # type: ignore[no-untyped-call]
        self._stds_cache = None
        self.n_learned += 1
        if not self.fitted:
            return
        k = self._best(x)
        c = self.centres[k]
        c.count += 1.0
        lr = max(1.0 / c.count, self.config.lr_floor)
        for i, xi in enumerate(x):
            d = xi - c.pos[i]
            c.pos[i] += lr * d
            c.spread[i] += lr * (d * d - c.spread[i])
        if self.n_learned % LABEL_REFRESH == 0:
            self._labels.clear()  # centres move slowly: labels are recomputed every LABEL_REFRESH updates

    def assign(
        self, customer_id: str, features: Mapping[str, float], current: int | None = None
    ) -> SegmentRef:
        """The customer's segment (with hysteresis), updating the size counters.

        ``current`` is the segment the caller believes the customer is in (None for a new
        customer). It is a hint only: the model counts each customer once, in the segment it
        last assigned it to (``members``), so a customer whose features arrive again before
        its assignment came back is not counted twice, and a move decrements the old segment.
        """
        if not self.fitted:
            return SegmentRef(id=None, label=None)
        x = self._vector(features)
        prev = self._member_of(customer_id, current)
        current = prev if prev is not None else self.resolve(current)
        best = self._best(x)
        chosen = best
        voting = False
        if current is not None and current in self.centres and current != best:
            d_cur = self._penalised(x, current)
            d_best = self._penalised(x, best)
            if d_best >= (1.0 - self.config.margin) * d_cur:
                chosen = current
            elif self.config.votes > 1:
                # a move needs `votes` consecutive updates that all prefer the same segment
                cand, n = self.pending.get(customer_id, (best, 0))
                n = n + 1 if cand == best else 1
                if n < self.config.votes:
                    self.pending.pop(customer_id, None)
                    self.pending[customer_id] = (best, n)
                    while len(self.pending) > self.config.max_pending:
                        self.pending.pop(next(iter(self.pending)))
                    chosen = current
                    voting = True
        if not voting:
            self.pending.pop(customer_id, None)
        if chosen != prev:
            if prev is not None:
                self.sizes[prev] = max(self.sizes.get(prev, 0) - 1, 0)
            self.sizes[chosen] = self.sizes.get(chosen, 0) + 1
        if self.members.get(customer_id) != chosen:  # new, moved, or its old id was merged away
            self._set_member(customer_id, chosen)
        return SegmentRef(id=chosen, label=self.label_of(chosen), kind=self.kind_of(chosen))

    def resolve(self, segment_id: int | None) -> int | None:
        """The live segment that ``segment_id`` stands for now (after merges), or None."""
        seen = 0
        while segment_id is not None and segment_id not in self.centres and seen < 64:
            segment_id = self.redirect.get(segment_id)
            seen += 1
        return segment_id if segment_id in self.centres else None

    def forget(self, current: int | None, customer_id: str | None = None) -> None:
        """A customer left (deleted): drop it from the model and shrink its segment's size.

        With ``customer_id`` the model's own record decides (idempotent: forgetting twice, or
        forgetting a customer that was never assigned, changes nothing); ``current`` alone
        (the caller's belief) is only used for a version-1 state, which had no record.
        """
        k: int | None
        if customer_id is not None:
            self.pending.pop(customer_id, None)
            self.buffer.pop(customer_id, None)
            if customer_id in self.members:
                k = self.resolve(self.members[customer_id])
                self._set_member(customer_id, None)
            else:
                k = self.resolve(current) if self._adopt_current else None
        else:
            k = self.resolve(current)
        if k is not None and self.sizes.get(k, 0) > 0:
            self.sizes[k] -= 1

    def _member_of(self, customer_id: str, current: int | None) -> int | None:
        """The live segment the model counts ``customer_id`` in (None: not counted)."""
        k = self.members.get(customer_id)
        if k is not None:
            return self.resolve(k)
        if self._adopt_current and current is not None:
            r = self.resolve(current)
            if r is not None:
                self._set_member(customer_id, r)  # counted in `sizes` by the version-1 model already
            return r
        return None

    def _set_member(self, customer_id: str, segment_id: int | None) -> None:
        if segment_id is None:
            self.members.pop(customer_id, None)
        else:
            self.members[customer_id] = segment_id
        self._member_changes[customer_id] = segment_id

    def take_member_changes(self) -> dict[str, int | None]:
        """Customers whose membership changed since the last call (None: forgotten).

        For a caller that persists ``members`` itself, one record per customer (see
        ``to_dict(members=False)`` and :meth:`set_members`).
        """
        out, self._member_changes = self._member_changes, {}
        return out

    def set_members(self, members: Mapping[str, int]) -> None:
        """Install the membership (e.g. read back per customer) and recount ``sizes`` from it."""
        self.members = {}
        for cid, k in members.items():
            if self.resolve(k) is not None:
                self.members[str(cid)] = int(k)
        self._member_changes = {}
        self._adopt_current = False
        self._recount()

    def _recount(self) -> None:
        sizes = {k: 0 for k in self.centres}
        for k in self.members.values():
            r = self.resolve(k)
            if r is not None:
                sizes[r] += 1
        self.sizes = sizes

    def label_of(self, segment_id: int) -> str:
        return self._describe(segment_id)[0]

    def kind_of(self, segment_id: int) -> str:
        """ordinary | premium | potential | sensitive | risk (see :func:`kind_of`)."""
        return kind_of(self._z(segment_id)) if segment_id in self.centres else "ordinary"

    def labels_of(self, segment_id: int) -> dict[str, str]:
        en, zh, _ = self._describe(segment_id)
        return {"en": en, "zh-CN": zh}

    def summaries(self) -> list[SegmentSummary]:
        out = []
        for k in sorted(self.centres):
            en, zh, chars = self._describe(k)
            centroid = {
                n: round(untransform(n, v), 4)
                for n, v in zip(self.feature_names, self.centres[k].pos, strict=True)
            }
            out.append(
                SegmentSummary(
                    id=k,
                    label=en,
                    size=self.sizes.get(k, 0),
                    centroid=centroid,
                    characteristics=chars,
                    kind=self.kind_of(k),
                    labels={"en": en, "zh-CN": zh},
                )
            )
        return out

    # ---- persistence (explicit JSON; never pickle) ------------------------------------------

    def to_dict(self, members: bool = True) -> dict[str, Any]:
        """The state as plain JSON; ``members=False`` leaves out the per-customer membership
        (for a caller that stores it per customer: it grows with the population)."""
        d: dict[str, Any] = {
            "state_version": STATE_VERSION,
            "config": asdict(self.config),
            "feature_names": list(self.feature_names),
            "scaler": {
                "counts": {k: int(v) for k, v in self.scaler.counts.items()},
                "means": {k: float(v) for k, v in self.scaler.means.items()},
                "vars": {k: float(v) for k, v in self.scaler.vars.items()},
            },
            "centres": {
                str(k): {"pos": list(c.pos), "count": c.count, "spread": list(c.spread)}
                for k, c in sorted(self.centres.items())
            },
            "sizes": {str(k): v for k, v in sorted(self.sizes.items())},
            "buffer": dict(self.buffer),
            "redirect": {str(k): v for k, v in sorted(self.redirect.items())},
            "next_id": self.next_id,
            # a list, in insertion order (the oldest vote is dropped first when over max_pending)
            "pending": [[c, k, n] for c, (k, n) in self.pending.items()],
            "model_version": self.model_version,
            "n_learned": self.n_learned,
            # derived, but kept so that a restored model labels exactly as the original did
            "labels": [[k, en, zh, chars] for k, (en, zh, chars) in sorted(self._labels.items())],
        }
        if members:
            d["members"] = dict(self.members)
        return d

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Segmenter:
        if d.get("state_version") not in STATE_VERSIONS:
            raise ValueError(f"unsupported segmenter state_version {d.get('state_version')!r}")
        seg = cls(SegmenterConfig(**d["config"]))
        seg.feature_names = list(d["feature_names"])
        sc = d["scaler"]
        for k, v in sc["counts"].items():
            seg.scaler.counts[k] = int(v)
        for k, v in sc["means"].items():
            seg.scaler.means[k] = float(v)
        for k, v in sc["vars"].items():
            seg.scaler.vars[k] = float(v)
        seg.centres = {
            int(k): _Centre(
                pos=[float(p) for p in c["pos"]],
                count=float(c["count"]),
                spread=[float(s) for s in c["spread"]],
            )
            for k, c in d["centres"].items()
        }
        seg.sizes = {int(k): int(v) for k, v in d["sizes"].items()}
        seg.buffer = {str(k): [float(x) for x in v] for k, v in d["buffer"].items()}
        seg.redirect = {int(k): int(v) for k, v in d["redirect"].items()}
        seg.next_id = int(d["next_id"])
        seg.pending = {str(c): (int(k), int(n)) for c, k, n in d.get("pending", [])}
        seg.model_version = int(d["model_version"])
        seg.n_learned = int(d["n_learned"])
        seg._labels = {
            int(k): (str(en), str(zh), [str(c) for c in chars]) for k, en, zh, chars in d.get("labels", [])
        }
        if d["state_version"] == 1:
            seg._adopt_current = True
        elif "members" in d:
            seg.set_members(d["members"])
        return seg

    @classmethod
    def from_json(cls, raw: bytes | str) -> Segmenter:
        return cls.from_dict(json.loads(raw))

    # ---- internals -------------------------------------------------------------------------

    def _vector(self, features: Mapping[str, float]) -> list[float]:
        if not self.feature_names:
            self.feature_names = sorted(features)
            self._stds_cache = None
        out = []
        for n in self.feature_names:
            v = features.get(n)
            if v is None:  # missing feature: the running mean (z = 0)
                out.append(float(self.scaler.means.get(n, 0.0)))
            else:
                out.append(transform(n, float(v)))
        return out

    def _winsorize(self, x: list[float]) -> list[float]:
        """Clamp to mean +- 2 * clip standard deviations once the scaler has seen enough customers,
        so that one absurd value moves neither the scaler nor a centre far (robust standardisation)."""
        if (
            not self.feature_names
            or min((self.scaler.counts.get(n, 0) for n in self.feature_names), default=0) < 30
        ):
            return x
        out = []
        width = 2.0 * self.config.clip
        for xi, n, s in zip(x, self.feature_names, self._stds(), strict=True):
            m = float(self.scaler.means.get(n, 0.0))
            out.append(max(m - width * s, min(m + width * s, xi)) if s > 0 else xi)
        return out

    def _stds(self) -> list[float]:
        if self._stds_cache is not None:
            return self._stds_cache
        out = []
        for n in self.feature_names:
            var = float(self.scaler.vars.get(n, 0.0))
            out.append(math.sqrt(var) if var > 1e-12 else 0.0)
        self._stds_cache = out
        return out

    def _dist2(self, x: list[float], pos: list[float], stds: list[float] | None = None) -> float:
        stds = stds if stds is not None else self._stds()
        clip = self.config.clip
        total = 0.0
        for xi, ci, si in zip(x, pos, stds, strict=True):
            if si <= 0.0:
                continue
            z = (xi - ci) / si
            z = max(-2 * clip, min(2 * clip, z))
            total += z * z
        return total

    def _factor(self, k: int, n: int | None = None) -> float:
        n = sum(self.sizes.values()) if n is None else n
        kk = len(self.centres)
        if n <= 0 or kk <= 1:
            return 1.0
        share = (self.sizes.get(k, 0) + 1.0) / (n + kk)
        return float((share * kk) ** self.config.balance)

    def _penalised(self, x: list[float], k: int) -> float:
        return self._dist2(x, self.centres[k].pos) * self._factor(k) + 1e-9

    def _best(self, x: list[float]) -> int:
        stds = self._stds()
        best_k, best_d = -1, math.inf
        n = sum(self.sizes.values())
        for k in sorted(self.centres):
            d = self._dist2(x, self.centres[k].pos, stds) * self._factor(k, n)
            if d < best_d:
                best_k, best_d = k, d
        return best_k

    def _z(self, k: int) -> dict[str, float]:
        """The centre of segment ``k`` in standard units (features without spread left out)."""
        z = {}
        for n, v, sd in zip(self.feature_names, self.centres[k].pos, self._stds(), strict=True):
            if sd > 0:
                z[n] = (v - float(self.scaler.means.get(n, 0.0))) / sd
        return z

    def _describe(self, k: int) -> tuple[str, str, list[str]]:
        if k not in self.centres:
            return "unknown segment", "未知客户群", []
        if set(self._labels) != set(self.centres):
            # all labels at once, in id order, so that they are unique (a repeated label gets
            # the segment id as a suffix)
            self._labels = {}
            taken: set[str] = set()
            for j in sorted(self.centres):
                en, zh, chars = describe(self._z(j))
                if en in taken:
                    en, zh = f"{en} ({j})", f"{zh}（{j}）"
                taken.add(en)
                self._labels[j] = (en, zh, chars)
        return self._labels[k]

    # ---- batch fit of the warm-up buffer ------------------------------------------------------

    def _zbuffer(self, rows: Iterable[list[float]]) -> list[list[float]]:
        means = [float(self.scaler.means.get(n, 0.0)) for n in self.feature_names]
        stds = self._stds()
        clip = self.config.clip
        out = []
        for r in rows:
            out.append(
                [
                    max(-clip, min(clip, (x - m) / s)) if s > 0 else 0.0
                    for x, m, s in zip(r, means, stds, strict=True)
                ]
            )
        return out

    def _fit_buffer(self) -> list[Assignment]:
        ids = sorted(self.buffer)
        z = self._zbuffer(self.buffer[i] for i in ids)
        cfg = self.config
        best: tuple[float, list[list[float]], list[int]] | None = None
        fallback: tuple[float, list[list[float]], list[int]] | None = None
        n = len(z)
        if cfg.initial_segments is not None:
            ks = [max(1, min(cfg.initial_segments, cfg.max_segments, n))]
        else:
            ks = list(range(min(cfg.min_segments, cfg.max_segments, n), min(cfg.max_segments, n) + 1))
        for k in ks:
            centres, labels = _balanced_kmeans(z, k, cfg.balance, random.Random(cfg.seed + k))  # noqa: S311 (not crypto)
            score = _calinski_harabasz(z, centres, labels)
            sizes = [labels.count(j) for j in range(k)]
            ok = all(cfg.min_share * n <= s <= cfg.max_share * n for s in sizes)
            if ok and (best is None or score > best[0]):
                best = (score, centres, labels)
            if fallback is None or max(sizes) < max(fallback[2].count(j) for j in range(len(fallback[1]))):
                fallback = (score, centres, labels)
        chosen = best or fallback
        assert chosen is not None
        _, zc0, labels0 = chosen
        # stable, meaningful ids: order the segments by their centre (first feature first)
        order = sorted(range(len(zc0)), key=lambda j: zc0[j])
        rank = {old: new for new, old in enumerate(order)}
        zcentres = [zc0[j] for j in order]
        labels = [rank[lab] for lab in labels0]
        means = [float(self.scaler.means.get(n, 0.0)) for n in self.feature_names]
        stds = self._stds()
        self.centres = {}
        for j, zc in enumerate(zcentres):
            members = [self.buffer[ids[i]] for i, lab in enumerate(labels) if lab == j]
            pos = [m + zi * s for zi, m, s in zip(zc, means, stds, strict=True)]
            spread = [
                sum((r[d] - pos[d]) ** 2 for r in members) / max(len(members), 1) for d in range(len(pos))
            ]
            self.centres[j] = _Centre(pos=pos, count=float(len(members)), spread=spread)
        self.sizes = {j: 0 for j in self.centres}
        for cid in list(self.members):
            self._set_member(cid, None)
        self._adopt_current = False
        self.next_id = len(self.centres)
        self.model_version += 1
        self._labels.clear()
        out = []
        for i, cid in enumerate(ids):
            k = labels[i]
            self.sizes[k] += 1
            self._set_member(cid, k)
            ref = SegmentRef(id=k, label=self.label_of(k), kind=self.kind_of(k))
            out.append(Assignment(cid, ref, self.model_version))
        self.buffer = {}
        return out

    # ---- rebalancing: split the crowded, merge the tiny ------------------------------------

    def _rebalance(self) -> None:
        cfg = self.config
        n = sum(self.sizes.values())
        if n < cfg.warmup or not self.centres:
            return
        changed = False
        tiny = [k for k in self.centres if self.sizes.get(k, 0) < cfg.min_share * n / 2]
        if tiny and len(self.centres) > cfg.min_segments:
            k = min(tiny, key=lambda j: (self.sizes.get(j, 0), j))
            pos = self.centres[k].pos
            others = [j for j in self.centres if j != k]
            nearest = min(others, key=lambda j: (self._dist2(pos, self.centres[j].pos), j))
            self.sizes[nearest] = self.sizes.get(nearest, 0) + self.sizes.pop(k, 0)
            del self.centres[k]
            self.redirect[k] = nearest
            changed = True
        big = [k for k in self.centres if self.sizes.get(k, 0) > cfg.max_share * n]
        if big and len(self.centres) < cfg.max_segments:
            k = max(big, key=lambda j: (self.sizes.get(j, 0), -j))
            c = self.centres[k]
            stds = self._stds()
            # split along the feature with the widest spread (in standard units)
            rel = [c.spread[i] / (s * s) if s > 0 else 0.0 for i, s in enumerate(stds)]
            d = max(range(len(rel)), key=lambda i: (rel[i], -i))
            step = 0.5 * math.sqrt(max(c.spread[d], 0.0))
            new_id = self.next_id
            self.next_id += 1
            a = list(c.pos)
            b = list(c.pos)
            a[d] -= step
            b[d] += step
            self.centres[k] = _Centre(pos=a, count=c.count / 2, spread=list(c.spread))
            self.centres[new_id] = _Centre(pos=b, count=c.count / 2, spread=list(c.spread))
            # sizes count customers: the members of k stay there until their next update moves
            # them (the empty new segment attracts them through the size penalty)
            self.sizes[new_id] = 0
            changed = True
        if changed:
            self.model_version += 1
            self._labels.clear()


# --------------------------------------------------------------------------------------
# batch helpers (warm-up fit only; small buffers)
# --------------------------------------------------------------------------------------


def _d2(a: list[float], b: list[float]) -> float:
    return sum((x - y) * (x - y) for x, y in zip(a, b, strict=True))


def _kmeanspp(z: list[list[float]], k: int, rng: random.Random) -> list[list[float]]:
    centres = [list(z[rng.randrange(len(z))])]
    while len(centres) < k:
        d = [min(_d2(p, c) for c in centres) for p in z]
        total = sum(d)
        if total <= 0:
            centres.append(list(z[rng.randrange(len(z))]))
            continue
        r = rng.random() * total
        acc = 0.0
        for p, di in zip(z, d, strict=True):
            acc += di
            if acc >= r:
                centres.append(list(p))
                break
        else:
            centres.append(list(z[-1]))
    return centres


def _balanced_kmeans(
    z: list[list[float]], k: int, balance: float, rng: random.Random, iters: int = 30
) -> tuple[list[list[float]], list[int]]:
    """Lloyd iterations with the same size penalty as the online assignment."""
    centres = _kmeanspp(z, k, rng)
    n = len(z)
    labels = [0] * n
    sizes = [n / k] * k
    for _ in range(iters):
        factors = [((s + 1.0) / (n + k) * k) ** balance for s in sizes]
        new = [min(range(k), key=lambda j, p=p: _d2(p, centres[j]) * factors[j]) for p in z]  # type: ignore[misc]
        sizes = [float(new.count(j)) for j in range(k)]
        for j in range(k):
            members = [p for p, lab in zip(z, new, strict=True) if lab == j]
            if members:
                centres[j] = [sum(col) / len(members) for col in zip(*members, strict=True)]
        if new == labels:
            break
        labels = new
    return centres, labels


def _calinski_harabasz(z: list[list[float]], centres: list[list[float]], labels: list[int]) -> float:
    n, k = len(z), len(centres)
    if k < 2 or n <= k:
        return 0.0
    mean = [sum(col) / n for col in zip(*z, strict=True)]
    within = sum(_d2(p, centres[lab]) for p, lab in zip(z, labels, strict=True))
    between = sum(labels.count(j) * _d2(centres[j], mean) for j in range(k))
    if within <= 0:
        return math.inf
    return (between / (k - 1)) / (within / (n - k))
