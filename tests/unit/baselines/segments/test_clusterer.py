"""BalancedKMeans as a River clusterer: River's estimator checks, pipelines, balance, hysteresis, state."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from river import checks, cluster, compose, datasets, preprocessing
from river.checks import common

from baselines.segments import BalancedKMeans, ClampedStandardScaler, FeatureSpace, Segmenter, SegmenterConfig

Rows = list[tuple[dict[str, Any], Any]]


def _groups(n: int, seed: int = 0) -> tuple[list[dict[str, float]], list[int]]:
    """Points from four separated groups of unequal size (35/25/22/18 %), with their group."""
    rng = random.Random(seed)
    means = [(0.0, 0.0, 5.0), (6.0, 0.0, 5.0), (0.0, 6.0, 5.0), (6.0, 6.0, 5.0)]
    xs, ys = [], []
    for _ in range(n):
        g = rng.choices(range(4), weights=[35, 25, 22, 18])[0]
        xs.append({f: m + rng.gauss(0, 0.7) for f, m in zip(("a", "b", "c"), means[g], strict=True)})
        ys.append(g)
    return xs, ys


# ---- River's estimator checks --------------------------------------------------------------------


@pytest.mark.parametrize("params", list(BalancedKMeans._unit_test_params()))
def test_river_check_estimator(params: dict[str, Any]) -> None:
    checks.check_estimator(BalancedKMeans(**params))


@pytest.mark.parametrize("model", [FeatureSpace(), ClampedStandardScaler(width=3.0, min_count=5)])
def test_river_check_estimator_on_the_pipeline_steps(model: Any) -> None:
    checks.check_estimator(model)


# River's check_estimator has no data set for clusterers, so its data-driven checks are run
# here explicitly, with River's data sets, on the bare clusterer and in a pipeline.
DATA_CHECKS: list[Callable[..., None]] = [
    common.check_learn_one,
    common.check_pickling,
    common.check_shuffle_features_no_impact,
    common.check_emerging_features,
    common.check_disappearing_features,
    common.check_radically_disappearing_features,
    common.check_predict_one_pure,
    common.check_predict_one_before_any_learn,
    common.check_no_state_aliasing_with_input,
    common.check_clone_is_independent,
]


def _datasets() -> Iterator[tuple[str, Rows]]:
    yield "trump", list(datasets.TrumpApproval().take(200))  # type: ignore[no-untyped-call]
    yield "phishing", list(datasets.Phishing().take(200))
    yield "groups", [(x, y) for x, y in zip(*_groups(200), strict=True)]


def _models() -> Iterator[tuple[str, Any]]:
    for i, params in enumerate(BalancedKMeans._unit_test_params()):
        yield f"bare{i}", BalancedKMeans(**params)
        yield f"pipeline{i}", preprocessing.StandardScaler() | BalancedKMeans(**params)


@pytest.mark.parametrize(("name", "check"), [(c.__name__, c) for c in DATA_CHECKS])
def test_river_data_checks(name: str, check: Callable[..., None]) -> None:
    for (_, model), (_, rows) in itertools.product(_models(), _datasets()):
        check(model.clone(), dataset=iter(rows))


def test_river_bounded_memory_check() -> None:
    for _, model in _models():
        rows = list(datasets.Phishing().take(1200))
        common.check_bounded_memory_growth(model.clone(), dataset=iter(rows))  # type: ignore[no-untyped-call]


# ---- behaviour -------------------------------------------------------------------------------------


def test_standard_scaler_pipeline_recovers_separated_groups() -> None:
    """Without the size penalty (``balance=0``) separated groups are found whole. (With it, the
    borders of the larger groups are traded for more equal sizes: see the next test.)"""
    xs, ys = _groups(1200)
    model = preprocessing.StandardScaler() | BalancedKMeans(
        n_clusters=4, min_clusters=4, warmup=300, balance=0.0, seed=0
    )
    assert isinstance(model, compose.Pipeline)
    for x in xs + xs:
        model.learn_one(x)
    pred = [model.predict_one(x) for x in xs]
    # each group lands (almost) whole in one cluster, and the groups get different clusters
    main = {
        g: Counter(p for p, y in zip(pred, ys, strict=True) if y == g).most_common(1)[0] for g in range(4)
    }
    assert len({k for k, _ in main.values()}) == 4
    for g, (_, count) in main.items():
        assert count / ys.count(g) > 0.9, (g, main)
    shares = [c / len(pred) for c in Counter(pred).values()]
    assert min(shares) >= 0.05 and max(shares) <= 0.4


def test_balance_penalty_evens_out_sizes() -> None:
    """One dense crowd (80 %) and a thin spread: plain k-means (and River's KMeans) leave a
    cluster of half the points or more; the size penalty and the split divide the crowd."""
    rng = random.Random(3)
    xs = [{"a": rng.gauss(0, 0.3), "b": rng.gauss(0, 0.3)} for _ in range(800)]
    xs += [{"a": rng.uniform(2, 10), "b": rng.uniform(-4, 4)} for _ in range(200)]
    rng.shuffle(xs)

    def largest_share(clusterer: Any) -> float:
        model = preprocessing.StandardScaler() | clusterer
        for x in xs + xs:
            model.learn_one(x)
        return max(Counter(model.predict_one(x) for x in xs).values()) / len(xs)

    params: dict[str, Any] = {"n_clusters": 6, "min_clusters": 3, "warmup": 200, "seed": 1}
    balanced = largest_share(BalancedKMeans(**params))
    plain = largest_share(BalancedKMeans(**params, balance=0.0, rebalance_every=10**9))
    river = largest_share(cluster.KMeans(n_clusters=6, seed=1))
    assert balanced <= 0.4 < min(plain, river)


def test_hysteresis_keeps_the_current_cluster_within_the_margin() -> None:
    m = BalancedKMeans(n_clusters=2, min_clusters=2, warmup=4, margin=0.25, seed=0)
    for x in ({"a": 0.0}, {"a": 0.1}, {"a": 2.0}, {"a": 2.1}):
        m.learn_one(x)
    assert m.predict_one({"a": 1.1}) == 1  # just past the middle: closer to 1
    assert m.predict_one({"a": 1.1}, current=0) == 0  # ... but not by 25 %: stays
    assert m.predict_one({"a": 1.8}, current=0) == 1  # clearly closer: moves
    no_margin = BalancedKMeans.from_dict({**m.to_dict(), "params": {**m.to_dict()["params"], "margin": 0.0}})
    assert no_margin.predict_one({"a": 1.1}, current=0) == 1


def test_state_round_trip_continues_identically() -> None:
    xs, _ = _groups(700, seed=5)
    a = BalancedKMeans(n_clusters=4, min_clusters=3, warmup=200, rebalance_every=50, seed=2)
    for x in xs[:400]:
        a.learn_one(x)
    raw = json.dumps(a.to_dict())
    b = BalancedKMeans.from_dict(json.loads(raw))
    for x in xs[400:]:
        a.learn_one(x)
        b.learn_one(x)
        assert a.predict_one(x) == b.predict_one(x)
    assert a.to_dict() == b.to_dict()
    assert repr(b) == repr(a)  # same River parameters


def test_round_trip_during_warm_up() -> None:
    xs, _ = _groups(300, seed=6)
    a = BalancedKMeans(warmup=250, seed=0)
    for x in xs[:100]:
        a.learn_one(x)
    b = BalancedKMeans.from_dict(json.loads(json.dumps(a.to_dict())))
    for x in xs[100:]:
        a.learn_one(x)
        b.learn_one(x)
    assert a.fitted and a.to_dict() == b.to_dict()


def test_split_when_one_cluster_crowds_and_merge_when_one_starves() -> None:
    rng = random.Random(0)
    m = BalancedKMeans(
        n_clusters=4, min_clusters=2, initial_clusters=3, warmup=90, rebalance_every=30, seed=0
    )
    for i in range(90):  # three equal groups
        m.learn_one({"a": (i % 3) * 5.0 + rng.gauss(0, 0.3)})
    assert m.fitted and len(m.centres) == 3 and m.version == 1
    for _ in range(300):  # then everybody arrives in the middle group
        m.learn_one({"a": 5.0 + rng.gauss(0, 0.5)})
    assert m.version > 1  # rebalanced: split (and the starved groups merged)
    assert 2 <= len(m.centres) <= 4
    assert all(m.resolve(k) in m.centres for k in range(m.next_id))
    assert max(m.sizes.values()) / sum(m.sizes.values()) < 0.9


def test_new_feature_after_the_fit_extends_every_centre() -> None:
    xs, _ = _groups(300, seed=1)
    m = BalancedKMeans(n_clusters=4, min_clusters=4, warmup=200, seed=0)
    for x in xs:
        m.learn_one(x)
    before = m.predict_one(xs[0])
    m.learn_one({**xs[1], "d": 0.5})
    assert m.features == ["a", "b", "c", "d"]
    assert all(len(c) == 4 for c in m.centres.values())
    assert m.predict_one(xs[0]) == before
    assert BalancedKMeans.from_dict(m.to_dict()).to_dict() == m.to_dict()


def test_bad_values_are_neutral_and_bounded() -> None:
    xs, _ = _groups(300, seed=2)
    m = BalancedKMeans(n_clusters=4, min_clusters=4, warmup=200, seed=0)
    for x in xs:
        m.learn_one(x)
    before = {k: list(c) for k, c in m.centres.items()}
    for bad in ({"a": math.nan, "b": math.inf, "c": -1e300}, {"a": "text"}, {}):
        m.learn_one(bad)
        assert m.predict_one(bad) in m.centres
    for k, c in m.centres.items():
        assert all(math.isfinite(v) and abs(v) <= 2 * m.clip for v in c)
        assert max(abs(v - w) for v, w in zip(c, before[k], strict=True)) < 0.5


@pytest.mark.parametrize(
    "params",
    [{"n_clusters": 0}, {"min_share": 0.5, "max_share": 0.4}, {"margin": 1.0}, {"warmup": 0}],
)
def test_bad_parameters_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        BalancedKMeans(**params)


def test_the_segmenter_learns_exactly_as_its_river_pipeline() -> None:
    """``Segmenter.learn`` (which computes the standardised features once) is
    ``seg.model.learn_one``: two copies fed the same updates end in the same state."""
    xs, _ = _groups(400, seed=4)
    feats = [{"level_kwh_day": math.exp(x["a"] / 3), "variability": x["b"], "trend": x["c"]} for x in xs]
    seg = Segmenter(SegmenterConfig(warmup=150, seed=0, rebalance_every=40))
    for i, f in enumerate(feats[:200]):
        seg.observe(f"c{i}", f)
    assert seg.fitted
    twin = Segmenter.from_dict(seg.to_dict())
    for f in feats[200:]:
        seg.learn(f)
        twin.model.learn_one(f)
        twin.n_learned += 1
    assert twin.to_dict() == seg.to_dict()
    assert [type(s).__name__ for s in seg.model.steps.values()] == [
        "FeatureSpace",
        "ClampedStandardScaler",
        "BalancedKMeans",
    ]
