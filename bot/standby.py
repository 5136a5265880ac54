"""One active process per database.

Conversation states and drafts are held in memory by the process that handles a person's
updates, so two active processes on one database would lose each other's answers (and two
pollers of one bot token fight over getUpdates).

- PostgreSQL: the active process holds a session-level advisory lock on a connection of its
  own. A second `cadrebot run` waits for it as a standby, says so once, and takes over within
  about a second of the active one dying (PostgreSQL drops the lock with the connection),
  then loads every state from the database as any start does.
- SQLite: one process only (it is one file on one machine); a second one is refused at once
  by an flock on `<database>.lock`.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import re
from pathlib import Path
from typing import IO, Any

import asyncpg

log = logging.getLogger("cadrebot.standby")

POLL_SECONDS = 1.0


class AlreadyRunning(Exception):
    """Another process holds the SQLite database's lock; the message is one line."""


def lock_key(schema: str | None) -> int:
    """The advisory lock's number: one per schema, so test schemas do not collide."""
    digest = hashlib.sha256(f"cadrebot-active:{schema or 'public'}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def sqlite_path(url: str) -> Path | None:
    match = re.match(r"^sqlite(?:\+aiosqlite)?:///(.+)$", url)
    if match is None or match.group(1) == ":memory:":
        return None
    return Path(match.group(1))


class SqliteLock:
    """An exclusive flock beside the database file, held for the life of the process."""

    def __init__(self, database_path: Path) -> None:
        self.path = database_path.with_name(database_path.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise AlreadyRunning(
                f"another cadrebot is already running on this database ({self.path} is locked)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


# What an asyncpg connection raises once its session is gone. InterfaceError: closed under us
# (ConnectionDoesNotExistError is a PostgresError already); InternalClientError: the server's
# termination notice left the protocol mid-operation when our query went out (seen about one
# run in eight under load in the lock test).
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


class PostgresLock:
    """Waits for, then holds, the active process's advisory lock on its own connection."""

    def __init__(self, url: str, schema: str | None = None) -> None:
        self.dsn = re.sub(r"^postgres(ql)?(\+asyncpg)?://", "postgresql://", url)
        self.key = lock_key(schema)
        self._connection: Any = None

    async def acquire(self) -> None:
        told = False
        while True:
            try:
                connection = await asyncpg.connect(self.dsn, timeout=10)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("standby: cannot reach PostgreSQL (%s); retrying", type(exc).__name__)
                await asyncio.sleep(POLL_SECONDS * 5)
                continue
            try:
                while True:
                    if await connection.fetchval("SELECT pg_try_advisory_lock($1)", self.key):
                        self._connection = connection
                        if told:
                            log.warning("standby: the active process is gone; taking over")
                        return
                    if not told:
                        log.warning(
                            "another cadrebot is active on this database; waiting as standby"
                        )
                        told = True
                    await asyncio.sleep(POLL_SECONDS)
            except (OSError, asyncpg.PostgresError):
                await connection.close(timeout=2)
                await asyncio.sleep(POLL_SECONDS)

    async def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting (the shell: it must not deliver the
        bot's messages while a bot is active). False when another process holds it."""
        connection = await asyncpg.connect(self.dsn, timeout=10)
        if await connection.fetchval("SELECT pg_try_advisory_lock($1)", self.key):
            self._connection = connection
            return True
        await connection.close(timeout=2)
        return False

    async def still_held(self) -> bool:
        """False when the lock's connection is gone (then another process may take over)."""
        if self._connection is None or self._connection.is_closed():
            return False
        try:
            await self._connection.fetchval("SELECT 1", timeout=10)
        except CONNECTION_LOST:  # TimeoutError is an OSError
            self._connection.terminate()
            self._connection = None
            return False
        return True

    async def release(self) -> None:
        if self._connection is not None:
            await self._connection.close(timeout=2)
            self._connection = None
