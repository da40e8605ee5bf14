"""The Ops API's per-token rate limit: :mod:`meterwatch.ratelimit` (shared with the notifier).

>>> rl = RateLimiter(limit=1, sync=None)
>>> rl.admit("tok", now=61.0), rl.admit("tok", now=62.0)
(0, 58)
"""

from __future__ import annotations

from meterwatch.ratelimit import WINDOW_S, RateLimiter, SyncFn

__all__ = ["WINDOW_S", "RateLimiter", "SyncFn"]
