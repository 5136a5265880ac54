"""The engine's per-update economies: the PostgreSQL ping that is the BEGIN, a newcomer's
account by Core inserts, the handled mark in the COMMIT's round trip. Each is checked for
what it must keep, not only for its speed."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError

from storage import inbox, people, pg_driver
from storage.db import Database
from storage.models import InboundUpdate, Person, TelegramAccount
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
        assert raw is not None
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
        assert raw is not None
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


async def _handled_at(db: Database, update_id: int) -> object:
    async with db.sessionmaker() as session:
        return await session.scalar(
            select(InboundUpdate.handled_at).where(InboundUpdate.update_id == update_id)
        )


async def test_handled_mark_rides_on_the_commit(db: Database) -> None:
    """On PostgreSQL the mark is sent in the COMMIT's message; it commits with the rest."""
    sent: list[str] = []

    def logger(record: Any) -> None:
        sent.append(record.query)

    async with db.sessionmaker() as session:
        await session.execute(insert(InboundUpdate).values(update_id=11, payload=b"x"))
        raw = await inbox._driver_connection(session)
        if isinstance(raw, pg_driver.OneTripConnection):
            raw.add_query_logger(logger)
        await inbox.mark_handled_with_commit(session, 11, now=inbox.utcnow())
        await session.commit()
        if isinstance(raw, pg_driver.OneTripConnection):
            raw.remove_query_logger(logger)
    assert await _handled_at(db, 11) is not None
    if not db.url.startswith("sqlite"):
        assert len(sent) == 1 and sent[0].startswith("INSERT INTO inbound_update")
        assert sent[0].endswith("COMMIT;")


async def test_a_rolled_back_mark_is_dropped(db: Database) -> None:
    async with db.sessionmaker() as session:
        await session.execute(insert(InboundUpdate).values(update_id=12, payload=b"x"))
        await inbox.mark_handled_with_commit(session, 12, now=inbox.utcnow())
        await session.rollback()
        await session.execute(insert(InboundUpdate).values(update_id=13, payload=b"x"))
        await session.commit()  # a later commit does not carry the dropped mark
    assert await _handled_at(db, 13) is None
    async with db.sessionmaker() as session:
        assert await session.get(InboundUpdate, 12) is None


async def test_a_failing_pending_statement_aborts_the_commit(db: Database) -> None:
    if db.url.startswith("sqlite"):
        return
    async with db.sessionmaker() as session:
        await session.execute(insert(InboundUpdate).values(update_id=14, payload=b"x"))
        raw = await inbox._driver_connection(session)
        assert isinstance(raw, pg_driver.OneTripConnection)
        await raw.run_before_commit("SELECT 1 / 0")
        with pytest.raises(DBAPIError):
            await session.commit()
    async with db.sessionmaker() as session:
        assert await session.get(InboundUpdate, 14) is None  # nothing of it committed


async def test_mark_outside_a_transaction_runs_at_once(db: Database) -> None:
    if db.url.startswith("sqlite"):
        return
    async with db.sessionmaker() as session:
        raw = await inbox._driver_connection(session)
        assert isinstance(raw, pg_driver.OneTripConnection)
        await session.rollback()  # closes the transaction the checkout opened
        assert not raw.is_in_transaction()
        await raw.run_before_commit(inbox.pg_mark_literal(15, inbox.utcnow()))
    assert await _handled_at(db, 15) is not None


async def test_known_account_is_opened_without_a_new_person(db: Database) -> None:
    """open_account inserts first: for a known Telegram id it must insert nothing."""
    async with db.sessionmaker.begin() as session:
        first = await people.ensure_account(session, NEWCOMER, None)
        person_id = first.person_id
    async with db.sessionmaker.begin() as session:
        account, created = await people.open_account(session, NEWCOMER, "zh-hans")
        assert not created and account.person_id == person_id
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 1
        stored = await session.get(TelegramAccount, NEWCOMER)
        assert stored is not None and stored.language_code == "zh-hans"
