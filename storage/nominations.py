"""Nominations, township review, joint vetting, the pool and the dossier.

Every read takes the acting person and filters by their scope in the SQL itself
(`visible_to`): a township official's query cannot return another township's rows.
Functions take a session and never commit; the caller's transaction is the unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute, joinedload

from storage import audit, rounds
from storage.crypto import DataCipher
from storage.models import (
    Nomination,
    Pairing,
    Person,
    Role,
    RoleGrant,
    StatusChange,
    TelegramAccount,
    Township,
    VettingReview,
)
from storage.people import Actor, reachable_staff
from storage.rules.identity import mask_id, mask_phone
from storage.rules.vetting import (
    Channel,
    Decision,
    Event,
    Status,
    VettingOutcome,
    transition,
    vetting_outcome,
)

# NotAllowed is named here too: callers import it from this module.
from storage.scoped import NotAllowed as NotAllowed
from storage.scoped import one_or_refuse, page, with_names


class Duplicate(Exception):
    """The ID number or phone is already in a nomination (whose is never said)."""


@dataclass(slots=True)
class NominationForm:
    """What a nomination form collects; the same for all three channels."""

    full_name: str
    township_id: int
    key_group: str
    village_id: int | None = None
    gender: str | None = None
    birth_date: date | None = None
    ethnicity: str | None = None
    political_status: str | None = None
    education: str | None = None
    id_number: str | None = None
    phone: str | None = None
    specialties: str | None = None
    work_history: str | None = None
    motivation: str | None = None
    reason: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def visible_to(actor: Actor) -> ColumnElement[bool]:
    """The nominations an actor may read. Deny by default: no role, no rows.

    An erased file (storage/erasure.py) is nobody's to read: it only counts."""
    if actor.has(Role.ADMIN, Role.COUNTY_OFFICIAL):
        return Nomination.erased_at.is_(None)
    clauses: list[ColumnElement[bool]] = [Nomination.person_id == actor.person_id]
    townships = actor.township_ids(Role.TOWNSHIP_OFFICIAL)
    if townships:
        clauses.append(Nomination.township_id.in_(townships))
    if actor.has(Role.MENTOR):
        # A mentor reads the files of their current mentees, and no one else's.
        clauses.append(
            Nomination.id.in_(
                select(Pairing.nomination_id).where(
                    Pairing.mentor_person_id == actor.person_id, Pairing.ended_at.is_(None)
                )
            )
        )
    departments = actor.departments()
    if departments:
        # A reviewer reads a file only while it is in their department's vetting queue.
        clauses.append(
            and_(
                Nomination.status == Status.VETTING.value,
                Nomination.id.in_(
                    select(VettingReview.nomination_id).where(
                        VettingReview.department.in_(departments)
                    )
                ),
            )
        )
    return and_(Nomination.erased_at.is_(None), or_(*clauses)) if clauses else false()


def manageable_by(
    actor: Actor, township: QueryableAttribute[int | None] | None = None
) -> ColumnElement[bool]:
    """The nominations an actor may change (review, adjust): officials in scope only.

    `township` is the column that holds the nomination's township: nomination.township_id
    by default, or a fact row's own copy of it (storage/tally.py), which spares a join."""
    if actor.has(Role.ADMIN, Role.COUNTY_OFFICIAL):
        return true()
    townships = actor.township_ids(Role.TOWNSHIP_OFFICIAL)
    column = Nomination.township_id if township is None else township
    return column.in_(townships) if townships else false()


async def erased_in_scope(session: AsyncSession, actor: Actor, nomination_id: int) -> bool:
    """Whether the file was erased on request and lies in what the actor manages: an official
    asking for it is told it was erased, not refused (its anonymous row only counts)."""
    found = await session.scalar(
        select(Nomination.id).where(
            Nomination.id == nomination_id,
            Nomination.erased_at.is_not(None),
            manageable_by(actor),
        )
    )
    return found is not None


async def is_duplicate(
    session: AsyncSession,
    cipher: DataCipher,
    *,
    id_number: str | None,
    phone: str | None,
    round_id: int | None = None,
) -> bool:
    """Whether the number is in a nomination that keeps its person out of round `round_id`
    (an open one, or one of that round: storage/rounds.py)."""
    clauses = []
    if id_number:
        clauses.append(Nomination.id_number_hash == cipher.lookup_hash(id_number))
    if phone:
        clauses.append(Nomination.phone_hash == cipher.lookup_hash(phone))
    if not clauses:
        return False
    where = and_(or_(*clauses), rounds.holds_person(round_id))
    return bool(await session.scalar(select(func.count()).where(where)))


async def create_nomination(
    session: AsyncSession,
    cipher: DataCipher,
    form: NominationForm,
    *,
    channel: Channel,
    submitted_by: int | None,
    person_id: int | None,
    now: datetime,
    consent: bool = False,
    round_id: int | None = None,
) -> Nomination:
    """Store a nomination in round `round_id` (None: the implicit round) with its personal
    data encrypted; raise Duplicate if the person may not nominate in it.

    For a self-nomination `person_id` is the nominee's own person; for recommendations a new
    person is created for the nominee.
    """
    numbers = {"id_number": form.id_number, "phone": form.phone}
    if await is_duplicate(session, cipher, **numbers, round_id=round_id):
        raise Duplicate
    if person_id is None:
        person = Person(full_name=form.full_name)
        session.add(person)
        await session.flush()
        person_id = person.id
    else:
        person = await session.get_one(Person, person_id)
        person.full_name = form.full_name
    nomination = Nomination(
        person_id=person_id,
        channel=channel.value,
        status=Status.NEW.value,
        township_id=form.township_id,
        village_id=form.village_id,
        gender=form.gender,
        birth_date=form.birth_date,
        ethnicity=form.ethnicity,
        political_status=form.political_status,
        education=form.education,
        key_group=form.key_group,
        specialties=form.specialties,
        work_history=form.work_history,
        motivation=form.motivation,
        reason=form.reason,
        submitted_by_person_id=submitted_by,
        round_id=round_id,
        consent_at=now if consent else None,
        sensitive_consent_at=now if consent and form.id_number else None,
        status_changed_at=now,
    )
    if form.id_number:
        nomination.id_number_enc = cipher.encrypt(form.id_number)
        nomination.id_number_hash = cipher.lookup_hash(form.id_number)
        nomination.id_number_masked = mask_id(form.id_number)
    if form.phone:
        nomination.phone_enc = cipher.encrypt(form.phone)
        nomination.phone_hash = cipher.lookup_hash(form.phone)
        nomination.phone_masked = mask_phone(form.phone)
    try:
        async with session.begin_nested():
            session.add(nomination)
            await session.flush()
    except IntegrityError:
        # Lost a race with an identical nomination: the unique hashes decided.
        raise Duplicate from None
    session.add(
        StatusChange(
            nomination_id=nomination.id,
            from_status=None,
            to_status=Status.NEW.value,
            event=f"submit:{channel.value}",
            actor_person_id=submitted_by,
            at=now,
        )
    )
    await audit.record(
        session, submitted_by, "nomination.create", "nomination", nomination.id, channel=channel
    )
    return nomination


async def move(
    session: AsyncSession,
    nomination: Nomination,
    event: Event,
    actor: Actor,
    *,
    now: datetime,
    reason: str | None = None,
    cipher: DataCipher | None = None,
) -> None:
    """Move the nomination on by `event`, as `actor`, with its history row and audit."""
    if reason is not None and cipher is None:
        raise ValueError("a reason is stored encrypted: pass the cipher")
    new = transition(Status(nomination.status), event, channel=Channel(nomination.channel))
    session.add(
        StatusChange(
            nomination_id=nomination.id,
            from_status=nomination.status,
            to_status=new.value,
            event=event.value,
            actor_person_id=actor.person_id,
            reason_enc=cipher.encrypt(reason) if reason and cipher else None,
            at=now,
        )
    )
    nomination.status = new.value
    nomination.status_changed_at = now
    await audit.record(
        session, actor.person_id, f"nomination.{event.value}", "nomination", nomination.id
    )


async def locked(
    session: AsyncSession, where: ColumnElement[bool], nomination_id: int
) -> Nomination:
    """The nomination `nomination_id`, row-locked for a change, if it matches `where`; else
    NotAllowed (a pressed button or a typed id is re-checked like a listed one)."""
    query = select(Nomination).where(Nomination.id == nomination_id, where)
    return await one_or_refuse(session, query.with_for_update())


@dataclass(frozen=True, slots=True)
class QueueItem:
    id: int
    full_name: str
    channel: str
    status: str
    township: str
    key_group: str
    created_at: datetime


async def township_queue(
    session: AsyncSession, actor: Actor, *, offset: int = 0, limit: int = 10
) -> tuple[list[QueueItem], int]:
    """New and contacted nominations an official may review, oldest first."""
    where = and_(
        manageable_by(actor), Nomination.status.in_([Status.NEW.value, Status.CONTACTED.value])
    )
    rows, total = await page(
        session,
        with_names(select(Nomination, Person.full_name, Township.name))
        .where(where)
        .order_by(Nomination.created_at, Nomination.id),
        select(func.count()).select_from(Nomination).where(where),
        offset=offset,
        limit=limit,
    )
    items = [
        QueueItem(n.id, name or "", n.channel, n.status, t, n.key_group, n.created_at)
        for n, name, t in rows
    ]
    return items, total


async def send_to_vetting(
    session: AsyncSession,
    actor: Actor,
    nomination_id: int,
    *,
    departments: Sequence[str],
    now: datetime,
) -> Nomination:
    nomination = await locked(session, manageable_by(actor), nomination_id)
    await move(session, nomination, Event.SEND_TO_VETTING, actor, now=now)
    for department in departments:
        session.add(
            VettingReview(nomination_id=nomination.id, department=department, requested_at=now)
        )
    await session.flush()
    return nomination


async def decline(
    session: AsyncSession,
    actor: Actor,
    nomination_id: int,
    *,
    reason: str,
    now: datetime,
    cipher: DataCipher,
) -> Nomination:
    nomination = await locked(session, manageable_by(actor), nomination_id)
    await move(session, nomination, Event.DECLINE, actor, now=now, reason=reason, cipher=cipher)
    return nomination


async def mark_contacted(
    session: AsyncSession, actor: Actor, nomination_id: int, *, now: datetime
) -> Nomination:
    nomination = await locked(session, manageable_by(actor), nomination_id)
    await move(session, nomination, Event.CONTACT, actor, now=now)
    return nomination


async def adjust_out(
    session: AsyncSession,
    actor: Actor,
    nomination_id: int,
    *,
    reason: str,
    now: datetime,
    cipher: DataCipher,
) -> Nomination:
    """不适宜人选及时调整: take a person out of the pool, with the reason kept.

    Their "2+1" pairings end with it, so mentors are no longer reminded about them.
    """
    nomination = await locked(session, manageable_by(actor), nomination_id)
    await move(session, nomination, Event.ADJUST_OUT, actor, now=now, reason=reason, cipher=cipher)
    await session.execute(
        update(Pairing)
        .where(Pairing.nomination_id == nomination.id, Pairing.ended_at.is_(None))
        .values(ended_at=now)
    )
    return nomination


async def readmit(
    session: AsyncSession,
    actor: Actor,
    nomination_id: int,
    *,
    reason: str,
    now: datetime,
    cipher: DataCipher,
) -> Nomination:
    """Take an adjusted-out person back into the pool, with the reason kept (officials in
    scope only). Duplicate if the person has an open nomination since: one at a time."""
    nomination = await locked(session, manageable_by(actor), nomination_id)
    try:
        async with session.begin_nested():
            await move(
                session, nomination, Event.READMIT, actor, now=now, reason=reason, cipher=cipher
            )
            await session.flush()
    except IntegrityError:
        raise Duplicate from None
    return nomination


@dataclass(frozen=True, slots=True)
class VettingItem:
    review_id: int
    nomination_id: int
    full_name: str
    township: str
    department: str
    requested_at: datetime


async def vetting_queue(
    session: AsyncSession, actor: Actor, *, offset: int = 0, limit: int = 10
) -> tuple[list[VettingItem], int]:
    """Undecided reviews of the actor's departments only."""
    departments = actor.departments()
    if not departments:
        return [], 0
    where = and_(
        VettingReview.department.in_(departments),
        VettingReview.decision.is_(None),
        Nomination.status == Status.VETTING.value,
    )
    base = select(VettingReview).join(Nomination, Nomination.id == VettingReview.nomination_id)
    rows, total = await page(
        session,
        with_names(
            select(VettingReview, Person.full_name, Township.name).join(
                Nomination, Nomination.id == VettingReview.nomination_id
            )
        )
        .where(where)
        .order_by(VettingReview.requested_at, VettingReview.id),
        select(func.count()).select_from(base.where(where).subquery()),
        offset=offset,
        limit=limit,
    )
    items = [
        VettingItem(r.id, r.nomination_id, name or "", t, r.department, r.requested_at)
        for r, name, t in rows
    ]
    return items, total


@dataclass(frozen=True, slots=True)
class VettingResult:
    nomination: Nomination
    outcome: VettingOutcome


async def decide_review(
    session: AsyncSession,
    actor: Actor,
    review_id: int,
    *,
    decision: Decision,
    note: str | None,
    departments: Sequence[str],
    now: datetime,
    cipher: DataCipher,
) -> VettingResult:
    """Record one department's decision; move the nomination once the outcome is known."""
    review = await one_or_refuse(
        session,
        select(VettingReview)
        .where(
            VettingReview.id == review_id,
            VettingReview.department.in_(actor.departments() or {""}),
            VettingReview.decision.is_(None),
        )
        .with_for_update(),
    )
    nomination = await session.scalar(
        select(Nomination).where(Nomination.id == review.nomination_id).with_for_update()
    )
    assert nomination is not None
    if nomination.status != Status.VETTING.value:
        raise NotAllowed
    review.decision = decision.value
    review.note_enc = cipher.encrypt(note) if note else None
    review.reviewer_person_id = actor.person_id
    review.decided_at = now
    await session.flush()
    await audit.record(
        session, actor.person_id, f"vetting.{decision.value}", "vetting_review", review.id
    )
    decisions = {
        r.department: Decision(r.decision)
        for r in await session.scalars(
            select(VettingReview).where(
                VettingReview.nomination_id == nomination.id, VettingReview.decision.is_not(None)
            )
        )
        if r.decision
    }
    outcome = vetting_outcome(departments, decisions)
    # A veto's note is its reason; an approval has none.
    moves = {
        VettingOutcome.APPROVED: (Event.VETTING_APPROVED, None),
        VettingOutcome.REJECTED: (Event.VETTING_REJECTED, note),
    }
    if outcome in moves:
        event, reason = moves[outcome]
        await move(session, nomination, event, actor, now=now, reason=reason, cipher=cipher)
    return VettingResult(nomination, outcome)


async def chat_ids_for_outcome(
    session: AsyncSession, nomination: Nomination
) -> dict[str, list[int]]:
    """Who to tell about a vetting outcome: the candidate and their township's officials."""
    candidate = list(
        await session.scalars(
            select(TelegramAccount.telegram_id).where(
                TelegramAccount.person_id == nomination.person_id
            )
        )
    )
    in_township = RoleGrant.township_id == nomination.township_id
    officials = list(await session.scalars(reachable_staff(Role.TOWNSHIP_OFFICIAL, in_township)))
    return {"candidate": candidate, "officials": officials}


async def reviewer_chat_ids(session: AsyncSession, departments: Sequence[str]) -> list[int]:
    return list(
        await session.scalars(
            reachable_staff(Role.REVIEWER, RoleGrant.department.in_(departments)).distinct()
        )
    )


async def own_nominations(session: AsyncSession, person_id: int) -> list[Nomination]:
    return list(await session.scalars(select(Nomination).where(Nomination.person_id == person_id)))


@dataclass(frozen=True, slots=True)
class Dossier:
    nomination: Nomination
    full_name: str
    township: str
    village: str | None
    history: list[StatusChange]
    reviews: list[VettingReview]
    # Vetting notes go to officials and reviewers (theirs only), never to the candidate;
    # reasons of township decisions and adjustments go to officials only.
    show_reviews: bool
    show_reasons: bool
    # Who made each status change, by person id, for officials only (a mass recommender
    # stays unnamed even to them: nobody needs it to act).
    actors: dict[int, str] = field(default_factory=dict)


async def load_dossier(
    session: AsyncSession, actor: Actor, nomination_id: int, *, now: datetime
) -> Dossier:
    """One person's file, if the actor may read it; the read itself is audited."""
    nomination = await one_or_refuse(
        session,
        select(Nomination)
        .options(joinedload(Nomination.person), joinedload(Nomination.township))
        .options(joinedload(Nomination.village))
        .where(Nomination.id == nomination_id, visible_to(actor)),
    )
    history = list(
        await session.scalars(
            select(StatusChange)
            .where(StatusChange.nomination_id == nomination.id)
            .order_by(StatusChange.at, StatusChange.id)
        )
    )
    is_official = actor.has(Role.ADMIN, Role.COUNTY_OFFICIAL, Role.TOWNSHIP_OFFICIAL)
    reviews: list[VettingReview] = []
    if is_official or actor.departments():
        query = select(VettingReview).where(VettingReview.nomination_id == nomination.id)
        if not is_official:
            query = query.where(VettingReview.department.in_(actor.departments()))
        reviews = list(await session.scalars(query.order_by(VettingReview.department)))
    named = {
        change.actor_person_id
        for change in history
        if change.actor_person_id is not None and change.event != f"submit:{Channel.MASS}"
    }
    actors: dict[int, str] = {}
    if is_official and named:
        rows = await session.execute(
            select(Person.id, Person.full_name).where(Person.id.in_(named))
        )
        actors = {person_id: name or "" for person_id, name in rows.all()}
    await audit.record(session, actor.person_id, "dossier.read", "nomination", nomination.id)
    return Dossier(
        nomination,
        nomination.person.full_name or "",
        nomination.township.name,
        nomination.village.name if nomination.village else None,
        history,
        reviews,
        is_official or bool(actor.departments()),
        is_official,
        actors,
    )
