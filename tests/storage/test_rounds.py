"""Selection rounds and re-entry, on SQLite and on PostgreSQL: who may nominate in which
round, the database's own uniqueness, readmission, and who made each status change."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from storage import erasure, nominations, rounds
from storage.db import Database
from storage.models import AuditLog, Nomination, SelectionRound, StatusChange
from storage.nominations import Duplicate, NotAllowed
from storage.rules.vetting import Channel, Decision, IllegalTransition
from tests.storage.test_nominations_flow import (
    CANDIDATE,
    CIPHER,
    COUNTY_OFFICIAL,
    DISCIPLINE,
    ID_1,
    JUDICIAL,
    MUHUANG_OFFICIAL,
    POLICE,
    QINGSHAN_OFFICIAL,
    T0,
    County,
)

TODAY = T0.date()
PHONE = "13812345678"


@pytest.fixture
async def county(db: Database) -> County:
    built = County(db)
    await built.setup()
    return built


async def _open(
    county: County, name: str, starts: date, ends: date, actor: int = COUNTY_OFFICIAL
) -> int:
    async with county.db.sessionmaker.begin() as session:
        made = await rounds.open_round(
            session, county[actor], name=name, starts_on=starts, ends_on=ends
        )
        return made.id


async def _self(county: County, round_id: int | None) -> int:
    """The candidate nominates themselves (same ID number and phone each time)."""
    async with county.db.sessionmaker.begin() as session:
        made = await nominations.create_nomination(
            session,
            CIPHER,
            county.form("张三", id_number=ID_1, phone=PHONE),
            channel=Channel.SELF,
            submitted_by=county[CANDIDATE].person_id,
            person_id=county[CANDIDATE].person_id,
            now=T0,
            consent=True,
            round_id=round_id,
        )
        return made.id


async def _reject(county: County, nid: int) -> None:
    reviews = await county.send(nid)
    await county.decide(POLICE, reviews["police"], Decision.APPROVE)
    await county.decide(DISCIPLINE, reviews["discipline"], Decision.REJECT, "有不良记录")


async def _into_pool(county: County, nid: int) -> None:
    reviews = await county.send(nid)
    for actor, department in ((POLICE, "police"), (DISCIPLINE, "discipline")):
        await county.decide(actor, reviews[department], Decision.APPROVE)
    await county.decide(JUDICIAL, reviews["judicial"], Decision.APPROVE)


async def test_county_opens_rounds_that_never_overlap(county: County) -> None:
    async with county.db.sessionmaker() as session:
        state = await rounds.on(session, TODAY)
    assert state.current is None and not state.any_opened and state.nominating
    first = await _open(county, "2026年第一批", TODAY, TODAY + timedelta(days=30))
    with pytest.raises(rounds.RoundsOverlap) as crossed:
        await _open(county, "重叠", TODAY + timedelta(days=30), TODAY + timedelta(days=60))
    assert crossed.value.round_id == first
    second = await _open(
        county, "2026年第二批", TODAY + timedelta(days=90), TODAY + timedelta(days=120)
    )
    # Deny by default: a township official opens no round.
    with pytest.raises(NotAllowed):
        await _open(
            county,
            "乡镇自开",
            TODAY + timedelta(days=200),
            TODAY + timedelta(days=210),
            QINGSHAN_OFFICIAL,
        )
    async with county.db.sessionmaker() as session:
        assert [r.id for r in await rounds.all_rounds(session)] == [second, first]
        during = await rounds.on(session, TODAY + timedelta(days=30))
        between = await rounds.on(session, TODAY + timedelta(days=60))
        opened_by = await session.scalar(
            select(SelectionRound.opened_by_person_id).where(SelectionRound.id == first)
        )
        audited = await session.scalar(
            select(AuditLog.actor_person_id).where(
                AuditLog.action == "round.open", AuditLog.subject_id == first
            )
        )
    assert during.round_id == first and during.nominating
    assert between.current is None and between.any_opened and not between.nominating
    assert between.upcoming is not None and between.upcoming.id == second
    assert opened_by == audited == county[COUNTY_OFFICIAL].person_id


async def test_a_rejected_person_nominates_again_in_a_later_round_only(county: County) -> None:
    first = await _self(county, None)
    # While the file is open nobody may nominate the same person, in any round.
    with pytest.raises(Duplicate):
        await _self(county, None)
    await _reject(county, first)
    # The implicit round (no round opened) keeps today's rule: once per person.
    with pytest.raises(Duplicate):
        await _self(county, None)
    batch = await _open(county, "2026年第一批", TODAY, TODAY + timedelta(days=30))
    async with county.db.sessionmaker() as session:
        assert await nominations.is_duplicate(session, CIPHER, id_number=ID_1, phone=None)
        assert not await nominations.is_duplicate(
            session, CIPHER, id_number=ID_1, phone=PHONE, round_id=batch
        )
    second = await _self(county, batch)
    async with county.db.sessionmaker() as session:
        again = await session.get_one(Nomination, second)
        assert again.round_id == batch and again.status == "new"
        assert await rounds.holding(session, county[CANDIDATE].person_id, batch) == again
    # Declined in this round: not again in it, but in the next one.
    async with county.db.sessionmaker.begin() as session:
        await nominations.decline(
            session, county[QINGSHAN_OFFICIAL], second, reason="暂不推荐", now=T0, cipher=CIPHER
        )
    with pytest.raises(Duplicate):
        await _self(county, batch)
    later = await _open(
        county, "2026年第二批", TODAY + timedelta(days=60), TODAY + timedelta(days=90)
    )
    third = await _self(county, later)
    async with county.db.sessionmaker() as session:
        held = await rounds.holding(session, county[CANDIDATE].person_id, later)
    assert held is not None and held.id == third


async def test_the_database_allows_one_open_nomination_per_person(county: County) -> None:
    """The partial unique indexes decide a race: a second open row with the same hash fails,
    a closed one beside an open one does not."""
    first = await _self(county, None)
    async with county.db.sessionmaker() as session:
        copy = Nomination(
            person_id=county[CANDIDATE].person_id,
            channel="self",
            status="new",
            township_id=county.qingshan,
            key_group="veteran",
            phone_hash=CIPHER.lookup_hash(PHONE),
        )
        session.add(copy)
        with pytest.raises(IntegrityError):
            await session.flush()
    async with county.db.sessionmaker.begin() as session:
        await session.execute(
            update(Nomination).where(Nomination.id == first).values(status="rejected")
        )
        session.add(
            Nomination(
                person_id=county[CANDIDATE].person_id,
                channel="self",
                status="new",
                township_id=county.qingshan,
                key_group="veteran",
                phone_hash=CIPHER.lookup_hash(PHONE),
            )
        )


async def test_readmission_is_scoped_reasoned_and_one_file_at_a_time(county: County) -> None:
    nid = await _self(county, None)
    await _into_pool(county, nid)
    async with county.db.sessionmaker.begin() as session:
        await nominations.adjust_out(
            session, county[QINGSHAN_OFFICIAL], nid, reason="外出务工", now=T0, cipher=CIPHER
        )
    # Another township's official: refused, nothing changes.
    with pytest.raises(NotAllowed):
        async with county.db.sessionmaker.begin() as session:
            await nominations.readmit(
                session, county[MUHUANG_OFFICIAL], nid, reason="返乡", now=T0, cipher=CIPHER
            )
    async with county.db.sessionmaker.begin() as session:
        await nominations.readmit(
            session, county[QINGSHAN_OFFICIAL], nid, reason="已返乡", now=T0, cipher=CIPHER
        )
    async with county.db.sessionmaker() as session:
        latest = await session.scalar(
            select(StatusChange)
            .where(StatusChange.nomination_id == nid)
            .order_by(StatusChange.id.desc())
            .limit(1)
        )
        assert latest is not None
        assert (latest.from_status, latest.to_status, latest.event) == (
            "adjusted",
            "in_pool",
            "readmit",
        )
        assert latest.actor_person_id == county[QINGSHAN_OFFICIAL].person_id
        assert latest.reason_enc is not None and CIPHER.decrypt(latest.reason_enc) == "已返乡"
        assert (
            await session.scalar(
                select(AuditLog.actor_person_id).where(AuditLog.action == "nomination.readmit")
            )
            == county[QINGSHAN_OFFICIAL].person_id
        )
    # In the pool now: readmitting again is an illegal move.
    with pytest.raises(IllegalTransition):
        async with county.db.sessionmaker.begin() as session:
            await nominations.readmit(
                session, county[QINGSHAN_OFFICIAL], nid, reason="再来", now=T0, cipher=CIPHER
            )
    # Adjusted out, nominated anew in a round: the old file cannot come back beside it.
    async with county.db.sessionmaker.begin() as session:
        await nominations.adjust_out(
            session, county[QINGSHAN_OFFICIAL], nid, reason="外出务工", now=T0, cipher=CIPHER
        )
    batch = await _open(county, "2026年第一批", TODAY, TODAY + timedelta(days=30))
    await _self(county, batch)
    async with county.db.sessionmaker.begin() as session:
        with pytest.raises(Duplicate):
            await nominations.readmit(
                session, county[QINGSHAN_OFFICIAL], nid, reason="返乡", now=T0, cipher=CIPHER
            )
        # The transaction goes on after the refused readmission.
        assert (await session.get_one(Nomination, nid)).status == "adjusted"


async def test_every_status_change_names_who_made_it(county: County) -> None:
    """Submit, township and vetting moves, adjustment and a withdrawal each record their actor
    (a withdrawal: the person themselves; `cadrebot erase` by the operator has no person)."""
    nid = await _self(county, None)
    await _into_pool(county, nid)
    async with county.db.sessionmaker.begin() as session:
        await erasure.erase_person(
            session,
            county[CANDIDATE].person_id,
            actor_person_id=county[CANDIDATE].person_id,
            now=T0,
        )
    async with county.db.sessionmaker() as session:
        rows = (
            await session.execute(
                select(StatusChange.event, StatusChange.actor_person_id)
                .where(StatusChange.nomination_id == nid)
                .order_by(StatusChange.id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("submit:self", county[CANDIDATE].person_id),
        ("send_to_vetting", county[QINGSHAN_OFFICIAL].person_id),
        ("vetting_approved", county[JUDICIAL].person_id),
        ("adjust_out", county[CANDIDATE].person_id),
    ]
