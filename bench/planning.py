"""Talk-reminder planning cost against table size: does it grow with what is due, or with N?

    .venv/bin/python -m bench.planning [--pairings N [N ...]] [--due-share 0.01] [--postgres]
                                       [--time-limit S]

For each N (default 10,000, 100,000 and 1,000,000) a fresh migrated database — an SQLite
file in a temp dir, and with --postgres a throwaway schema in TEST_POSTGRES_URL (created and
dropped) — is bulk-loaded with N active "2+1" pairings of reserve cadres in the pool (N/2
cadres × 2 slots), N/5 mentors (person + mentor grant + Telegram account), one township
official per township, and talk_log rows: one recent talk (0–19 days ago) for every pairing
that is not due, and for `--due-share` of them an old one (24–45 days ago: due soon or
overdue with every_days 30 / soon_days 7) or none at all (paired 60+ days ago); each pairing
carries the date of its talk in last_talk_on, as save_talk keeps it. Loading uses
core INSERT executemany in big transactions (SQLite: PRAGMA synchronous=OFF on the loading
connection only) or asyncpg copy_records_to_table (PostgreSQL, then ANALYZE).

Timed at each N, warm cache, best of up to 3:
  (1) storage.mentoring.due_pairings() alone, in a read-only session;
  (2) the tick's full step: bot.planners.plan_talk_cadence() as shipped, with a CadreContext
      over a minimal (never started) PTB Application carrying settings, database and the
      Jinja environment — due_pairings + per-row recipients + render + outbox.plan — into an
      empty outbox, rolled back; then once committed and once more (the next tick: every key
      already planned, all ON CONFLICT no-ops).
The plan of the due_pairings SELECT is printed at the largest N (EXPLAIN QUERY PLAN on SQLite,
EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL). Figures only, no assertions; the whole run stops at
--time-limit (default 1,200 s), skipping what would not fit, and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import Table, func, insert, select
from telegram.ext import Application, ApplicationBuilder, ContextTypes

from bench.common import DEFAULT_PG_URL, Deadline, StatementSpy, chunks, fresh_database
from bot.planners import plan_talk_cadence
from bot.settings import Settings
from handlers.chat.context import CadreContext
from storage import mentoring, models, tally
from storage.db import Database
from storage.rules.cadence import local_date
from templates import build_environment

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
TOKEN = "123456:PLANNINGBENCHabcdefghijklmnopqrstuvwxyz"
EVERY_DAYS, SOON_DAYS = 30, 7
TOWNSHIPS, VILLAGES_PER_TOWNSHIP = 20, 10
MENTEES_PER_MENTOR = 5
CHUNK = 50_000
PLANNING_CAP_S = 90.0
FIRST_CHAT = 800_000_000
TOPICS_DICT = {t: {"text": "谈心谈话记录"} for t in ("thought", "work", "life", "problems")}
TOPICS = json.dumps(TOPICS_DICT, ensure_ascii=False)


# -- the data set ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """Deterministic ids for N pairings; every table's rows are generated from these."""

    pairings: int
    due_share: float
    now: datetime
    tz_name: str = "Asia/Shanghai"

    @property
    def cadres(self) -> int:
        return (self.pairings + 1) // 2

    @property
    def mentors_per_slot(self) -> int:
        return max(2, self.pairings // (2 * MENTEES_PER_MENTOR))

    @property
    def due_every(self) -> int:
        """Pairing i is due when i % due_every == 0."""
        return max(1, round(1 / self.due_share)) if self.due_share > 0 else 0

    @property
    def today(self) -> date:
        return local_date(self.now, Settings(timezone=self.tz_name).tz)

    # Person ids: officials, then cadres, then township-slot mentors, then village-slot ones.
    def official_id(self, township: int) -> int:
        return 1 + township

    def cadre_id(self, cadre: int) -> int:
        return 1 + TOWNSHIPS + cadre

    def mentor_id(self, slot: int, index: int) -> int:
        return 1 + TOWNSHIPS + self.cadres + slot * self.mentors_per_slot + index

    @property
    def persons(self) -> int:
        return TOWNSHIPS + self.cadres + 2 * self.mentors_per_slot

    def township_of(self, cadre: int) -> int:
        return 1 + cadre % TOWNSHIPS

    def is_due(self, pairing: int) -> bool:
        return self.due_every > 0 and pairing % self.due_every == 0

    def due_count(self) -> int:
        return sum(1 for i in range(self.pairings) if self.is_due(i))


def person_rows(shape: Shape) -> Iterator[tuple[Any, ...]]:
    for t in range(TOWNSHIPS):
        yield (shape.official_id(t), f"乡镇干部{t}")
    for c in range(shape.cadres):
        yield (shape.cadre_id(c), f"后备干部{c}")
    for slot in range(2):
        for m in range(shape.mentors_per_slot):
            yield (shape.mentor_id(slot, m), f"导师{slot}-{m}")


def account_rows(shape: Shape) -> Iterator[tuple[Any, ...]]:
    """(telegram_id, person_id, language_code): officials and mentors."""
    for t in range(TOWNSHIPS):
        person = shape.official_id(t)
        yield (FIRST_CHAT + person, person, "zh-hans")
    for slot in range(2):
        for m in range(shape.mentors_per_slot):
            person = shape.mentor_id(slot, m)
            yield (FIRST_CHAT + person, person, "zh-hans")


def grant_rows(shape: Shape) -> Iterator[tuple[Any, ...]]:
    """(id, person_id, role, township_id, mentor_slot)."""
    grant = itertools.count(1)
    for t in range(TOWNSHIPS):
        yield (next(grant), shape.official_id(t), models.Role.TOWNSHIP_OFFICIAL.value, 1 + t, None)
    for slot, name in enumerate(("township", "village")):
        for m in range(shape.mentors_per_slot):
            person = shape.mentor_id(slot, m)
            yield (next(grant), person, models.Role.MENTOR.value, 1 + m % TOWNSHIPS, name)


def nomination_rows(shape: Shape) -> Iterator[tuple[Any, ...]]:
    """(id, person_id, channel, status, township_id, village_id, key_group)."""
    for c in range(shape.cadres):
        township = shape.township_of(c)
        village = (township - 1) * VILLAGES_PER_TOWNSHIP + 1 + c % VILLAGES_PER_TOWNSHIP
        yield (1 + c, shape.cadre_id(c), "organization", "in_pool", township, village, "veteran")


def talk_day(shape: Shape, i: int, today: date) -> date | None:
    """The date of pairing i's one talk, or None when it never had one.

    Not due: one talk 0–19 days ago. Due: every other one a talk 24–45 days ago (due soon
    up to 30, overdue beyond), the rest never talked (due from the pairing date).
    """
    if not shape.is_due(i):
        days_ago = i % 20
    elif (i // max(shape.due_every, 1)) % 2 == 0:
        days_ago = 24 + (i // max(shape.due_every, 1)) % 22
    else:
        return None
    return today - timedelta(days=days_ago)


def pairing_rows(shape: Shape) -> Iterator[tuple[Any, ...]]:
    """(id, nomination_id, mentor_person_id, slot, assigned_at, last_talk_on).

    last_talk_on is what save_talk keeps (the date of the pairing's latest talk), written with
    the pairing because the load writes talk_log directly.
    """
    today = shape.today  # a property that builds Settings: once, not per row
    for i in range(shape.pairings):
        cadre, slot = divmod(i, 2)
        mentor = shape.mentor_id(slot, cadre % shape.mentors_per_slot)
        assigned = shape.now - timedelta(days=60 + i % 300, minutes=i % 1440)
        yield (
            1 + i,
            1 + cadre,
            mentor,
            ("township", "village")[slot],
            assigned,
            talk_day(shape, i, today),
        )


def talk_rows(shape: Shape) -> Iterator[tuple[Any, ...]]:
    """(id, pairing_id, nomination_id, mentor_person_id, talk_date, mode): see talk_day."""
    talk = itertools.count(1)
    today = shape.today
    for i in range(shape.pairings):
        cadre, slot = divmod(i, 2)
        mentor = shape.mentor_id(slot, cadre % shape.mentors_per_slot)
        day = talk_day(shape, i, today)
        if day is not None:
            yield (next(talk), 1 + i, 1 + cadre, mentor, day, "face")


GEO_TABLES: list[tuple[Table, tuple[str, ...], Callable[[Shape], Iterator[tuple[Any, ...]]]]] = [
    (models.County.__table__, ("id", "name"), lambda s: iter([(1, "基准县")])),  # type: ignore[list-item]
    (
        models.Township.__table__,  # type: ignore[list-item]
        ("id", "county_id", "name"),
        lambda s: ((1 + t, 1, f"镇{t}") for t in range(TOWNSHIPS)),
    ),
    (
        models.Village.__table__,  # type: ignore[list-item]
        ("id", "township_id", "name"),
        lambda s: (
            (1 + t * VILLAGES_PER_TOWNSHIP + v, 1 + t, f"村{t}-{v}")
            for t in range(TOWNSHIPS)
            for v in range(VILLAGES_PER_TOWNSHIP)
        ),
    ),
]
TABLES: list[tuple[Table, tuple[str, ...], Callable[[Shape], Iterator[tuple[Any, ...]]]]] = [
    *GEO_TABLES,
    (models.Person.__table__, ("id", "full_name"), person_rows),  # type: ignore[list-item]
    (
        models.TelegramAccount.__table__,  # type: ignore[list-item]
        ("telegram_id", "person_id", "language_code"),
        account_rows,
    ),
    (
        models.RoleGrant.__table__,  # type: ignore[list-item]
        ("id", "person_id", "role", "township_id", "mentor_slot"),
        grant_rows,
    ),
    (
        models.Nomination.__table__,  # type: ignore[list-item]
        ("id", "person_id", "channel", "status", "township_id", "village_id", "key_group"),
        nomination_rows,
    ),
    (
        models.Pairing.__table__,  # type: ignore[list-item]
        ("id", "nomination_id", "mentor_person_id", "slot", "assigned_at", "last_talk_on"),
        pairing_rows,
    ),
    (
        models.TalkLog.__table__,  # type: ignore[list-item]
        ("id", "pairing_id", "nomination_id", "mentor_person_id", "talk_date", "mode"),
        talk_rows,
    ),
]


async def load_sqlite(database: Database, shape: Shape) -> dict[str, int]:
    """Core INSERT executemany, one transaction per table, synchronous=OFF meanwhile."""
    counts: dict[str, int] = {}
    async with database.engine.connect() as conn:
        # Outside any transaction (SQLite refuses it inside one): on the driver connection.
        driver: Any = (await conn.get_raw_connection()).driver_connection
        await driver.execute("PRAGMA synchronous = OFF")
        # The tally triggers (migration 0009) are off during the load, as on PostgreSQL; one
        # storage.tally rebuild after it fills what they keep.
        cursor = await driver.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        triggers = await cursor.fetchall()
        for name, _sql in triggers:
            await driver.execute(f"DROP TRIGGER {name}")
        for table, columns, rows in TABLES:
            talk = table.name == "talk_log"
            async with conn.begin():
                for chunk in chunks(rows(shape), CHUNK):
                    params = [dict(zip(columns, row, strict=True)) for row in chunk]
                    if talk:
                        for p in params:
                            p["topics"] = TOPICS_DICT
                    await conn.execute(insert(table), params)
                    counts[table.name] = counts.get(table.name, 0) + len(chunk)
        async with conn.begin():
            await tally.rebuild(conn)
        for _name, sql in triggers:
            await driver.execute(sql)
        await driver.execute("PRAGMA synchronous = NORMAL")
    # Fresh connections for the measurements (the engine's own pragmas).
    await database.close()
    return counts


async def load_postgres(database: Database, shape: Shape) -> dict[str, int]:
    """asyncpg copy_records_to_table on the raw connection, one transaction, then ANALYZE."""
    counts: dict[str, int] = {}
    schema = database.schema
    async with database.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        pg: asyncpg.Connection = raw.driver_connection
        # Triggers off while copying (replica role), then one storage.tally rebuild.
        await pg.execute("SET session_replication_role = replica")
        async with pg.transaction():
            for table, columns, rows in TABLES:
                talk = table.name == "talk_log"
                names = [*columns, "topics"] if talk else list(columns)
                for chunk in chunks(rows(shape), 200_000):
                    records = [(*row, TOPICS) for row in chunk] if talk else chunk
                    await pg.copy_records_to_table(
                        table.name, records=records, columns=names, schema_name=schema
                    )
                    counts[table.name] = counts.get(table.name, 0) + len(chunk)
            for statement in tally.rebuild_statements(postgresql=True):
                await pg.execute(statement)
        await pg.execute("SET session_replication_role = origin")
        await pg.execute("ANALYZE")
    return counts


# -- databases -------------------------------------------------------------------------------


def minimal_context(database: Database) -> CadreContext:
    """A CadreContext over a never-started Application: what plan_talk_cadence reads."""
    settings = Settings(
        database_url=database.url,
        timezone="Asia/Shanghai",
        locale="zh_CN",
        talk_every_days=EVERY_DAYS,
        talk_soon_days=SOON_DAYS,
    )
    app: Application[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder()
        .token(TOKEN)
        .context_types(ContextTypes(context=CadreContext))
        .updater(None)
        .job_queue(None)
        .build()
    )
    app.bot_data["settings"] = settings
    app.bot_data["database"] = database
    app.bot_data["jinja"] = build_environment()
    return CadreContext(app)


# -- measurements ----------------------------------------------------------------------------


@dataclass
class Result:
    kind: str
    pairings: int
    load_s: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    due: int = 0
    expected_due: int = 0
    states: dict[str, int] = field(default_factory=dict)
    query_s: list[float] = field(default_factory=list)
    full_s: list[float] = field(default_factory=list)
    planned: int = 0
    commit_s: float = 0.0
    replan_s: float = 0.0
    replanned: int = -1
    note: str = ""
    finished: bool = True

    @property
    def query(self) -> float:
        return min(self.query_s) if self.query_s else float("nan")

    @property
    def full(self) -> float:
        return min(self.full_s) if self.full_s else float("nan")


async def time_query(
    database: Database, shape: Shape, repeats: int
) -> tuple[list[float], list[mentoring.DuePairing]]:
    timings: list[float] = []
    due: list[mentoring.DuePairing] = []
    tz = Settings(timezone=shape.tz_name).tz
    for _ in range(repeats):
        async with database.sessionmaker() as session:
            started = time.perf_counter()
            due = await mentoring.due_pairings(session, shape.now, EVERY_DAYS, SOON_DAYS, tz=tz)
            timings.append(time.perf_counter() - started)
            await session.rollback()
        if timings[-1] > 5:
            break
    return timings, due


async def time_planning(
    database: Database, context: CadreContext, shape: Shape, repeats: int, cap: float
) -> tuple[list[float], int, bool]:
    """Best-of runs, rolled back; a run is stopped after `cap` seconds (False: unfinished)."""
    timings: list[float] = []
    planned = 0
    for _ in range(repeats):
        async with database.sessionmaker() as session:
            started = time.perf_counter()
            try:
                planned = await asyncio.wait_for(
                    plan_talk_cadence(session, context, shape.now), cap
                )
            except TimeoutError:
                timings.append(time.perf_counter() - started)
                await session.rollback()
                return timings, planned, False
            timings.append(time.perf_counter() - started)
            await session.rollback()
        if timings[-1] > 5:
            break
    return timings, planned, True


async def committed_then_again(
    database: Database, context: CadreContext, shape: Shape
) -> tuple[float, float, int]:
    """The tick as it really runs (planned and committed), then the next tick (no-ops)."""
    started = time.perf_counter()
    async with database.sessionmaker.begin() as session:
        await plan_talk_cadence(session, context, shape.now)
    commit_s = time.perf_counter() - started
    started = time.perf_counter()
    async with database.sessionmaker.begin() as session:
        again = await plan_talk_cadence(session, context, shape.now)
    return commit_s, time.perf_counter() - started, again


async def explain_due(database: Database, shape: Shape) -> list[str]:
    tz = Settings(timezone=shape.tz_name).tz
    with StatementSpy(database) as spy:
        async with database.sessionmaker() as session:
            await mentoring.due_pairings(session, shape.now, EVERY_DAYS, SOON_DAYS, tz=tz)
            await session.rollback()
    statement, params = next(s for s in spy.statements if "mentor_active" in s[0])
    sqlite = database.engine.dialect.name == "sqlite"
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
    lines = ["SQL: " + re.sub(r"\s+", " ", statement).strip()]
    async with database.engine.connect() as conn:
        rows: Sequence[Any] = (await conn.exec_driver_sql(prefix + statement, params)).all()
        await conn.rollback()
    if sqlite:
        # (id, parent, notused, detail): indent by depth.
        depth: dict[int, int] = {0: 0}
        for row in rows:
            depth[row[0]] = depth.get(row[1], 0) + 1
            lines.append("  " * depth[row[0]] + str(row[3]))
    else:
        lines.extend(str(row[0]) for row in rows)
    return lines


async def run_one(
    kind: str, pg_url: str, shape: Shape, deadline: Deadline, *, explain: bool
) -> tuple[Result, list[str]]:
    result = Result(kind, shape.pairings, expected_due=shape.due_count())
    plan_lines: list[str] = []
    async with fresh_database(kind, pg_url, "planning") as database:
        started = time.perf_counter()
        loader = load_sqlite if kind == "sqlite" else load_postgres
        result.rows = await loader(database, shape)
        result.load_s = time.perf_counter() - started
        context = minimal_context(database)
        # Warm-up (page cache, statement cache), not counted.
        await time_query(database, shape, 1)
        repeats = 3 if deadline.remaining() > 120 else 1
        result.query_s, due = await time_query(database, shape, repeats)
        result.due = len(due)
        result.states = dict(Counter(str(d.cadence.state) for d in due))
        finished = False
        if deadline.remaining() > 30:
            cap = min(PLANNING_CAP_S, deadline.remaining() - 25)
            result.full_s, result.planned, finished = await time_planning(
                database, context, shape, repeats, cap
            )
            result.finished = finished
            if not finished:
                result.note = (
                    f"(2) STOPPED after {result.full_s[-1]:.0f} s, unfinished (cap {cap:.0f} s): "
                    "the figure is a lower bound; committed tick and next tick not run"
                )
        else:
            result.note = "planning skipped (deadline)"
        if deadline.remaining() > 30 and finished:
            result.commit_s, result.replan_s, result.replanned = await committed_then_again(
                database, context, shape
            )
            async with database.sessionmaker() as session:
                outbox_rows = await session.scalar(
                    select(func.count()).select_from(models.OutboxMessage)
                )
            result.rows["outbox_message (after)"] = int(outbox_rows or 0)
        if explain and deadline.remaining() > 20:
            plan_lines = await explain_due(database, shape)
    return result, plan_lines


# -- report ----------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{1e3 * seconds:,.1f} ms"


def print_result(r: Result) -> None:
    load_rows = sum(v for k, v in r.rows.items() if "after" not in k)
    print(
        f"  N = {r.pairings:,}: loaded {load_rows:,} rows in {r.load_s:.1f} s "
        f"({', '.join(f'{k} {v:,}' for k, v in r.rows.items())})"
    )
    states = ", ".join(f"{k} {v:,}" for k, v in sorted(r.states.items()))
    print(f"    rows due {r.due:,} (expected {r.expected_due:,}: {states})")
    runs = ", ".join(ms(s) for s in r.query_s)
    print(f"    (1) due_pairings alone: best {ms(r.query)} [{runs}]")
    if r.full_s and r.finished:
        runs = ", ".join(ms(s) for s in r.full_s)
        beyond = r.full - r.query
        per_due = 1e3 * beyond / max(r.due, 1)
        print(
            f"    (2) plan_talk_cadence (due_pairings + outbox rows), rolled back: best "
            f"{ms(r.full)} [{runs}], {r.planned:,} outbox rows; beyond the query "
            f"{ms(beyond)} = {per_due:.2f} ms per due pairing"
        )
    if r.replanned >= 0:
        print(
            f"        committed tick {ms(r.commit_s)}; the next tick (same keys, all ON "
            f"CONFLICT no-ops) {ms(r.replan_s)}, {r.replanned} added"
        )
    if r.note:
        print(f"    {r.note}")


def print_ratios(results: list[Result]) -> None:
    done = [r for r in results if r.query_s]
    for a, b in itertools.pairwise(done):
        size = b.pairings / a.pairings
        due = b.due / a.due if a.due else float("nan")
        line = (
            f"  N {a.pairings:,} → {b.pairings:,} ({size:g}× table, {due:.3g}× due): "
            f"query {b.query / a.query:.2f}×"
        )
        if a.full_s and b.full_s:
            ge = "" if b.finished else "≥"
            line += (
                f", full step {ge}{b.full / a.full:.2f}×, planning beyond the query "
                f"{ge}{(b.full - b.query) / max(a.full - a.query, 1e-9):.2f}×"
            )
        print(line)
    if done:
        r = done[-1]
        if r.full_s and r.finished:
            print(
                f"  at N = {r.pairings:,} the query is {100 * r.query / r.full:.0f}% of the "
                f"full step; query cost per table row {1e6 * r.query / r.pairings:.2f} µs, "
                f"per due row {1e3 * r.query / max(r.due, 1):.2f} ms"
            )


async def main_async(args: argparse.Namespace) -> int:
    started = time.monotonic()
    deadline = Deadline(args.time_limit)
    kinds = ["sqlite", "postgresql"] if args.postgres else ["sqlite"]
    sizes = sorted(args.pairings)
    print(
        f"bench.planning: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load "
        f"average {os.getloadavg()[0]:.1f}; pairings {', '.join(f'{n:,}' for n in sizes)}, "
        f"due share {args.due_share:g}, every {EVERY_DAYS} d / soon {SOON_DAYS} d, "
        f"time limit {args.time_limit:.0f} s"
    )
    now = datetime.now(UTC)
    for k, kind in enumerate(kinds):
        print(f"\n[{kind}]")
        # Each engine gets an equal share of what is left.
        budget = Deadline(deadline.remaining() / (len(kinds) - k))
        results: list[Result] = []
        last_load = 0.0
        for i, n in enumerate(sizes):
            projected = last_load * n / sizes[i - 1] * 1.5 if i and last_load else 0.0
            if budget.remaining() < max(projected, 15):
                print(
                    f"  N = {n:,}: SKIPPED, would not fit the deadline (projected load "
                    f"{projected:.0f} s, {budget.remaining():.0f} s left)"
                )
                continue
            shape = Shape(n, args.due_share, now)
            result, plan = await run_one(kind, args.pg_url, shape, budget, explain=n == sizes[-1])
            last_load = result.load_s
            results.append(result)
            print_result(result)
            if plan:
                print(f"    plan of the due_pairings SELECT at N = {n:,}:")
                for line in plan:
                    print(f"      {line}")
        print("  ratios:")
        print_ratios(results)
    print(f"\ndone in {time.monotonic() - started:.0f} s")
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.planning", description=__doc__)
    parser.add_argument(
        "--pairings", type=int, nargs="+", default=list(DEFAULT_SIZES), help="table sizes"
    )
    parser.add_argument("--due-share", type=float, default=0.01)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL after SQLite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--time-limit", type=float, default=1200.0, help="overall, seconds")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return asyncio.run(asyncio.wait_for(main_async(args), args.time_limit + 60))


if __name__ == "__main__":
    sys.exit(main())
