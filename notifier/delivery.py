"""The dispatcher: sends due notifications, with retries, leases and escalation.

Every replica runs one. A notification is claimed atomically (store._CLAIM
pushes its due time ``lease`` into the future and bumps a fencing token), so
two replicas never send the same notification; a replica killed mid-send
leaves a claim that expires, and another replica (or itself, restarted) takes
it over. A completion with a stale token is ignored.

An SMS attempt is recorded as in flight (``inflight``) in the same script that renews
the lease, BEFORE the request goes out. A timeout or a dropped connection is an
*unknown* outcome, never a failure: the attempt stays in flight and, like the attempt
of a replica killed mid-send, is reconciled with the gateway's status endpoint before
anything is sent again (``notifier.reconcile``). Every resend that may duplicate an SMS
is counted (``possible_duplicates{channel="sms"}``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
from typing import Any

from redis.exceptions import RedisError

from meterwatch.logs import mask_phone
from meterwatch.settings import Settings
from notifier import dailydigest
from notifier.breaker import CircuitBreaker, Ticket
from notifier.channels import PermanentError, PushChannel, SmsChannel, TransientError
from notifier.clock import Clock
from notifier.ids import iso, make_nid
from notifier.landlord import landlord_of
from notifier.models import TERMINAL
from notifier.moderation import backoff_s, effective_consent, in_quiet_hours, quiet_hours_end
from notifier.reconcile import decide
from notifier.store import Store
from notifier.templates import digest_text, escalation_text

log = logging.getLogger("meterwatch.notifier.delivery")


def _ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


class Dispatcher:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock,
        sms: SmsChannel,
        push: PushChannel,
    ) -> None:
        self.store = store
        self.s = settings
        self.clock = clock
        self.sms = sms
        self.push = push
        self.sem = asyncio.Semaphore(max(1, settings.notifier_dispatch_concurrency))
        self.healthy = True
        self.ticks = 0  # passes over the due queue completed (its handlings included)
        self.redis_failures = 0
        self._wake = asyncio.Event()
        self.breakers = {
            k: CircuitBreaker(settings.notifier_breaker_threshold, settings.notifier_breaker_cooldown_s)
            for k in ("sms", "push")
        }

    def wake(self) -> None:
        """New work was recorded by this replica: look at the due queue now, not at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        pause = self.s.notifier_poll_interval_s
        while not stop.is_set():
            try:
                n = await self.tick()
                self.healthy = True
                pause = self.s.notifier_poll_interval_s
            except (RedisError, OSError) as e:
                self.healthy = False
                self.redis_failures += 1
                log.warning("dispatcher: redis unavailable (%s); retrying in %.1fs", type(e).__name__, pause)
                n = 0
                pause = min(5.0, pause * 2)
            if n == 0:
                await self._sleep(stop, pause)

    async def _sleep(self, stop: asyncio.Event, pause: float) -> None:
        """Wait for ``pause`` seconds, or less if woken or stopped."""
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=pause, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            self._wake.clear()

    async def tick(self) -> int:
        """Claim the due notifications and send them; returns how many were claimed."""
        now = self.clock.now()
        # claim no more than can start soon: a claim waiting behind the semaphore ages its lease
        batch = min(self.s.notifier_dispatch_batch, 2 * max(1, self.s.notifier_dispatch_concurrency))
        claimed = await self.store.claim(_ms(now), int(self.s.notifier_lease_s * 1000), batch)
        if claimed:
            await asyncio.gather(*(self._guarded(nid, tok) for nid, tok in claimed))
        self.ticks += 1
        return len(claimed)

    async def _guarded(self, nid: str, token: str) -> None:
        async with self.sem:
            try:
                await self.handle(nid, token)
            except Exception:
                # the claim's lease expires and the notification is tried again
                log.exception("dispatcher: notification %s failed unexpectedly", nid)

    async def handle(self, nid: str, token: str) -> None:
        h = await self.store.get(nid)
        if h is None or h.get("status") in TERMINAL or h.get("status") == "held":
            await self.store.r.zrem(self.store.due_key, nid)
            return
        if h.get("claim") != token:
            return
        ch = h.get("channel")
        if ch == "sms":
            await self._sms(nid, token, h)
        elif ch in ("push", "escalation"):
            await self._push(nid, token, h, json.loads(h.get("payload") or "{}"), ch)
        elif ch == "digest" and h.get("daily") == "1":
            await self._daily(nid, token, h)
        elif ch == "digest":
            await self._digest(nid, token, h)
        else:
            await self.store.r.zrem(self.store.due_key, nid)

    async def _gate(self, nid: str, token: str, channel: str) -> Ticket | None:
        """A ticket to send, or None (and the notification postponed, its retry budget untouched)
        while the gateway is down."""
        br = self.breakers[channel]
        mono = self.clock.monotonic()
        ticket = br.allow(mono)
        if ticket is not None:
            return ticket
        wait_ms = int(max(0.0, br.retry_at - mono) * 1000) + random.randint(0, 500)  # noqa: S311
        await self.store.begin(nid, token, _ms(self.clock.now()) + wait_ms)
        return None

    async def _transient(
        self,
        nid: str,
        token: str,
        h: dict[str, str],
        attempts: int,
        err: TransientError,
        kind: str,
        ticket: Ticket,
    ) -> None:
        channel = "sms" if kind == "sms" else "push"
        br = self.breakers[channel]
        opened = br.opened
        is_open = br.failure(ticket, self.clock.monotonic())
        if br.opened > opened:
            log.warning("%s gateway down after %d consecutive errors; pausing sends", channel, br.consecutive)
            await self.store.incr(f'breaker_opened{{channel="{channel}"}}')
        if err.unknown and kind == "sms":
            await self._unknown_outcome(nid, token, attempts, err)
            return
        if is_open:
            # the gateway is down: wait for the breaker's next probe, keep the retry budget
            now = self.clock.now()
            wait_ms = int(max(0.0, br.retry_at - self.clock.monotonic()) * 1000)
            await self.store.complete(
                nid,
                token,
                "retrying",
                "delivery.gateway_down",
                now,
                detail=f"{err}; gateway down, next probe in {wait_ms / 1000:.1f}s",
                next_due_ms=_ms(now) + wait_ms,
                metric=f"{kind}_gateway_down",
            )
            return
        extra = [f'possible_duplicates{{channel="{channel}"}}'] if err.unknown else []
        await self._retry_or_fail(nid, token, h, attempts, str(err), kind, extra)

    async def _unknown_outcome(self, nid: str, token: str, attempts: int, err: TransientError) -> None:
        """The gateway may have the SMS: keep the attempt in flight and ask the gateway later.

        Not before the send timeout has passed once more, so that a request still queued at a
        slow gateway has been taken by the time the gateway is asked.
        """
        now = self.clock.now()
        delay = max(self.s.sms_status_recheck_s, self.s.sms_timeout_s)
        await self.store.complete(
            nid,
            token,
            "retrying",
            "delivery.unknown",
            now,
            detail=f"attempt {attempts}: {err}; outcome unknown, the gateway is asked in {delay:g}s",
            next_due_ms=_ms(now) + int(delay * 1000),
            metric=["sms_retry", 'unknown_outcomes{channel="sms"}'],
            fields={"attempts": str(attempts)},
            keep_inflight=True,
        )

    async def _begin(self, nid: str, token: str, attempt: int | None = None) -> bool:
        """The claim is still ours and its lease now covers the send (else another replica has it).

        With ``attempt``, the attempt is recorded as in flight before the send.
        """
        now_ms = _ms(self.clock.now())
        until = now_ms + int(self.s.notifier_lease_s * 1000)
        ok = await self.store.begin(nid, token, until, attempt, now_ms)
        if not ok:
            log.info("notification %s: claim lost to another replica; not sending", nid)
        return ok

    # --- SMS ----------------------------------------------------------------------------------
    async def _sms(self, nid: str, token: str, h: dict[str, str]) -> None:
        note = ""
        if h.get("inflight"):
            go_on, note = await self._reconcile(nid, token, h)
            if not go_on:
                return
        phone = await self._sms_checks(nid, token, h)
        if phone is None:
            return
        attempts = int(h.get("attempts") or 0) + 1
        ticket = await self._gate(nid, token, "sms")
        if ticket is None:
            return
        if not await self._begin(nid, token, attempt=attempts):
            self.breakers["sms"].release(ticket)
            return
        try:
            gid = await self.sms.send_sms(phone, h.get("text", ""), nid)
        except TransientError as e:
            await self._transient(nid, token, h, attempts, e, "sms", ticket)
            return
        except PermanentError as e:
            self.breakers["sms"].success(ticket)  # the gateway answered
            await self._fail(nid, token, h, attempts, str(e), "sms")
            return
        self.breakers["sms"].success(ticket)
        landlord = h.get("recipient") == "landlord"
        metric = "landlord_sms_sent" if landlord else "sms_sent"
        await self._sent(nid, token, attempts, gid, metric, f"attempt {attempts}{note}")
        who = "the landlord " if landlord else ""
        log.info("sms %s sent to %s%s (attempt %d)", nid, who, mask_phone(phone), attempts)

    async def _sent(
        self, nid: str, token: str, attempts: int, gid: str, metric: str | list[str], detail: str
    ) -> None:
        done = self.clock.now()
        await self.store.complete(
            nid,
            token,
            "sent",
            "",
            done,
            detail=detail,
            metric=metric,
            fields={"attempts": str(attempts), "gateway_id": gid, "sent_at": iso(done)},
        )

    async def _reconcile(self, nid: str, token: str, h: dict[str, str]) -> tuple[bool, str]:
        """Settle the attempt in flight with the gateway first; (True, why) when the SMS may be sent now."""
        attempts, checks = int(h.get("attempts") or 0), int(h.get("checks") or 0)
        try:
            answer, error = await self.sms.sms_status(nid), ""
        except TransientError as e:
            answer, error = None, str(e)
        r = decide(
            answer, error, attempts, self.s.delivery_max_attempts, checks, self.s.sms_status_max_checks
        )
        now = self.clock.now()
        detail = f"attempt {h.get('inflight')}: {r.detail}"
        if r.action == "sent":
            await self._sent(nid, token, attempts, r.gateway_id, ["sms_sent", *r.metrics], detail)
            log.info("sms %s: the gateway has it (attempt %s); not sent again", nid, h.get("inflight"))
        elif r.action == "wait":
            delay = self.s.sms_status_recheck_s
            await self.store.complete(
                nid,
                token,
                "retrying",
                "delivery.unknown",
                now,
                detail=f"{detail}; asked again in {delay:g}s",
                next_due_ms=_ms(now) + int(delay * 1000),
                metric=r.metrics,
                fields={"checks": str(checks + 1)},
                keep_inflight=True,
            )
        elif r.action == "retry":
            await self._retry_or_fail(nid, token, h, attempts, r.detail, "sms", r.metrics)
        elif r.action == "fail":
            await self._fail(nid, token, h, attempts, r.detail, "sms", r.metrics)
        else:
            if not await self.store.settle(nid, token):
                return False, ""  # the claim went to another replica meanwhile
            for m in r.metrics:
                await self.store.incr(m)
            log.info("sms %s: %s", nid, detail)
            return True, f" ({detail})"
        return False, ""

    async def _sms_checks(self, nid: str, token: str, h: dict[str, str]) -> str | None:
        """The phone to send to now; None when moderation at send time suppressed or deferred the SMS."""
        now = self.clock.now()
        cid, phone = h.get("customer_id", ""), h.get("phone", "")
        rec = (await self.store.customers([cid])).get(cid)
        to_landlord = h.get("recipient") == "landlord"
        if to_landlord:
            # a landlord's text names that landlord and this home: sent only to the landlord it
            # was planned for, while the record still names them for a rented home (a deleted
            # customer, an owner now, another landlord: suppressed, never re-addressed)
            ll = landlord_of(rec) if rec is not None else None
            if ll is None or ll.phone != phone:
                why = "landlord.none" if ll is None else "landlord.changed"
                await self.store.complete(nid, token, "suppressed", why, now, metric="sms_suppressed")
                return None
        elif rec is not None and rec.phone != phone:
            # the registry changed the number since the SMS was planned: the old one may be
            # someone else's now
            if not rec.phone:
                await self.store.complete(
                    nid, token, "suppressed", "customer.no_phone", now, metric="sms_suppressed"
                )
                return None
            phone = rec.phone
            await self.store.r.hset(self.store.notif_key(nid), "phone", phone)
        overrides = await self.store.consent_overrides(cid, phone)
        if to_landlord:  # texted unless the landlord's number replied STOP (not the tenant's consent)
            registry, overrides = True, overrides[1:]
        else:
            registry = rec.sms_opt_in if rec is not None else h.get("registry_opt_in") == "1"
        consent, _ = effective_consent(registry, overrides)
        if not consent:
            await self.store.complete(
                nid, token, "suppressed", "moderation.opted_out", now, metric="sms_suppressed"
            )
            return None
        tz = h.get("timezone") or "Asia/Shanghai"
        qs, qe = self.s.quiet_hours_start, self.s.quiet_hours_end
        if in_quiet_hours(now, tz, qs, qe):
            until = quiet_hours_end(now, tz, qs, qe)
            await self.store.complete(
                nid,
                token,
                "deferred",
                "moderation.quiet_hours",
                now,
                detail=f"until {iso(until)}",
                next_due_ms=_ms(until),
                metric="sms_deferred",
            )
            return None
        return phone

    async def _retry_or_fail(
        self,
        nid: str,
        token: str,
        h: dict[str, str],
        attempts: int,
        err: str,
        kind: str,
        extra_metrics: list[str] | None = None,
    ) -> None:
        if attempts >= self.s.delivery_max_attempts:
            await self._fail(nid, token, h, attempts, err, kind, extra_metrics)
            return
        now = self.clock.now()
        delay = backoff_s(attempts, self.s.delivery_backoff_base_s, self.s.delivery_backoff_max_s)
        await self.store.complete(
            nid,
            token,
            "retrying",
            "delivery.error",
            now,
            detail=f"attempt {attempts}: {err}; next in {delay:.2f}s",
            next_due_ms=_ms(now) + int(delay * 1000),
            metric=[f"{kind}_retry", *(extra_metrics or [])],
            fields={"attempts": str(attempts)},
        )

    async def _fail(
        self,
        nid: str,
        token: str,
        h: dict[str, str],
        attempts: int,
        err: str,
        kind: str,
        extra_metrics: list[str] | None = None,
    ) -> None:
        now = self.clock.now()
        ok = await self.store.complete(
            nid,
            token,
            "failed",
            "delivery.failed",
            now,
            detail=f"attempt {attempts}: {err}",
            metric=[f"{kind}_failed", *(extra_metrics or [])],
            fields={"attempts": str(attempts)},
        )
        if ok and kind == "sms":
            await self.escalate(nid, h, attempts, err, now)

    async def escalate(self, nid: str, h: dict[str, str], attempts: int, err: str, now: dt.datetime) -> None:
        """Tell the manager that the SMS did not reach the customer (push + inbox), once.

        Not for a landlord's SMS: the manager's item of the alert already names the landlord to call.
        """
        if h.get("recipient") == "landlord":
            return
        mgr = h.get("manager_id") or self.s.notifier_unassigned_manager
        cid = h.get("customer_id", "")
        enid = make_nid("escalation", nid)
        text = escalation_text(cid, err, attempts)
        payload: dict[str, Any] = {
            "kind": "escalation",
            "notification_id": enid,
            "failed_notification_id": nid,
            "manager_id": mgr,
            "customer_id": cid,
            "alert_id": h.get("alert_id", ""),
            "title": f"SMS failed · {cid}",
            "text": text,
        }
        item = {
            "id": make_nid("inbox", "escalation", nid),
            "kind": "escalation",
            "at": iso(now),
            "manager_id": mgr,
            "customer_id": cid,
            "title": payload["title"],
            "text": text,
            "notification_ids": [nid, enid],
        }
        await self.store.create(
            enid,
            {
                "id": enid,
                "alert_id": h.get("alert_id", ""),
                "channel": "escalation",
                "customer_id": cid,
                "manager_id": mgr,
                "payload": json.dumps(payload, ensure_ascii=False),
                "status": "queued",
                "reason": "",
                "attempts": "0",
                "claim": "0",
                "created_at": iso(now),
                "due_ms": str(_ms(now)),
            },
            _ms(now),
            now,
            f"escalation of {nid}",
            "escalations",
            inbox=(mgr, float(_ms(now)), json.dumps(item, ensure_ascii=False), self.s.notifier_inbox_max),
        )

    # --- manager push ----------------------------------------------------------------------------
    async def _push(
        self, nid: str, token: str, h: dict[str, str], payload: dict[str, Any], kind: str
    ) -> None:
        attempts = int(h.get("attempts") or 0) + 1
        ticket = await self._gate(nid, token, "push")
        if ticket is None:
            return
        if not await self._begin(nid, token):
            self.breakers["push"].release(ticket)
            return
        try:
            gid = await self.push.send_push(h.get("manager_id", ""), payload, nid)
        except TransientError as e:
            await self._transient(nid, token, h, attempts, e, kind, ticket)
            return
        except PermanentError as e:
            self.breakers["push"].success(ticket)
            await self._fail(nid, token, h, attempts, str(e), kind)
            return
        self.breakers["push"].success(ticket)
        await self._sent(nid, token, attempts, gid, f"{kind}_sent", f"attempt {attempts}")

    async def _daily(self, nid: str, token: str, h: dict[str, str]) -> None:
        """The manager's daily digest (notifier.dailydigest): rank, release, fold, then push it."""
        now = self.clock.now()
        v = await dailydigest.make(self.store, self.s, nid, h, now)
        if v.folded_count == 0:  # every alert of the day went out on its own: nothing to digest
            await self.store.complete(
                nid, token, "cancelled", "digest.nothing_folded", now, metric="digest_empty"
            )
            self.wake()
            return
        if h.get("inboxed") != "1":
            item = dailydigest.inbox_item(v, nid, now)
            await self.store.add_inbox(v.manager_id, float(_ms(now)), item, self.s.notifier_inbox_max)
            await self.store.r.hset(self.store.notif_key(nid), "inboxed", "1")
        self.wake()  # the released pushes are due now
        recs = await self.store.customers(list({i.customer_id for i in v.items}))
        landlords = {c: ll.model_dump() for c, r in recs.items() if (ll := landlord_of(r)) is not None}
        await self._push(nid, token, h, dailydigest.payload(v, nid, landlords), "digest")

    async def _digest(self, nid: str, token: str, h: dict[str, str]) -> None:
        mgr = h.get("manager_id", "")
        items = await self.store.digest_items(h.get("items_key", ""))
        customers = list(dict.fromkeys(str(i.get("customer_id")) for i in items))
        hour = int(h.get("hour") or 0)
        at = dt.datetime.fromtimestamp((hour + 1) * 3600, dt.UTC)
        text = digest_text(mgr, len(items), customers)
        payload = {
            "kind": "digest",
            "notification_id": nid,
            "manager_id": mgr,
            "hour_start": iso(at - dt.timedelta(hours=1)),
            "count": len(items),
            "items": items,
            "title": f"{len(items)} alerts",
            "text": text,
        }
        if h.get("inboxed") != "1":
            item = {
                "id": make_nid("inbox", "digest", nid),
                "kind": "digest",
                "at": iso(at),
                "manager_id": mgr,
                "title": payload["title"],
                "text": text,
                "notification_ids": [nid, *(str(i.get("notification_id")) for i in items)],
            }
            await self.store.add_inbox(
                mgr, float(_ms(at)), json.dumps(item, ensure_ascii=False), self.s.notifier_inbox_max
            )
            await self.store.r.hset(self.store.notif_key(nid), "inboxed", "1")
        await self._push(nid, token, h, payload, "digest")
