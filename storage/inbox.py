"""The inbox: Telegram updates recorded by update_id before they are handled.

An update is written here (payload encrypted) before PTB's Updater confirms it to Telegram
(polling: before the next getUpdates moves the offset; webhook: before the 200), and marked
handled in the same transaction as the handler's own writes. So a crash loses nothing (what
is recorded and not handled is handled after restart, in update_id order) and a redelivered
update_id is recognised and ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage import pg_driver, sqlite_driver
from storage.db import upsert, upsert_for
from storage.models import InboundUpdate


async def record(session: AsyncSession | AsyncConnection, update_id: int, payload: bytes) -> bool:
    """Record an update as received; False if this update_id was recorded before.

    Takes a connection too: on PostgreSQL the queue records on an autocommit connection of
    its own, one round trip instead of BEGIN, INSERT, COMMIT and a pool ping.
    """
    if isinstance(session, AsyncConnection):
        insert = upsert_for(session.dialect.name)
    else:
        insert = upsert(session)
    statement = (
        insert(InboundUpdate)
        .values(update_id=update_id, payload=payload)
        .on_conflict_do_nothing(index_elements=[InboundUpdate.update_id])
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


# SQLite's fast path (bot/app.py): the same statements as `record` and `mark_handled`, as plain
# SQL for one thread hand-off each (sqlite_driver), with datetimes as SQLAlchemy stores them.
SQLITE_RECORD = (
    "INSERT INTO inbound_update (update_id, payload, received_at) VALUES (?, ?, ?) "
    "ON CONFLICT (update_id) DO NOTHING"
)
SQLITE_MARK = (
    "INSERT INTO inbound_update (update_id, payload, received_at, handled_at) "
    "VALUES (?, NULL, ?, ?) "
    "ON CONFLICT (update_id) DO UPDATE SET handled_at = excluded.handled_at, payload = NULL"
)


# PostgreSQL's fast path: the same statements in asyncpg's own dialect.
PG_RECORD = (
    "INSERT INTO inbound_update (update_id, payload) VALUES ($1, $2) "
    "ON CONFLICT (update_id) DO NOTHING"
)
PG_MARK = "UPDATE inbound_update SET handled_at = $2, payload = NULL WHERE update_id = $1"


def pg_mark_literal(update_id: int, now: datetime) -> str:
    """The handled mark as one literal statement, for the COMMIT's round trip (pg_driver).

    An upsert like SQLITE_MARK, since its row count cannot be read before the commit: an
    update handled without passing through the queue (tests, `cadrebot shell`) is recorded
    too. Only an int and a datetime's ISO form go in: nothing to quote or escape.
    """
    moment = now.astimezone(UTC).isoformat()
    return (
        "INSERT INTO inbound_update (update_id, payload, handled_at) "
        f"VALUES ({int(update_id)}, NULL, '{moment}'::timestamptz) "
        "ON CONFLICT (update_id) DO UPDATE SET handled_at = excluded.handled_at, payload = NULL"
    )


def sqlite_time(moment: datetime) -> str:
    """A datetime as storage.models.UTCDateTime writes it on SQLite (naive UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def _driver_connection(session: AsyncSession) -> Any:
    """The driver's own connection under the session's (already checked out: no I/O)."""
    connection = await session.connection()
    assert connection.sync_connection is not None
    return connection.sync_connection.connection.driver_connection


async def mark_handled_with_commit(
    session: AsyncSession, update_id: int, *, now: datetime
) -> None:
    """`mark_handled`, sent on SQLite with the commit itself (no hand-off of its own)."""
    if session.get_bind().dialect.name == "sqlite":
        raw = await _driver_connection(session)
        if isinstance(raw, sqlite_driver.OneHopConnection):
            moment = sqlite_time(now)
            raw.run_before_commit(SQLITE_MARK, (update_id, moment, moment))
            return
    elif session.get_bind().dialect.name == "postgresql":
        raw = await _driver_connection(session)
        if isinstance(raw, pg_driver.OneTripConnection):
            # Sent with the COMMIT, in one round trip (storage/pg_driver.py).
            await raw.run_before_commit(pg_mark_literal(update_id, now))
            return
        # asyncpg directly, in the session's transaction: SQLAlchemy's per-statement work
        # costs about as much as the round trip here.
        if raw is not None and hasattr(raw, "execute"):
            status = await raw.execute(PG_MARK, update_id, now)
            if status.endswith(" 1"):
                return
    await mark_handled(session, update_id, now=now)


async def is_handled(session: AsyncSession, update_id: int) -> bool:
    handled = await session.scalar(
        select(InboundUpdate.handled_at).where(InboundUpdate.update_id == update_id)
    )
    return handled is not None


async def mark_handled(session: AsyncSession, update_id: int, *, now: datetime) -> None:
    """Mark handled and drop the payload (what the person typed is no longer needed)."""
    result = await session.execute(
        update(InboundUpdate)
        .where(InboundUpdate.update_id == update_id)
        .values(handled_at=now, payload=None)
        # Nothing in the session holds an inbox row: skip the ORM's bookkeeping.
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        # Handled without passing through the queue (tests, `cadrebot shell`): still recorded,
        # so a later delivery of the same update_id is recognised.
        await session.execute(
            upsert(session)(InboundUpdate)
            .values(update_id=update_id, payload=None, handled_at=now)
            .on_conflict_do_update(
                index_elements=[InboundUpdate.update_id],
                set_={"handled_at": now, "payload": None},
            )
        )


async def unhandled(session: AsyncSession) -> list[tuple[int, bytes | None]]:
    """Recorded and not yet handled, oldest first: what a restart handles before anything."""
    rows = await session.execute(
        select(InboundUpdate.update_id, InboundUpdate.payload)
        .where(InboundUpdate.handled_at.is_(None))
        .order_by(InboundUpdate.update_id)
    )
    return [(update_id, payload) for update_id, payload in rows.all()]


async def prune(session: AsyncSession, *, before: datetime) -> int:
    """Forget handled updates older than `before` (a redelivery that late is not expected)."""
    result = await session.execute(
        delete(InboundUpdate).where(
            InboundUpdate.handled_at.is_not(None), InboundUpdate.handled_at < before
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def utcnow() -> datetime:
    return datetime.now(UTC)


async def next_update_id(session: AsyncSession) -> int:
    """Above every update_id recorded: for `cadrebot shell`, which makes up its own updates."""
    highest = await session.scalar(select(func.max(InboundUpdate.update_id)))
    return int(highest or 0) + 1
