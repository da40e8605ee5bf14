"""A tiny auto-pipelining Redis client for the API's hot reads.

Every ``GET``/``MGET`` of the hot path goes through ONE connection: commands
issued while the event loop is busy are written together in one ``write``, and
replies are matched to callers in order (Redis answers in order on a
connection). Under concurrency, that turns N round trips (and N wake-ups of
the Redis process) into one — on a small, shared machine the difference
between a p99 of tens of milliseconds and a few. Replies are parsed by
``hiredis``. Everything else (pipelines, sorted sets, tokens) uses redis-py.

Errors are redis-py's exception types (``redis.exceptions.ConnectionError``,
``TimeoutError``, ``ResponseError``), so the API's error handlers treat both
clients alike. A broken or silent connection fails every waiting caller and is
re-opened by the next command.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


class MuxRedis:
    """One auto-pipelined connection to the Redis of ``url`` (``redis://[user:pass@]host:port/db``)."""

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        u = urlparse(url)
        if u.scheme != "redis":
            raise ValueError(f"unsupported Redis URL scheme for the hot-path client: {u.scheme!r}")
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 6379
        self.db = int((u.path or "/0").lstrip("/") or 0)
        self.username = unquote(u.username) if u.username else None
        self.password = unquote(u.password) if u.password else None
        self.timeout_s = timeout_s
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._last_io = 0.0

    # --- public ------------------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        reply: bytes | None = await self.execute("GET", key)
        return reply

    async def mget(self, *keys: str) -> list[bytes | None]:
        reply: list[bytes | None] = await self.execute("MGET", *keys)
        return reply

    async def execute(self, *args: str | bytes | int | float) -> Any:
        if self._writer is None or self._writer.is_closing():
            await self._connect()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if not self._waiting:
            self._last_io = time.monotonic()
        self._waiting.append(fut)
        self._out.append(hiredis.pack_command(args))  # type: ignore[arg-type]  # stub says 1-tuple
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await fut

    async def aclose(self) -> None:
        writer, self._writer = self._writer, None
        self._fail(RedisConnectionError("client closed"))
        for task in (self._reader_task, self._watchdog):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self._reader_task = self._watchdog = None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # --- internals -----------------------------------------------------------------------
    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._out and self._writer is not None and not self._writer.is_closing():
            self._writer.write(b"".join(self._out))
        self._out.clear()

    async def _connect(self) -> None:
        if self._connecting is not None:  # another caller is connecting: wait for it
            await asyncio.shield(self._connecting)
            return
        self._connecting = asyncio.get_running_loop().create_future()
        try:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.timeout_s
                )
            except (OSError, TimeoutError) as exc:
                raise RedisConnectionError(
                    f"cannot connect to Redis at {self.host}:{self.port}: {exc}"
                ) from exc
            parser = hiredis.Reader()
            hello: list[tuple[Any, ...]] = []
            if self.password is not None:
                hello.append(
                    ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
                )
            if self.db:
                hello.append(("SELECT", self.db))
            if hello:
                writer.write(b"".join(hiredis.pack_command(c) for c in hello))
                for _ in hello:
                    reply = await self._read_one(reader, parser)
                    if isinstance(reply, hiredis.ReplyError):
                        writer.close()
                        raise RedisConnectionError(f"Redis refused the connection setup: {reply}")
            self._writer = writer
            self._reader_task = asyncio.create_task(self._read_loop(reader, parser, writer))
            if self._watchdog is None or self._watchdog.done():
                self._watchdog = asyncio.create_task(self._watch())
            self._connecting.set_result(None)
        except BaseException as exc:
            self._connecting.set_exception(
                exc if isinstance(exc, Exception) else RedisConnectionError("cancelled")
            )
            self._connecting.exception()  # mark retrieved
            raise
        finally:
            self._connecting = None

    async def _read_one(self, reader: asyncio.StreamReader, parser: hiredis.Reader) -> Any:
        while True:
            reply = parser.gets()
            if reply is not False:
                return reply
            data = await asyncio.wait_for(reader.read(65536), self.timeout_s)
            if not data:
                raise RedisConnectionError("Redis closed the connection")
            parser.feed(data)

    async def _read_loop(
        self, reader: asyncio.StreamReader, parser: hiredis.Reader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    raise RedisConnectionError("Redis closed the connection")
                self._last_io = time.monotonic()
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    fut = self._waiting.popleft()
                    if fut.done():  # the caller went away (cancelled); its reply is dropped
                        continue
                    if isinstance(reply, hiredis.ReplyError):
                        fut.set_exception(ResponseError(str(reply)))
                    else:
                        fut.set_result(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            err = exc if isinstance(exc, RedisConnectionError) else RedisConnectionError(str(exc))
            self._drop(writer, err)

    async def _watch(self) -> None:
        """Fail a connection that owes replies and has been silent for longer than the timeout."""
        while True:
            await asyncio.sleep(min(0.5, self.timeout_s / 2))
            if self._waiting and time.monotonic() - self._last_io > self.timeout_s and self._writer:
                self._drop(self._writer, RedisTimeoutError(f"no reply from Redis in {self.timeout_s:g} s"))

    def _drop(self, writer: asyncio.StreamWriter, err: Exception) -> None:
        if self._writer is writer:
            self._writer = None
            self._fail(err)
            if self._reader_task is not None and self._reader_task is not asyncio.current_task():
                self._reader_task.cancel()
            self._reader_task = None
        writer.close()

    def _fail(self, err: Exception) -> None:
        waiting, self._waiting = self._waiting, deque()
        self._out.clear()
        for fut in waiting:
            if not fut.done():
                fut.set_exception(err)
