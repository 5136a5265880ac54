"""A recommendation completed by its nominee, then to vetting: on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from storage import completion, people
from storage.db import Database
from storage.models import AuditLog, Nomination, NomineeInvite, Person
from storage.nominations import Duplicate, NotAllowed
from storage.rules.vetting import DEFAULT_DEPARTMENTS, Channel
from storage.scoped import Stale
from tests.storage.test_nominations_flow import (
    CANDIDATE,
    CIPHER,
    ID_1,
    ID_2,
    MUHUANG_OFFICIAL,
    QINGSHAN_OFFICIAL,
    T0,
    County,
)

PHONE = "13812340009"


@pytest.fixture
async def county(db: Database) -> County:
    county = County(db)
    await county.setup()
    return county


async def _invite(county: County, nid: int, official: int = QINGSHAN_OFFICIAL) -> str:
    async with county.db.sessionmaker.begin() as session:
        return await completion.invite_nominee(session, county[official], nid, now=T0, days=7)


async def _send(county: County, nid: int) -> None:
    async with county.db.sessionmaker.begin() as session:
        await completion.send_complete_to_vetting(
            session, county[QINGSHAN_OFFICIAL], nid, departments=DEFAULT_DEPARTMENTS, now=T0
        )


async def test_a_recommendation_goes_to_vetting_only_once_its_nominee_completed_it(
    county: County,
) -> None:
    nid = await county.nominate(county.form("孙八", phone=PHONE))
    with pytest.raises(completion.Incomplete) as refused:
        await _send(county, nid)
    assert refused.value.missing == ("id_number", "consent")
    # Another township's official can neither invite nor read what the file lacks.
    with pytest.raises(NotAllowed):
        await _invite(county, nid, MUHUANG_OFFICIAL)

    first = await _invite(county, nid)
    code = await _invite(county, nid)
    async with county.db.sessionmaker.begin() as session:
        # A new code replaces the one given before; a wrong one opens nothing.
        assert await completion.open_invite(session, first, now=T0) is None
        assert await completion.open_invite(session, "WRONG", now=T0) is None
        assert await completion.open_invite(session, code, now=T0 + timedelta(days=8)) is None
        opened = await completion.open_invite(session, code, now=T0)
        assert opened is not None and opened.nomination_id == nid
        assert opened.township_name == "青山镇"
        assert await completion.pending_by_phone(session, CIPHER, PHONE) == nid
        account = await people.ensure_account(session, CANDIDATE, "zh")
        recommended = (await session.get_one(Nomination, nid)).person_id
        form = county.form("孙八", id_number=ID_1, phone=PHONE, education="college")
        await completion.complete(session, CIPHER, nid, form, person_id=account.person_id, now=T0)
    async with county.db.sessionmaker() as session:
        nomination = await session.get_one(Nomination, nid)
        assert nomination.person_id == account.person_id
        assert nomination.consent_at is not None and nomination.sensitive_consent_at is not None
        assert nomination.id_number_hash == CIPHER.lookup_hash(ID_1)
        assert nomination.education == "college" and nomination.channel == Channel.MASS
        # The person the recommender typed in is gone: the file is the nominee's own.
        assert await session.get(Person, recommended) is None
        used = await session.scalar(
            select(func.count()).where(
                NomineeInvite.nomination_id == nid, NomineeInvite.used_at.is_(None)
            )
        )
        assert used == 0
        assert completion.missing(nomination) == ()
        assert await completion.open_invite(session, code, now=T0) is None
        assert await completion.pending_by_phone(session, CIPHER, PHONE) is None
    await _send(county, nid)
    async with county.db.sessionmaker() as session:
        assert (await session.get_one(Nomination, nid)).status == "vetting"
        actions = set(
            await session.scalars(select(AuditLog.action).where(AuditLog.subject_id == nid))
        )
    assert {"nomination.invite", "nomination.complete", "nomination.send_to_vetting"} <= actions
    # A complete file needs no code.
    with pytest.raises(Stale):
        await _invite(county, nid)


async def test_completing_with_an_id_number_on_another_file_is_a_duplicate(
    county: County,
) -> None:
    await county.nominate(county.form("张三", id_number=ID_2), channel=Channel.SELF)
    nid = await county.nominate(county.form("孙八"))
    with pytest.raises(Duplicate):
        async with county.db.sessionmaker.begin() as session:
            account = await people.ensure_account(session, CANDIDATE, "zh")
            form = county.form("孙八", id_number=ID_2)
            await completion.complete(
                session, CIPHER, nid, form, person_id=account.person_id, now=T0
            )
    async with county.db.sessionmaker() as session:
        assert completion.missing(await session.get_one(Nomination, nid)) == (
            "id_number",
            "consent",
        )


async def test_a_self_nomination_has_no_code_and_is_not_completable(county: County) -> None:
    nid = await county.nominate(county.form("张三", id_number=ID_1), channel=Channel.SELF)
    with pytest.raises(Stale):
        await _invite(county, nid)
    async with county.db.sessionmaker.begin() as session:
        account = await people.ensure_account(session, CANDIDATE, "zh")
        with pytest.raises(Stale):
            await completion.complete(
                session,
                CIPHER,
                nid,
                county.form("张三", id_number=ID_1),
                person_id=account.person_id,
                now=T0,
            )
