"""Redis key layout shared by the worker (writer), the API and the notifier (readers).

All keys start with the configured prefix (``MW_REDIS_PREFIX``, default ``mw:``)
so that tests and several deployments can share one Redis.

>>> k = Keys("mw:")
>>> k.baseline("c1")
'mw:baseline:c1'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "mw:"

    # --- read model, written by the worker -------------------------------------------
    def baseline(self, customer_id: str) -> str:
        """STRING: BaselineSnapshot JSON."""
        return f"{self.prefix}baseline:{customer_id}"

    def customer(self, customer_id: str) -> str:
        """STRING: CustomerRecord JSON (registry copy, incl. manager_id and phone)."""
        return f"{self.prefix}customer:{customer_id}"

    def alerts(self, customer_id: str) -> str:
        """ZSET: alert_id scored by triggered_by epoch seconds (bounded length)."""
        return f"{self.prefix}alerts:{customer_id}"

    def alert_bodies(self, customer_id: str) -> str:
        """HASH: alert_id -> Alert JSON (same members as `alerts`)."""
        return f"{self.prefix}alertbody:{customer_id}"

    @property
    def segments(self) -> str:
        """STRING: JSON list of SegmentSummary."""
        return f"{self.prefix}segments"

    @property
    def heartbeat(self) -> str:
        """STRING: epoch seconds of the worker's last read-model flush."""
        return f"{self.prefix}readmodel:heartbeat"

    def metrics(self, service: str) -> str:
        """HASH: counter name -> value, for services without their own port."""
        return f"{self.prefix}metrics:{service}"

    # --- auth -------------------------------------------------------------------------
    def token(self, token_hash: str) -> str:
        """STRING: TokenRecord JSON, keyed by sha256 of the secret."""
        return f"{self.prefix}token:{token_hash}"

    @property
    def token_index(self) -> str:
        """HASH: token_id -> token_hash (for listing and revocation)."""
        return f"{self.prefix}tokens"

    def ratelimit(self, token_id: str, window: int) -> str:
        return f"{self.prefix}rl:{token_id}:{window}"

    # --- notifier ---------------------------------------------------------------------
    def ns(self, name: str) -> str:
        """Any notifier-owned key: ``{prefix}n:{name}``."""
        return f"{self.prefix}n:{name}"
