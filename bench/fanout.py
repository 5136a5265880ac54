"""Fan-out: reminders planned into the outbox, sent by one Dispatcher over real HTTP.

    .venv/bin/python -m bench.fanout [--quick] [--postgres] [--time-limit S] [--profile]
                                     [--production-bot] [--only {a,b,c} ...]

Each fan-out plans reminders (one per chat, distinct chats) into the outbox of a freshly
migrated database, then one `bot.delivery.Dispatcher` as shipped (concurrency 32, batch 200)
sends them through a PTB `Bot` (HTTPXRequest with one connection per send in flight) whose
base_url is `bot.fakeapi.process`, run in a child process on 127.0.0.1 so that the two never
share an event loop. The fake enforces the same ceiling as the dispatcher's `Limits` and
answers 429 beyond it. --production-bot sends through an ExtBot with AIORateLimiter, as
bot/app.py builds the bot.

  (c) planning, first: the outbox half of the talk-cadence tick — plan() one row at a time
      with ON CONFLICT (key) DO NOTHING, 10,000 vs 100,000 rows (--quick: 500 vs 5,000), the
      same keys planned again (a tick that runs twice), a multi-row INSERT for comparison,
      one claim over the big outbox, and the plans of the INSERT and the claim. The
      1,000,000-pairing due_pairings() query is not driven here (see the first line printed).
  (a) 3,000 reminders to 3,000 chats at Telegram's 30 messages/s          (--quick: 300)
  (b) 30,000 with the ceiling raised to 300/s on both sides               (--quick: 2,000)

--only runs just the parts named (e.g. `--only b`; default all three).

Figures only, no assertions. Targets: sustained rate ≥ 95% of the ceiling, no 429, no
duplicate, no loss (the fake's accepted records against the outbox rows). Each fan-out stops
after 3× its nominal time + 20 s, and each database's run within --time-limit / engines
(default 26 s with --quick, 600 s otherwise), printing what was done by then.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import importlib.util
import inspect
import io
import itertools
import logging
import os
import pstats
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from telegram import Bot
from telegram.constants import ParseMode
from telegram.ext import AIORateLimiter, Defaults, ExtBot
from telegram.request import HTTPXRequest

from bench.common import DEFAULT_PG_URL, Deadline, StatementSpy, chunks, fresh_database
from bot.delivery import Dispatcher, Limits
from bot.fakeapi.process import FakeBotApiProcess
from storage import outbox
from storage.db import Database
from storage.models import OutboxMessage

TOKEN = "123456:FANOUTBENCHabcdefghijklmnopqrstuvwxyz"
FIRST_CHAT = 700_000_000
TEXT = "<b>谈心提醒</b> Talk due with your mentee · #{n}"
TEXT_NUMBER = re.compile(r"#(\d+)$")
TARGET_PERCENT = 95.0
PLAN_CHUNK = 1000
CONCURRENCY = 32  # Dispatcher's default


def number_of(text: str) -> int:
    match = TEXT_NUMBER.search(text)
    if match is None:
        raise ValueError(f"not a bench text: {text!r}")
    return int(match.group(1))


@dataclass
class Fanout:
    label: str
    planned: int
    rate: float
    plan_s: float
    drain_s: float
    cpu_s: float
    accepted_times: list[float]
    duplicates: int
    lost: int
    unfinished: int
    sent_rows: int
    unsent_rows: dict[str, int]
    too_many: int
    retried: int
    failed: int
    finished: bool
    profile: str = ""

    @property
    def sustained(self) -> float:
        """Accepted sends per second between the first and the last (the fake's clock)."""
        times = self.accepted_times
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    @property
    def end_to_end(self) -> float:
        return len(self.accepted_times) / self.drain_s if self.drain_s > 0 else 0.0

    def busiest_second(self) -> int:
        best = start = 0
        times = self.accepted_times
        for end, t in enumerate(times):
            while t - times[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best

    def stalls(self) -> tuple[int, float]:
        """Gaps longer than five send slots: how many, and the time lost beyond one slot."""
        slot = 1.0 / self.rate
        gaps = [b - a for a, b in itertools.pairwise(self.accepted_times) if b - a > 5 * slot]
        return len(gaps), sum(g - slot for g in gaps)


# -- databases -------------------------------------------------------------------------------


async def empty_outbox(database: Database) -> None:
    async with database.sessionmaker.begin() as session:
        await session.execute(delete(OutboxMessage))


async def plan_one_by_one(database: Database, tag: str, numbers: range) -> tuple[float, int]:
    """outbox.plan per row, PLAN_CHUNK rows a transaction; (seconds, rows added)."""
    added = 0
    started = time.perf_counter()
    for chunk in chunks(numbers, PLAN_CHUNK):
        async with database.sessionmaker.begin() as session:
            for n in chunk:
                added += await outbox.plan(
                    session,
                    key=f"{tag}:{n}",
                    chat_id=FIRST_CHAT + n,
                    kind="talk-due",
                    parts=[TEXT.format(n=n)],
                )
    return time.perf_counter() - started, added


async def plan_multi_row(database: Database, tag: str, numbers: range) -> tuple[float, int]:
    """The same rows as one INSERT … VALUES (…)×PLAN_CHUNK ON CONFLICT DO NOTHING per chunk."""
    added = 0
    started = time.perf_counter()
    for chunk in chunks(numbers, PLAN_CHUNK):
        async with database.sessionmaker.begin() as session:
            insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
            statement = (
                insert(OutboxMessage)
                .values(
                    [
                        {
                            "key": f"{tag}:{n}",
                            "chat_id": FIRST_CHAT + n,
                            "kind": "talk-due",
                            "parts": {"parts": [TEXT.format(n=n)]},
                            "status": "pending",
                            "attempts": 0,
                        }
                        for n in chunk
                    ]
                )
                .on_conflict_do_nothing(index_elements=[OutboxMessage.key])
            )
            result = await session.execute(statement)
            added += result.rowcount  # type: ignore[attr-defined]
    return time.perf_counter() - started, added


# -- (a) and (b): fan-out over HTTP ----------------------------------------------------------


async def drain_until_done(dispatcher: Dispatcher, deadline: float) -> bool:
    """drain() stops when nothing is due; rows waiting out a retry need another call."""
    while time.monotonic() < deadline:
        await dispatcher.drain(deadline=deadline)
        async with dispatcher.database.sessionmaker() as session:
            counts = await outbox.counts(session)
        if not counts.get("pending") and not counts.get("sending"):
            return True
        await asyncio.sleep(0.05)
    return False


async def run_fanout(
    database: Database,
    *,
    label: str,
    count: int,
    rate: float,
    until: float,
    profile: bool,
    production_bot: bool,
) -> Fanout:
    """Plan `count` reminders, then drain them to a fake at `rate`; stop at `until` at the
    latest (monotonic)."""
    await empty_outbox(database)
    plan_s, _ = await plan_one_by_one(database, label, range(count))
    lifetime = max(until - time.monotonic(), 1.0) + 60.0
    async with FakeBotApiProcess(rate=rate, max_seconds=lifetime) as fake:
        # As many connections as the dispatcher has sends in flight (its concurrency).
        request = HTTPXRequest(
            connection_pool_size=CONCURRENCY,
            read_timeout=10.0,
            write_timeout=10.0,
            connect_timeout=5.0,
            pool_timeout=5.0,
        )
        bot: Bot
        if production_bot:
            # As bot/app.py builds it: PTB's AIORateLimiter behind the outbox pacer.
            bot = ExtBot(
                TOKEN,
                base_url=f"{fake.url}/bot",
                request=request,
                defaults=Defaults(parse_mode=ParseMode.HTML),
                rate_limiter=AIORateLimiter(overall_max_rate=rate, max_retries=3),
            )
        else:
            bot = Bot(TOKEN, base_url=f"{fake.url}/bot", request=request)
        async with bot:
            dispatcher = Dispatcher(
                database, bot, limits=Limits(per_second=rate), concurrency=CONCURRENCY
            )
            profiler = cProfile.Profile() if profile else None
            cpu = time.process_time()
            started = time.monotonic()
            if profiler:
                profiler.enable()
            finished = await drain_until_done(dispatcher, until)
            if profiler:
                profiler.disable()
            drain_s = time.monotonic() - started
            cpu_s = time.process_time() - cpu
        stats = await fake.stats()
    accepted = stats["accepted"]
    delivered = Counter(number_of(text) for _, text, *_ in accepted)
    async with database.sessionmaker() as session:
        rows = await session.execute(select(OutboxMessage.key, OutboxMessage.status))
        statuses = {int(key.rsplit(":", 1)[1]): status for key, status in rows.all()}
    report = ""
    if profiler:
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(14)
        report = buffer.getvalue()
    return Fanout(
        label=label,
        planned=len(statuses),
        rate=rate,
        plan_s=plan_s,
        drain_s=drain_s,
        cpu_s=cpu_s,
        accepted_times=sorted(at for _, _, at, _ in accepted),
        duplicates=sum(n - 1 for n in delivered.values() if n > 1),
        # Ended (sent or failed) without the fake ever accepting it.
        lost=sum(
            1
            for n, status in statuses.items()
            if status in {"sent", "failed"} and not delivered[n]
        ),
        unfinished=sum(1 for status in statuses.values() if status in {"pending", "sending"}),
        sent_rows=sum(1 for status in statuses.values() if status == "sent"),
        unsent_rows=dict(Counter(s for s in statuses.values() if s != "sent")),
        too_many=int(stats["too_many"]),
        retried=dispatcher.stats.retried,
        failed=dispatcher.stats.failed,
        finished=finished,
        profile=report,
    )


def print_fanout(result: Fanout) -> None:
    percent = 100.0 * result.sustained / result.rate
    verdict = "meets" if percent >= TARGET_PERCENT else "MISSES"
    stalls, lost_s = result.stalls()
    print(
        f"  {result.label}: {result.planned:,} reminders → {result.planned:,} chats, "
        f"ceiling {result.rate:g}/s on both sides"
    )
    print(f"    planned in {result.plan_s:.1f} s ({result.planned / result.plan_s:,.0f} rows/s)")
    print(
        f"    sustained {result.sustained:.1f} msg/s = {percent:.1f}% of the ceiling "
        f"({verdict} the {TARGET_PERCENT:g}% target); end to end {result.end_to_end:.1f} msg/s "
        f"over {result.drain_s:.1f} s; busiest 1-s window {result.busiest_second()}"
    )
    print(
        f"    429s received {result.too_many} (target 0); dispatcher retried "
        f"{result.retried}, failed {result.failed}"
    )
    print(
        f"    accepted by the fake {len(result.accepted_times):,}; duplicates "
        f"{result.duplicates} (target 0); lost {result.lost} (target 0); outbox rows sent "
        f"{result.sent_rows:,}, not sent {result.unsent_rows or 0}"
    )
    if not result.finished:
        print(
            f"    STOPPED BY THE DEADLINE after {result.drain_s:.1f} s with {result.unfinished:,} "
            "rows still pending or sending (not counted as lost)"
        )
    core = 100 * result.cpu_s / max(result.drain_s, 1e-9)
    per_message = 1e3 * result.cpu_s / max(len(result.accepted_times), 1)
    print(
        f"    stalls (gaps > 5 slots) {stalls}, {lost_s:.2f} s lost; dispatcher process CPU "
        f"{result.cpu_s:.1f} s = {core:.0f}% of one core ({per_message:.2f} ms per message); "
        f"load average now {os.getloadavg()[0]:.1f}"
    )
    if result.profile:
        print("    profile of the dispatcher process (by own time):")
        for line in result.profile.strip().splitlines():
            print(f"      {line}")


# -- (c): planning ---------------------------------------------------------------------------


async def explain(database: Database, statement: str, params: Any) -> list[str]:
    sqlite = database.engine.dialect.name == "sqlite"
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
    async with database.engine.connect() as conn:
        rows = (await conn.exec_driver_sql(prefix + statement, params)).all()
        await conn.rollback()
    return [str(row[-1]) for row in rows]


PARAMETER_LIST = re.compile(
    r"\((?:\s*(?:\?|\$\d+(?:::\w+)?)\s*,){3,}\s*(?:\?|\$\d+(?:::\w+)?)\s*\)"
)


def _one_line(sql: str) -> str:
    sql = re.sub(r"\s+", " ", sql).strip()
    return PARAMETER_LIST.sub(lambda m: f"(…{m.group(0).count(',') + 1} parameters…)", sql)


async def query_shapes(database: Database) -> list[str]:
    """The SQL of plan() and claim() as the driver runs them, and their plans."""
    lines: list[str] = []
    if database.engine.dialect.name == "postgresql":
        # Fresh statistics, so the plans are the ones a long-lived outbox would get.
        async with database.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE outbox_message")
    with StatementSpy(database) as spy:
        async with database.sessionmaker() as session:
            await outbox.plan(session, key="shape:0", chat_id=1, kind="shape", parts=["x"])
            await outbox.claim(
                session,
                worker="shape",
                now=datetime.now(UTC),
                limit=200,
                lease=timedelta(seconds=120),
            )
            await session.rollback()
    timings = []
    for _ in range(3):
        async with database.sessionmaker() as session:
            started = time.perf_counter()
            claimed = await outbox.claim(
                session,
                worker="shape",
                now=datetime.now(UTC),
                limit=200,
                lease=timedelta(seconds=120),
            )
            timings.append(time.perf_counter() - started)
            await session.rollback()
    lines.append(
        f"claim of {len(claimed)} rows (both statements, rolled back), best of 3: "
        f"{1e3 * min(timings):.1f} ms"
    )
    wanted = [s for s in spy.statements if s[0].lstrip().upper().startswith(("INSERT", "UPDATE"))]
    for title, (statement, params) in zip(
        ("plan (per row)", "claim", "claim, 2nd statement"), wanted, strict=False
    ):
        lines.append(f"{title}: {_one_line(statement)}")
        for step in await explain(database, statement, params):
            step = PARAMETER_LIST.sub("(…)", step)
            lines.append(f"      plan │ {step if len(step) <= 150 else step[:150] + '…'}")
    return lines


async def run_planning(
    database: Database, *, small: int, large: int, deadline: Deadline
) -> list[str]:
    lines: list[str] = []
    mentoring = importlib.util.find_spec("storage.mentoring")
    if mentoring is not None:
        module = importlib.import_module("storage.mentoring")
        due = getattr(module, "due_pairings", None)
        shape = f"due_pairings{inspect.signature(due)}" if callable(due) else "no due_pairings"
        lines.append(
            f"storage.mentoring exists ({shape}); this bench does not drive it yet: "
            "only the outbox half below was measured"
        )
    else:
        lines.append(
            "storage.mentoring.due_pairings does not exist yet: 1,000,000 pairings with 1% due "
            f"NOT measured; measured the outbox half (1% of 1,000,000 = {10_000:,} rows)"
        )
    results: dict[int, tuple[float, int]] = {}
    for count in (small, large):
        if deadline.remaining() < 5:
            lines.append(f"plan {count:,}: skipped, the deadline is near")
            continue
        await empty_outbox(database)
        results[count] = await plan_one_by_one(database, f"plan{count}", range(count))
        seconds, added = results[count]
        lines.append(
            f"plan {count:,} rows into an empty outbox, one INSERT … ON CONFLICT (key) DO "
            f"NOTHING per row, {PLAN_CHUNK:,} a transaction: {seconds:.2f} s "
            f"({added / seconds:,.0f} rows/s, {1e6 * seconds / count:.0f} µs/row)"
        )
    if small in results and large in results:
        ratio = results[large][0] / results[small][0]
        lines.append(f"  {large:,} vs {small:,}: {ratio:.1f}× the time for {large // small}× rows")
    if large in results and deadline.remaining() > 5:
        seconds, added = await plan_one_by_one(database, f"plan{large}", range(small))
        lines.append(
            f"plan the same {small:,} keys again into the {large:,}-row outbox (a tick run "
            f"twice): {seconds:.2f} s, {added} added"
        )
        seconds, added = await plan_multi_row(database, "multi", range(small))
        lines.append(
            f"for comparison, {small:,} new rows as one multi-row INSERT … ON CONFLICT per "
            f"{PLAN_CHUNK:,}: {seconds:.2f} s ({added / seconds:,.0f} rows/s)"
        )
        lines.append(f"query shapes over an outbox of {large + small * 2:,} pending rows:")
        lines.extend(f"  {line}" for line in await query_shapes(database))
    return lines


# -- main ------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if args.quick:
        slow, fast, small, large = 300, 2_000, 500, 5_000
    else:
        slow, fast, small, large = 3_000, 30_000, 10_000, 100_000
    kinds = ["sqlite", "postgresql"] if args.postgres else ["sqlite"]
    bot_kind = "ExtBot + AIORateLimiter as bot/app.py" if args.production_bot else "Bot"
    print(
        f"bench.fanout{' --quick' if args.quick else ''}: Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; one Dispatcher "
        f"(concurrency {CONCURRENCY}, batch 200, as shipped) → PTB {bot_kind} + "
        f"HTTPXRequest(pool {CONCURRENCY}) → bot.fakeapi.process in a child process, loopback"
    )
    for kind in kinds:
        deadline = Deadline(args.time_limit / len(kinds))
        print(f"\n[{kind}]")
        async with fresh_database(kind, args.pg_url, "fanout") as database:
            if "c" in args.only:
                print("  (c) planning")
                lines = await run_planning(database, small=small, large=large, deadline=deadline)
                for line in lines:
                    print(f"    {line}")
            for label, count, rate in (("(a)", slow, 30.0), ("(b)", fast, 300.0)):
                if label[1] not in args.only:
                    continue
                if deadline.remaining() < 5:
                    print(f"  {label}: skipped, the deadline is near")
                    continue
                result = await run_fanout(
                    database,
                    label=label,
                    count=count,
                    rate=rate,
                    until=deadline.within(3 * count / rate + 20),
                    profile=args.profile and label == "(b)",
                    production_bot=args.production_bot,
                )
                print_fanout(result)
    print(f"\ndone in {time.monotonic() - started:.0f} s")
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="scaled down, under 30 s")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL after SQLite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--time-limit", type=float, default=None, help="overall deadline, s")
    parser.add_argument("--profile", action="store_true", help="cProfile the (b) drain")
    parser.add_argument(
        "--production-bot",
        action="store_true",
        help="send through ExtBot with AIORateLimiter, as bot/app.py builds the bot",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["a", "b", "c"],
        default=["a", "b", "c"],
        help="run only these parts (default: all)",
    )
    args = parser.parse_args(argv)
    if args.time_limit is None:
        args.time_limit = (26.0 if args.quick else 600.0) * (2 if args.postgres else 1)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # RetryAfter.retry_after as a timedelta (PTB's opt-in), which bot.delivery handles.
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(asyncio.wait_for(main_async(args), args.time_limit + 60))


if __name__ == "__main__":
    sys.exit(main())
