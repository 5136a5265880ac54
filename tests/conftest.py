"""Fixtures: a migrated database on SQLite and on PostgreSQL, settings, a bot harness."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from bot.settings import Settings
from storage import migrate, tally
from storage.db import Database
from tests.support.fake_telegram import BOT_USERNAME
from tests.support.harness import BotHarness

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TOKEN = "123456:TESTTOKENabcdefghijklmnopqrstuvwxyz"
# One DATA_KEY for every harness of the session: the database keeps its lookup-hash key
# wrapped with it, so two app instances on one database (two processes) need the same key,
# as in production. A test about another key passes `data_key=` itself.
DATA_KEY = Fernet.generate_key().decode()


async def _pg_exec(sql: str) -> None:
    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _pg_run(sql: str) -> None:
    try:
        asyncio.run(_pg_exec(sql))
    except (OSError, asyncpg.PostgresError) as exc:
        # In CI an unreachable PostgreSQL is a failure, never a skip.
        pytest.fail(f"PostgreSQL at {PG_URL} is not usable: {exc}")


def migrated_sqlite(folder: Path) -> Database:
    """A freshly migrated SQLite file in `folder`."""
    url = f"sqlite:///{folder / 'test.sqlite3'}"
    migrate.upgrade(url)
    return Database(url)


@contextmanager
def pg_schema() -> Iterator[Database]:
    """A freshly migrated throwaway PostgreSQL schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    _pg_run(f"CREATE SCHEMA {schema}")
    try:
        migrate.upgrade(PG_URL, schema=schema)
        yield Database(PG_URL, schema=schema)
    finally:
        _pg_run(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A freshly migrated database; storage tests run once on each engine."""
    if request.param == "sqlite":
        yield migrated_sqlite(tmp_path)
        return
    with pg_schema() as database:
        yield database


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Database:
    return migrated_sqlite(tmp_path)


async def assert_tallies_true(database: Database) -> None:
    """The trigger-kept columns and tallies agree with a recount of the facts (storage.tally).

    Every test that wrote through `db` or a harness ends with this check, so each write path
    the suite exercises, on both engines, is also a test of the triggers."""
    async with database.engine.connect() as connection:
        assert await tally.verify(connection) == []


@pytest.fixture
async def db(database: Database) -> AsyncIterator[Database]:
    yield database
    await assert_tallies_true(database)
    await database.close()


def make_settings(database: Database, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "bot_token": TOKEN,
        "bot_username": BOT_USERNAME,
        "database_url": database.url,
        "data_key": DATA_KEY,
        "telegram_api_url": "http://127.0.0.1:1",
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def running_bot(database: Database) -> AsyncIterator[BotHarness]:
    """A started bot on `database`; afterwards stopped, the tallies checked, the database
    closed."""
    bot = BotHarness(make_settings(database), database)
    await bot.start()
    yield bot
    if bot.app is not None:
        await bot.stop()
    await assert_tallies_true(database)
    await database.close()


@pytest.fixture
async def harness(sqlite_database: Database) -> AsyncIterator[BotHarness]:
    """A running bot on SQLite behind the fake transport."""
    async with running_bot(sqlite_database) as bot:
        yield bot


@pytest.fixture
async def harness_any(database: Database) -> AsyncIterator[BotHarness]:
    """A running bot on each database engine."""
    async with running_bot(database) as bot:
        yield bot
