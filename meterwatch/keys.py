"""Redis key layout shared by the worker (writer), the API and the notifier (readers).

All keys start with the configured prefix (``MW_REDIS_PREFIX``, default ``mw:``)
so that tests and several deployments can share one Redis.

>>> k = Keys("mw:")
>>> k.baseline("c1"), k.state("c1")
('mw:baseline:c1', 'mw:state:c1')
>>> k.alert_index("open", "m1"), k.daily("c1")
('mw:aix:open:m:m1', 'mw:daily:c1')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "mw:"

    # --- read model, written by the worker -------------------------------------------
    def baseline(self, customer_id: str) -> str:
        """STRING: BaselineSnapshot JSON, as workers before the view-on-read wrote it (still read
        when there is no ``state``, and deleted with the customer)."""
        return f"{self.prefix}baseline:{customer_id}"

    def state(self, customer_id: str) -> str:
        """STRING: the customer's stored state (``stream/state.py`` JSON: ``p`` profile, ``s`` segment);
        readers build the BaselineSnapshot from it and the ``customer`` record (``baselines.readview``)."""
        return f"{self.prefix}state:{customer_id}"

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

    def notifier_alert(self, alert_id: str) -> str:
        """STRING (notifier): JSON list of the notification ids made for an alert."""
        return self.ns(f"alert:{alert_id}")

    def notifier_notification(self, notification_id: str) -> str:
        """HASH (notifier): one notification (channel, status, reason, created_at, ...)."""
        return self.ns(f"notif:{notification_id}")

    def notifier_history(self, notification_id: str) -> str:
        """LIST (notifier): a notification's status events, JSON."""
        return self.ns(f"hist:{notification_id}")

    # --- workbench (docs/workbench.md): alert index and lifecycle, daily archive ---------
    def alert_index(self, status: str, manager_id: str | None = None) -> str:
        """ZSET: alert ids in one lifecycle status (open | acknowledged | resolved), scored by
        ``triggered_by`` epoch seconds; across every customer, or of one manager (the alert's
        ``manager_id``). The worker adds new alerts to ``open``; the API moves them on."""
        scope = "all" if manager_id is None else f"m:{manager_id}"
        return f"{self.prefix}aix:{status}:{scope}"

    @property
    def alert_owner(self) -> str:
        """HASH: alert_id -> customer_id (finds the body in ``alert_bodies``)."""
        return f"{self.prefix}aix:owner"

    @property
    def alert_index_version(self) -> str:
        """STRING: version of the alert index a backfill has completed (see api/workbench)."""
        return f"{self.prefix}aix:version"

    def alert_state(self, alert_id: str) -> str:
        """HASH: an alert's lifecycle (status, acknowledged_by/at, outcome, note, ...); absent = open."""
        return f"{self.prefix}alst:{alert_id}"

    def alert_history(self, alert_id: str) -> str:
        """LIST: an alert's lifecycle events, JSON, oldest first."""
        return f"{self.prefix}alhist:{alert_id}"

    @property
    def alert_events(self) -> str:
        """Pub/sub channel: JSON events of new alerts (worker) and lifecycle changes (API)."""
        return f"{self.prefix}ev:alerts"

    def daily(self, customer_id: str) -> str:
        """STRING (binary): the customer's daily archive (``meterwatch.dailyarchive``)."""
        return f"{self.prefix}daily:{customer_id}"

    def segment_members(self, segment_id: int) -> str:
        """ZSET: customer ids of one segment (score 0: ordered by id, paged with ZRANGEBYLEX)."""
        return f"{self.prefix}segmembers:{segment_id}"

    @property
    def segment_members_version(self) -> str:
        """STRING: set when the members were backfilled from the baseline snapshots (API start)."""
        return f"{self.prefix}segmembers:version"

    # --- workbench web sessions -----------------------------------------------------------
    def web_session(self, session_hash: str) -> str:
        """STRING: a signed-in browser session (JSON), keyed by sha256 of its id; expires."""
        return f"{self.prefix}web:session:{session_hash}"

    @property
    def web_secret(self) -> str:
        """STRING: the generated cookie-signing secret (when ``MW_WEB_SESSION_SECRET`` is unset)."""
        return f"{self.prefix}web:secret"

    def web_preferences(self, user: str) -> str:
        """HASH: a workbench user's preferences (``lang``)."""
        return f"{self.prefix}web:prefs:{user}"
