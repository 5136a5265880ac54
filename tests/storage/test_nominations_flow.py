"""Nominations through township review and joint vetting, on SQLite and on PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import geo, nominations, people, review_queries
from storage.crypto import DataCipher
from storage.db import Database
from storage.models import AuditLog, Nomination, Role, RoleGrant, StatusChange, VettingReview
from storage.nominations import Duplicate, NominationForm, NotAllowed
from storage.people import Actor
from storage.rules.identity import make_id_number
from storage.rules.vetting import (
    DEFAULT_DEPARTMENTS,
    Channel,
    Decision,
    IllegalTransition,
    VettingOutcome,
)
from tests.support.county import RoleSpec, staff

T0 = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
ID_1 = make_id_number("520221", date(1990, 3, 7), 12, male=True)
ID_2 = make_id_number("520221", date(1992, 8, 1), 30, male=False)
CIPHER = DataCipher(Fernet.generate_key().decode())

QINGSHAN_OFFICIAL = 7001
MUHUANG_OFFICIAL = 7002
COUNTY_OFFICIAL = 7003
ADMIN = 7004
POLICE = 7101
DISCIPLINE = 7102
JUDICIAL = 7103
CANDIDATE = 5001
STRANGER = 9001


class County:
    """Two townships and the people who act on them, each with a real account and grant."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.qingshan = 0
        self.muhuang = 0
        self.actors: dict[int, Actor] = {}

    async def setup(self) -> None:
        async with self.db.sessionmaker.begin() as session:
            await geo.import_pairs(session, "示例县", [("青山镇", "青山村"), ("木黄镇", "木黄村")])
            qingshan = await geo.township_by_name(session, "青山镇")
            muhuang = await geo.township_by_name(session, "木黄镇")
            assert qingshan is not None and muhuang is not None
            self.qingshan, self.muhuang = qingshan.id, muhuang.id
        grants: dict[int, tuple[Role | None, int | None, str | None]] = {
            QINGSHAN_OFFICIAL: (Role.TOWNSHIP_OFFICIAL, self.qingshan, None),
            MUHUANG_OFFICIAL: (Role.TOWNSHIP_OFFICIAL, self.muhuang, None),
            COUNTY_OFFICIAL: (Role.COUNTY_OFFICIAL, None, None),
            ADMIN: (Role.ADMIN, None, None),
            POLICE: (Role.REVIEWER, None, "police"),
            DISCIPLINE: (Role.REVIEWER, None, "discipline"),
            JUDICIAL: (Role.REVIEWER, None, "judicial"),
            CANDIDATE: (None, None, None),
            STRANGER: (None, None, None),
        }
        async with self.db.sessionmaker.begin() as session:
            for telegram_id, (role, township_id, department) in grants.items():
                specs: list[RoleSpec] = [] if role is None else [(role, township_id, None)]
                await staff(session, telegram_id, None, specs, department)
            for telegram_id in grants:
                actor = await people.load_actor(session, telegram_id)
                assert actor is not None
                self.actors[telegram_id] = actor

    def __getitem__(self, telegram_id: int) -> Actor:
        return self.actors[telegram_id]

    def form(self, name: str, *, township: str = "青山镇", **fields: object) -> NominationForm:
        township_id = self.qingshan if township == "青山镇" else self.muhuang
        return NominationForm(
            full_name=name,
            township_id=township_id,
            key_group="veteran",
            **fields,  # type: ignore[arg-type]
        )

    async def nominate(
        self,
        form: NominationForm,
        *,
        channel: Channel = Channel.MASS,
        person_id: int | None = None,
    ) -> int:
        async with self.db.sessionmaker.begin() as session:
            nomination = await nominations.create_nomination(
                session,
                CIPHER,
                form,
                channel=channel,
                submitted_by=None,
                person_id=person_id,
                now=T0,
                consent=channel == Channel.SELF,
            )
            return nomination.id

    async def send(self, nid: int, actor: int = QINGSHAN_OFFICIAL) -> dict[str, int]:
        async with self.db.sessionmaker.begin() as session:
            await nominations.send_to_vetting(
                session, self[actor], nid, departments=DEFAULT_DEPARTMENTS, now=T0
            )
        async with self.db.sessionmaker() as session:
            rows = await session.execute(
                select(VettingReview.department, VettingReview.id).where(
                    VettingReview.nomination_id == nid
                )
            )
            return {department: rid for department, rid in rows.all()}

    async def decide(
        self, actor: int, review_id: int, decision: Decision, note: str | None = None
    ) -> VettingOutcome:
        async with self.db.sessionmaker.begin() as session:
            result = await nominations.decide_review(
                session,
                self[actor],
                review_id,
                decision=decision,
                note=note,
                departments=DEFAULT_DEPARTMENTS,
                now=T0 + timedelta(hours=1),
                cipher=CIPHER,
            )
            return result.outcome


@pytest.fixture
async def county(db: Database) -> County:
    built = County(db)
    await built.setup()
    return built


async def _history(session: AsyncSession, nid: int) -> list[tuple[str | None, str, str]]:
    rows = await session.execute(
        select(StatusChange.from_status, StatusChange.to_status, StatusChange.event)
        .where(StatusChange.nomination_id == nid)
        .order_by(StatusChange.id)
    )
    return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def _actions(session: AsyncSession, subject_type: str, subject_id: int) -> list[str]:
    rows = await session.scalars(
        select(AuditLog.action)
        .where(AuditLog.subject_type == subject_type, AuditLog.subject_id == subject_id)
        .order_by(AuditLog.id)
    )
    return list(rows)


async def _status(db: Database, nid: int) -> str:
    async with db.sessionmaker() as session:
        nomination = await session.get(Nomination, nid)
    assert nomination is not None
    return nomination.status


# -- creating ----------------------------------------------------------------------------------


async def test_create_nomination_encrypts_and_records(county: County) -> None:
    candidate = county[CANDIDATE]
    form = county.form(
        "张三", id_number=ID_1, phone="13812345678", education="college", motivation="建设家乡"
    )
    nid = await county.nominate(form, channel=Channel.SELF, person_id=candidate.person_id)
    async with county.db.sessionmaker() as session:
        nomination = await session.get(Nomination, nid)
        assert nomination is not None
        assert nomination.person_id == candidate.person_id
        assert nomination.status == "new" and nomination.channel == "self"
        assert nomination.id_number_enc is not None and nomination.phone_enc is not None
        assert ID_1.encode() not in nomination.id_number_enc
        assert CIPHER.decrypt(nomination.id_number_enc) == ID_1
        assert CIPHER.decrypt(nomination.phone_enc) == "13812345678"
        assert nomination.id_number_hash == CIPHER.lookup_hash(ID_1)
        assert nomination.id_number_masked == ID_1[:4] + "*" * 10 + ID_1[-4:]
        assert nomination.phone_masked == "138****5678"
        assert nomination.consent_at == T0 and nomination.sensitive_consent_at == T0
        assert await _history(session, nid) == [(None, "new", "submit:self")]
        assert await _actions(session, "nomination", nid) == ["nomination.create"]
        detail = await session.scalar(
            select(AuditLog.detail).where(AuditLog.action == "nomination.create")
        )
        assert ID_1 not in str(detail) and "13812345678" not in str(detail)


async def test_a_recommendation_creates_a_person_for_the_nominee(county: County) -> None:
    nid = await county.nominate(county.form("孙八", reason="带领村民种茶致富"))
    async with county.db.sessionmaker() as session:
        nomination = await session.get(Nomination, nid)
        assert nomination is not None
        assert nomination.person_id not in {a.person_id for a in county.actors.values()}
        assert nomination.id_number_hash is None and nomination.phone_hash is None
        assert nomination.consent_at is None


async def test_duplicate_id_or_phone_is_refused(county: County) -> None:
    await county.nominate(county.form("张三", id_number=ID_1, phone="13812345678"))
    with pytest.raises(Duplicate):
        await county.nominate(county.form("李四", id_number=ID_1, phone="13900000000"))
    with pytest.raises(Duplicate):
        await county.nominate(county.form("王五", id_number=ID_2, phone="13812345678"))
    async with county.db.sessionmaker() as session:
        assert await nominations.is_duplicate(session, CIPHER, id_number=ID_1, phone=None)
        assert not await nominations.is_duplicate(session, CIPHER, id_number=ID_2, phone=None)
        assert not await nominations.is_duplicate(session, CIPHER, id_number=None, phone=None)
        assert await session.scalar(select(func.count()).select_from(Nomination)) == 1


async def test_a_lost_race_is_a_duplicate_and_keeps_the_transaction(
    county: County, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two submissions pass the pre-check together: the unique hash decides, in a savepoint."""
    await county.nominate(county.form("张三", id_number=ID_1))

    async def never(*_args: object, **_kwargs: object) -> bool:
        return False

    monkeypatch.setattr(nominations, "is_duplicate", never)
    async with county.db.sessionmaker.begin() as session:
        with pytest.raises(Duplicate):
            await nominations.create_nomination(
                session,
                CIPHER,
                county.form("李四", id_number=ID_1),
                channel=Channel.MASS,
                submitted_by=None,
                person_id=None,
                now=T0,
            )
        # The outer transaction survived the failed insert and can go on.
        assert await session.scalar(select(func.count()).select_from(Nomination)) == 1


# -- township review ---------------------------------------------------------------------------


async def test_township_queue_is_scoped(county: County) -> None:
    qingshan = [await county.nominate(county.form(f"青山{i}")) for i in range(3)]
    muhuang = await county.nominate(county.form("木黄甲", township="木黄镇"))
    async with county.db.sessionmaker() as session:

        async def ids(actor: int, **page: int) -> tuple[list[int], int]:
            items, total = await nominations.township_queue(session, county[actor], **page)
            return [item.id for item in items], total

        assert await ids(QINGSHAN_OFFICIAL) == (qingshan, 3)
        assert await ids(MUHUANG_OFFICIAL) == ([muhuang], 1)
        assert await ids(COUNTY_OFFICIAL) == ([*qingshan, muhuang], 4)
        assert await ids(ADMIN) == ([*qingshan, muhuang], 4)
        for nobody in (POLICE, CANDIDATE, STRANGER):
            assert await ids(nobody) == ([], 0)
        assert await ids(QINGSHAN_OFFICIAL, offset=2, limit=5) == (qingshan[2:], 3)
        assert await ids(COUNTY_OFFICIAL, offset=0, limit=2) == (qingshan[:2], 4)
        items, _ = await nominations.township_queue(session, county[QINGSHAN_OFFICIAL])
        assert items[0].full_name == "青山0" and items[0].township == "青山镇"
        assert items[0].channel == "mass" and items[0].status == "new"

    # Declined and sent-on nominations leave the queue; contacted ones stay.
    async with county.db.sessionmaker.begin() as session:
        official = county[QINGSHAN_OFFICIAL]
        await nominations.decline(
            session, official, qingshan[0], reason="无意愿", now=T0, cipher=CIPHER
        )
        await nominations.mark_contacted(session, official, qingshan[1], now=T0)
    await county.send(qingshan[2])
    async with county.db.sessionmaker() as session:
        items, total = await nominations.township_queue(session, county[QINGSHAN_OFFICIAL])
    assert [(i.id, i.status) for i in items] == [(qingshan[1], "contacted")] and total == 1


async def test_officials_change_only_their_own_township(county: County) -> None:
    nid = await county.nominate(county.form("张三"))
    async with county.db.sessionmaker.begin() as session:
        for outsider in (MUHUANG_OFFICIAL, POLICE, CANDIDATE, STRANGER):
            with pytest.raises(NotAllowed):
                await nominations.send_to_vetting(
                    session, county[outsider], nid, departments=DEFAULT_DEPARTMENTS, now=T0
                )
            with pytest.raises(NotAllowed):
                await nominations.decline(
                    session, county[outsider], nid, reason="x", now=T0, cipher=CIPHER
                )
            with pytest.raises(NotAllowed):
                await nominations.mark_contacted(session, county[outsider], nid, now=T0)
            with pytest.raises(NotAllowed):
                await review_queries.review_card(session, county[outsider], nid)
        with pytest.raises(NotAllowed):
            await review_queries.review_card(session, county[QINGSHAN_OFFICIAL], 999_999)
        card = await review_queries.review_card(session, county[COUNTY_OFFICIAL], nid)
        assert card.full_name == "张三" and card.township == "青山镇"
    assert await _status(county.db, nid) == "new"


async def test_review_card_masks_and_hides_the_recommender(county: County) -> None:
    form = county.form("孙八", phone="13812345678", id_number=ID_1, reason="能干")
    nid = await county.nominate(form)
    async with county.db.sessionmaker.begin() as session:
        card = await review_queries.review_card(session, county[QINGSHAN_OFFICIAL], nid)
    assert card.phone_masked == "138****5678" and card.id_masked is not None
    assert ID_1 not in str(card) and "13812345678" not in str(card)
    assert not any("submitted" in name for name in card.__dataclass_fields__)
    async with county.db.sessionmaker() as session:
        assert await _actions(session, "nomination", nid) == [
            "nomination.create",
            "nomination.read",
        ]


async def test_decline_and_contact_transitions(county: County) -> None:
    self_nid = await county.nominate(
        county.form("张三"), channel=Channel.SELF, person_id=county[CANDIDATE].person_id
    )
    mass_nid = await county.nominate(county.form("孙八"))
    official = county[QINGSHAN_OFFICIAL]
    async with county.db.sessionmaker.begin() as session:
        # Only a mass recommendation has a nominee to contact.
        with pytest.raises(IllegalTransition):
            await nominations.mark_contacted(session, official, self_nid, now=T0)
    async with county.db.sessionmaker.begin() as session:
        await nominations.mark_contacted(session, official, mass_nid, now=T0)
    async with county.db.sessionmaker.begin() as session:
        with pytest.raises(IllegalTransition):
            await nominations.mark_contacted(session, official, mass_nid, now=T0)
    async with county.db.sessionmaker.begin() as session:
        await nominations.decline(
            session, official, mass_nid, reason="本人无意愿", now=T0, cipher=CIPHER
        )
    async with county.db.sessionmaker.begin() as session:
        with pytest.raises(IllegalTransition):
            await nominations.send_to_vetting(
                session, official, mass_nid, departments=DEFAULT_DEPARTMENTS, now=T0
            )
    async with county.db.sessionmaker() as session:
        assert await _history(session, mass_nid) == [
            (None, "new", "submit:mass"),
            ("new", "contacted", "contact"),
            ("contacted", "declined", "decline"),
        ]
        plain, sealed = (
            await session.execute(
                select(StatusChange.reason, StatusChange.reason_enc).where(
                    StatusChange.nomination_id == mass_nid, StatusChange.event == "decline"
                )
            )
        ).one()
        assert plain is None and sealed is not None and CIPHER.decrypt(sealed) == "本人无意愿"
        assert await _actions(session, "nomination", mass_nid) == [
            "nomination.create",
            "nomination.contact",
            "nomination.decline",
        ]
    assert await _status(county.db, self_nid) == "new"


# -- joint vetting -----------------------------------------------------------------------------


async def test_send_to_vetting_creates_one_review_per_department(county: County) -> None:
    nid = await county.nominate(county.form("张三"))
    reviews = await county.send(nid)
    assert set(reviews) == set(DEFAULT_DEPARTMENTS)
    assert await _status(county.db, nid) == "vetting"
    async with county.db.sessionmaker() as session:
        assert await _history(session, nid) == [
            (None, "new", "submit:mass"),
            ("new", "vetting", "send_to_vetting"),
        ]
        assert "nomination.send_to_vetting" in await _actions(session, "nomination", nid)
        assert await session.scalar(
            select(func.count()).select_from(VettingReview).where(VettingReview.decision.is_(None))
        ) == len(DEFAULT_DEPARTMENTS)
    # Sending twice is an illegal transition; no second set of reviews appears.
    with pytest.raises(IllegalTransition):
        await county.send(nid)
    async with county.db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(VettingReview)) == 3


async def test_vetting_queue_is_per_department(county: County) -> None:
    first = await county.nominate(county.form("张三"))
    second = await county.nominate(county.form("木黄甲", township="木黄镇"))
    first_reviews = await county.send(first)
    second_reviews = await county.send(second, actor=MUHUANG_OFFICIAL)
    async with county.db.sessionmaker() as session:
        for department, user in (("police", POLICE), ("discipline", DISCIPLINE)):
            items, total = await nominations.vetting_queue(session, county[user])
            assert total == 2
            assert [i.review_id for i in items] == [
                first_reviews[department],
                second_reviews[department],
            ]
            assert {i.department for i in items} == {department}
            assert items[0].full_name == "张三" and items[0].township == "青山镇"
        items, total = await nominations.vetting_queue(session, county[POLICE], offset=1, limit=1)
        assert [i.review_id for i in items] == [second_reviews["police"]] and total == 2
        for nobody in (QINGSHAN_OFFICIAL, COUNTY_OFFICIAL, ADMIN, STRANGER):
            assert await nominations.vetting_queue(session, county[nobody]) == ([], 0)
    await county.decide(POLICE, first_reviews["police"], Decision.APPROVE)
    async with county.db.sessionmaker() as session:
        items, total = await nominations.vetting_queue(session, county[POLICE])
        assert [i.review_id for i in items] == [second_reviews["police"]] and total == 1
        items, total = await nominations.vetting_queue(session, county[DISCIPLINE])
        assert total == 2


async def test_all_departments_approve(county: County) -> None:
    nid = await county.nominate(county.form("张三"))
    reviews = await county.send(nid)
    assert (
        await county.decide(POLICE, reviews["police"], Decision.APPROVE) == VettingOutcome.PENDING
    )
    assert await _status(county.db, nid) == "vetting"
    outcome = await county.decide(DISCIPLINE, reviews["discipline"], Decision.APPROVE, "无问题")
    assert outcome == VettingOutcome.PENDING
    outcome = await county.decide(JUDICIAL, reviews["judicial"], Decision.APPROVE)
    assert outcome == VettingOutcome.APPROVED
    assert await _status(county.db, nid) == "in_pool"
    async with county.db.sessionmaker() as session:
        assert await _history(session, nid) == [
            (None, "new", "submit:mass"),
            ("new", "vetting", "send_to_vetting"),
            ("vetting", "in_pool", "vetting_approved"),
        ]
        approver = await session.scalar(
            select(StatusChange.actor_person_id).where(StatusChange.to_status == "in_pool")
        )
        assert approver == county[JUDICIAL].person_id
        review = await session.get(VettingReview, reviews["discipline"])
        assert review is not None
        assert review.decision == "approve" and review.note_enc is not None
        # Encrypted at rest: a department's note may record an offence.
        assert review.note is None and CIPHER.decrypt(review.note_enc) == "无问题"
        assert review.reviewer_person_id == county[DISCIPLINE].person_id
        assert review.decided_at == T0 + timedelta(hours=1)
        for department, rid in reviews.items():
            assert await _actions(session, "vetting_review", rid) == ["vetting.approve"], (
                department
            )
        assert (await _actions(session, "nomination", nid))[-1] == "nomination.vetting_approved"


async def test_one_rejection_settles_vetting(county: County) -> None:
    nid = await county.nominate(county.form("李四"))
    reviews = await county.send(nid)
    await county.decide(POLICE, reviews["police"], Decision.APPROVE)
    outcome = await county.decide(DISCIPLINE, reviews["discipline"], Decision.REJECT, "有处分")
    assert outcome == VettingOutcome.REJECTED
    assert await _status(county.db, nid) == "rejected"
    async with county.db.sessionmaker() as session:
        change = await session.scalar(
            select(StatusChange).where(
                StatusChange.nomination_id == nid, StatusChange.to_status == "rejected"
            )
        )
        assert change is not None
        assert change.reason is None and change.reason_enc is not None
        assert CIPHER.decrypt(change.reason_enc) == "有处分" and change.event == "vetting_rejected"
        assert await nominations.vetting_queue(session, county[JUDICIAL]) == ([], 0)
    # The last department can no longer decide: the nomination has left vetting.
    with pytest.raises(NotAllowed):
        await county.decide(JUDICIAL, reviews["judicial"], Decision.APPROVE)
    async with county.db.sessionmaker() as session:
        with pytest.raises(review_queries.Stale):
            await review_queries.vetting_card(session, county[JUDICIAL], reviews["judicial"])
    # Nor can the township act on it any more.
    async with county.db.sessionmaker.begin() as session:
        with pytest.raises(IllegalTransition):
            await nominations.decline(
                session, county[QINGSHAN_OFFICIAL], nid, reason="xx", now=T0, cipher=CIPHER
            )


async def test_another_departments_review_is_not_allowed(county: County) -> None:
    nid = await county.nominate(county.form("张三"))
    reviews = await county.send(nid)
    for outsider in (POLICE, QINGSHAN_OFFICIAL, COUNTY_OFFICIAL, ADMIN, STRANGER):
        with pytest.raises(NotAllowed):
            await county.decide(outsider, reviews["discipline"], Decision.REJECT, "伪造")
    async with county.db.sessionmaker() as session:
        with pytest.raises(NotAllowed):
            await review_queries.vetting_card(session, county[POLICE], reviews["discipline"])
        card = await review_queries.vetting_card(session, county[POLICE], reviews["police"])
        assert card.department == "police" and card.full_name == "张三"
        review = await session.get(VettingReview, reviews["discipline"])
        assert review is not None and review.decision is None
    # Deciding twice is not allowed either: the first decision stands.
    await county.decide(POLICE, reviews["police"], Decision.APPROVE)
    with pytest.raises(NotAllowed):
        await county.decide(POLICE, reviews["police"], Decision.REJECT, "改主意")
    assert await _status(county.db, nid) == "vetting"


async def test_a_reviewer_of_two_departments_decides_each(county: County) -> None:
    nid = await county.nominate(county.form("张三"))
    reviews = await county.send(nid)
    both = replace(county[POLICE], grants=county[POLICE].grants + county[JUDICIAL].grants)
    async with county.db.sessionmaker.begin() as session:
        items, total = await nominations.vetting_queue(session, both)
        assert total == 2 and {i.department for i in items} == {"police", "judicial"}
        result = await nominations.decide_review(
            session,
            both,
            reviews["judicial"],
            decision=Decision.APPROVE,
            note=None,
            departments=DEFAULT_DEPARTMENTS,
            now=T0,
            cipher=CIPHER,
        )
    assert result.outcome == VettingOutcome.PENDING


async def test_who_hears_about_an_outcome(county: County) -> None:
    candidate = county[CANDIDATE]
    nid = await county.nominate(
        county.form("张三"), channel=Channel.SELF, person_id=candidate.person_id
    )
    recommended = await county.nominate(county.form("孙八"))
    async with county.db.sessionmaker() as session:
        nomination = await session.get(Nomination, nid)
        assert nomination is not None
        ids = await nominations.chat_ids_for_outcome(session, nomination)
        assert ids == {"candidate": [CANDIDATE], "officials": [QINGSHAN_OFFICIAL]}
        other = await session.get(Nomination, recommended)
        assert other is not None
        assert (await nominations.chat_ids_for_outcome(session, other))["candidate"] == []
        reviewers = await nominations.reviewer_chat_ids(session, DEFAULT_DEPARTMENTS)
        assert sorted(reviewers) == [POLICE, DISCIPLINE, JUDICIAL]
        assert await nominations.reviewer_chat_ids(session, ["police"]) == [POLICE]
        assert await people.recipients(session, [POLICE]) == [(POLICE, "zh-hans")]
    # A revoked grant hears nothing more.
    async with county.db.sessionmaker.begin() as session:
        grant = await session.scalar(
            select(RoleGrant).where(RoleGrant.person_id == county[POLICE].person_id)
        )
        assert grant is not None
        grant.revoked_at = T0
    async with county.db.sessionmaker() as session:
        assert await nominations.reviewer_chat_ids(session, ["police"]) == []
