"""``BalancedKMeans``: an online k-means with bounded segment sizes and hysteresis, as a River clusterer.

River's ``cluster.KMeans`` starts from random centres and has no size control: on customers'
consumption features it makes one giant cluster and a few tiny ones. This clusterer:

* **starts** from a batch fit of its first ``warmup`` points (seeded k-means++, balanced Lloyd
  iterations, k from ``min_clusters..n_clusters`` by the Calinski-Harabasz score among the fits
  whose sizes are within ``min_share..max_share``; see :mod:`baselines.segments.batch`);
* **balances**: the distance to a centre is multiplied by ``(share * K) ** balance``
  (frequency-sensitive competitive learning), so crowded clusters repel border points and small
  ones attract them; every ``rebalance_every`` learned points a cluster above ``max_share`` is
  split along its widest feature and one below ``min_share / 2`` is merged into its nearest
  neighbour (ids stay stable: a merged id resolves to its successor, :meth:`resolve`);
* **learns** online: the winning centre moves towards the point with rate
  ``max(1 / count, lr_floor)``;
* **is robust**: coordinates are clamped to ``+-2 * clip`` (``+-clip`` in the batch fit), so one
  extreme feature can neither dominate a distance nor drag a centre; a missing feature counts
  as 0 (the population mean after a standard scaler);
* **holds** (hysteresis): ``predict_one(x, current=k)`` keeps ``k`` unless another cluster is
  closer by the relative ``margin`` (penalised distances).

It expects standardised features: use it after ``preprocessing.StandardScaler`` in a pipeline.
Sizes: by default each learned point is counted in its winning cluster (a stream of distinct
points). A caller that knows the population (the segmenter counts *customers*, each once,
whatever how often their features arrive) passes ``track_sizes=False`` and keeps the sizes with
:meth:`move` / :meth:`set_sizes`. The state is plain JSON (:meth:`to_dict` / :meth:`from_dict`).

>>> from river import preprocessing
>>> model = preprocessing.StandardScaler() | BalancedKMeans(
...     n_clusters=2, min_clusters=2, warmup=6, min_share=0.2, seed=1)
>>> X = [{"a": 1.0, "b": 0.0}, {"a": 9.0, "b": 1.0}] * 3
>>> for x in X:
...     model.learn_one(x)
>>> [model.predict_one(x) for x in X[:2]]
[0, 1]
>>> model.predict_one({"a": 5.2, "b": 0.55}, current=0)  # closer to 1, but not by the margin
0
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Mapping
from typing import Any

from river import base

from baselines.segments.batch import choose_fit, d2

TINY = 1e-9  # added to penalised distances: a point on a centre still has a finite ratio


def _float(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return 0.0
    return f if math.isfinite(f) else 0.0


class BalancedKMeans(base.Clusterer):
    """Online balanced k-means with hysteresis (see the module docstring).

    Parameters
    ----------
    n_clusters
        Largest number of clusters (the batch fit and splits never exceed it).
    min_clusters
        Smallest number of clusters tried by the batch fit; merges stop there.
    min_share, max_share
        Size bounds, as shares of the population: the batch fit prefers k whose clusters are all
        within them; the rebalance step splits above ``max_share`` and merges below
        ``min_share / 2``.
    warmup
        Points buffered before the batch fit (and the population below which no rebalance).
    balance
        Exponent of the size penalty (0: plain k-means).
    clip
        Coordinates are clamped to ``+-clip`` in the batch fit and ``+-2 * clip`` online.
    margin
        Hysteresis: a point stays in its ``current`` cluster unless another one is closer by
        this relative margin.
    lr_floor
        Smallest learning rate of a centre.
    rebalance_every
        Learned points between two rebalance steps.
    initial_clusters
        Fixed k for the batch fit (None: chosen from the data).
    track_sizes
        Count each learned point in its winning cluster (False: the caller keeps the sizes).
    seed
        Seed of the batch fit's k-means++ (None: not reproducible).

    Attributes
    ----------
    centres : dict[int, list[float]]
        Centre of each live cluster, aligned with ``features``.
    sizes : dict[int, float]
        Population of each live cluster (drives the balance penalty and the rebalance step).
    version : int
        Bumped by the batch fit and by every split or merge.
    """

    def __init__(
        self,
        n_clusters: int = 7,
        min_clusters: int = 5,
        min_share: float = 0.05,
        max_share: float = 0.40,
        warmup: int = 300,
        balance: float = 1.0,
        clip: float = 3.0,
        margin: float = 0.25,
        lr_floor: float = 0.0005,
        rebalance_every: int = 250,
        initial_clusters: int | None = None,
        track_sizes: bool = True,
        seed: int | None = None,
    ) -> None:
        if n_clusters < 1 or min_clusters < 1 or warmup < 1 or rebalance_every < 1:
            raise ValueError("n_clusters, min_clusters, warmup and rebalance_every must be positive")
        if not 0.0 <= min_share < max_share <= 1.0:
            raise ValueError("need 0 <= min_share < max_share <= 1")
        if not 0.0 <= margin < 1.0:
            raise ValueError("margin must be in [0, 1)")
        self.n_clusters = n_clusters
        self.min_clusters = min_clusters
        self.min_share = min_share
        self.max_share = max_share
        self.warmup = warmup
        self.balance = balance
        self.clip = clip
        self.margin = margin
        self.lr_floor = lr_floor
        self.rebalance_every = rebalance_every
        self.initial_clusters = initial_clusters
        self.track_sizes = track_sizes
        self.seed = seed
        self.features: list[str] = []
        self.centres: dict[int, list[float]] = {}
        self.spreads: dict[int, list[float]] = {}
        self.counts: dict[int, float] = {}
        self.sizes: dict[int, float] = {}
        self.redirect: dict[int, int] = {}
        self.next_id = 0
        self.version = 0
        self.n_learned = 0
        self.buffer: list[dict[str, float]] = []

    # ---- River API -----------------------------------------------------------------------------

    @property
    def fitted(self) -> bool:
        """True once the batch fit has placed the centres."""
        return bool(self.centres)

    def learn_one(self, x: dict[Any, Any]) -> None:
        """Buffer ``x`` until ``warmup`` points are known (then fit), else move the winning centre.

        >>> m = BalancedKMeans(n_clusters=2, min_clusters=2, warmup=2, seed=0)
        >>> m.learn_one({"a": 0.0}); m.fitted, len(m.buffer)
        (False, 1)
        >>> m.learn_one({"a": 2.0}); m.learn_one({"a": 1.8}); m.fitted, m.centres, m.sizes
        (True, {0: [0.0], 1: [1.9]}, {0: 1.0, 1: 2.0})
        """
        x = self._clean(x)
        self._grow(x)
        if not self.centres:
            self.buffer.append(x)
            if len(self.buffer) >= self.warmup:
                self.fit(self.buffer)
            return
        v = self._vector(x)
        k = self._best(self.penalised_vector(v))
        self._move_centre(k, v)
        if self.track_sizes:
            self.sizes[k] = self.sizes.get(k, 0.0) + 1.0
        self.n_learned += 1
        if self.n_learned % self.rebalance_every == 0:
            self.rebalance()

    def predict_one(self, x: dict[Any, Any], current: int | None = None) -> int:
        """The cluster of ``x``; with ``current``, that one unless another is closer by ``margin``.

        Before the batch fit every point is in cluster 0.

        >>> m = BalancedKMeans(n_clusters=2, min_clusters=2, warmup=2, seed=0)
        >>> m.predict_one({"a": 5.0})
        0
        >>> m.learn_one({"a": 0.0}); m.learn_one({"a": 2.0}); m.predict_one({"a": 1.9})
        1
        """
        if not self.centres:
            return 0
        return self.choose(self.penalised(x), current)

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"n_clusters": 3, "min_clusters": 2, "warmup": 20, "rebalance_every": 15, "seed": 42}
        yield {"n_clusters": 2, "min_clusters": 2, "warmup": 10, "track_sizes": False, "seed": 7}

    # ---- distances and choice -----------------------------------------------------------------

    def penalised(self, x: Mapping[Any, Any]) -> dict[int, float]:
        """Squared distance of ``x`` to every centre times the cluster's size penalty.

        >>> m = BalancedKMeans(n_clusters=2, min_clusters=2, warmup=2, seed=0)
        >>> m.learn_one({"a": 0.0}); m.learn_one({"a": 2.0})
        >>> {k: round(v, 3) for k, v in m.penalised({"a": 0.5}).items()}
        {0: 0.25, 1: 2.25}
        """
        return self.penalised_vector(self._vector(self._clean(x)))

    def penalised_vector(self, v: list[float]) -> dict[int, float]:
        n = sum(self.sizes.values())
        out = {}
        for k, c in self.centres.items():
            total = 0.0
            for a, b in zip(v, c, strict=True):
                total += (a - b) * (a - b)
            out[k] = total * self._factor(k, n) + TINY
        return out

    def choose(self, dists: Mapping[int, float], current: int | None = None) -> int:
        """The closest cluster, or the live cluster ``current`` stands for while within ``margin``.

        >>> m = BalancedKMeans(margin=0.25); m.centres = {0: [0.0], 1: [1.0]}
        >>> near, far = {0: 1.0, 1: 0.9}, {0: 1.0, 1: 0.5}
        >>> m.choose(near, current=0), m.choose(far, current=0), m.choose(near)
        (0, 1, 1)
        """
        best = self._best(dists)
        cur = self.resolve(current)
        if cur is not None and cur != best and cur in dists:
            if dists[best] >= (1.0 - self.margin) * dists[cur]:
                return cur
        return best

    def resolve(self, cluster: int | None) -> int | None:
        """The live cluster that ``cluster`` stands for now (after merges), or None.

        >>> m = BalancedKMeans(); m.centres = {0: [0.0], 2: [1.0]}; m.redirect = {1: 2}
        >>> m.resolve(1), m.resolve(0), m.resolve(5), m.resolve(None)
        (2, 0, None, None)
        """
        seen = 0
        while cluster is not None and cluster not in self.centres and seen < 64:
            cluster = self.redirect.get(cluster)
            seen += 1
        return cluster if cluster in self.centres else None

    @staticmethod
    def _best(dists: Mapping[int, float]) -> int:
        best_k, best_d = -1, math.inf
        for k in sorted(dists):
            if dists[k] < best_d:
                best_k, best_d = k, dists[k]
        return best_k

    def _factor(self, k: int, n: float) -> float:
        kk = len(self.centres)
        if n <= 0 or kk <= 1:
            return 1.0
        share = (self.sizes.get(k, 0.0) + 1.0) / (n + kk)
        return float((share * kk) ** self.balance)

    # ---- sizes kept by the caller (track_sizes=False) ------------------------------------------

    def move(self, old: int | None, new: int | None) -> None:
        """One member left ``old`` and joined ``new`` (either may be None).

        >>> m = BalancedKMeans(track_sizes=False); m.sizes = {0: 2.0, 1: 0.0}; m.move(0, 1); m.sizes
        {0: 1.0, 1: 1.0}
        """
        if old is not None and old in self.sizes:
            self.sizes[old] = max(self.sizes[old] - 1.0, 0.0)
        if new is not None:
            self.sizes[new] = self.sizes.get(new, 0.0) + 1.0

    def set_sizes(self, sizes: Mapping[int, float]) -> None:
        """Install the population of every live cluster (clusters not named get 0).

        >>> m = BalancedKMeans(); m.centres = {0: [0.0], 1: [1.0]}; m.set_sizes({1: 4}); m.sizes
        {0: 0.0, 1: 4.0}
        """
        self.sizes = {k: float(sizes.get(k, 0.0)) for k in self.centres}

    # ---- features, vectors, learning -------------------------------------------------------------

    def _clean(self, x: Mapping[Any, Any]) -> dict[str, float]:
        bound = 2.0 * self.clip
        return {str(k): max(-bound, min(bound, _float(v))) for k, v in x.items()}

    def _grow(self, x: Mapping[str, float]) -> None:
        """Add features never seen before (at 0 in every centre), keeping ``features`` sorted."""
        for name in x:
            i = bisect.bisect_left(self.features, name)
            if i < len(self.features) and self.features[i] == name:
                continue
            self.features.insert(i, name)
            for store in (self.centres, self.spreads):
                for vec in store.values():
                    vec.insert(i, 0.0)

    def _vector(self, x: Mapping[str, float]) -> list[float]:
        return [x.get(f, 0.0) for f in self.features]

    def _move_centre(self, k: int, v: list[float]) -> None:
        c, s = self.centres[k], self.spreads[k]
        self.counts[k] = self.counts.get(k, 0.0) + 1.0
        lr = max(1.0 / self.counts[k], self.lr_floor)
        for i, vi in enumerate(v):
            d = vi - c[i]
            c[i] += lr * d
            s[i] += lr * (d * d - s[i])

    # ---- batch fit -------------------------------------------------------------------------------

    def fit(self, points: list[dict[str, float]]) -> list[int]:
        """(Re)start the model from ``points`` (batch fit); returns each point's cluster.

        Ids are 0..k-1, ordered by centre (first feature first); sizes become the fitted counts.

        >>> m = BalancedKMeans(n_clusters=2, min_clusters=2, min_share=0.2)
        >>> m.fit([{"a": 0.0}, {"a": 0.2}, {"a": 3.0}, {"a": 3.2}]), m.version
        ([0, 0, 1, 1], 1)
        """
        clean = [self._clean(p) for p in points]
        for p in clean:
            self._grow(p)
        vecs = [self._vector(p) for p in clean]
        z = [[max(-self.clip, min(self.clip, v)) for v in vec] for vec in vecs]
        n = len(z)
        if n == 0:
            raise ValueError("fit needs at least one point")
        if self.initial_clusters is not None:
            ks = [max(1, min(self.initial_clusters, self.n_clusters, n))]
        else:
            ks = list(range(min(self.min_clusters, self.n_clusters, n), min(self.n_clusters, n) + 1))
        fit = choose_fit(z, ks, self.min_share, self.max_share, self.balance, self.seed)
        self.centres, self.spreads, self.counts, self.sizes = {}, {}, {}, {}
        for j, centre in enumerate(fit.centres):
            members = [vec for vec, lab in zip(vecs, fit.labels, strict=True) if lab == j]
            self.centres[j] = list(centre)
            self.spreads[j] = [
                sum((m[i] - centre[i]) ** 2 for m in members) / max(len(members), 1)
                for i in range(len(centre))
            ]
            self.counts[j] = self.sizes[j] = float(len(members))
        self.redirect = {}
        self.next_id = len(self.centres)
        self.version += 1
        self.buffer = []
        return list(fit.labels)

    # ---- rebalancing: split the crowded, merge the tiny ---------------------------------------

    def rebalance(self) -> bool:
        """Merge the smallest cluster under ``min_share / 2`` and split the largest over
        ``max_share`` (within ``min_clusters..n_clusters``); True if the model changed.

        >>> m = BalancedKMeans(n_clusters=3, min_clusters=2, warmup=4, seed=0)
        >>> for v in (0.0, 0.1, 2.0, 2.1):
        ...     m.learn_one({"a": v})
        >>> m.sizes = {0: 90.0, 1: 10.0}; m.rebalance(), sorted(m.centres), m.version
        (True, [0, 1, 2], 2)
        """
        n = sum(self.sizes.values())
        if n < self.warmup or not self.centres:
            return False
        changed = self._merge_tiny(n)
        changed = self._split_crowded(n) or changed
        if changed:
            self.version += 1
        return changed

    def _merge_tiny(self, n: float) -> bool:
        tiny = [k for k in self.centres if self.sizes.get(k, 0.0) < self.min_share * n / 2]
        if not tiny or len(self.centres) <= self.min_clusters:
            return False
        k = min(tiny, key=lambda j: (self.sizes.get(j, 0.0), j))
        pos = self.centres[k]
        others = [j for j in self.centres if j != k]
        nearest = min(others, key=lambda j: (d2(pos, self.centres[j]), j))
        self.sizes[nearest] = self.sizes.get(nearest, 0.0) + self.sizes.pop(k, 0.0)
        del self.centres[k], self.spreads[k]
        self.counts.pop(k, None)
        self.redirect[k] = nearest
        return True

    def _split_crowded(self, n: float) -> bool:
        big = [k for k in self.centres if self.sizes.get(k, 0.0) > self.max_share * n]
        if not big or len(self.centres) >= self.n_clusters or not self.features:
            return False
        k = max(big, key=lambda j: (self.sizes.get(j, 0.0), -j))
        c, spread = self.centres[k], self.spreads[k]
        d = max(range(len(spread)), key=lambda i: (spread[i], -i))  # the widest feature
        step = 0.5 * math.sqrt(max(spread[d], 0.0))
        new = self.next_id
        self.next_id += 1
        a, b = list(c), list(c)
        a[d] -= step
        b[d] += step
        self.centres[k], self.centres[new] = a, b
        self.spreads[new] = list(spread)
        self.counts[k] = self.counts[new] = self.counts.get(k, 0.0) / 2
        if self.track_sizes:  # an estimate: half each
            self.sizes[k] = self.sizes[new] = self.sizes.get(k, 0.0) / 2
        else:  # the members stay in k until their next update moves them
            self.sizes[new] = 0.0
        return True

    # ---- state as plain JSON (never pickle) ------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Parameters and state as JSON-ready values (:meth:`from_dict` restores them exactly).

        >>> d = BalancedKMeans(n_clusters=3, seed=1).to_dict(); d["params"]["n_clusters"], d["centres"]
        (3, {})
        """

        def ints(d: Mapping[int, Any]) -> dict[str, Any]:
            return {str(k): v for k, v in sorted(d.items())}

        return {
            "params": dict(self._get_params()),
            "features": list(self.features),
            "centres": ints({k: list(v) for k, v in self.centres.items()}),
            "spreads": ints({k: list(v) for k, v in self.spreads.items()}),
            "counts": ints(self.counts),
            "sizes": ints(self.sizes),
            "redirect": ints(self.redirect),
            "next_id": self.next_id,
            "version": self.version,
            "n_learned": self.n_learned,
            "buffer": [dict(p) for p in self.buffer],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BalancedKMeans:
        """The model written by :meth:`to_dict`.

        >>> m = BalancedKMeans(n_clusters=2, min_clusters=2, warmup=2, seed=3)
        >>> m.learn_one({"a": 0.0}); m.learn_one({"a": 1.0}); m.learn_one({"a": 0.9})
        >>> BalancedKMeans.from_dict(m.to_dict()).to_dict() == m.to_dict()
        True
        """
        m = cls(**d["params"])
        m.features = [str(f) for f in d["features"]]
        m.centres = {int(k): [float(x) for x in v] for k, v in d["centres"].items()}
        m.spreads = {int(k): [float(x) for x in v] for k, v in d["spreads"].items()}
        m.counts = {int(k): float(v) for k, v in d["counts"].items()}
        m.sizes = {int(k): float(v) for k, v in d["sizes"].items()}
        m.redirect = {int(k): int(v) for k, v in d["redirect"].items()}
        m.next_id = int(d["next_id"])
        m.version = int(d["version"])
        m.n_learned = int(d["n_learned"])
        m.buffer = [{str(f): float(v) for f, v in p.items()} for p in d.get("buffer", [])]
        width = len(m.features)
        if any(len(v) != width for v in (*m.centres.values(), *m.spreads.values())):
            raise ValueError("clusterer state: centres do not match the features")
        return m
