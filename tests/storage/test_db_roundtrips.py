"""The engine's per-update economies: the PostgreSQL ping that is the BEGIN, a newcomer's
account by Core inserts. Each is checked for what it must keep, not only for its speed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text

from storage import people
from storage.db import Database
from storage.models import Person, TelegramAccount
from tests.conftest import _pg_exec

NEWCOMER = 7_000_000_789


async def _backend_pid(database: Database) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)


async def test_pg_connection_killed_while_pooled_is_replaced(db: Database) -> None:
    """As pool_pre_ping did: a pooled connection the server dropped is found dead at
    checkout and replaced, so the next transaction works instead of failing."""
    if db.url.startswith("sqlite"):
        return
    pid = await _backend_pid(db)  # back in the pool, idle
    await _pg_exec(f"SELECT pg_terminate_backend({pid})")
    async with db.sessionmaker.begin() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 0
    assert await _backend_pid(db) != pid


async def test_pg_one_begin_per_transaction(db: Database) -> None:
    """The ping opens the transaction the session then uses: one BEGIN, no ping of its own."""
    if db.url.startswith("sqlite"):
        return
    sent: list[str] = []

    def logger(record: Any) -> None:
        sent.append(record.query)

    async with db.sessionmaker() as session:
        connection = await session.connection()
        raw = (await connection.get_raw_connection()).driver_connection
        raw.add_query_logger(logger)
        try:
            await session.execute(select(func.count()).select_from(Person))
            await session.commit()
        finally:
            raw.remove_query_logger(logger)
    assert [q for q in sent if "BEGIN" in q.upper()] == []  # sent at checkout, before this
    async with db.sessionmaker() as session:
        connection = await session.connection()
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw.is_in_transaction()  # the checkout's ping opened it
        await session.rollback()


async def test_newcomer_account_is_persistent_with_its_person(db: Database) -> None:
    async with db.sessionmaker() as session:
        account, created = await people.open_account(session, NEWCOMER, "zh-hans")
        assert created
        # Loaded as the ORM would have left it: no lazy load (which async cannot do).
        assert account.person.id == account.person_id
        assert account.person.full_name is None
        assert account.first_seen_at is not None and account.person.created_at is not None
        assert account in session and not session.new and not session.dirty
        again, created_again = await people.open_account(session, NEWCOMER, "en")
        assert again is account and not created_again
        await session.commit()  # the changed language_code is flushed as an update
    async with db.sessionmaker() as session:
        stored = await session.get(TelegramAccount, NEWCOMER)
        assert stored is not None and stored.language_code == "en"
        assert await session.scalar(select(func.count()).select_from(Person)) == 1
