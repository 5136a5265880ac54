"""The one fake Bot API (`bot.fakeapi.core`) over real HTTP, enforcing Telegram's limits.

    .venv/bin/python -m bot.fakeapi.process --port 0 --rate 30     # prints READY <url>

Answers ``/bot<token>/<method>`` on 127.0.0.1 only (HTTP/1.1 with keep-alive; JSON, form and
query parameters — PTB's HTTPXRequest posts ``application/x-www-form-urlencoded`` with
non-string values JSON-encoded), as strictly as the tests' transport (``--lax`` turns the
checks off). Like the real server it refuses a sendMessage with 429 and
``parameters.retry_after`` when it would make more than `rate` accepted sends in any sliding
one-second window bot-wide, a second send to one private chat within `per_chat_seconds`, or
more than `group_per_minute` sends to one group (a negative chat id) in a sliding minute. The
windows are strict: the fake measures
at the moment it has read a request, so a client pacing at exactly the ceiling with no margin
for network jitter will see 429s, as it may from Telegram.

Every accepted send is recorded (chat id, text, monotonic time in the server's process). Faults
are set in the constructor or, while it runs, through ``POST /_control`` (JSON): ``forbid`` and
``allow`` chat ids (403), ``fail_next`` requests answered `fail_status` (5xx), ``hang_next``
requests never answered (the client times out; nothing is delivered), and ``delay`` per chat:
the send is accepted and recorded, then its answer is held back that many seconds (delivered,
yet the client may time out or die waiting). ``GET /_stats`` returns the records and counters.
Faults apply to sendMessage only.

Use it in a running loop (``async with FakeBotApiServer(rate=30) as fake: fake.url``) or in a
child process (``async with FakeBotApiProcess(rate=300) as fake: await fake.stats()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from bot.fakeapi import spec
from bot.fakeapi.core import FakeBotApi
from bot.fakeapi.flood import Flood
from bot.fakeapi.records import Sent

HOST = "127.0.0.1"
MAX_HEAD_BYTES = 64 * 1024
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class _Hang(Exception):
    """The request is swallowed: no answer until the client gives up or the server stops."""


def _error(code: int, description: str, **parameters: Any) -> tuple[int, dict[str, Any]]:
    payload: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        payload["parameters"] = parameters
    return code, payload


class Running:
    """``async with`` starts the fake and stops it on the way out, in-process or as a child."""

    async def start(self) -> str:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


class FakeBotApiServer(Running):
    """The server, run inside the current event loop; its counters live on `api`."""

    def __init__(
        self,
        *,
        port: int = 0,
        rate: float = 30.0,
        per_chat_seconds: float = 1.0,
        group_per_minute: int = 20,
        token: str | None = None,
        forbidden: Iterable[int] = (),
        fail_next: int = 0,
        fail_status: int = 502,
        hang_next: int = 0,
        hang_seconds: float = 60.0,
        delay: Mapping[int, float] | None = None,
        strict: bool = True,
    ) -> None:
        self.port = port
        self.limits = Flood(rate, per_chat_seconds, group_per_minute)
        # A bench sends 100,000 messages: keep what stats() reports, not every call's body.
        self.api = FakeBotApi(
            strict=strict, username="cadre_fake_bot", flood=self.limits, log_calls=False
        )
        self.api.blocked.update(forbidden)
        self.token = token
        self.fail_next = fail_next
        self.fail_status = fail_status
        self.hang_next = hang_next
        self.hang_seconds = hang_seconds
        self.delay: dict[int, float] = dict(delay or {})
        self.failed = 0
        self.hung = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._serving: set[asyncio.Task[Any]] = set()

    @property
    def accepted(self) -> list[Sent]:
        return self.api.accepted

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL; PTB wants ``Bot(token, base_url=f"{url}/bot")``."""
        return f"http://{HOST}:{self.port}"

    async def start(self) -> str:
        self._server = await asyncio.start_server(
            self._serve, HOST, self.port, limit=MAX_HEAD_BYTES
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        pending = [*self._connections, *self._serving]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- records ---------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "accepted": [[a.chat_id, a.text, a.at, a.message_id] for a in self.accepted],
            "too_many": self.api.too_many,
            "forbidden": self.api.refused_forbidden,
            "failed": self.failed,
            "hung": self.hung,
            "requests": self.api.requests,
            "clock": time.monotonic(),
        }

    def control(self, changes: Mapping[str, Any]) -> None:
        """Apply faults and limits while running (the body of ``POST /_control``)."""
        api = self.api
        if changes.get("reset"):
            self.api = FakeBotApi(
                strict=api.strict, username=api.username, flood=self.limits, log_calls=False
            )
            self.api.blocked = api.blocked
            self.failed = self.hung = 0
            api = self.api
        api.blocked |= {int(c) for c in changes.get("forbid", ())}
        api.blocked -= {int(c) for c in changes.get("allow", ())}
        for chat, seconds in dict(changes.get("delay", {})).items():
            self.delay[int(chat)] = float(seconds)
        for chat in changes.get("undelay", ()):
            self.delay.pop(int(chat), None)
        for name in ("fail_next", "hang_next", "fail_status"):
            if name in changes:
                setattr(self, name, int(changes[name]))
        if "hang_seconds" in changes:
            self.hang_seconds = float(changes["hang_seconds"])
        if "group_per_minute" in changes:
            self.limits.group_per_minute = int(changes["group_per_minute"])
        for name in ("rate", "per_chat_seconds"):
            if name in changes:
                setattr(self.limits, name, float(changes[name]))

    # -- HTTP ------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # stop() cancels the inner task only: asyncio.start_server's own callback reports a
        # cancelled connection task as an error on Python 3.11.
        outer = asyncio.current_task()
        assert outer is not None
        task = asyncio.ensure_future(self._converse(reader, writer))
        self._connections.add(task)
        self._serving.add(outer)
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
        finally:
            writer.close()
            self._connections.discard(task)
            self._serving.discard(outer)

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                return
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            try:
                body = await self._read_body(reader, headers)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                return
            keep_alive = version.upper() != "HTTP/1.0" and (
                headers.get("connection", "").lower() != "close"
            )
            try:
                status, payload = await self._route(method.upper(), target, headers, body)
            except _Hang:
                # Hold the connection open without answering; the client times out.
                await asyncio.sleep(self.hang_seconds)
                return
            data = json.dumps(payload, ensure_ascii=False).encode()
            reason = REASONS.get(status, "Error")
            connection = "keep-alive" if keep_alive else "close"
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: {connection}\r\n\r\n".encode()
                + data
            )
            try:
                await writer.drain()
            except ConnectionError:
                return
            if not keep_alive:
                return

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                if size == 0:
                    # Trailers (none expected) end with an empty line.
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    return b"".join(chunks)
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
        length = int(headers.get("content-length", "0") or "0")
        return await reader.readexactly(length) if length else b""

    async def _route(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Any]:
        parts = urlsplit(target)
        params: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if body:
            if content_type == "application/json":
                try:
                    decoded = json.loads(body)
                except ValueError:
                    return _error(400, "Bad Request: can't parse JSON")
                if not isinstance(decoded, dict):
                    return _error(400, "Bad Request: JSON object expected")
                params.update(decoded)
            elif content_type == "application/x-www-form-urlencoded":
                params.update(parse_qsl(body.decode(), keep_blank_values=True))
            else:
                return _error(400, f"Bad Request: unsupported content type {content_type!r}")
        path = parts.path
        if path == "/_stats" and method == "GET":
            return 200, self.stats()
        if path == "/_control" and method == "POST":
            self.control(params)
            return 200, {"ok": True}
        segments = path.split("/")
        if len(segments) != 3 or not segments[1].startswith("bot"):
            return _error(404, "Not Found")
        token, api_method = segments[1].removeprefix("bot"), segments[2].lower()
        if self.token is not None and token != self.token:
            return _error(401, "Unauthorized")
        if api_method == "getupdates":
            # Long polling: nothing ever arrives, so wait out (a bounded part of) the timeout.
            with contextlib.suppress(ValueError):
                await asyncio.sleep(min(float(params.get("timeout", 0) or 0), 5.0))
        name = _METHODS.get(api_method)
        if name is None:
            return _error(404, "Not Found: method not found")
        if name == "sendMessage":
            if self.hang_next > 0:
                self.hang_next -= 1
                self.hung += 1
                raise _Hang
            if self.fail_next > 0:
                self.fail_next -= 1
                self.failed += 1
                return _error(self.fail_status, REASONS.get(self.fail_status, "Server Error"))
        # A form's JSON-encoded values stay text: the fake reads both (reply_markup…).
        status, payload = self.api.answer(name, params, {})
        held = self.delay.get(_chat(params), 0.0) if name == "sendMessage" else 0.0
        if status == 200 and held > 0:
            # Delivered, yet the client may time out or die waiting for the answer.
            await asyncio.sleep(held)
        return status, payload


# Telegram's method names are case-insensitive.
_METHODS = {name.lower(): name for name in spec.methods()}


def _chat(params: Mapping[str, Any]) -> int:
    try:
        return int(params.get("chat_id", 0))
    except (TypeError, ValueError):
        return 0
