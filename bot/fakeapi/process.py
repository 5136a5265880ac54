"""The fake Bot API server in a child process, so it never competes with a bench for one loop.

.venv/bin/python -m bot.fakeapi.process --port 0 --rate 30     # prints READY <url>
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from typing import Any
from urllib.parse import urlsplit

from bot.fakeapi import server
from bot.fakeapi.server import FakeBotApiServer, Running

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


class FakeBotApiProcess(Running):
    """The fake in its own process, so it never competes with the client for one loop."""

    def __init__(
        self, *, max_seconds: float = 3600.0, start_timeout: float = 20.0, **options: float
    ) -> None:
        """`options` are the server's numeric ones (rate=, per_chat_seconds=,
        group_per_minute=, fail_next=, ...), passed as its command-line flags; the
        server's defaults stand for the rest."""
        self.args = ["--max-seconds", str(max_seconds), "--quiet"]
        for name, value in options.items():
            self.args += [f"--{name.replace('_', '-')}", str(value)]
        self.start_timeout = start_timeout
        self.url = ""
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> str:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.fakeapi.process",
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


# -- standalone --------------------------------------------------------------------------------


def _ids(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


# The command-line options the server's constructor takes under the same name.
_SERVER_OPTIONS = (
    "port",
    "rate",
    "per_chat_seconds",
    "group_per_minute",
    "token",
    "fail_next",
    "fail_status",
    "hang_next",
    "hang_seconds",
)


async def _main(args: argparse.Namespace) -> None:
    fake = FakeBotApiServer(
        **{name: getattr(args, name) for name in _SERVER_OPTIONS},
        forbidden=_ids(args.forbid),
        strict=not args.lax,
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
            f"accepted {len(fake.accepted)}, 429 {fake.api.too_many}, "
            f"403 {fake.api.refused_forbidden}, 5xx {fake.failed}, hung {fake.hung}",
            file=sys.stderr,
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bot.fakeapi.process", description=server.__doc__
    )
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
    parser.add_argument("--lax", action="store_true", help="skip the HTML and parameter checks")
    parser.add_argument("--quiet", action="store_true", help="no summary on stderr at exit")
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
