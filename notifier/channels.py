"""Channels behind one interface: the HTTP SMS gateway, the console SMS (demos), the push webhook.

A channel either returns a gateway id, or raises ``TransientError`` (retry with
backoff: timeouts, connection errors, 5xx, 408, 429) or ``PermanentError`` (no
retry: other 4xx). The notification id travels as the gateway reference /
``Idempotency-Key`` so the receiving side can drop a duplicate.

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
from typing import Any, Protocol
from urllib.parse import quote_plus

import httpx

from meterwatch.logs import mask_phone
from meterwatch.settings import Settings

log = logging.getLogger("meterwatch.notifier.channels")


class DeliveryError(Exception):
    pass


class TransientError(DeliveryError):
    """Worth retrying (timeout, connection refused, 5xx, 408, 429)."""


class PermanentError(DeliveryError):
    """Retrying will not help (4xx other than 408/429)."""


class SmsChannel(Protocol):
    name: str

    async def send_sms(self, phone: str, text: str, notification_id: str) -> str: ...


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


async def _post(client: httpx.AsyncClient, url: str, **kw: Any) -> httpx.Response:
    try:
        resp = await client.post(url, **kw)
    except httpx.TimeoutException as e:
        raise TransientError(f"timeout: {type(e).__name__}") from e
    except httpx.TransportError as e:
        raise TransientError(f"transport: {type(e).__name__}") from e
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

    async def send_sms(self, phone: str, text: str, notification_id: str) -> str:
        body, ctype = render_body(self.template, phone, text, notification_id)
        headers = {"Content-Type": ctype, "Idempotency-Key": notification_id}
        if self.auth:
            headers[self.auth[0]] = self.auth[1]
        resp = await _post(
            self.client, self.url, content=body.encode(), headers=headers, timeout=self.timeout
        )
        return _gateway_id(resp)


class ConsoleSms:
    """Writes the SMS to the log (phone masked) instead of sending it: for demos."""

    name = "console"

    async def send_sms(self, phone: str, text: str, notification_id: str) -> str:
        log.info("SMS %s to %s: %s", notification_id, mask_phone(phone), text)
        return f"console-{notification_id}"


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
