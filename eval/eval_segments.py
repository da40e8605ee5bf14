"""Evaluate the online segmenter on the London households, against River's own clusterers.

    python eval/eval_segments.py                  # all ~3,500 households (a few minutes)
    python eval/eval_segments.py --limit 600      # the first 600 households
    python eval/eval_segments.py --cache f.json   # keep the features in f.json (reused next time)

Features: the production ones — each household's daily readings folded by the domain engine,
then ``Engine.segment_features`` (``meterwatch.cli.segment_features.london_engine_features``),
as of ``--as-of`` (2013-06-30) and as of the end of the next month.

Models (every one at most 7 segments, seeded, after the same ``FeatureSpace`` — log of the
level-like features — and a standard scaler):

* ``Segmenter``: the production segmenter (``BalancedKMeans`` in a River pipeline plus the
  customers' membership: hysteresis with a 25 % margin and two agreeing updates);
* ``Segmenter, no hysteresis``: the same with ``margin=0, votes=1``;
* ``BalancedKMeans``: ``StandardScaler() | BalancedKMeans()`` as a plain River pipeline;
* River's ``cluster.KMeans`` (``halflife`` 0.5, River's default, and 0.05) and
  ``cluster.STREAMKMeans`` (chunks of 100 points), ``n_clusters=7``.

Protocol, identical for all: six passes over the customers' features (a new random order
each pass: think of a pass as a day, each customer's features arriving once); on each update
the model learns the features (``learn_one`` / ``observe``) and the customer gets its segment
(``predict_one``; the segmenter: its own assignment). Then two passes with the features one
month later. Reported per model:

* segments and their sizes after pass 6: the number of non-empty segments, the smallest and
  largest share (the bound of the source documents: at most 7, each 5-40 %);
* stability: the share of customers whose segment differs between passes 5 and 6 (the same
  features), and between pass 6 and the first / second pass over the next month's features
  (the segmenter moves a customer on the second agreeing update);
* Calinski-Harabasz score of the pass-6 segments, computed with numpy in one space for all
  models (the features after ``FeatureSpace``, standardised over the customers, clipped at
  +-6 sd): higher = segments tighter and further apart;
* microseconds per ``learn_one`` (the segmenter: per ``observe``, learn + assignment), the
  fastest of passes 2-6, and its ratio to River's KMeans in the same run (shared machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from river import cluster, compose, preprocessing  # noqa: E402

from baselines.segments import BalancedKMeans, FeatureSpace, Segmenter, SegmenterConfig  # noqa: E402
from meterwatch.cli.segment_features import london_engine_features  # noqa: E402

Feats = dict[str, dict[str, float]]
Labels = dict[str, int | None]
BOUNDS = (0.05, 0.40)
MAX_SEGMENTS = 7
PASSES = 6  # over the first features; the segmenter's moves wait for a second update: let it settle


# ---- the models, behind one interface ---------------------------------------------------------


class PipelineModel:
    """``FeatureSpace() | StandardScaler() | clusterer``: learn_one, then predict_one."""

    def __init__(self, name: str, clusterer: Any) -> None:
        self.name = name
        self.model = compose.Pipeline(FeatureSpace(), preprocessing.StandardScaler(), clusterer)
        self.last: Labels = {}
        self.seconds = 0.0
        self.calls = 0

    def update(self, cid: str, x: dict[str, float]) -> None:
        t0 = time.perf_counter()
        self.model.learn_one(x)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.last[cid] = int(self.model.predict_one(x))

    def labels(self) -> Labels:
        return dict(self.last)


class SegmenterModel:
    """The production segmenter, fed as the worker feeds it (with each customer's current segment)."""

    def __init__(self, name: str, config: SegmenterConfig) -> None:
        self.name = name
        self.seg = Segmenter(config)
        self.current: Labels = {}
        self.seconds = 0.0
        self.calls = 0

    def update(self, cid: str, x: dict[str, float]) -> None:
        t0 = time.perf_counter()
        out = self.seg.observe(cid, x, self.current.get(cid))
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        for a in out:
            self.current[a.customer_id] = a.segment.id

    def labels(self) -> Labels:
        return {c: self.seg.resolve(k) for c, k in self.current.items()}


Model = PipelineModel | SegmenterModel


def models(seed: int) -> list[Model]:
    """The compared models (see the module docstring)."""
    return [
        SegmenterModel("Segmenter (production)", SegmenterConfig(seed=seed)),
        SegmenterModel("Segmenter, no hysteresis", SegmenterConfig(seed=seed, margin=0.0, votes=1)),
        PipelineModel("BalancedKMeans (plain pipeline)", BalancedKMeans(n_clusters=MAX_SEGMENTS, seed=seed)),
        PipelineModel("River KMeans", cluster.KMeans(n_clusters=MAX_SEGMENTS, seed=seed)),
        PipelineModel(
            "River KMeans, halflife 0.05",
            cluster.KMeans(n_clusters=MAX_SEGMENTS, halflife=0.05, seed=seed),
        ),
        PipelineModel(
            "River STREAMKMeans",
            cluster.STREAMKMeans(chunk_size=100, n_clusters=MAX_SEGMENTS, seed=seed),  # type: ignore[no-untyped-call]
        ),
    ]


# ---- measures ----------------------------------------------------------------------------------


def calinski_harabasz(x: npt.NDArray[np.float64], labels: npt.NDArray[np.int64]) -> float:
    """Between- over within-cluster dispersion, each per degree of freedom (numpy).

    >>> x = np.array([[0.0], [1.0], [10.0], [11.0]])
    >>> round(calinski_harabasz(x, np.array([0, 0, 1, 1])), 1)
    200.0
    """
    ks = np.unique(labels)
    n, k = len(x), len(ks)
    if k < 2 or n <= k:
        return 0.0
    mean = x.mean(axis=0)
    between = within = 0.0
    for j in ks:
        members = x[labels == j]
        centre = members.mean(axis=0)
        between += len(members) * float(((centre - mean) ** 2).sum())
        within += float(((members - centre) ** 2).sum())
    if within <= 0:
        return float("inf")
    return (between / (k - 1)) / (within / (n - k))


def evaluation_space(feats: Feats, ids: list[str]) -> npt.NDArray[np.float64]:
    """The customers' features after ``FeatureSpace``, standardised over the customers, clipped at +-6."""
    space = FeatureSpace()
    names = sorted({n for f in feats.values() for n in f})
    x = np.array([[space.transform_one(feats[c]).get(n, 0.0) for n in names] for c in ids])
    sd = x.std(axis=0)
    keep = sd > 1e-12
    z = (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]
    out: npt.NDArray[np.float64] = np.clip(z, -6.0, 6.0)
    return out


def changed(a: Labels, b: Labels, ids: list[str]) -> float:
    """Share of ``ids`` whose segment differs between ``a`` and ``b``."""
    return sum(1 for c in ids if a.get(c) != b.get(c)) / max(len(ids), 1)


@dataclass
class Outcome:
    name: str
    segments: int
    min_share: float
    max_share: float
    pass_change: float
    month_change: float
    month_change_first: float
    ch: float
    us_per_learn: float
    sizes: list[int] = field(default_factory=list)

    @property
    def within_bounds(self) -> bool:
        return self.segments <= MAX_SEGMENTS and BOUNDS[0] <= self.min_share and self.max_share <= BOUNDS[1]


def run(model: Model, f1: Feats, f2: Feats, seed: int) -> tuple[Outcome, Labels]:
    """The protocol of the module docstring for one model; also returns the settled labels."""
    rng = random.Random(seed)
    ids = sorted(f1)
    common = [c for c in ids if c in f2]
    snaps: list[Labels] = []
    per_pass_us: list[float] = []
    for p in range(PASSES + 2):
        feats, order = (f1, list(ids)) if p < PASSES else (f2, list(common))
        rng.shuffle(order)
        model.seconds, model.calls = 0.0, 0
        for c in order:
            model.update(c, feats[c])
        if p > 0:  # the first pass holds the warm-up fit
            per_pass_us.append(model.seconds / max(model.calls, 1) * 1e6)
        snaps.append(model.labels())
    final = snaps[PASSES - 1]
    sizes = Counter(k for c in ids if (k := final.get(c)) is not None)
    n = sum(sizes.values())
    shares = [v / n for v in sizes.values()] if n else [0.0]
    x = evaluation_space(f1, ids)
    lab = np.array([k if (k := final.get(c)) is not None else -1 for c in ids])
    out = Outcome(
        name=model.name,
        segments=len(sizes),
        min_share=min(shares),
        max_share=max(shares),
        pass_change=changed(snaps[PASSES - 2], final, ids),
        month_change=changed(final, snaps[PASSES + 1], common),
        month_change_first=changed(final, snaps[PASSES], common),
        ch=calinski_harabasz(x[lab >= 0], lab[lab >= 0]),
        us_per_learn=min(per_pass_us),  # the least disturbed pass (the machine is shared)
        sizes=sorted(sizes.values(), reverse=True),
    )
    return out, final


# ---- features ------------------------------------------------------------------------------------


def next_month_end(d: dt.date) -> dt.date:
    """The last day of the month after ``d``'s.

    >>> next_month_end(dt.date(2013, 6, 30)), next_month_end(dt.date(2013, 12, 31))
    (datetime.date(2013, 7, 31), datetime.date(2014, 1, 31))
    """
    y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    first_after = dt.date(y + 1, 1, 1) if m == 12 else dt.date(y, m + 1, 1)
    return first_after - dt.timedelta(days=1)


def features(as_of: dt.date, limit: int | None, cache: Path | None) -> tuple[Feats, Feats, float]:
    """Production features as of ``as_of`` and a month later (from ``cache`` if it matches)."""
    key = {"as_of": as_of.isoformat(), "limit": limit}
    if cache is not None and cache.exists():
        data = json.loads(cache.read_text())
        if data.get("key") == key:
            return data["f1"], data["f2"], float(data["seconds"])
    t0 = time.perf_counter()
    f1, f2 = london_engine_features([as_of, next_month_end(as_of)], limit=limit)
    seconds = time.perf_counter() - t0
    if cache is not None:
        cache.write_text(json.dumps({"key": key, "f1": f1, "f2": f2, "seconds": seconds}))
    return f1, f2, seconds


# ---- report ----------------------------------------------------------------------------------------


def table(outcomes: list[Outcome]) -> str:
    """The comparison as a Markdown table (time as a ratio to River's KMeans of the same run)."""
    ref = next((o.us_per_learn for o in outcomes if o.name == "River KMeans"), 0.0)
    rows = [
        "| model | segments | smallest / largest share | within 5-40 % | changed on another pass "
        "| changed after a month (1st / 2nd update) | Calinski-Harabasz | µs per learn_one | × KMeans |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        ratio = o.us_per_learn / ref if ref else float("nan")
        rows.append(
            f"| {o.name} | {o.segments} | {o.min_share:.1%} / {o.max_share:.1%} | "
            f"{'yes' if o.within_bounds else 'no'} | {o.pass_change:.1%} | "
            f"{o.month_change_first:.1%} / {o.month_change:.1%} | {o.ch:.0f} | "
            f"{o.us_per_learn:.0f} | {ratio:.1f} |"
        )
    return "\n".join(rows)


def describe_segments(seg: Segmenter, labels: Labels) -> list[str]:
    """The production segmenter's segments: share, label (en / zh-CN), kind, characteristics."""
    sizes = Counter(k for k in labels.values() if k is not None)
    n = max(sum(sizes.values()), 1)
    lines = []
    for s in seg.summaries():
        zh = seg.labels_of(s.id)["zh-CN"]
        lines.append(f"{s.id:>3} {sizes.get(s.id, 0) / n:>6.1%}  {s.label} / {zh}  [{s.kind}]")
        lines += [f"{'':>12}- {c}" for c in s.characteristics]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2013, 6, 30))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="only the first N households")
    ap.add_argument("--cache", type=Path, default=None, help="JSON file keeping the features between runs")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    f1, f2, feature_s = features(args.as_of, args.limit, args.cache)
    outcomes: list[Outcome] = []
    production: tuple[Segmenter, Labels] | None = None
    for model in models(args.seed):
        out, labels = run(model, f1, f2, args.seed)
        outcomes.append(out)
        if production is None and isinstance(model, SegmenterModel):
            production = (model.seg, labels)
    assert production is not None
    ok = outcomes[0].within_bounds
    if args.json:
        head = {"households": len(f1), "as_of": args.as_of.isoformat(), "seed": args.seed}
        print(json.dumps({**head, "outcomes": [o.__dict__ for o in outcomes]}, ensure_ascii=False, indent=1))
        return 0 if ok else 1
    print(
        f"London households: {len(f1)} (production features as of {args.as_of}, and a month later; "
        f"{len(next(iter(f1.values())))} features; computed in {feature_s:.0f} s); seed {args.seed}; "
        f"{dt.date.today()}, {platform.python_implementation()} {platform.python_version()}"
    )
    print(f"\nThe production segmenter's segments (after pass {PASSES}):")
    print("\n".join(describe_segments(*production)))
    print()
    print(table(outcomes))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
