"""The batch fit that starts the online clusterer: balanced k-means on the warm-up points.

Plain Python (the warm-up holds a few hundred points), deterministic for a given ``random.Random``:
k-means++ seeding, Lloyd iterations with the same size penalty as the online assignment,
and k chosen by the Calinski-Harabasz score among the fits whose sizes meet the bounds.

>>> pts = [[0.0, 0.1], [0.1, 0.0], [0.0, 0.0], [5.0, 5.1], [5.1, 5.0], [5.0, 5.0]]
>>> fit = choose_fit(pts, ks=[2, 3], min_share=0.2, max_share=0.6, balance=1.0, seed=0)
>>> fit.labels, [[round(v, 2) for v in c] for c in fit.centres]
([0, 0, 0, 1, 1, 1], [[0.03, 0.03], [5.03, 5.03]])
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

Point = Sequence[float]


@dataclass(frozen=True)
class BatchFit:
    """Centres (ordered by their coordinates, first feature first) and each point's label."""

    centres: list[list[float]]
    labels: list[int]
    score: float


def d2(a: Point, b: Point) -> float:
    """Squared Euclidean distance.

    >>> d2([0.0, 1.0], [3.0, 5.0])
    25.0
    """
    return sum((x - y) * (x - y) for x, y in zip(a, b, strict=True))


def kmeanspp(points: Sequence[Point], k: int, rng: random.Random) -> list[list[float]]:
    """k-means++ seeding: each next centre drawn with probability proportional to d2.

    >>> kmeanspp([[0.0], [0.0], [9.0]], 2, random.Random(1))
    [[0.0], [9.0]]
    """
    centres = [list(points[rng.randrange(len(points))])]
    while len(centres) < k:
        d = [min(d2(p, c) for c in centres) for p in points]
        total = sum(d)
        if total <= 0:
            centres.append(list(points[rng.randrange(len(points))]))
            continue
        r = rng.random() * total
        acc = 0.0
        for p, di in zip(points, d, strict=True):
            acc += di
            if acc >= r:
                centres.append(list(p))
                break
        else:
            centres.append(list(points[-1]))
    return centres


def balanced_kmeans(
    points: Sequence[Point], k: int, balance: float, rng: random.Random, iters: int = 30
) -> tuple[list[list[float]], list[int]]:
    """Lloyd iterations where the distance to a centre is multiplied by ``(share * k) ** balance``.

    >>> balanced_kmeans([[0.0], [1.0], [10.0], [11.0]], 2, 1.0, random.Random(0))
    ([[10.5], [0.5]], [1, 1, 0, 0])
    """
    centres = kmeanspp(points, k, rng)
    n = len(points)
    labels = [0] * n
    sizes = [n / k] * k
    for _ in range(iters):
        factors = [((s + 1.0) / (n + k) * k) ** balance for s in sizes]
        new = [min(range(k), key=lambda j, p=p: d2(p, centres[j]) * factors[j]) for p in points]  # type: ignore[misc]
        sizes = [float(new.count(j)) for j in range(k)]
        for j in range(k):
            members = [p for p, lab in zip(points, new, strict=True) if lab == j]
            if members:
                centres[j] = [sum(col) / len(members) for col in zip(*members, strict=True)]
        if new == labels:
            break
        labels = new
    return centres, labels


def calinski_harabasz(points: Sequence[Point], centres: Sequence[Point], labels: Sequence[int]) -> float:
    """Between-cluster over within-cluster dispersion, each per degree of freedom.

    >>> round(calinski_harabasz([[0.0], [1.0], [10.0], [11.0]], [[0.5], [10.5]], [0, 0, 1, 1]), 1)
    200.0
    """
    n, k = len(points), len(centres)
    if k < 2 or n <= k:
        return 0.0
    mean = [sum(col) / n for col in zip(*points, strict=True)]
    within = sum(d2(p, centres[lab]) for p, lab in zip(points, labels, strict=True))
    between = sum(list(labels).count(j) * d2(centres[j], mean) for j in range(k))
    if within <= 0:
        return math.inf
    return (between / (k - 1)) / (within / (n - k))


def choose_fit(
    points: Sequence[Point],
    ks: Sequence[int],
    min_share: float,
    max_share: float,
    balance: float,
    seed: int | None,
) -> BatchFit:
    """The best-scoring fit among ``ks`` whose sizes are all within the share bounds
    (if none is, the one with the smallest largest cluster); clusters renumbered by centre.

    >>> choose_fit([[0.0], [1.0], [10.0]], ks=[1], min_share=0.0, max_share=1.0, balance=1.0, seed=0).labels
    [0, 0, 0]
    """
    n = len(points)
    best: tuple[float, list[list[float]], list[int]] | None = None
    fallback: tuple[int, float, list[list[float]], list[int]] | None = None
    for k in ks:
        rng = random.Random(None if seed is None else seed + k)  # noqa: S311 (not crypto)
        centres, labels = balanced_kmeans(points, k, balance, rng)
        score = calinski_harabasz(points, centres, labels)
        sizes = [labels.count(j) for j in range(k)]
        if all(min_share * n <= s <= max_share * n for s in sizes) and (best is None or score > best[0]):
            best = (score, centres, labels)
        if fallback is None or max(sizes) < fallback[0]:
            fallback = (max(sizes), score, centres, labels)
    if best is None:
        assert fallback is not None, "choose_fit needs at least one k"
        best = fallback[1:]
    score, centres, labels = best
    # stable, meaningful ids: order the clusters by their centre (first feature first)
    order = sorted(range(len(centres)), key=lambda j: centres[j])
    rank = {old: new for new, old in enumerate(order)}
    return BatchFit([centres[j] for j in order], [rank[lab] for lab in labels], score)
