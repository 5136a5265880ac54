"""The migrations build exactly what the models describe, and can be undone and redone."""

from __future__ import annotations

import asyncio
import pprint
from datetime import UTC, date, datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.migrate import alembic_config
from storage.models import (
    Base,
    County,
    Nomination,
    Pairing,
    Person,
    TalkLog,
    TalkTally,
    Township,
)
from tests.support.county import legacy_rows

MODEL_TABLES = frozenset(Base.metadata.tables)


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def _include_name(name: str | None, type_: str, _parent: dict[str, Any]) -> bool:
    # Alembic's own bookkeeping table is not described by the models.
    return not (type_ == "table" and name == "alembic_version")


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            # Only the default schema: on PostgreSQL that is the test's search_path schema.
            "include_schemas": False,
            "include_name": _include_name,
        },
    )
    return compare_metadata(context, Base.metadata)


def _state(connection: Connection) -> tuple[str | None, set[str], str | None]:
    """(default schema, tables in it, Alembic revision) as this connection sees them."""
    revision = MigrationContext.configure(connection).get_current_revision()
    return (
        connection.dialect.default_schema_name,
        set(inspect(connection).get_table_names()),
        revision,
    )


async def _autogenerate_diff(db: Database) -> list[Any]:
    async with db.engine.connect() as connection:
        return await connection.run_sync(_diff)


async def _db_state(db: Database) -> tuple[str | None, set[str], str | None]:
    async with db.engine.connect() as connection:
        return await connection.run_sync(_state)


def _expected_schema(db: Database) -> str:
    return db.schema if db.schema else "main"


async def test_models_match_migrated_database(db: Database) -> None:
    schema, tables, revision = await _db_state(db)
    # The comparison must look at the test's own schema, where the migration ran.
    assert schema == _expected_schema(db)
    assert tables == MODEL_TABLES | {"alembic_version"}
    assert revision == _head()

    diff = await _autogenerate_diff(db)
    assert diff == [], "autogenerate found differences:\n" + pprint.pformat(diff)


async def test_comparison_detects_drift(db: Database) -> None:
    """A control: the comparison above is not blind to a missing index or a stray table."""
    async with db.engine.begin() as connection:
        await connection.execute(text("DROP INDEX ix_audit_log_subject"))
        await connection.execute(text("CREATE TABLE stray (id INTEGER PRIMARY KEY)"))

    diff = await _autogenerate_diff(db)
    kinds = {(entry[0], entry[1].name) for entry in diff if isinstance(entry, tuple)}
    assert ("add_index", "ix_audit_log_subject") in kinds, pprint.pformat(diff)
    assert ("remove_table", "stray") in kinds, pprint.pformat(diff)
    assert not any(name == "alembic_version" for _kind, name in kinds)


async def test_downgrade_to_base_and_upgrade_again(db: Database) -> None:
    async with db.sessionmaker.begin() as session:
        session.add(Person(full_name="张三"))
    # Alembic's env.py runs its own event loop: run the commands off this one, with our pool
    # closed so that no idle connection of ours stands in the way of DROP TABLE.
    await db.close()
    config = alembic_config(db.url, schema=db.schema)

    await asyncio.to_thread(command.downgrade, config, "base")
    schema, tables, revision = await _db_state(db)
    assert schema == _expected_schema(db)
    assert tables <= {"alembic_version"}
    assert revision is None
    await db.close()

    await asyncio.to_thread(command.upgrade, config, "head")
    schema, tables, revision = await _db_state(db)
    assert tables == MODEL_TABLES | {"alembic_version"}
    assert revision == _head()
    diff = await _autogenerate_diff(db)
    assert diff == [], "autogenerate found differences:\n" + pprint.pformat(diff)

    # The rebuilt tables are empty and usable.
    async with db.sessionmaker.begin() as session:
        assert list(await session.scalars(select(Person))) == []
        session.add(Person(full_name="李四"))
    async with db.sessionmaker() as session:
        assert list(await session.scalars(select(Person.full_name))) == ["李四"]


async def test_upgrade_to_0008_backfills_the_last_talk_date(db: Database) -> None:
    """Pairings that had talks before 0008 get their latest talk date; the others none."""
    await db.close()
    config = alembic_config(db.url, schema=db.schema)
    await asyncio.to_thread(command.downgrade, config, "0007")
    at = datetime(2026, 3, 1, tzinfo=UTC)
    # Core inserts naming only columns that exist at 0007 (the models already have 0008's).
    async with db.engine.begin() as connection:
        await legacy_rows(connection, at, 3)
        await connection.execute(
            insert(Pairing.__table__),
            [
                {"id": i, "nomination_id": 1, "mentor_person_id": m, "slot": s, "ended_at": e}
                for i, m, s, e in (
                    (1, 2, "township", None),
                    (2, 3, "village", None),
                    (3, 3, "township", at),  # ended, never talked
                )
            ],
        )
        await connection.execute(
            insert(TalkLog.__table__),
            [
                {
                    "pairing_id": pairing,
                    "nomination_id": 1,
                    "mentor_person_id": 2,
                    "talk_date": day,
                    "mode": "face",
                    "topics": {},
                }
                for pairing, day in (
                    (1, date(2026, 2, 10)),
                    (1, date(2026, 2, 27)),
                    (1, date(2026, 1, 5)),
                    (2, date(2025, 12, 31)),
                )
            ],
        )
    await db.close()

    await asyncio.to_thread(command.upgrade, config, "head")
    async with db.sessionmaker() as session:
        kept = (await session.execute(select(Pairing.id, Pairing.last_talk_on))).all()
    assert sorted(kept) == [(1, date(2026, 2, 27)), (2, date(2025, 12, 31)), (3, None)]
    # 0009 fills what its triggers keep from the rows already there.
    async with db.sessionmaker() as session:
        assert set(await session.scalars(select(TalkLog.township_id))) == {1}
        assert set(await session.scalars(select(Pairing.in_pool))) == {True}
        assert await session.scalar(select(Nomination.active_pairings)) == 2
        assert dict((await session.execute(select(TalkTally.talk_date, TalkTally.n))).all()) == {
            date(2026, 2, 10): 1,
            date(2026, 2, 27): 1,
            date(2026, 1, 5): 1,
            date(2025, 12, 31): 1,
        }
    await db.close()

    # Undoing 0009 rebuilds pairing and talk_log on SQLite (batch mode): with foreign keys
    # on, dropping the old pairing table would cascade to every talk. Nothing may be lost.
    await asyncio.to_thread(command.downgrade, config, "0008")
    async with db.engine.connect() as connection:
        talks = await connection.scalar(text("SELECT count(*) FROM talk_log"))
        pairings = await connection.scalar(text("SELECT count(*) FROM pairing"))
    assert (talks, pairings) == (4, 3)
    await db.close()
    await asyncio.to_thread(command.upgrade, config, "head")


async def test_0013_on_sqlite_never_gives_back_an_id_erased_before_it(tmp_path: Any) -> None:
    """A file deleted by the old erasure (before 0013) left its number in the audit log: the
    rebuilt table's sequence starts above it, so the next person never gets that 档案编号."""
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    config = alembic_config(url)
    await asyncio.to_thread(command.upgrade, config, "0012")
    database = Database(url)
    at = datetime(2026, 3, 1, tzinfo=UTC)
    try:
        async with database.engine.begin() as connection:
            await connection.execute(insert(County.__table__).values(id=1, name="示例县"))
            await connection.execute(
                insert(Township.__table__).values(id=1, county_id=1, name="青山镇")
            )
            await connection.execute(insert(Person.__table__).values(id=1, full_name="人1"))
            for number in (1, 2, 3):
                await connection.execute(
                    text(
                        "INSERT INTO nomination (id, person_id, channel, status, township_id, "
                        "key_group, created_at, status_changed_at) VALUES (:id, 1, 'self', "
                        "'new', 1, 'veteran', :at, :at)"
                    ),
                    {"id": number, "at": at},
                )
            await connection.execute(
                text(
                    "INSERT INTO audit_log (action, subject_type, subject_id, detail) "
                    "VALUES ('dossier.read', 'nomination', 3, '{}')"
                )
            )
            # The old erasure deleted the newest file.
            await connection.execute(text("DELETE FROM nomination WHERE id = 3"))
    finally:
        await database.close()
    await asyncio.to_thread(command.upgrade, config, "head")
    database = Database(url)
    try:
        async with database.engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO nomination (person_id, channel, status, township_id, key_group, "
                    "created_at, status_changed_at) VALUES (1, 'self', 'new', 1, 'veteran', "
                    ":at, :at)"
                ),
                {"at": at},
            )
            assert await connection.scalar(text("SELECT max(id) FROM nomination")) == 4
    finally:
        await database.close()


async def test_upgrade_to_0014_marks_the_menus_of_todays_staff(db: Database) -> None:
    """Each person holding a role before 0014 gets their menu at the first start after it;
    the public and people whose role ended do not (they keep the default menu)."""
    await db.close()
    config = alembic_config(db.url, schema=db.schema)
    await asyncio.to_thread(command.downgrade, config, "0013")
    at = datetime(2026, 3, 1, tzinfo=UTC)
    # Plain SQL naming only 0013's columns (the model already has menu_changes).
    async with db.engine.begin() as connection:
        await connection.execute(
            insert(Person.__table__), [{"id": i, "full_name": f"人{i}"} for i in (1, 2, 3)]
        )
        for person in (1, 2, 3):
            await connection.execute(
                text("INSERT INTO telegram_account (telegram_id, person_id) VALUES (:t, :p)"),
                {"t": 7_000_000_000 + person, "p": person},
            )
        await connection.execute(
            text(
                "INSERT INTO role_grant (person_id, role, revoked_at) VALUES "
                "(1, 'admin', NULL), (2, 'county_official', :at)"
            ),
            {"at": at},
        )
    await db.close()
    await asyncio.to_thread(command.upgrade, config, "head")
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT telegram_id, menu_changes FROM telegram_account ORDER BY telegram_id")
        )
        assert [tuple(r) for r in rows.all()] == [
            (7_000_000_001, 1),
            (7_000_000_002, 0),
            (7_000_000_003, 0),
        ]
    await db.close()


async def test_0015_on_sqlite_keeps_rows_triggers_and_the_sequence(tmp_path: Any) -> None:
    """The nomination table rebuilt without its UNIQUE hashes keeps its rows, every trigger of
    the database and its AUTOINCREMENT sequence; afterwards only open files are unique, and
    the downgrade refuses while a person has files in two rounds."""
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    config = alembic_config(url)
    await asyncio.to_thread(command.upgrade, config, "0014")
    database = Database(url)
    at = datetime(2026, 3, 1, tzinfo=UTC)
    insert_nomination = text(
        "INSERT INTO nomination (person_id, channel, status, township_id, key_group, "
        "phone_hash, created_at, status_changed_at) VALUES (1, 'self', :status, 1, 'veteran', "
        ":hash, :at, :at)"
    )
    triggers = text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'")
    try:
        async with database.engine.begin() as connection:
            await connection.execute(insert(County.__table__).values(id=1, name="示例县"))
            await connection.execute(
                insert(Township.__table__).values(id=1, county_id=1, name="青山镇")
            )
            await connection.execute(insert(Person.__table__).values(id=1, full_name="人1"))
            for number in (1, 2):
                values = {"status": "rejected", "hash": f"h{number}", "at": at}
                await connection.execute(insert_nomination, values)
            await connection.execute(text("DELETE FROM nomination WHERE id = 2"))
            before = await connection.scalar(triggers)
    finally:
        await database.close()
    await asyncio.to_thread(command.upgrade, config, "head")
    database = Database(url)
    try:
        async with database.engine.begin() as connection:
            assert await connection.scalar(triggers) == before and before
            assert await connection.scalar(text("SELECT phone_hash FROM nomination")) == "h1"
            # Rejected h1 beside an open h1: allowed; a second open h1: refused.
            await connection.execute(insert_nomination, {"status": "new", "hash": "h1", "at": at})
            # The deleted file's number 2 is not given again.
            assert await connection.scalar(text("SELECT max(id) FROM nomination")) == 3
        async with database.engine.begin() as connection:
            with pytest.raises(IntegrityError):
                values = {"status": "new", "hash": "h1", "at": at}
                await connection.execute(insert_nomination, values)
    finally:
        await database.close()
    with pytest.raises(RuntimeError, match="more than one round"):
        await asyncio.to_thread(command.downgrade, config, "0014")
