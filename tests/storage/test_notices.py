"""The reads behind the notices and /status (storage/notices.py) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet
from sqlalchemy import update

from storage import notices
from storage.crypto import DataCipher
from storage.db import Database
from storage.models import Difficulty, Nomination, Pairing, Role, StatusChange, TalkLog
from tests.support.county import form_nomination, pair, staff, townships

NOW = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
CADRE, MENTOR_T, MENTOR_V, OLD_MENTOR, OTHER = 401, 402, 403, 404, 405


async def test_who_is_told_and_what_status_shows(db: Database) -> None:
    cipher = DataCipher(Fernet.generate_key().decode())
    async with db.sessionmaker.begin() as session:
        town = (await townships(session, [("青山镇", "青山村")]))["青山镇"]
        cadre = await staff(session, CADRE, "王小明")
        mentor_t = await staff(session, MENTOR_T, "镇导师", [(Role.MENTOR, town, "township")])
        mentor_v = await staff(session, MENTOR_V, None, [(Role.MENTOR, town, "village")])
        old = await staff(session, OLD_MENTOR, "前导师", [(Role.MENTOR, town, "township")])
        nid = await form_nomination(
            session, cipher, "王小明", town, now=NOW, person_id=cadre, submitted_by=cadre
        )
        # Someone else's file, and one of the cadre's that was erased: neither is theirs now.
        other = await form_nomination(session, cipher, "别人", town, now=NOW)
        erased = await form_nomination(session, cipher, "王小明", town, now=NOW, person_id=cadre)
        await session.execute(
            update(Nomination).where(Nomination.id == erased).values(erased_at=NOW)
        )
        session.add_all(
            StatusChange(
                nomination_id=nid,
                from_status=before,
                to_status=after,
                event=event,
                at=NOW + timedelta(days=days),
            )
            for before, after, event, days in [
                ("new", "vetting", "send_to_vetting", 1),
                ("vetting", "in_pool", "vetting_approved", 5),
            ]
        )
        await pair(session, nid, old, "township", ended_at=NOW)
        township_pairing = await pair(session, nid, mentor_t, "township")
        await pair(session, nid, mentor_v, "village")
        talk = TalkLog(
            pairing_id=township_pairing.id,
            nomination_id=nid,
            mentor_person_id=mentor_t,
            talk_date=NOW.date(),
            mode="phone",
        )
        session.add(talk)
        await session.flush()
        raised = Difficulty(nomination_id=nid, talk_id=talk.id)
        loose = Difficulty(nomination_id=nid, talk_id=None)  # its talk was deleted
        session.add_all([raised, loose])
        await session.flush()

    async with db.sessionmaker() as session:
        assert await notices.candidate_chats(session, nid) == [CADRE]
        assert await notices.candidate_chats(session, other) == []  # no Telegram account
        # Mentors now: the ended pairing's mentor is not told.
        assert await notices.mentor_chats(session, nid) == [MENTOR_T, MENTOR_V]
        assert await notices.raiser_chats(session, raised.id) == [MENTOR_T]
        assert await notices.raiser_chats(session, raised.id, besides=mentor_t) == []
        assert await notices.raiser_chats(session, loose.id) == []
        assert [(m.slot, m.full_name) for m in await notices.mentors_of(session, nid)] == [
            ("township", "镇导师"),
            ("village", None),
        ]
        (own,) = await notices.own_files(session, cadre)
        assert await notices.own_files(session, mentor_t) == []
    assert (own.status, own.township, own.village) == ("in_pool", "青山镇", None)
    # Oldest first, from the submission (written by create_nomination) on.
    assert [(s.event, s.status, s.at) for s in own.steps] == [
        ("submit", "new", NOW),
        ("send_to_vetting", "vetting", NOW + timedelta(days=1)),
        ("vetting_approved", "in_pool", NOW + timedelta(days=5)),
    ]
    assert [m.full_name for m in own.mentors] == ["镇导师", None]

    # Once the pairings end (adjusted out), nobody is a mentor of the file any more.
    async with db.sessionmaker.begin() as session:
        await session.execute(update(Pairing).values(ended_at=NOW))
    async with db.sessionmaker() as session:
        assert await notices.mentor_chats(session, nid) == []
        assert await notices.mentors_of(session, nid) == []
