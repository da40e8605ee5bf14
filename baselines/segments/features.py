"""The space the segments live in: feature transform and robust scaling, as River transformers.

The segmenter's pipeline is ``FeatureSpace() | ClampedStandardScaler() | BalancedKMeans()``:

* :class:`FeatureSpace` (stateless) takes level-like features (heavy-tailed, non-negative:
  names containing ``level``, ``_kwh``, ending in ``_amount`` / ``_count``) through
  ``log1p`` and turns NaN/inf into 0 and absurd values into +-1e6;
* :class:`ClampedStandardScaler` is River's ``preprocessing.StandardScaler`` (running means
  and variances, z-scores out) whose *learning* is robust: once a feature has been seen
  ``min_count`` times, a new value is clamped to ``mean +- width * sd`` before it updates the
  statistics, so one absurd value cannot blow a variance up and switch the feature off.

>>> pipe = FeatureSpace() | ClampedStandardScaler()
>>> for v in (1.0, 3.0, 7.0):
...     pipe.learn_one({"level_kwh_day": v, "trend": v / 10})
>>> {k: round(v, 3) for k, v in pipe.transform_one({"level_kwh_day": 3.0, "trend": 0.3}).items()}
{'level_kwh_day': 0.0, 'trend': -0.267}
"""

from __future__ import annotations

import functools
import math
from typing import Any

from river import base, preprocessing

LIMIT = 1e6  # |value| bound of a non-level feature after the transform


@functools.lru_cache(maxsize=1024)
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
    return max(-LIMIT, min(LIMIT, value))


def untransform(name: str, value: float) -> float:
    """Inverse of :func:`transform` (for reporting centroids in the feature's own units).

    >>> round(untransform("level_kwh_day", transform("level_kwh_day", 7.9)), 6)
    7.9
    """
    return math.expm1(value) if is_level_feature(name) else value


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0  # not a number: neutral


class FeatureSpace(base.Transformer):
    """Named features -> the model's space (:func:`transform` applied per feature).

    Stateless: ``learn_one`` does nothing. A value that is not a number becomes 0.

    >>> FeatureSpace().transform_one({"level_kwh_day": 0.0, "trend": float("inf"), "odd": "x"})
    {'level_kwh_day': 0.0, 'trend': 0.0, 'odd': 0.0}
    """

    def transform_one(self, x: dict[Any, Any]) -> dict[Any, float]:
        return {name: transform(str(name), _number(v)) for name, v in x.items()}


class ClampedStandardScaler(preprocessing.StandardScaler):
    """River's ``StandardScaler`` with robust learning (see the module docstring).

    Parameters
    ----------
    width
        Values further than ``width`` standard deviations from the running mean are clamped
        to that distance before they are learned.
    min_count
        Clamping starts once a feature has been seen this many times.

    >>> sc = ClampedStandardScaler(width=2.0, min_count=3)
    >>> for v in (1.0, 2.0, 3.0, 1e6):
    ...     sc.learn_one({"x": v})
    >>> round(sc.means["x"], 3)  # 1e6 was learned as 2 + 2 sd
    2.408
    """

    def __init__(self, width: float = 6.0, min_count: int = 30) -> None:
        super().__init__()
        self.width = width
        self.min_count = min_count

    def clamp(self, x: dict[Any, float]) -> dict[Any, float]:
        """``x`` with every value limited to the running mean +- ``width`` sd (where known).

        >>> sc = ClampedStandardScaler(width=1.0, min_count=2)
        >>> for v in (0.0, 2.0):
        ...     sc.learn_one({"x": v})
        >>> sc.clamp({"x": 10.0, "y": 5.0})
        {'x': 2.0, 'y': 5.0}
        """
        out = {}
        counts, means, variances = self.counts, self.means, self.vars
        for i, xi in x.items():
            if counts.get(i, 0) >= self.min_count:
                var = variances.get(i, 0.0)
                if var > 1e-12:
                    m = means.get(i, 0.0)
                    w = self.width * math.sqrt(var)
                    xi = max(m - w, min(m + w, xi))
            out[i] = xi
        return out

    def learn_one(self, x: dict[Any, float]) -> None:
        super().learn_one(self.clamp(x))  # type: ignore[no-untyped-call]  # River's method is untyped

    def learn_many(self, X: Any) -> None:
        """Not supported: the clamping depends on the statistics learned so far (``learn_one`` per row)."""
        raise NotImplementedError("ClampedStandardScaler learns row by row (learn_one)")

    def state(self) -> dict[str, dict[str, float]]:
        """The running statistics as plain JSON (``counts``, ``means``, ``vars``).

        >>> sc = ClampedStandardScaler(); sc.learn_one({"x": 1.0}); sc.learn_one({"x": 3.0}); sc.state()
        {'counts': {'x': 2}, 'means': {'x': 2.0}, 'vars': {'x': 1.0}}
        """
        return {
            "counts": {str(k): int(v) for k, v in self.counts.items()},
            "means": {str(k): float(v) for k, v in self.means.items()},
            "vars": {str(k): float(v) for k, v in self.vars.items()},
        }

    def load_state(self, d: dict[str, Any]) -> None:
        """Install statistics written by :meth:`state` (the instance's own are replaced).

        >>> a = ClampedStandardScaler()
        >>> a.learn_one({"x": 1.0}); a.learn_one({"x": 3.0})
        >>> b = ClampedStandardScaler(); b.load_state(a.state()); b.transform_one({"x": 3.0})
        {'x': 1.0}
        """
        self.counts.clear()
        self.means.clear()
        self.vars.clear()
        self.counts.update({str(k): int(v) for k, v in d["counts"].items()})
        self.means.update({str(k): float(v) for k, v in d["means"].items()})
        self.vars.update({str(k): float(v) for k, v in d["vars"].items()})

    def std(self, name: str) -> float:
        """The running standard deviation of ``name`` (0 while unknown or constant).

        >>> sc = ClampedStandardScaler(); sc.learn_one({"x": 1.0}); sc.learn_one({"x": 3.0})
        >>> sc.std("x"), sc.std("y")
        (1.0, 0.0)
        """
        var = float(self.vars.get(name, 0.0))
        return math.sqrt(var) if var > 1e-12 else 0.0

    @classmethod
    def _unit_test_params(cls) -> Any:
        yield {"width": 3.0, "min_count": 5}
