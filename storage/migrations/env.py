"""Alembic environment: async engine, batch mode on SQLite, models as the target."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine, is_sqlite
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            # Foreign keys are off during migrations (see _foreign_keys_off); what the
            # migration leaves must still hold them, or nothing is committed.
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left rows breaking foreign keys: {broken[:5]}")


def _foreign_keys_off(engine: AsyncEngine) -> None:
    """SQLite's own procedure for schema changes: foreign keys off for the connection.

    Batch mode rebuilds a table by copying it and dropping the old one; with foreign keys on,
    that DROP deletes every child row declared ON DELETE CASCADE (a downgrade that drops a
    pairing column would take every talk with it). The pragma is a no-op inside a
    transaction, so it is set when the connection opens, after storage.db's own settings.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _off(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = OFF")
        cursor.close()


async def _run_async() -> None:
    url = config.get_main_option("sqlalchemy.url") or ""
    schema = config.attributes.get("schema")
    engine = create_engine(url, schema=schema)
    if is_sqlite(url):
        _foreign_keys_off(engine)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
elif context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `cadrebot db upgrade`")
else:
    asyncio.run(_run_async())
