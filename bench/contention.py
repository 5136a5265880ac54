"""Does the outbox dispatcher starve while updates hold SQLite's write lock back to back?

    .venv/bin/python -m bench.contention [--rows N] [--updates N]

Each update runs in one transaction (bot/app.py), which on SQLite holds the write lock from
its first statement to its commit, the reply to Telegram included. This plans N outbox rows
and drains them once alone, then again while /start updates from new people are handled
back to back through the inbox (the bench.dispatch full stack, in the same process and event
loop, as in the bot). It prints both drain times and the burst's rate and worst latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import delete

from bench import dispatch as d
from bench.common import DEFAULT_PG_URL, fresh_database
from bot.delivery import Dispatcher, Limits
from storage.db import Database
from storage.models import OutboxMessage
from tests.support.dispatch_worker import plan_rows

FAST = Limits(per_second=10_000, per_chat_seconds=0.0, retry_base_seconds=0.01)


async def _drain(database: Database, app: d.AnyApp, rows: int) -> tuple[int, float]:
    await plan_rows(database, rows)
    started = time.perf_counter()
    sent = await Dispatcher(database, app.bot, limits=FAST).drain()
    return sent, time.perf_counter() - started


async def main_async(args: argparse.Namespace) -> int:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average before the run: {load} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="cadrebot-bench-") as tmp:
        async with fresh_database("sqlite", DEFAULT_PG_URL, "c", Path(tmp)) as database:
            app, _ = await d._start_bot(database, throttled=False)
            try:
                await d.drive(app, d.payloads(8_000_000, 50), time.perf_counter() + 30)
                sent, alone = await _drain(database, app, args.rows)
                print(f"drain alone: {sent} rows sent in {alone * 1000:.0f} ms")
                async with database.sessionmaker.begin() as session:
                    await session.execute(delete(OutboxMessage))
                deadline = time.perf_counter() + 60
                burst = asyncio.create_task(
                    d.drive(app, d.payloads(8_100_000, args.updates), deadline)
                )
                await asyncio.sleep(0.3)
                sent, busy = await _drain(database, app, args.rows)
                latencies, elapsed, _ = await burst
                print(
                    f"drain during the burst: {sent} rows sent in {busy * 1000:.0f} ms; burst: "
                    f"{len(latencies)} updates at {len(latencies) / elapsed:.0f}/s, "
                    f"slowest {max(latencies) * 1000:.0f} ms"
                )
            finally:
                await d._stop_bot(app)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.contention", description=__doc__)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--updates", type=int, default=3000)
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
