"""What the benches share: a throwaway database per run, SQL capture, deadlines, batching."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import event

from storage import migrate
from storage.db import Database

DEFAULT_PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

T = TypeVar("T")


def chunks(rows: Iterable[T], size: int) -> Iterator[list[T]]:
    """`rows` in lists of `size` (the last one shorter), without holding them all."""
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def within(self, seconds: float) -> float:
        """A monotonic deadline `seconds` from now, never past the overall one."""
        return min(self.at, time.monotonic() + seconds)


def pg_plain(url: str) -> str:
    """The SQLAlchemy URL as asyncpg takes it (no driver suffix)."""
    return re.sub(r"^postgres(ql)?(\+asyncpg)?://", "postgresql://", url)


async def pg_exec(url: str, sql: str) -> None:
    connection = await asyncpg.connect(pg_plain(url), timeout=10)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@asynccontextmanager
async def fresh_database(
    kind: str, pg_url: str, label: str, folder: Path | None = None
) -> AsyncIterator[Database]:
    """A newly migrated SQLite file `label`.sqlite3 (in `folder`, else in a temp dir), or a
    throwaway PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        if folder is None:
            with tempfile.TemporaryDirectory(prefix=f"{label}-") as temp:
                async with fresh_database(kind, pg_url, label, Path(temp)) as database:
                    yield database
            return
        url = f"sqlite:///{folder / f'{label}.sqlite3'}"
        await asyncio.to_thread(migrate.upgrade, url)
        database = Database(url)
        try:
            yield database
        finally:
            await database.close()
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    await pg_exec(pg_url, f"CREATE SCHEMA {schema}")
    try:
        await asyncio.to_thread(partial(migrate.upgrade, pg_url, schema=schema))
        database = Database(pg_url, schema=schema)
        try:
            yield database
        finally:
            await database.close()
    finally:
        await pg_exec(pg_url, f"DROP SCHEMA {schema} CASCADE")


class StatementSpy:
    """Remembers the SQL and parameters the driver runs, to EXPLAIN them afterwards."""

    def __init__(self, database: Database) -> None:
        self.engine = database.engine.sync_engine
        self.statements: list[tuple[str, Any]] = []

    def __enter__(self) -> StatementSpy:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        self.statements.append((statement, params))


def argument_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A bench's command line, its module docstring as the help text, layout kept."""
    return argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
