"""Engine and session factory: one per process, opened by the application, never at import."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only

from storage import pg_driver, sqlite_driver

SQLITE_BUSY_TIMEOUT_MS = 15_000


def async_url(url: str) -> str:
    """Map the plain URLs operators write to the async drivers we ship."""
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
    return re.sub(r"^postgres(ql)?://", "postgresql+asyncpg://", url)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _install_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so that "begin" below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that later tries to
        # write fails with "database is locked" instead of waiting on busy_timeout.
        driver = conn.connection.driver_connection
        if isinstance(driver, sqlite_driver.OneHopConnection):
            # Sent with the transaction's first statement, in the same thread hand-off.
            driver.begin_with_next_statement("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _install_postgres_ping(engine: Engine) -> None:
    """pool_pre_ping in one round trip, and that round trip is the transaction's BEGIN.

    SQLAlchemy's pre-ping on asyncpg sends BEGIN, a `;` and ROLLBACK (three round trips, kept
    in a transaction for pgbouncer's transaction mode), then the session sends its own BEGIN
    with its first statement: four of the ten round trips of a newcomer's /start. Here the
    checked-out connection is proved alive by opening its transaction: the adapter's
    `_start_transaction` is what it runs before the first statement anyway, so the session's
    statements join that transaction and no BEGIN follows. A dead connection fails the BEGIN,
    and DisconnectionError makes the pool discard it and check out another (SQLAlchemy's
    documented checkout-event recipe), as pre-ping did. In READ COMMITTED the snapshot is
    taken by the first statement, not by BEGIN, so nothing else changes; a checkout that runs
    nothing is rolled back by the pool's reset on return (one round trip, as before).
    """

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        # Private to SQLAlchemy's asyncpg adapter: without it, a plain one-round-trip ping.
        start = getattr(dbapi_connection, "_start_transaction", None)
        try:
            if (
                start is not None
                and getattr(dbapi_connection, "isolation_level", None) != "autocommit"
                and not driver.is_in_transaction()
            ):
                await_only(start())
            else:
                await_only(driver.fetchrow(";"))
        except Exception as error:
            raise DisconnectionError(
                f"connection failed its ping: {type(error).__name__}"
            ) from error


def create_engine(url: str, *, schema: str | None = None, echo: bool = False) -> AsyncEngine:
    """Build the async engine for DATABASE_URL (an SQLite file's folder is created)."""
    url = async_url(url)
    # Parameters stay out of exception texts, which reach the logs: they may be an ID number.
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if is_sqlite(url):
        match = re.match(r"^sqlite\+aiosqlite:///(.+)$", url)
        path = match.group(1) if match else ":memory:"
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One thread hand-off per statement instead of four (storage/sqlite_driver.py).
        kwargs["async_creator"] = partial(
            sqlite_driver.connect, path, busy_seconds=SQLITE_BUSY_TIMEOUT_MS / 1000
        )
    else:
        # No pool_pre_ping: _install_postgres_ping does its work in one round trip.
        # The inbox's handled mark rides on the COMMIT's round trip (storage/pg_driver.py).
        connect_args: dict[str, Any] = {"connection_class": pg_driver.OneTripConnection}
        if schema:
            connect_args["server_settings"] = {"search_path": schema}
        kwargs["connect_args"] = connect_args
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        _install_sqlite_pragmas(engine.sync_engine)
    else:
        _install_postgres_ping(engine.sync_engine)
    return engine


class Database:
    """The process's engine and sessionmaker, opened lazily and closed once."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.url = url
        self.schema = schema
        self._engine: AsyncEngine | None = None
        self._sessionmaker: async_sessionmaker[AsyncSession] | None = None

    def open(self) -> None:
        if self._engine is None:
            self._engine = create_engine(self.url, schema=self.schema)
            self._sessionmaker = async_sessionmaker(self._engine, expire_on_commit=False)

    @property
    def engine(self) -> AsyncEngine:
        self.open()
        assert self._engine is not None
        return self._engine

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        self.open()
        assert self._sessionmaker is not None
        return self._sessionmaker

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
        self._engine = None
        self._sessionmaker = None


def upsert_for(dialect: str) -> Callable[..., Any]:
    """The engine's INSERT, which has `on_conflict_do_nothing/update` (the two agree on them)."""
    return sqlite_insert if dialect == "sqlite" else pg_insert


def upsert(session: AsyncSession) -> Callable[..., Any]:
    """`upsert_for` the engine of the session at hand."""
    return upsert_for(session.get_bind().dialect.name)
