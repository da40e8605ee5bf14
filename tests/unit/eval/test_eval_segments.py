"""The segment evaluation's measures (Calinski-Harabasz against scikit-learn's) and its protocol."""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
from sklearn.metrics import calinski_harabasz_score


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[3] / "eval" / "eval_segments.py"
    spec = importlib.util.spec_from_file_location("eval_segments", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _features(n: int, seed: int, shift: float = 0.0) -> dict[str, dict[str, float]]:
    rng = random.Random(seed)
    out = {}
    for i in range(n):
        g = i % 4
        out[f"c{i:04d}"] = {
            "level_kwh_day": (3.0, 8.0, 8.0, 25.0)[g] * math.exp(rng.gauss(shift, 0.2)),
            "variability": (0.1, 0.1, 0.6, 0.3)[g] + rng.gauss(0, 0.05),
            "weekend_ratio": 1.0 + rng.gauss(0, 0.05),
        }
    return out


def test_calinski_harabasz_matches_scikit_learn() -> None:
    ev = _load()
    rng = np.random.default_rng(0)
    for k in (2, 3, 7):
        x = rng.normal(size=(300, 5)) + rng.integers(0, k, size=300)[:, None]
        labels = rng.integers(0, k, size=300)
        assert math.isclose(ev.calinski_harabasz(x, labels), calinski_harabasz_score(x, labels), rel_tol=1e-9)


def test_protocol_on_synthetic_customers() -> None:
    ev = _load()
    f1, f2 = _features(400, 1), _features(400, 1, shift=0.05)
    outcomes = []
    for model in ev.models(0)[:1] + ev.models(0)[3:4]:  # the segmenter and River's KMeans
        out, labels = ev.run(model, f1, f2, 0)
        assert set(labels) == set(f1) and sum(out.sizes) == len(f1)
        assert out.segments == len(out.sizes) <= 7
        assert 0 < out.min_share <= out.max_share <= 1 and out.us_per_learn > 0
        outcomes.append(out)
    production = outcomes[0]
    assert production.within_bounds and production.pass_change < 0.05 and production.ch > 0
    rows = ev.table(outcomes).splitlines()
    assert len(rows) == 4 and rows[2].startswith("| Segmenter (production) | ")
    assert rows[3].endswith("| 1.0 |")  # River's KMeans is the time reference
