"""The one-hand-off SQLite driver: same results as any driver, fewer trips to its thread.

The result tests run on both databases: what SQLite answers through storage/sqlite_driver.py
must be what PostgreSQL answers through asyncpg. The hand-off and locking tests are about
SQLite alone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from storage import sqlite_driver
from storage.db import Database
from storage.models import AuditLog, ConversationState, InboundUpdate

ROWS = sqlite_driver.PREFETCH * 2 + 7


async def _fill_audit(database: Database, count: int) -> None:
    async with database.sessionmaker.begin() as session:
        await session.execute(
            insert(AuditLog),
            [{"action": "probe", "subject_type": "test", "subject_id": n} for n in range(count)],
        )


async def test_more_rows_than_one_prefetch_all_arrive_in_order(db: Database) -> None:
    await _fill_audit(db, ROWS)
    async with db.sessionmaker() as session:
        eager = list(await session.scalars(select(AuditLog.id).order_by(AuditLog.id)))
        streamed = [
            value
            async for value in await session.stream_scalars(
                select(AuditLog.id).order_by(AuditLog.id).execution_options(yield_per=100)
            )
        ]
    assert len(eager) == ROWS
    assert eager == sorted(eager)
    assert streamed == eager


async def test_partitions_of_a_stream_keep_their_sizes(db: Database) -> None:
    await _fill_audit(db, ROWS)
    async with db.sessionmaker() as session:
        result = await session.stream(select(AuditLog.id).order_by(AuditLog.id))
        sizes = [len(part) async for part in result.partitions(300)]
    assert sizes == [300, 300, 300, ROWS - 900]


async def test_rowcount_and_returning(db: Database) -> None:
    # On the inbox rather than audit_log, which the database keeps append-only (0012).
    async with db.sessionmaker.begin() as session:
        await session.execute(insert(InboundUpdate), [{"update_id": n} for n in range(1, 11)])
    async with db.sessionmaker.begin() as session:
        changed = await session.execute(
            update(InboundUpdate).where(InboundUpdate.update_id <= 4).values(handled_at=func.now())
        )
        assert changed.rowcount == 4  # type: ignore[attr-defined]
        removed = await session.execute(
            delete(InboundUpdate)
            .where(InboundUpdate.handled_at.is_not(None))
            .returning(InboundUpdate.update_id)
        )
        assert sorted(removed.scalars()) == [1, 2, 3, 4]
        assert await session.scalar(select(func.count()).select_from(InboundUpdate)) == 6


async def test_a_failed_statement_rolls_back_its_transaction(db: Database) -> None:
    async with db.sessionmaker.begin() as session:
        session.add(ConversationState(name="flow", key="k", state={"at": "a"}))
    with pytest.raises(IntegrityError):
        async with db.sessionmaker.begin() as session:
            await session.execute(insert(AuditLog).values(action="before", subject_type="test"))
            # The same (name, key) again: the primary key refuses it.
            await session.execute(insert(ConversationState).values(name="flow", key="k", state={}))
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(AuditLog)) == 0
        # The connection went back to the pool usable, outside any transaction.
        assert await session.scalar(select(ConversationState.state)) == {"at": "a"}


@pytest.fixture
async def counted(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Database, list[str]]]:
    """SQLite, with every hand-off to the connection's thread recorded by function name."""
    calls: list[str] = []
    original = aiosqlite.Connection._execute

    async def counting(
        self: aiosqlite.Connection, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        calls.append(getattr(fn, "__name__", type(fn).__name__))
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    # Every hand-off, ours and aiosqlite's own (commit, rollback), goes through _execute.
    monkeypatch.setattr(sqlite_driver.OneHopConnection, "_execute", counting)
    try:
        async with sqlite_database.sessionmaker() as session:
            await session.execute(text("SELECT 1"))  # the pool's first connect, not counted
        calls.clear()
        yield sqlite_database, calls
    finally:
        await sqlite_database.close()


async def test_a_write_transaction_costs_one_hand_off_per_statement_and_one_commit(
    counted: tuple[Database, list[str]],
) -> None:
    database, calls = counted
    async with database.sessionmaker.begin() as session:
        await session.scalar(select(func.count()).select_from(AuditLog))
        await session.execute(insert(AuditLog).values(action="one", subject_type="test"))
        await session.execute(insert(AuditLog).values(action="two", subject_type="test"))
    # BEGIN IMMEDIATE travels with the first statement; the pool's reset after the commit
    # finds no transaction and stays on the event loop.
    assert calls == ["_run", "_run", "_run", "commit"]


async def test_a_read_that_finds_more_rows_fetches_the_rest_on_demand(
    counted: tuple[Database, list[str]],
) -> None:
    database, calls = counted
    await _fill_audit(database, ROWS)
    calls.clear()
    async with database.sessionmaker() as session:
        ids = list(await session.scalars(select(AuditLog.id)))
    assert len(ids) == ROWS
    # One execute with the first rows, then the remainder, then the cursor's close; the
    # session's read transaction ends with a rollback of the (immediate) transaction.
    assert calls == ["_run", "fetchall", "close", "rollback"]


async def test_the_first_statement_takes_the_write_lock(sqlite_database: Database) -> None:
    path = sqlite_database.url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        async with sqlite_database.sessionmaker.begin() as session:
            # A read, yet the transaction began IMMEDIATE: another writer must wait.
            await session.scalar(select(func.count()).select_from(AuditLog))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()
        await sqlite_database.close()


async def test_a_busy_database_fails_the_first_statement_after_the_timeout(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sqlite_database.url.removeprefix("sqlite:///")
    # A short busy timeout for this engine only, so the test waits 0.2 s, not 15.
    monkeypatch.setattr("storage.db.SQLITE_BUSY_TIMEOUT_MS", 200)
    impatient = Database(sqlite_database.url)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="locked"):
            async with impatient.sessionmaker.begin() as session:
                await session.execute(text("SELECT 1"))
        holder.execute("ROLLBACK")
        # Nothing stuck: the same engine writes once the lock is free.
        async with impatient.sessionmaker.begin() as session:
            await session.execute(insert(AuditLog).values(action="after", subject_type="test"))
    finally:
        holder.close()
        await impatient.close()
        await sqlite_database.close()
