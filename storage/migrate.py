"""Run Alembic programmatically so operators only ever type `cadrebot db upgrade`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from storage.db import create_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str, *, schema: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on a '%' in a password.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if schema:
        config.attributes["schema"] = schema
    return config


def upgrade(database_url: str, *, revision: str = "head", schema: str | None = None) -> None:
    """Bring the database to `revision` (blocking; call from a thread inside an event loop)."""
    command.upgrade(alembic_config(database_url, schema=schema), revision)


def revision(database_url: str, message: str) -> None:
    """Autogenerate a new migration from the models (a developer command)."""
    command.revision(alembic_config(database_url), message=message, autogenerate=True)


def current(database_url: str, *, schema: str | None = None) -> str | None:
    """The revision the database is at; None for a database never migrated (or a new file).

    Blocking, like `upgrade`: call it where no event loop runs.
    """

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async def run() -> str | None:
        engine = create_engine(database_url, schema=schema)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(run())
