"""A planner or dispatcher in its own process, for tests that kill it with SIGKILL.

    python -m tests.support.dispatch_worker plan --count N [--hold N]
    python -m tests.support.dispatch_worker drain --api URL [--wait-go] [...]

The database comes from the environment: DATABASE_URL, and DATABASE_SCHEMA for a PostgreSQL
schema. The worker tells the test where it is with one line on stdout per step ("PLANNED",
"HOLDING", "READY", "DONE {json}") and stops by itself after --max-seconds.

`plan` commits `count` rows ("proc:{n}" to chat FIRST_CHAT + n), then plans `hold` more
("proc-held:{n}") in a transaction it never ends. `drain` runs one bot.delivery.Dispatcher
against a Bot API at --api until no row is pending or sending.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time

from telegram import Bot
from telegram.request import HTTPXRequest

from bot.delivery import Dispatcher, Limits
from storage import outbox
from storage.db import Database

TOKEN = "123456:WORKERTOKENabcdefghijklmnopqrstuvwxyz"
FIRST_CHAT = 880_000_000


def key(n: int, *, held: bool = False) -> str:
    return f"proc-held:{n}" if held else f"proc:{n}"


def text(n: int, *, held: bool = False) -> str:
    return f"<b>Reminder</b> {key(n, held=held)}"


def chat(n: int, *, held: bool = False) -> int:
    return FIRST_CHAT + (100_000 if held else 0) + n


async def plan_rows(database: Database, count: int, *, held: bool = False) -> int:
    """Plan `count` rows in the caller's transaction; how many were new."""
    added = 0
    async with database.sessionmaker.begin() as session:
        for n in range(count):
            added += await outbox.plan(
                session,
                key=key(n, held=held),
                chat_id=chat(n, held=held),
                kind="test",
                parts=[text(n, held=held)],
            )
    return added


def say(line: str) -> None:
    print(line, flush=True)


async def plan(database: Database, args: argparse.Namespace) -> None:
    await plan_rows(database, args.count)
    say("PLANNED")
    async with database.sessionmaker() as session:
        for n in range(args.hold):
            await outbox.plan(
                session,
                key=key(n, held=True),
                chat_id=chat(n, held=True),
                kind="test",
                parts=[text(n, held=True)],
            )
        say("HOLDING")
        # The test kills the process here, inside the open transaction.
        await asyncio.sleep(args.max_seconds)


async def drain(database: Database, args: argparse.Namespace) -> None:
    request = HTTPXRequest(connection_pool_size=16, read_timeout=args.read_timeout)
    limits = Limits(per_second=args.per_second, lease_seconds=args.lease, retry_base_seconds=0.05)
    async with Bot(TOKEN, base_url=f"{args.api}/bot", request=request) as bot:
        dispatcher = Dispatcher(
            database, bot, limits=limits, batch=args.batch, concurrency=args.concurrency
        )
        say("READY")
        if args.wait_go:
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        deadline = time.monotonic() + args.max_seconds
        while time.monotonic() < deadline:
            await dispatcher.drain(deadline=deadline)
            async with database.sessionmaker() as session:
                counts = await outbox.counts(session)
            if not counts.get("pending") and not counts.get("sending"):
                break
            await asyncio.sleep(0.05)
    stats = dispatcher.stats
    say(
        "DONE "
        + json.dumps(
            {
                "sent": stats.sent,
                "failed": stats.failed,
                "retried": stats.retried,
                "possible_duplicates": stats.possible_duplicates,
            }
        )
    )


async def main_async(args: argparse.Namespace) -> None:
    schema = os.environ.get("DATABASE_SCHEMA") or None
    database = Database(os.environ["DATABASE_URL"], schema=schema)
    try:
        work = plan(database, args) if args.command == "plan" else drain(database, args)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(work, args.max_seconds + 5)
    finally:
        await database.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.dispatch_worker")
    commands = parser.add_subparsers(dest="command", required=True)
    planner = commands.add_parser("plan")
    planner.add_argument("--count", type=int, required=True)
    planner.add_argument("--hold", type=int, default=0)
    dispatcher = commands.add_parser("drain")
    dispatcher.add_argument("--api", required=True, help="base URL of the Bot API")
    dispatcher.add_argument("--per-second", type=float, default=30.0)
    dispatcher.add_argument("--lease", type=float, default=120.0)
    dispatcher.add_argument("--batch", type=int, default=200)
    dispatcher.add_argument("--concurrency", type=int, default=32)
    dispatcher.add_argument("--read-timeout", type=float, default=5.0)
    dispatcher.add_argument("--wait-go", action="store_true", help="start on a line on stdin")
    for sub in (planner, dispatcher):
        sub.add_argument("--max-seconds", type=float, default=60.0)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
