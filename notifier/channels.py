"""Channels behind one interface: the HTTP SMS gateway, the console SMS (demos), the push webhook.

A channel either returns a gateway id, or raises ``TransientError`` (retry with
backoff: timeouts, connection errors, 5xx, 408, 429) or ``PermanentError`` (no
retry: other 4xx). The notification id travels as the gateway reference /
``Idempotency-Key`` so the receiving side can drop a duplicate.

A ``TransientError`` says whether the request may have reached the gateway
(``unknown``): a timeout or a connection dropped after the request was written
leaves the outcome unknown, and the dispatcher asks the gateway's status endpoint
(``sms_status``, ``MW_SMS_HTTP_STATUS_URL``) before it sends again; a refused
connection or an HTTP error answer means the gateway did not take the message.
See docs/notifier.md, "The SMS gateway contract".

>>> classify_status({"status": "DELIVERED", "id": "g-1"})
StatusAnswer(status='accepted', gateway_id='g-1', detail='DELIVERED')
>>> classify_status({"state": "rejected"}).status, classify_status({"status": "unknown"}).status
('failed', 'absent')

>>> body, ctype = render_body('{"to": "{phone}", "text": "{text}", "ref": "{notification_id}"}',
...                           "+8613800000000", 'say "hi"', "n_1")
>>> ctype, json.loads(body)["text"]
('application/json', 'say "hi"')
>>> render_body("to={phone}&msg={text}", "+8613800000000", "a b&c", "n_1")
('to=%2B8613800000000&msg=a+b%26c', 'application/x-www-form-urlencoded')
>>> auth_header("Bearer abc"), auth_header("X-Api-Key: k1"), auth_header("")
(('Authorization', 'Bearer abc'), ('X-Api-Key', 'k1'), None)
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote, quote_plus

import httpx

from meterwatch.logs import mask_phone
from meterwatch.settings import Settings

log = logging.getLogger("meterwatch.notifier.channels")


class DeliveryError(Exception):
    pass


class TransientError(DeliveryError):
    """Worth retrying (timeout, connection refused, 5xx, 408, 429).

    ``unknown``: the request may have reached the gateway (read/write timeout, connection
    dropped mid-request); the gateway may have accepted it.
    """

    def __init__(self, message: str, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


class PermanentError(DeliveryError):
    """Retrying will not help (4xx other than 408/429)."""


GatewayStatus = Literal["accepted", "failed", "absent", "unsupported"]

#: status words of the gateway's status endpoint (case-insensitive); anything else is "accepted"
FAILED_WORDS = frozenset({"failed", "undelivered", "rejected", "expired", "error", "cancelled", "canceled"})
ABSENT_WORDS = frozenset({"unknown", "not_found", "notfound", "absent"})


@dataclass(frozen=True)
class StatusAnswer:
    """What the gateway knows of a message: it has it (``accepted``), it took it and failed,
    it never received it (``absent``), or it cannot tell (``unsupported``: no status API)."""

    status: GatewayStatus
    gateway_id: str = ""
    detail: str = ""


class SmsChannel(Protocol):
    name: str

    async def send_sms(self, phone: str, text: str, notification_id: str) -> str: ...

    async def sms_status(self, notification_id: str) -> StatusAnswer: ...


class PushChannel(Protocol):
    name: str

    async def send_push(self, manager_id: str, payload: dict[str, Any], notification_id: str) -> str: ...


def render_body(template: str, phone: str, text: str, notification_id: str) -> tuple[str, str]:
    """Fill the gateway body template; JSON templates get JSON-escaped values, others URL-encoded."""
    is_json = template.lstrip().startswith("{")

    def esc(v: str) -> str:
        return json.dumps(v, ensure_ascii=False)[1:-1] if is_json else quote_plus(v)

    values = {"phone": esc(phone), "text": esc(text), "notification_id": esc(notification_id)}
    body = re.sub(r"\{(phone|text|notification_id)\}", lambda m: values[m.group(1)], template)
    if is_json:
        json.loads(body)  # a broken template is a configuration error, raised early
        return body, "application/json"
    return body, "application/x-www-form-urlencoded"


def auth_header(value: str) -> tuple[str, str] | None:
    """``"Name: value"`` gives that header; anything else is the Authorization value."""
    if not value:
        return None
    m = re.match(r"^([A-Za-z0-9-]+):\s*(.+)$", value)
    if m:
        return m.group(1), m.group(2)
    return "Authorization", value


def classify_status(data: Any) -> StatusAnswer:
    """A status endpoint's JSON answer (``{"status": ..., "id": ...}``) as a ``StatusAnswer``."""
    if not isinstance(data, dict):
        return StatusAnswer("accepted", detail="answer without a status")
    word = str(data.get("status") or data.get("state") or "").strip()
    gid = next((str(data[k])[:128] for k in ("id", "message_id", "messageId", "sid") if k in data), "")
    key = word.lower()
    if key in ABSENT_WORDS:
        return StatusAnswer("absent", gid, word[:64])
    if key in FAILED_WORDS:
        return StatusAnswer("failed", gid, word[:64])
    return StatusAnswer("accepted", gid, word[:64])


def _classify(resp: httpx.Response) -> None:
    if resp.is_success:
        return
    msg = f"HTTP {resp.status_code}"
    if resp.status_code >= 500 or resp.status_code in (408, 429):
        raise TransientError(msg)
    raise PermanentError(msg)


def _gateway_id(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return ""
    if isinstance(data, dict):
        for k in ("id", "message_id", "messageId", "sid"):
            if k in data:
                return str(data[k])[:128]
    return ""


#: failures after which the request cannot have reached the gateway (the rest may have)
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


async def _request(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> httpx.Response:
    try:
        return await client.request(method, url, **kw)
    except httpx.TimeoutException as e:
        raise TransientError(f"timeout: {type(e).__name__}", unknown=not isinstance(e, _NOT_SENT)) from e
    except httpx.TransportError as e:
        raise TransientError(f"transport: {type(e).__name__}", unknown=not isinstance(e, _NOT_SENT)) from e


async def _post(client: httpx.AsyncClient, url: str, **kw: Any) -> httpx.Response:
    resp = await _request(client, "POST", url, **kw)
    _classify(resp)
    return resp


class HttpSms:
    """An HTTP SMS gateway: configurable URL, auth header and body template."""

    name = "http"

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        if not settings.sms_http_url:
            raise ValueError("MW_SMS_PROVIDER=http needs MW_SMS_HTTP_URL")
        self.url = settings.sms_http_url
        self.template = settings.sms_http_body_template
        render_body(self.template, "+10000000000", "x", "n")  # validate the template at start
        self.auth = auth_header(settings.sms_http_auth_header.get_secret_value())
        self.timeout = settings.sms_timeout_s
        self.client = client
        self.status_url = settings.sms_http_status_url
        if self.status_url and "{notification_id}" not in self.status_url:
            raise ValueError("MW_SMS_HTTP_STATUS_URL must contain {notification_id}")

    async def send_sms(self, phone: str, text: str, notification_id: str) -> str:
        body, ctype = render_body(self.template, phone, text, notification_id)
        headers = {"Content-Type": ctype, "Idempotency-Key": notification_id}
        if self.auth:
            headers[self.auth[0]] = self.auth[1]
        resp = await _post(
            self.client, self.url, content=body.encode(), headers=headers, timeout=self.timeout
        )
        return _gateway_id(resp)

    async def sms_status(self, notification_id: str) -> StatusAnswer:
        """Ask the gateway what became of ``notification_id`` (raises ``TransientError`` when it cannot)."""
        if not self.status_url:
            return StatusAnswer("unsupported", detail="no MW_SMS_HTTP_STATUS_URL")
        url = self.status_url.replace("{notification_id}", quote(notification_id, safe=""))
        headers = {"Idempotency-Key": notification_id}
        if self.auth:
            headers[self.auth[0]] = self.auth[1]
        resp = await _request(self.client, "GET", url, headers=headers, timeout=self.timeout)
        if resp.status_code == 404:
            return StatusAnswer("absent", detail="HTTP 404")
        if resp.status_code >= 500 or resp.status_code in (408, 429):
            raise TransientError(f"status query: HTTP {resp.status_code}")
        if not resp.is_success:
            return StatusAnswer("unsupported", detail=f"status query: HTTP {resp.status_code}")
        try:
            return classify_status(resp.json())
        except ValueError:
            return StatusAnswer("accepted", detail="status answer is not JSON")


class ConsoleSms:
    """Writes the SMS to the log (phone masked) instead of sending it: for demos."""

    name = "console"

    async def send_sms(self, phone: str, text: str, notification_id: str) -> str:
        log.info("SMS %s to %s: %s", notification_id, mask_phone(phone), text)
        return f"console-{notification_id}"

    async def sms_status(self, notification_id: str) -> StatusAnswer:
        return StatusAnswer("unsupported", detail="console SMS")


class WebhookPush:
    """POSTs the push payload (JSON) to the push gateway; without a URL, the inbox is the channel."""

    name = "webhook"

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.url = settings.push_webhook_url
        self.timeout = settings.push_timeout_s
        self.client = client

    async def send_push(self, manager_id: str, payload: dict[str, Any], notification_id: str) -> str:
        if not self.url:
            return "inbox-only"
        resp = await _post(
            self.client,
            self.url,
            json=payload,
            headers={"Idempotency-Key": notification_id},
            timeout=self.timeout,
        )
        return _gateway_id(resp)


def make_sms_channel(settings: Settings, client: httpx.AsyncClient) -> SmsChannel:
    return HttpSms(settings, client) if settings.sms_provider == "http" else ConsoleSms()
