"""SQLite with concurrent writers: never "database is locked", no lost update, PRAGMAs set."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import SQLITE_BUSY_TIMEOUT_MS, Database
from storage.models import AuditLog, ConversationState

WRITERS = 3
ITERATIONS = 50


@pytest.fixture
async def engines(sqlite_database: Database) -> AsyncIterator[list[Database]]:
    """Several processes' worth of engines on one SQLite file."""
    databases = [Database(sqlite_database.url) for _ in range(WRITERS)]
    yield databases
    for database in databases:
        await database.close()
    await sqlite_database.close()


async def _writer(database: Database, number: int) -> None:
    for iteration in range(ITERATIONS):
        async with database.sessionmaker.begin() as session:
            # Read ...
            counter = await session.scalar(
                select(ConversationState.state).where(ConversationState.name == "counter")
            )
            seen = await session.scalar(
                select(func.count()).select_from(AuditLog).where(AuditLog.action == "tick")
            )
            # ... let the other writers run in between ...
            await asyncio.sleep(0)
            # ... then write what was read, plus one.
            assert counter is not None
            await session.execute(
                update(ConversationState)
                .where(ConversationState.name == "counter")
                .values(state={"n": counter["n"] + 1})
            )
            session.add(
                AuditLog(
                    action="tick",
                    subject_type="test",
                    detail={"seen": seen, "writer": number, "iteration": iteration},
                )
            )


async def test_concurrent_read_then_write_transactions(engines: list[Database]) -> None:
    async with engines[0].sessionmaker.begin() as session:
        session.add(ConversationState(name="counter", key="-", state={"n": 0}))

    # Any "database is locked" would surface here as an OperationalError.
    await asyncio.wait_for(
        asyncio.gather(*(_writer(db, n) for n, db in enumerate(engines))), timeout=120
    )

    total = WRITERS * ITERATIONS
    async with engines[0].sessionmaker() as session:
        counter = await session.scalar(select(ConversationState.state))
        ticks = list(await session.scalars(select(AuditLog).where(AuditLog.action == "tick")))
    assert counter == {"n": total}
    assert len(ticks) == total
    # Each transaction saw every earlier one: the counts read are exactly 0 .. total-1.
    assert sorted(t.detail["seen"] for t in ticks) == list(range(total))
    # All writers took part.
    assert {t.detail["writer"] for t in ticks} == set(range(WRITERS))


async def _pragmas(connection: AsyncConnection) -> tuple[object, ...]:
    names = ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
    return tuple([(await connection.exec_driver_sql(f"PRAGMA {n}")).scalar() for n in names])


async def test_pragmas_apply_to_every_connection(engines: list[Database]) -> None:
    expected = ("wal", 1, SQLITE_BUSY_TIMEOUT_MS, 1)  # synchronous NORMAL == 1
    assert SQLITE_BUSY_TIMEOUT_MS == 15_000
    database = engines[0]
    # Hold several connections of one pool at once, so that each is a separate connection.
    async with (
        database.engine.connect() as first,
        database.engine.connect() as second,
        database.engine.connect() as third,
    ):
        raw = [await c.get_raw_connection() for c in (first, second, third)]
        assert len({id(r.driver_connection) for r in raw}) == 3
        for connection in (first, second, third):
            assert await _pragmas(connection) == expected
            await connection.rollback()
    # And a connection of another engine.
    async with engines[1].engine.connect() as other:
        assert await _pragmas(other) == expected


async def test_foreign_keys_are_enforced(engines: list[Database]) -> None:
    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        async with engines[0].engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO township (county_id, name) VALUES (999, '无县镇')")
            )
