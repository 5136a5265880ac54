"""Tallies: per-township counters kept by database triggers, and the recount that checks them.

A summary over a million nominations cannot group every talk and pairing each time it is
asked (issue 5: under 1 s for the county, 100 ms for a township). So the database keeps, in
the same transaction as every write, whatever the summaries would otherwise count:
- `township_id` on status_change, pairing, talk_log, difficulty, practice_post, grade_move,
  election and training_invite, copied from the nomination when the row is inserted (a
  nomination's township never changes), so a township's figures are index ranges;
- `pairing.in_pool` (the cadre is in the pool now) and `nomination.active_pairings` (its
  pairings not ended), so that "active pairing" is a fact of one row;
- talk_tally (talks per township and date), cadence_tally (active pairings per township and
  date of their last talk) and nomination_tally (nominations per township, status,
  education college-or-higher and active pairings).

Triggers, not application code, keep them (migration 0009 holds their text for both engines):
every path that writes (the bot, the CLI, erasure's cascades, a hand-written fix in psql)
keeps them right. Each trigger adjusts a tally from the old and new values of its own row,
which is correct whatever order the row triggers of one statement fire in; the only
cross-row value, `active_pairings`, is recounted, not incremented, for the same reason.

`verify` recounts everything from the facts and lists what disagrees (tests call it after
every kind of write, on both engines); `rebuild` rewrites it all from the facts, for bulk
loads that ran with triggers off (bench/summary.py) or after a repair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.rules.options import COLLEGE_OR_HIGHER

SCOPED_TABLES = (
    "status_change",
    "pairing",
    "talk_log",
    "difficulty",
    "practice_post",
    "grade_move",
    "election",
    "training_invite",
)
_COLLEGE = "(" + ", ".join(f"'{e}'" for e in COLLEGE_OR_HIGHER) + ")"
_ACTIVE = "ended_at IS NULL AND in_pool = TRUE"

# What each tally should hold, from the facts: (tally, its key columns, the recount).
_RECOUNTS = (
    (
        "talk_tally",
        ("township_id", "talk_date"),
        "SELECT township_id, talk_date, count(*) AS n FROM talk_log "
        "WHERE township_id IS NOT NULL GROUP BY township_id, talk_date",
    ),
    (
        "cadence_tally",
        ("township_id", "last_talk_on"),
        "SELECT township_id, last_talk_on, count(*) AS n FROM pairing "
        f"WHERE {_ACTIVE} AND township_id IS NOT NULL AND last_talk_on IS NOT NULL "
        "GROUP BY township_id, last_talk_on",
    ),
    (
        "nomination_tally",
        ("township_id", "status", "college", "active_pairings"),
        f"SELECT township_id, status, COALESCE(education IN {_COLLEGE}, FALSE) AS college, "
        "active_pairings, count(*) AS n FROM nomination GROUP BY township_id, status, "
        f"COALESCE(education IN {_COLLEGE}, FALSE), active_pairings",
    ),
)

# The copied and kept columns, as statements that set every row right (and touch only the
# rows that are wrong, so that a rebuild of a correct database writes nothing). PostgreSQL
# gets UPDATE ... FROM, a hash join (a correlated subquery per row takes minutes over
# millions of talks); SQLite's correlated form is a primary-key probe per row, its best plan.
_ACTIVE_COUNTS = (
    "SELECT nomination_id, count(*) AS n FROM pairing WHERE ended_at IS NULL "
    "GROUP BY nomination_id"
)


def _column_fixes(postgresql: bool) -> tuple[str, ...]:
    if postgresql:
        return (
            *(
                f"UPDATE {table} SET township_id = nomination.township_id FROM nomination "
                f"WHERE nomination.id = {table}.nomination_id "
                f"AND {table}.township_id IS DISTINCT FROM nomination.township_id"
                for table in SCOPED_TABLES
            ),
            "UPDATE pairing SET in_pool = (nomination.status = 'in_pool') FROM nomination "
            "WHERE nomination.id = pairing.nomination_id "
            "AND pairing.in_pool <> (nomination.status = 'in_pool')",
            "UPDATE nomination SET active_pairings = COALESCE(active.n, 0) FROM nomination AS n "
            f"LEFT JOIN ({_ACTIVE_COUNTS}) AS active ON active.nomination_id = n.id "
            "WHERE n.id = nomination.id AND nomination.active_pairings <> COALESCE(active.n, 0)",
        )
    return (
        *(
            f"UPDATE {table} SET township_id = (SELECT nomination.township_id FROM nomination "
            f"WHERE nomination.id = {table}.nomination_id) WHERE township_id IS NULL OR "
            f"township_id <> (SELECT nomination.township_id FROM nomination "
            f"WHERE nomination.id = {table}.nomination_id)"
            for table in SCOPED_TABLES
        ),
        "UPDATE pairing SET in_pool = (SELECT nomination.status = 'in_pool' FROM nomination "
        "WHERE nomination.id = pairing.nomination_id) WHERE in_pool <> (SELECT "
        "nomination.status = 'in_pool' FROM nomination "
        "WHERE nomination.id = pairing.nomination_id)",
        "UPDATE nomination SET active_pairings = (SELECT count(*) FROM pairing "
        "WHERE pairing.nomination_id = nomination.id AND pairing.ended_at IS NULL) "
        "WHERE active_pairings <> (SELECT count(*) FROM pairing "
        "WHERE pairing.nomination_id = nomination.id AND pairing.ended_at IS NULL)",
    )


# Rows whose kept columns disagree with the facts, per check.
_COLUMN_CHECKS = (
    *(
        (
            f"{table}.township_id",
            f"SELECT count(*) FROM {table} JOIN nomination ON nomination.id = "
            f"{table}.nomination_id WHERE {table}.township_id IS NULL "
            f"OR {table}.township_id <> nomination.township_id",
        )
        for table in SCOPED_TABLES
    ),
    (
        "pairing.in_pool",
        "SELECT count(*) FROM pairing JOIN nomination ON nomination.id = pairing.nomination_id "
        "WHERE pairing.in_pool <> (nomination.status = 'in_pool')",
    ),
    (
        "nomination.active_pairings",
        "SELECT count(*) FROM nomination WHERE active_pairings <> (SELECT count(*) FROM "
        "pairing WHERE pairing.nomination_id = nomination.id AND pairing.ended_at IS NULL)",
    ),
)


def column_statements(*, postgresql: bool) -> tuple[str, ...]:
    """SQL that sets the kept columns right (the first part of a rebuild)."""
    return _column_fixes(postgresql)


def tally_statements() -> tuple[str, ...]:
    """SQL that rewrites the tallies from the facts and the kept columns (the second part)."""
    statements: list[str] = []
    for tally, keys, recount in _RECOUNTS:
        statements.append(f"DELETE FROM {tally}")
        statements.append(f"INSERT INTO {tally} ({', '.join(keys)}, n) {recount}")
    return tuple(statements)


def rebuild_statements(*, postgresql: bool) -> tuple[str, ...]:
    """SQL that makes every kept column and tally right, for one engine.

    Run with triggers off (a bulk load) or on (they then adjust the tallies that the last
    statements rewrite anyway)."""
    return (*column_statements(postgresql=postgresql), *tally_statements())


async def rebuild(connection: AsyncConnection | AsyncSession) -> None:
    """Rewrite the kept columns and tallies from the facts, in the caller's transaction."""
    bind = connection.get_bind() if isinstance(connection, AsyncSession) else connection
    postgresql = bind.dialect.name == "postgresql"
    for statement in rebuild_statements(postgresql=postgresql):
        await connection.execute(text(statement))


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One disagreement: a tally row (key) holding `stored` where the facts give `counted`,
    or a kept column (key ()) wrong on `counted` rows."""

    what: str
    key: tuple[Any, ...]
    stored: int
    counted: int


async def verify(connection: AsyncConnection | AsyncSession) -> list[Mismatch]:
    """Every disagreement between the kept columns and tallies and a recount of the facts."""
    found: list[Mismatch] = []
    for what, check in _COLUMN_CHECKS:
        wrong = int((await connection.execute(text(check))).scalar_one())
        if wrong:
            found.append(Mismatch(what, (), 0, wrong))
    for tally, keys, recount in _RECOUNTS:
        columns = ", ".join(keys)
        stored = {
            tuple(row[:-1]): int(row[-1])
            for row in (await connection.execute(text(f"SELECT {columns}, n FROM {tally}")))
            if row[-1]
        }
        counted = {
            tuple(row[:-1]): int(row[-1]) for row in await connection.execute(text(recount))
        }
        for key in sorted(stored.keys() | counted.keys(), key=repr):
            if stored.get(key, 0) != counted.get(key, 0):
                found.append(Mismatch(tally, key, stored.get(key, 0), counted.get(key, 0)))
    return found
