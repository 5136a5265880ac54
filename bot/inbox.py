"""The inbox's side of PTB: an update queue that records each update before it is queued.

storage/inbox.py holds the table's statements; bot/app.py (CadreApp) marks an update handled
in the transaction that handles it and replays what was left unhandled at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3

import asyncpg
from sqlalchemy.exc import DBAPIError
from telegram import Update
from telegram.error import NetworkError

from bot.standby import CONNECTION_LOST, PostgresLock, sqlite_path
from storage import inbox, sqlite_driver
from storage.crypto import DataCipher
from storage.db import SQLITE_BUSY_TIMEOUT_MS, Database, is_sqlite

log = logging.getLogger("cadrebot.updates")


class InboxQueue(asyncio.Queue[object]):
    """PTB's update queue, made durable: `put` records the update in the inbox first.

    PTB's Updater awaits `update_queue.put` before it confirms an update to Telegram (polling:
    the offset of its next getUpdates; webhook: the 200 answer), so an update that Telegram
    considers delivered is always in the database. A repeated update_id (a webhook retry, a
    redelivery after a crash) is not queued again.
    """

    def __init__(self, database: Database, cipher: DataCipher) -> None:
        super().__init__()
        self.database = database
        self.cipher = cipher
        # Recorded by this queue and not yet handled: process_update needs no look-up.
        self.fresh: set[int] = set()
        self._connection: asyncpg.Connection | None = None
        self._sqlite: sqlite_driver.OneHopConnection | None = None
        self._direct: sqlite3.Connection | None = None

    async def put(self, item: object) -> None:
        if isinstance(item, Update):
            try:
                recorded = await self._record(item.update_id, self.cipher.encrypt(item.to_json()))
            except (DBAPIError, OSError, sqlite3.Error) as exc:
                # A TelegramError, so that PTB's polling loop backs off and fetches the same
                # updates again (the offset was not moved) instead of dying; a webhook call
                # gets a 500 and Telegram retries it.
                raise NetworkError(
                    f"inbox: cannot record an update: {type(exc).__name__}"
                ) from exc
            if not recorded:
                log.info("update %s was received before: ignored", item.update_id)
                return
            self.fresh.add(item.update_id)
        await super().put(item)

    async def _record(self, update_id: int, payload: bytes) -> bool:
        if is_sqlite(self.database.url):
            path = sqlite_path(self.database.url)
            if path is None:  # in memory: only the engine's own connection sees it
                async with self.database.sessionmaker.begin() as session:
                    return await inbox.record(session, update_id, payload)
            now = inbox.sqlite_time(inbox.utcnow())
            # Uncontended (nearly always), one autocommit INSERT right here costs tens of
            # microseconds; a thread hand-off costs more than the insert. If another writer
            # holds the lock (an update's transaction, in this very event loop), waiting here
            # would block the loop it needs to finish: then wait on the driver's thread.
            if self._direct is None:
                self._direct = sqlite3.connect(
                    str(path), timeout=0, isolation_level=None, check_same_thread=False
                )
                # As storage.db sets for every connection: no fsync per commit in WAL mode.
                self._direct.execute("PRAGMA synchronous = NORMAL")
            try:
                cursor = self._direct.execute(inbox.SQLITE_RECORD, (update_id, payload, now))
                return bool(cursor.rowcount)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
            # One autocommit statement on a connection kept for it: one thread hand-off
            # instead of a session, BEGIN IMMEDIATE and COMMIT (see bench.dispatch).
            if self._sqlite is None:
                self._sqlite = await sqlite_driver.connect(
                    str(path), busy_seconds=SQLITE_BUSY_TIMEOUT_MS / 1000
                )
                self._sqlite.isolation_level = None  # each statement commits itself
                await self._sqlite.execute("PRAGMA synchronous = NORMAL")
            waited = self._sqlite.cursor()
            await waited.execute(inbox.SQLITE_RECORD, (update_id, payload, now))
            return bool(waited.rowcount)
        # PostgreSQL: one autocommit statement on an asyncpg connection kept for it (a round
        # trip per update instead of a ping, BEGIN, INSERT and COMMIT); reopened once if the
        # server dropped it.
        for attempt in (1, 2):
            try:
                if self._connection is None:
                    self._connection = await asyncpg.connect(
                        PostgresLock(self.database.url).dsn,
                        timeout=10,
                        server_settings=(
                            {"search_path": self.database.schema} if self.database.schema else {}
                        ),
                    )
                status = await self._connection.execute(inbox.PG_RECORD, update_id, payload)
                return bool(status.endswith(" 1"))
            except CONNECTION_LOST as exc:
                await self.aclose()
                if attempt == 2:
                    raise DBAPIError(inbox.PG_RECORD, None, exc) from exc
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._direct is not None:
            direct, self._direct = self._direct, None
            direct.close()
        if self._sqlite is not None:
            sqlite, self._sqlite = self._sqlite, None
            with contextlib.suppress(Exception):
                await sqlite.close()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                await connection.close(timeout=2)
