"""Test doubles for what lies outside the utility: an SMS gateway and a push gateway.

Both are real HTTP servers on loopback (stdlib ``ThreadingHTTPServer`` in a
thread) that record every request they receive and can be told to fail (with
a status code, for the next N requests or always) or to be slow. Like many
real gateways, the fake honours the client reference (``Idempotency-Key``):
``deliveries`` holds one entry per reference (what reaches the handset), while
``requests`` holds every request (what crossed the wire); ``duplicates`` counts
the requests for a reference it had already accepted (what a gateway that does
not honour the key would send to the handset twice).

It implements the status query of the gateway contract (docs/notifier.md):
``GET /status/{reference}`` answers ``{"status": "accepted", "id": ...}`` for a
reference it accepted (from the moment the send request arrived, even while its
answer is still delayed) and 404 for one it never accepted; ``status_fail_next``
makes the next N status queries answer 503, ``status_supported=False`` answers 501.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    at: float  # time.time() on receipt
    path: str
    headers: dict[str, str]
    body: Any
    reference: str


@dataclass
class FakeGateway:
    """A recording HTTP gateway on 127.0.0.1 (start() / stop())."""

    name: str = "gateway"
    requests: list[Received] = field(default_factory=list)
    deliveries: dict[str, Received] = field(default_factory=dict)
    fail_status: int = 500
    fail_next: int = 0
    fail_always: bool = False
    delay_s: float = 0.0  # every request
    slow_next: int = 0  # the next N requests take slow_s
    slow_s: float = 0.0
    slow_every: int = 0  # every Nth request takes slow_s (benchmarks)
    duplicates: int = 0
    status_requests: list[str] = field(default_factory=list)
    status_fail_next: int = 0
    status_supported: bool = True
    drop_next: int = 0  # the next N requests are read, not accepted, and the connection is closed unanswered
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cond: threading.Condition = field(init=False)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._cond = threading.Condition(self._lock)

    # --- control --------------------------------------------------------------------
    def start(self) -> FakeGateway:
        gw = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # silence
                return

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                ref = self.headers.get("Idempotency-Key") or (
                    body.get("reference", "") if isinstance(body, dict) else ""
                )
                rec = Received(time.time(), self.path, dict(self.headers.items()), body, ref)
                with gw._cond:
                    gw.requests.append(rec)
                    if gw.drop_next > 0:
                        gw.drop_next -= 1
                        gw._cond.notify_all()
                        self.close_connection = True
                        return
                    fail = gw.fail_always or gw.fail_next > 0
                    if gw.fail_next > 0:
                        gw.fail_next -= 1
                    delay = gw.delay_s
                    if gw.slow_next > 0:
                        gw.slow_next -= 1
                        delay += gw.slow_s
                    elif gw.slow_every and len(gw.requests) % gw.slow_every == 0:
                        delay += gw.slow_s
                    if not fail and ref in gw.deliveries:
                        gw.duplicates += 1
                    elif not fail:
                        gw.deliveries[ref] = rec
                    gw._cond.notify_all()
                if delay:
                    time.sleep(delay)
                status = gw.fail_status if fail else 200
                self._answer(status, {"id": f"{gw.name}-{len(gw.requests)}"} if not fail else {"error": "x"})

            def do_GET(self) -> None:
                ref = self.path.rsplit("/", 1)[-1]
                with gw._cond:
                    gw.status_requests.append(ref)
                    failing = gw.status_fail_next > 0
                    if failing:
                        gw.status_fail_next -= 1
                    known = gw.deliveries.get(ref)
                if not self.path.startswith("/status/") or not gw.status_supported:
                    self._answer(501, {"error": "no status API"})
                elif failing:
                    self._answer(503, {"error": "try later"})
                elif known is None:
                    self._answer(404, {"status": "unknown"})
                else:
                    self._answer(200, {"status": "accepted", "id": f"{gw.name}-{ref}"})

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                head = (
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                )
                try:
                    self.wfile.write(head.encode() + data)  # one write: no Nagle/delayed-ACK stall
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 512  # the notifier opens up to 32+ connections at once

            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a client killed mid-request (kill -9 tests) is expected here

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/send"

    @property
    def status_url(self) -> str:
        """The status query of the gateway contract (``MW_SMS_HTTP_STATUS_URL``)."""
        return self.url.rsplit("/", 1)[0] + "/status/{notification_id}"

    # --- inspection ------------------------------------------------------------------
    def refs(self) -> list[str]:
        with self._lock:
            return [r.reference for r in self.requests]

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.body for r in self.requests]

    def wait_requests(self, n: int, timeout: float = 20.0) -> bool:
        deadline = time.time() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.time()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def wait_deliveries(self, n: int, timeout: float = 20.0) -> bool:
        deadline = time.time() + timeout
        with self._cond:
            while len(self.deliveries) < n:
                left = deadline - time.time()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True
