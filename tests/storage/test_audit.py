"""The audit log is append-only in the database itself, and erasure never needs to touch it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from storage import audit, erasure, people
from storage.db import Database
from storage.models import AuditLog, Nomination, Person
from storage.rules.vetting import Channel
from tests.support.county import new_nomination


async def _row(db: Database) -> int:
    async with db.sessionmaker.begin() as session:
        await audit.record(session, None, "dossier.read", "nomination", 1)
    async with db.sessionmaker() as session:
        found = await session.scalar(select(func.max(AuditLog.id)))
    assert found is not None
    return int(found)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET action = 'nothing' WHERE id = :id",
        "UPDATE audit_log SET actor_person_id = NULL WHERE id = :id",
        "DELETE FROM audit_log WHERE id = :id",
        "DELETE FROM audit_log",
    ],
)
async def test_the_database_refuses_to_rewrite_the_audit_log(db: Database, statement: str) -> None:
    row_id = await _row(db)
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.sessionmaker.begin() as session:
            await session.execute(text(statement), {"id": row_id})
    async with db.sessionmaker() as session:
        action = await session.scalar(select(AuditLog.action).where(AuditLog.id == row_id))
    assert action == "dossier.read"


async def test_the_orm_cannot_rewrite_it_either(db: Database) -> None:
    row_id = await _row(db)
    for change in (
        update(AuditLog).where(AuditLog.id == row_id).values(subject_id=2),
        delete(AuditLog).where(AuditLog.id == row_id),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.sessionmaker.begin() as session:
                await session.execute(change)


# SQLite has no TRUNCATE (its DELETE without WHERE is refused by the trigger above).
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_truncate_is_refused_on_postgresql(db: Database) -> None:
    assert db.engine.dialect.name == "postgresql"
    await _row(db)
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.sessionmaker.begin() as session:
            await session.execute(text("TRUNCATE audit_log"))


async def test_erasure_works_and_leaves_the_audit_rows_about_the_person(db: Database) -> None:
    now = datetime.now(UTC)
    async with db.sessionmaker.begin() as session:
        account = await people.ensure_account(session, 8801, "zh-hans")
        nomination_id = await new_nomination(
            session,
            "何十七",
            now=now,
            channel=Channel.SELF,
            person_id=account.person_id,
            phone="13912345678",
        )
        await audit.record(session, account.person_id, "dossier.read", "nomination", nomination_id)
        await audit.denied(session, telegram_id=8801, action="pool.open", subject_type="pool")
    async with db.sessionmaker.begin() as session:
        done = await erasure.erase_person(session, account.person_id, actor_person_id=None)
    assert done.nominations == 1
    async with db.sessionmaker() as session:
        # Erasure keeps the file as an anonymous row (the county's counts stay true).
        kept = await session.get(Nomination, nomination_id)
        assert kept is not None and kept.erased_at is not None and kept.phone_enc is None
        assert kept.person_id != account.person_id
        person = await session.get(Person, account.person_id)
        assert person is not None and person.full_name is None
        rows = list(await session.scalars(select(AuditLog).order_by(AuditLog.id)))
    actions = [r.action for r in rows]
    assert {"dossier.read", "denied", "person.erase"} <= set(actions)
    assert actions[-1] == "person.erase"
    assert all(r.actor_person_id in (None, account.person_id) for r in rows)
    refused = next(r for r in rows if r.action == "denied")
    assert refused.actor_telegram_id == 8801 and refused.detail == {"attempted": "pool.open"}
