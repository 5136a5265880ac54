"""A reviewer's reach: a file while it is in their department's vetting, not after."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from storage import nominations, people
from storage.crypto import DataCipher
from storage.db import Database
from storage.models import Role, RoleGrant
from storage.nominations import NotAllowed
from storage.people import Actor
from storage.rules.vetting import Decision
from tests.support.county import form_nomination, loaded_actor, townships

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
DEPARTMENTS = ("police", "discipline", "judicial")


async def _actor(db: Database, telegram_id: int, **grant: object) -> Actor:
    async with db.sessionmaker.begin() as session:
        account = await people.ensure_account(session, telegram_id, "zh")
        session.add(RoleGrant(person_id=account.person_id, **grant))
    return await loaded_actor(db, telegram_id)


async def test_reviewer_reads_a_file_only_during_its_vetting(db: Database) -> None:
    cipher = DataCipher(Fernet.generate_key().decode())
    async with db.sessionmaker.begin() as session:
        township_id = (await townships(session, [("青山镇", "青山村")]))["青山镇"]
        nomination_id = await form_nomination(session, cipher, "周九", township_id, "new", now=NOW)
    official = await _actor(db, 1, role=Role.TOWNSHIP_OFFICIAL.value, township_id=township_id)
    police = await _actor(db, 2, role=Role.REVIEWER.value, department="police")

    async def read(actor: Actor) -> nominations.Dossier:
        async with db.sessionmaker.begin() as session:
            return await nominations.load_dossier(session, actor, nomination_id, now=NOW)

    with pytest.raises(NotAllowed):  # not sent to vetting yet
        await read(police)
    async with db.sessionmaker.begin() as session:
        await nominations.send_to_vetting(
            session, official, nomination_id, departments=DEPARTMENTS, now=NOW
        )
    dossier = await read(police)
    assert [r.department for r in dossier.reviews] == ["police"]  # only their own review
    assert dossier.show_reviews and not dossier.show_reasons
    async with db.sessionmaker.begin() as session:
        (item,), _ = await nominations.vetting_queue(session, police)
        await nominations.decide_review(
            session,
            police,
            item.review_id,
            decision=Decision.REJECT,
            note="不符合条件",
            departments=DEPARTMENTS,
            now=NOW,
            cipher=cipher,
        )
    with pytest.raises(NotAllowed):  # vetting over: out of reach
        await read(police)
    official_view = await read(official)
    assert official_view.show_reasons and len(official_view.reviews) == 3


async def test_mentor_reads_current_mentees_only(db: Database) -> None:
    from storage.models import Pairing

    cipher = DataCipher(Fernet.generate_key().decode())
    async with db.sessionmaker.begin() as session:
        township_id = (await townships(session, [("青山镇", "青山村")]))["青山镇"]
        ids = [
            await form_nomination(session, cipher, name, township_id, "new", now=NOW)
            for name in ("吴十", "郑十一")
        ]
    mentor = await _actor(
        db, 3, role=Role.MENTOR.value, township_id=township_id, mentor_slot="township"
    )
    async with db.sessionmaker.begin() as session:
        session.add(
            Pairing(nomination_id=ids[0], mentor_person_id=mentor.person_id, slot="township")
        )

    async def read(nomination_id: int) -> str:
        async with db.sessionmaker.begin() as session:
            dossier = await nominations.load_dossier(session, mentor, nomination_id, now=NOW)
        return dossier.full_name

    assert await read(ids[0]) == "吴十"
    with pytest.raises(NotAllowed):  # same township, not a mentee
        await read(ids[1])
    async with db.sessionmaker.begin() as session:
        pairing = await session.scalar(select(Pairing))
        assert pairing is not None
        pairing.ended_at = NOW
    with pytest.raises(NotAllowed):  # reassigned: no longer theirs
        await read(ids[0])


async def test_adjusting_out_ends_the_pairings(db: Database) -> None:
    from storage.models import Pairing

    cipher = DataCipher(Fernet.generate_key().decode())
    async with db.sessionmaker.begin() as session:
        township_id = (await townships(session, [("青山镇", "青山村")]))["青山镇"]
        nomination_id = await form_nomination(session, cipher, "王十六", township_id, now=NOW)
    official = await _actor(db, 4, role=Role.TOWNSHIP_OFFICIAL.value, township_id=township_id)
    async with db.sessionmaker.begin() as session:
        session.add(
            Pairing(
                nomination_id=nomination_id, mentor_person_id=official.person_id, slot="village"
            )
        )
    async with db.sessionmaker.begin() as session:
        await nominations.adjust_out(
            session, official, nomination_id, reason="本人申请退出", now=NOW, cipher=cipher
        )
    async with db.sessionmaker() as session:
        pairing = await session.scalar(select(Pairing))
    assert pairing is not None and pairing.ended_at == NOW
