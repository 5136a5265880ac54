"""aiosqlite with one thread hand-off per statement instead of four.

aiosqlite runs every sqlite3 call on its own thread and wakes the event loop for each
result. SQLAlchemy's adapter makes four such calls for a SELECT (create a cursor, execute,
fetch, close) and three for a write, so a /start that runs five statements spends most of
its time handing work to that thread and back rather than in SQLite (see bench/dispatch.py).
The cursor here does create + execute + first fetch + close in one call on that thread, so a
statement costs one hand-off. The connection and its thread are aiosqlite's own: the same
single thread owns the sqlite3 connection, so nothing about SQLite's thread rules changes.

Rows beyond the first `PREFETCH` stay on the open sqlite3 cursor and are fetched on demand,
so a streamed export still reads in chunks rather than all at once.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar

import aiosqlite

_T = TypeVar("_T")

# Rows fetched together with the execute; most statements return fewer and close at once.
PREFETCH = 512

_Outcome = tuple[Any, list[Any], int, int | None, sqlite3.Cursor | None]


def _run(
    conn: sqlite3.Connection,
    begin: str | None,
    many: bool,
    sql: str,
    parameters: Any,
) -> _Outcome:
    """On the connection's thread: execute, fetch the first rows, close when exhausted."""
    if begin is not None:
        conn.execute(begin)
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        description = cursor.description
        rows: list[Any] = []
        if description is not None:
            rows = cursor.fetchmany(PREFETCH)
        # rowcount and lastrowid are final only once a RETURNING statement has been read.
        outcome_open = description is not None and len(rows) == PREFETCH
        result: _Outcome = (
            description,
            rows,
            cursor.rowcount,
            cursor.lastrowid,
            cursor if outcome_open else None,
        )
    except BaseException:
        cursor.close()
        raise
    if not outcome_open:
        cursor.close()
    return result


def _final_then_commit(conn: sqlite3.Connection, sql: str, parameters: Sequence[Any]) -> None:
    """On the connection's thread: the transaction's last statement, then its commit."""
    conn.execute(sql, parameters)
    if conn.in_transaction:
        conn.commit()


class OneHopCursor:
    """The subset of `aiosqlite.Cursor` that SQLAlchemy's adapter uses."""

    arraysize = 1

    def __init__(self, conn: OneHopConnection) -> None:
        self._conn = conn
        self._rows: deque[Any] = deque()
        self._open: sqlite3.Cursor | None = None
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    async def __aenter__(self) -> OneHopCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _start(self, many: bool, sql: str, parameters: Any) -> OneHopCursor:
        await self.close()
        begin, self._conn.pending_begin = self._conn.pending_begin, None
        description, rows, rowcount, lastrowid, open_cursor = await self._conn.hop(
            _run, self._conn._conn, begin, many, sql, parameters
        )
        self.description = description
        self._rows = deque(rows)
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self._open = open_cursor
        return self

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> OneHopCursor:
        return await self._start(False, sql, () if parameters is None else parameters)

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> OneHopCursor:
        return await self._start(True, sql, parameters)

    async def _more(self, size: int | None) -> None:
        """Read more rows from the still-open sqlite3 cursor (one hand-off)."""
        if self._open is None:
            return
        cursor = self._open
        fetch: Callable[[], list[Any]] = (
            cursor.fetchall if size is None else partial(cursor.fetchmany, size)
        )
        rows = await self._conn.hop(fetch)
        self._rows.extend(rows)
        if size is None or len(rows) < size:
            self._open = None
            await self._conn.hop(cursor.close)

    async def fetchone(self) -> Any:
        if not self._rows:
            await self._more(PREFETCH)
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        size = size or self.arraysize
        if len(self._rows) < size:
            await self._more(max(size, PREFETCH))
        return [self._rows.popleft() for _ in range(min(size, len(self._rows)))]

    async def fetchall(self) -> Sequence[Any]:
        await self._more(None)
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()
        if self._open is not None:
            cursor, self._open = self._open, None
            await self._conn.hop(cursor.close)


class OneHopConnection(aiosqlite.Connection):
    """aiosqlite's connection whose cursors run each statement in one hand-off."""

    # A BEGIN that runs on the thread right before the next statement, in the same hand-off.
    pending_begin: str | None = None
    # A statement that runs right before the next commit, in the commit's hand-off.
    pending_final: tuple[str, Sequence[Any]] | None = None

    def run_before_commit(self, sql: str, parameters: Sequence[Any]) -> None:
        """Run `sql` as the transaction's last statement, in the commit's own hand-off.

        With no transaction open (nothing ran), it runs alone and commits itself (the
        connection is in autocommit mode outside BEGIN). Its result is not returned: meant for
        a write whose outcome the caller does not need, such as the inbox's handled mark.
        """
        self.pending_final = (sql, parameters)

    def begin_with_next_statement(self, sql: str) -> None:
        """Open the transaction with `sql` just before the next statement runs.

        The effect is the same as executing it now (nothing else runs on this connection in
        between), minus a hand-off; a transaction with no statement never touches SQLite.
        """
        self.pending_begin = sql

    async def commit(self) -> None:
        self.pending_begin = None
        final, self.pending_final = self.pending_final, None
        if final is not None and self._connection is not None:
            await self.hop(_final_then_commit, self._connection, *final)
            return
        # Committing outside a transaction is a no-op in sqlite3: skip the hand-off.
        if self._connection is not None and self._connection.in_transaction:
            await super().commit()

    async def rollback(self) -> None:
        self.pending_begin = None
        self.pending_final = None
        # The pool rolls back every connection it gets back, nearly always after a commit:
        # with nothing open there is nothing to do, so no hand-off.
        if self._connection is not None and self._connection.in_transaction:
            await super().rollback()

    async def hop(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run `fn` on the connection's thread (aiosqlite's queue, typed)."""
        result: _T = await self._execute(fn, *args)  # type: ignore[no-untyped-call]
        return result

    def cursor(self) -> OneHopCursor:  # type: ignore[override]
        # No sqlite3 cursor yet: it is made on the worker thread inside the first execute.
        return OneHopCursor(self)


async def connect(path: str, *, busy_seconds: float) -> OneHopConnection:
    """Open `path` as aiosqlite would, with the one-hop cursor."""
    # As SQLAlchemy's aiosqlite dialect does: statements run on the connection's own thread,
    # but attribute reads such as isolation_level come from the event loop's thread.
    connector = partial(sqlite3.connect, path, timeout=busy_seconds, check_same_thread=False)
    connection = OneHopConnection(connector, 64)
    # A forgotten connection must not keep the process alive at exit (as SQLAlchemy does).
    connection._thread.daemon = True
    await connection
    return connection
