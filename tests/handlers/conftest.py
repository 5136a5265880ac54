"""Fixtures shared by the dispatcher tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from bot.fakeapi.transport import FakeTransport
from storage.db import Database
from tests.conftest import TOKEN


@pytest.fixture
async def wired(sqlite_database: Database) -> AsyncIterator[tuple[Database, FakeTransport, Bot]]:
    """SQLite and a plain Bot whose transport is the fake Bot API."""
    fake = FakeTransport()
    bot = Bot(TOKEN, request=fake, get_updates_request=fake)
    await bot.initialize()
    yield sqlite_database, fake, bot
    await bot.shutdown()
    await sqlite_database.close()
