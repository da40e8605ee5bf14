"""A bound on HTTP request bodies, for the Ops API and the notifier (pure ASGI middleware).

A body larger than ``max_bytes`` is never read, let alone parsed: with a
``Content-Length`` over the bound, the app's first read of the body raises a 413
``HTTPException`` at once; a chunked body is counted while it arrives and refused
as soon as it passes the bound. The 413 is rendered by the app's own error handler
(so each service keeps its error format); the server discards the rest of the upload
unparsed and the connection stays usable. Routes that never read a body are not affected.

>>> import asyncio
>>> from starlette.exceptions import HTTPException
>>> async def app(scope, receive, send):
...     while (await receive()).get("more_body"):
...         pass
>>> chunks = [{"type": "http.request", "body": b"x" * 600, "more_body": True}] * 2
>>> async def receive():
...     return chunks.pop(0)
>>> scope = {"type": "http", "headers": []}
>>> try:
...     asyncio.run(BodyLimit(app, max_bytes=1000, setting="MW_X")(scope, receive, None))
... except HTTPException as e:
...     print(e.status_code, e.detail)
413 request body larger than 1000 bytes (MW_X)
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 (``max_bytes <= 0``: no bound)."""

    def __init__(self, app: ASGIApp, max_bytes: int, setting: str = "") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = f"request body larger than {max_bytes} bytes" + (f" ({setting})" if setting else "")

    def _too_large(self) -> HTTPException:
        return HTTPException(413, self.message)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:

            async def refuse() -> Message:
                raise self._too_large()

            await self.app(scope, refuse, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
