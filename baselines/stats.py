"""Small robust statistics without numpy (the hot path works on short lists).

>>> median([3.0, 1.0, 2.0]), median([1.0, 2.0, 3.0, 4.0])
(2.0, 2.5)
>>> mad([1.0, 2.0, 3.0, 4.0, 100.0])
1.0
"""

from __future__ import annotations

from collections.abc import Sequence

MAD_TO_SIGMA = 1.4826


def median(xs: Sequence[float]) -> float:
    """Median of a non-empty sequence.

    >>> median([5.0])
    5.0
    """
    s = sorted(xs)
    n = len(s)
    if n == 0:
        raise ValueError("median of an empty sequence")
    h = n // 2
    return s[h] if n % 2 else (s[h - 1] + s[h]) / 2.0


def mad(xs: Sequence[float], center: float | None = None) -> float:
    """Median absolute deviation (unscaled; multiply by 1.4826 for a normal sigma).

    >>> mad([2.0, 2.0, 2.0])
    0.0
    """
    c = median(xs) if center is None else center
    return median([abs(x - c) for x in xs])


def robust_sigma(mad_value: float | None, level: float) -> float:
    """A noise scale that never collapses to zero: max(1.4826 MAD, 10% of level, 0.05).

    >>> robust_sigma(1.0, 5.0)
    1.4826
    >>> robust_sigma(0.0, 5.0)
    0.5
    """
    m = 0.0 if mad_value is None else MAD_TO_SIGMA * mad_value
    return max(m, 0.1 * abs(level), 0.05)


def quantile_high(xs: Sequence[float], q: float) -> float:
    """The smallest value with at least a share ``q`` of the data at or below it.

    >>> quantile_high([1.0, 2.0, 3.0, 4.0, 5.0], 0.8)
    4.0
    """
    s = sorted(xs)
    if not s:
        raise ValueError("quantile of an empty sequence")
    k = max(0, min(len(s) - 1, -int(-q * len(s) // 1) - 1))
    return s[k]
