"""A local fake Bot API over real HTTP that enforces Telegram's sending limits.

    .venv/bin/python -m bench.fake_bot_api --port 0 --rate 30     # prints READY <url>

Answers ``/bot<token>/getMe``, ``sendMessage``, ``deleteWebhook`` and ``getUpdates`` on
127.0.0.1 only (HTTP/1.1 with keep-alive; JSON, form and query parameters — PTB's
HTTPXRequest posts ``application/x-www-form-urlencoded`` with non-string values JSON-encoded).
Like the real server it refuses a sendMessage with 429 and ``parameters.retry_after`` when it
would make more than `rate` accepted sends in any sliding one-second window bot-wide, a second
send to one private chat within `per_chat_seconds`, or more than `group_per_minute` sends to
one group (a negative chat id) in a sliding minute. The windows are strict: the fake measures
at the moment it has read a request, so a client pacing at exactly the ceiling with no margin
for network jitter will see 429s, as it may from Telegram.

Every accepted send is recorded (chat id, text, monotonic time in the server's process). Faults
are set in the constructor or, while it runs, through ``POST /_control`` (JSON): ``forbid`` and
``allow`` chat ids (403), ``fail_next`` requests answered `fail_status` (5xx), ``hang_next``
requests never answered (the client times out; nothing is delivered), and ``delay`` per chat:
the send is accepted and recorded, then its answer is held back that many seconds (delivered,
yet the client may time out or die waiting). ``GET /_stats`` returns the records and counters.
Faults apply to sendMessage only.

Use it in a running loop (``async with FakeBotApi(rate=30) as fake: fake.url``) or in a child
process (``async with FakeBotApiProcess(rate=300) as fake: await fake.stats()``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sys
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

HOST = "127.0.0.1"
BOT_USER: dict[str, Any] = {
    "id": 123456,
    "is_bot": True,
    "first_name": "Cadre",
    "username": "cadre_fake_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
MAX_TEXT = 4096
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


@dataclass(frozen=True, slots=True)
class Accepted:
    chat_id: int
    text: str
    at: float  # time.monotonic() in the server's process
    message_id: int


def _error(code: int, description: str, **parameters: Any) -> tuple[int, dict[str, Any]]:
    payload: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        payload["parameters"] = parameters
    return code, payload


class FakeBotApi:
    """The server, run inside the current event loop."""

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
    ) -> None:
        self.port = port
        self.rate = rate
        self.per_chat_seconds = per_chat_seconds
        self.group_per_minute = group_per_minute
        self.token = token
        self.forbidden: set[int] = set(forbidden)
        self.fail_next = fail_next
        self.fail_status = fail_status
        self.hang_next = hang_next
        self.hang_seconds = hang_seconds
        self.delay: dict[int, float] = dict(delay or {})
        self.accepted: list[Accepted] = []
        self.too_many = 0
        self.refused_forbidden = 0
        self.failed = 0
        self.hung = 0
        self.requests = 0
        self._window: deque[float] = deque()
        self._chat_last: dict[int, float] = {}
        self._group_window: dict[int, deque[float]] = {}
        self._message_id = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._serving: set[asyncio.Task[Any]] = set()

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

    # -- records ---------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "accepted": [[a.chat_id, a.text, a.at, a.message_id] for a in self.accepted],
            "too_many": self.too_many,
            "forbidden": self.refused_forbidden,
            "failed": self.failed,
            "hung": self.hung,
            "requests": self.requests,
            "clock": time.monotonic(),
        }

    def control(self, changes: Mapping[str, Any]) -> None:
        """Apply faults and limits while running (the body of ``POST /_control``)."""
        if changes.get("reset"):
            self.accepted.clear()
            self.too_many = self.refused_forbidden = self.failed = self.hung = 0
            self.requests = 0
            self._window.clear()
            self._chat_last.clear()
            self._group_window.clear()
        self.forbidden |= {int(c) for c in changes.get("forbid", ())}
        self.forbidden -= {int(c) for c in changes.get("allow", ())}
        for chat, seconds in dict(changes.get("delay", {})).items():
            self.delay[int(chat)] = float(seconds)
        for chat in changes.get("undelay", ()):
            self.delay.pop(int(chat), None)
        for name in ("fail_next", "hang_next", "fail_status", "group_per_minute"):
            if name in changes:
                setattr(self, name, int(changes[name]))
        for name in ("rate", "per_chat_seconds", "hang_seconds"):
            if name in changes:
                setattr(self, name, float(changes[name]))

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
        self.requests += 1
        if api_method == "getme":
            return 200, {"ok": True, "result": BOT_USER}
        if api_method == "deletewebhook":
            return 200, {"ok": True, "result": True}
        if api_method == "getupdates":
            # Long polling: nothing ever arrives, so wait out (a bounded part of) the timeout.
            with contextlib.suppress(ValueError):
                await asyncio.sleep(min(float(params.get("timeout", 0) or 0), 5.0))
            return 200, {"ok": True, "result": []}
        if api_method == "sendmessage":
            return await self._send_message(params)
        return _error(404, "Not Found: method not found")

    # -- sendMessage -----------------------------------------------------------------------

    async def _send_message(self, params: Mapping[str, Any]) -> tuple[int, Any]:
        now = time.monotonic()
        if self.hang_next > 0:
            self.hang_next -= 1
            self.hung += 1
            raise _Hang
        if self.fail_next > 0:
            self.fail_next -= 1
            self.failed += 1
            return _error(self.fail_status, REASONS.get(self.fail_status, "Server Error"))
        try:
            chat_id = int(params.get("chat_id", ""))
        except (TypeError, ValueError):
            return _error(400, "Bad Request: chat not found")
        text = str(params.get("text", ""))
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            return _error(400, "Bad Request: message is too long")
        if chat_id in self.forbidden:
            self.refused_forbidden += 1
            return _error(403, "Forbidden: bot was blocked by the user")
        wait = self._flood_wait(chat_id, now)
        if wait > 0:
            self.too_many += 1
            retry_after = max(1, math.ceil(wait))
            return _error(
                429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
            )
        self._window.append(now)
        if chat_id < 0:
            self._group_window.setdefault(chat_id, deque()).append(now)
        else:
            self._chat_last[chat_id] = now
        self._message_id += 1
        self.accepted.append(Accepted(chat_id, text, now, self._message_id))
        message = {
            "message_id": self._message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": {"id": BOT_USER["id"], "is_bot": True, "first_name": "Cadre"},
            "text": text,
        }
        held = self.delay.get(chat_id, 0.0)
        if held > 0:
            await asyncio.sleep(held)
        return 200, {"ok": True, "result": message}

    def _flood_wait(self, chat_id: int, now: float) -> float:
        """Seconds until this send would keep every limit; 0 when it may go now."""
        window = self._window
        while window and window[0] <= now - 1.0:
            window.popleft()
        wait = 0.0
        if len(window) >= self.rate:
            wait = window[len(window) - int(self.rate)] + 1.0 - now
        if chat_id < 0:
            group = self._group_window.setdefault(chat_id, deque())
            while group and group[0] <= now - 60.0:
                group.popleft()
            if len(group) >= self.group_per_minute:
                wait = max(wait, group[len(group) - self.group_per_minute] + 60.0 - now)
        else:
            last = self._chat_last.get(chat_id)
            if last is not None and now - last < self.per_chat_seconds:
                wait = max(wait, last + self.per_chat_seconds - now)
        return wait


# -- in a child process ----------------------------------------------------------------------


async def http_json(url: str, method: str = "GET", body: Any = None, wait_s: float = 10.0) -> Any:
    """A tiny loopback HTTP/1.1 client for the control endpoints (stdlib only)."""
    parts = urlsplit(url)
    data = b"" if body is None else json.dumps(body).encode()

    async def call() -> Any:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            writer.write(
                f"{method} {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        head, _, payload = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            raise RuntimeError(f"{method} {url}: HTTP {status} {payload[:200]!r}")
        return json.loads(payload)

    return await asyncio.wait_for(call(), wait_s)


class FakeBotApiProcess:
    """The fake in its own process, so it never competes with the client for one loop."""

    def __init__(
        self,
        *,
        rate: float = 30.0,
        per_chat_seconds: float = 1.0,
        group_per_minute: int = 20,
        max_seconds: float = 3600.0,
        start_timeout: float = 20.0,
    ) -> None:
        self.args = [
            "--rate",
            str(rate),
            "--per-chat-seconds",
            str(per_chat_seconds),
            "--group-per-minute",
            str(group_per_minute),
            "--max-seconds",
            str(max_seconds),
            "--quiet",
        ]
        self.start_timeout = start_timeout
        self.url = ""
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> str:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.fake_bot_api",
            "--port",
            "0",
            *self.args,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), self.start_timeout)
        if not line.startswith(b"READY "):
            await self.stop()
            raise RuntimeError(f"fake Bot API did not start: {line!r}")
        self.url = line.decode().split()[1]
        return self.url

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await http_json(f"{self.url}/_stats", wait_s=60.0)
        return result

    async def control(self, **changes: Any) -> None:
        await http_json(f"{self.url}/_control", "POST", changes)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5.0)
            except TimeoutError:
                process.kill()
                await process.wait()

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


# -- standalone --------------------------------------------------------------------------------


def _ids(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


async def _main(args: argparse.Namespace) -> None:
    fake = FakeBotApi(
        port=args.port,
        rate=args.rate,
        per_chat_seconds=args.per_chat_seconds,
        group_per_minute=args.group_per_minute,
        token=args.token,
        forbidden=_ids(args.forbid),
        fail_next=args.fail_next,
        fail_status=args.fail_status,
        hang_next=args.hang_next,
        hang_seconds=args.hang_seconds,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with fake:
        print(f"READY {fake.url}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.max_seconds)
    if not args.quiet:
        print(
            f"accepted {len(fake.accepted)}, 429 {fake.too_many}, 403 {fake.refused_forbidden}, "
            f"5xx {fake.failed}, hung {fake.hung}",
            file=sys.stderr,
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fake_bot_api", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--rate", type=float, default=30.0, help="sendMessage/s bot-wide")
    parser.add_argument("--per-chat-seconds", type=float, default=1.0)
    parser.add_argument("--group-per-minute", type=int, default=20)
    parser.add_argument("--token", default=None, help="accept only this token")
    parser.add_argument("--forbid", default="", help="comma-separated chat ids answered 403")
    parser.add_argument("--fail-next", type=int, default=0)
    parser.add_argument("--fail-status", type=int, default=502)
    parser.add_argument("--hang-next", type=int, default=0)
    parser.add_argument("--hang-seconds", type=float, default=60.0)
    parser.add_argument(
        "--max-seconds", type=float, default=3600.0, help="stop by itself after this long"
    )
    parser.add_argument("--quiet", action="store_true", help="no summary on stderr at exit")
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
