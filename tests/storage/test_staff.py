"""Staff managed in the bot (storage/staff.py) on SQLite and PostgreSQL: what each official
may hand out, the staff in scope with their page and count, a revoke once and only in scope
(with the menu mark and the audit), a name corrected in scope."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from storage import staff as staff_store
from storage.db import Database
from storage.models import AuditLog, InviteCode, Person, Role, RoleGrant, TelegramAccount
from storage.people import Actor, load_actor
from storage.scoped import NotAllowed, Stale
from tests.support.county import staff, townships

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
DEPARTMENTS = ("police", "discipline", "judicial")
COUNTY, TOWN, FAR, MENTOR, FAR_MENTOR, REVIEWER = 1, 2, 3, 4, 5, 6


async def _county(db: Database) -> dict[str, int]:
    async with db.sessionmaker.begin() as session:
        ids = await townships(session, [("青山镇", "青山村"), ("木黄镇", "木黄村")])
        qs, mh = ids["青山镇"], ids["木黄镇"]
        await staff(session, COUNTY, "县干部", [(Role.COUNTY_OFFICIAL, None, None)])
        await staff(session, TOWN, "镇干部", [(Role.TOWNSHIP_OFFICIAL, qs, None)])
        await staff(session, FAR, "远镇干部", [(Role.TOWNSHIP_OFFICIAL, mh, None)])
        await staff(session, MENTOR, "村书记", [(Role.MENTOR, qs, "village")])
        await staff(session, FAR_MENTOR, None, [(Role.MENTOR, mh, "township")])
        await staff(session, REVIEWER, "审核员", [(Role.REVIEWER, None, None)], "police")
    return ids


async def _actor(db: Database, telegram_id: int) -> Actor:
    async with db.sessionmaker() as session:
        actor = await load_actor(session, telegram_id)
    assert actor is not None
    return actor


async def _grant_id(db: Database, telegram_id: int) -> int:
    async with db.sessionmaker() as session:
        found = await session.scalar(
            select(RoleGrant.id)
            .join(TelegramAccount, TelegramAccount.person_id == RoleGrant.person_id)
            .where(TelegramAccount.telegram_id == telegram_id)
        )
    assert found is not None
    return found


async def test_invites_within_what_each_role_hands_out(db: Database) -> None:
    ids = await _county(db)
    county, town = await _actor(db, COUNTY), await _actor(db, TOWN)
    refused = [
        (county, Role.MENTOR, {"township_id": ids["青山镇"], "mentor_slot": "village"}),
        (county, Role.COUNTY_OFFICIAL, {}),
        (county, Role.REVIEWER, {"department": "司法"}),  # not a VETTING_DEPARTMENTS code
        (town, Role.ADMIN, {}),
        (town, Role.MENTOR, {"township_id": ids["木黄镇"], "mentor_slot": "township"}),
    ]
    async with db.sessionmaker.begin() as session:
        for actor, role, scope in refused:
            with pytest.raises(NotAllowed):
                await staff_store.make_invite(
                    session, actor, role, now=T0, days=7, departments=DEPARTMENTS, **scope
                )
        with pytest.raises(Stale):  # a township gone since its button was drawn
            await staff_store.make_invite(
                session,
                county,
                Role.TOWNSHIP_OFFICIAL,
                now=T0,
                days=7,
                departments=DEPARTMENTS,
                township_id=999_999,
            )
        made = [
            await staff_store.make_invite(
                session,
                county,
                Role.REVIEWER,
                now=T0,
                days=3,
                departments=DEPARTMENTS,
                department="judicial",
            ),
            await staff_store.make_invite(
                session,
                town,
                Role.MENTOR,
                now=T0,
                days=7,
                departments=DEPARTMENTS,
                township_id=ids["青山镇"],
                mentor_slot="village",
            ),
        ]
    assert len(set(made)) == 2
    async with db.sessionmaker() as session:
        invites = list(await session.scalars(select(InviteCode).order_by(InviteCode.id)))
    assert [(i.role, i.department, i.mentor_slot) for i in invites] == [
        ("reviewer", "judicial", None),
        ("mentor", None, "village"),
    ]
    assert [i.created_by_person_id for i in invites] == [county.person_id, town.person_id]
    assert invites[0].expires_at == T0.replace(day=4)


async def test_staff_in_scope_pages_and_counts(db: Database) -> None:
    await _county(db)
    county, town = await _actor(db, COUNTY), await _actor(db, TOWN)
    async with db.sessionmaker() as session:
        first, total = await staff_store.staff_in_scope(session, county, offset=0, limit=3)
        rest, _ = await staff_store.staff_in_scope(session, county, offset=3, limit=3)
        mine, mine_total = await staff_store.staff_in_scope(session, town, offset=0, limit=10)
    # Everyone but oneself; the county-level roles first, then by township.
    assert total == 5
    listed = [m.full_name for m in [*first, *rest]]
    assert sorted(listed, key=str) == sorted(
        ["镇干部", "远镇干部", "村书记", None, "审核员"], key=str
    )
    assert first[0].role == Role.REVIEWER and first[0].department == "police"
    assert (mine_total, [m.full_name for m in mine]) == (1, ["村书记"])
    assert (mine[0].township, mine[0].mentor_slot) == ("青山镇", "village")


async def test_revoke_once_in_scope_marks_the_menu_and_audits(db: Database) -> None:
    await _county(db)
    town, far = await _actor(db, TOWN), await _actor(db, FAR)
    grant, official = await _grant_id(db, MENTOR), await _grant_id(db, FAR)
    async with db.sessionmaker.begin() as session:
        with pytest.raises(NotAllowed):
            await staff_store.revoke(session, far, grant, now=T0)
        with pytest.raises(NotAllowed):  # officials are not a township official's to revoke
            await staff_store.revoke(session, town, official, now=T0)
    async with db.sessionmaker.begin() as session:
        revoked = await staff_store.revoke(session, town, grant, now=T0)
    assert revoked.full_name == "村书记"
    async with db.sessionmaker.begin() as session:
        with pytest.raises(Stale):
            await staff_store.revoke(session, town, grant, now=T0)
    async with db.sessionmaker() as session:
        row = await session.get(RoleGrant, grant)
        account = await session.get(TelegramAccount, MENTOR)
        audits = list(
            await session.scalars(select(AuditLog).where(AuditLog.action == "role.revoke"))
        )
    assert row is not None and row.revoked_at == T0
    assert account is not None and account.menu_changes == 1
    assert [(a.actor_person_id, a.subject_id, a.detail["role"]) for a in audits] == [
        (town.person_id, grant, "mentor")
    ]
    assert (await _actor(db, MENTOR)).grants == ()


async def test_a_name_is_corrected_in_scope_only(db: Database) -> None:
    await _county(db)
    county, town = await _actor(db, COUNTY), await _actor(db, TOWN)
    far_mentor = await _grant_id(db, FAR_MENTOR)
    async with db.sessionmaker.begin() as session:
        with pytest.raises(NotAllowed):
            await staff_store.correct_name(session, town, far_mentor, "王小明")
    async with db.sessionmaker.begin() as session:
        corrected = await staff_store.correct_name(session, county, far_mentor, "王小明")
    async with db.sessionmaker() as session:
        name = await session.scalar(
            select(Person.full_name).where(Person.id == corrected.person_id)
        )
        audits = list(
            await session.scalars(select(AuditLog).where(AuditLog.action == "person.name_correct"))
        )
    assert name == corrected.full_name == "王小明"
    assert [(a.actor_person_id, a.subject_id) for a in audits] == [
        (county.person_id, corrected.person_id)
    ]
