"""2+1 mentoring (育、管): pairings, talks, practical difficulties and the talk cadence.

Scope is filtered in the SQL itself. A township official's queries cannot return another
township's cadres, a mentor's cannot return anyone but their active mentees, and nobody
without a role gets a row. Functions take a session and never commit: the caller's
transaction is the unit of work.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    SQLColumnExpression,
    and_,
    case,
    false,
    func,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage import audit
from storage.crypto import DataCipher
from storage.models import (
    Difficulty,
    Nomination,
    Pairing,
    Person,
    Role,
    RoleGrant,
    TalkLog,
    TelegramAccount,
    Township,
    Village,
)
from storage.nominations import manageable_by
from storage.people import MENTOR_SLOTS, Actor
from storage.rules.cadence import (
    BACK_DAYS,
    DIFFICULTY_MAX_LEN,
    DIFFICULTY_MIN_LEN,
    EVERY_DAYS,
    MAX_DIFFICULTIES,
    RESOLUTION_MAX_LEN,
    RESOLUTION_MIN_LEN,
    SHANGHAI,
    SOON_DAYS,
    TALK_MODES,
    TALK_TOPICS,
    TOPIC_MAX_LEN,
    TOPIC_MIN_LEN,
    CadenceStatus,
    check_talk_date,
    due_threshold,
    local_date,
    overdue_threshold,
    talk_status,
)
from storage.rules.identity import clean_text
from storage.rules.vetting import Status

# Stale is named here too: callers import it from this module.
from storage.scoped import NotAllowed, page, row_or_refuse, with_names
from storage.scoped import Stale as Stale

OPEN = "open"
# The official who recorded a talk on a mentor's behalf (storage/behalf.py).
RECORDER = aliased(Person)
RESOLVED = "resolved"
# Telegram file ids are opaque and short; anything longer is not one.
MAX_FILE_ID_LEN = 200


class PairingRefused(Exception):
    """This mentor cannot take this slot. `code` picks the message: "slot", "same_person"."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# ---------------------------------------------------------------------------------------------
# Scope


def own_pairings(actor: Actor) -> ColumnElement[bool]:
    """The acting mentor's active pairings. Deny by default: no mentor grant, no rows."""
    if not actor.has(Role.MENTOR):
        return false()
    return and_(Pairing.mentor_person_id == actor.person_id, Pairing.ended_at.is_(None))


def difficulties_visible_to(actor: Actor) -> ColumnElement[bool]:
    """The nominations whose difficulties an actor may see and resolve (on Nomination).

    Mentors: their active mentees; township officials: their township; county officials and
    admins: all. Roles add up; no role, no rows.
    """
    if actor.has(Role.ADMIN, Role.COUNTY_OFFICIAL):
        return true()
    clauses: list[ColumnElement[bool]] = []
    townships = actor.township_ids(Role.TOWNSHIP_OFFICIAL)
    if townships:
        clauses.append(Nomination.township_id.in_(townships))
    if actor.has(Role.MENTOR):
        clauses.append(Nomination.id.in_(select(Pairing.nomination_id).where(own_pairings(actor))))
    return or_(*clauses) if clauses else false()


def _in_pool() -> ColumnElement[bool]:
    return Nomination.status == Status.IN_POOL.value


def _period(
    column: SQLColumnExpression[Any], since: datetime | None, until: datetime | None
) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [true()]
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return and_(*conditions)


async def _telegram_ids(session: AsyncSession, person_ids: Sequence[int]) -> dict[int, int]:
    if not person_ids:
        return {}
    rows = await session.execute(
        select(TelegramAccount.person_id, TelegramAccount.telegram_id).where(
            TelegramAccount.person_id.in_(person_ids)
        )
    )
    return {int(p): int(t) for p, t in rows.all()}


# ---------------------------------------------------------------------------------------------
# Pairing (结对): officials assign each reserve cadre a township-cadre and a village-secretary
# mentor.


@dataclass(frozen=True, slots=True)
class CadreItem:
    """A reserve cadre in the pairing list, with how many slots are filled (0–2)."""

    nomination_id: int
    full_name: str
    township: str
    village: str | None
    mentors: int


@dataclass(frozen=True, slots=True)
class SlotMentor:
    pairing_id: int
    slot: str
    person_id: int
    full_name: str | None
    assigned_at: datetime


@dataclass(frozen=True, slots=True)
class CadrePairings:
    nomination_id: int
    full_name: str
    township_id: int
    township: str
    village: str | None
    current: Mapping[str, SlotMentor]


@dataclass(frozen=True, slots=True)
class MentorRef:
    """A mentor who may take a slot, with their number of active mentees (their load)."""

    person_id: int
    full_name: str | None
    mentees: int


@dataclass(frozen=True, slots=True)
class MentorChoice:
    cadre: CadrePairings
    slot: str
    mentors: list[MentorRef]
    total: int


@dataclass(frozen=True, slots=True)
class Assignment:
    """The outcome of `assign_mentor`; `changed` is False when that mentor already had it."""

    pairing_id: int
    cadre: CadrePairings
    slot: str
    mentor_person_id: int
    mentor_name: str | None
    changed: bool
    previous_person_id: int | None = None
    previous_name: str | None = None
    # Telegram ids to notify (None: the person has no Telegram account).
    mentor_telegram_id: int | None = None
    previous_telegram_id: int | None = None


async def pairable_cadres(
    session: AsyncSession, actor: Actor, *, offset: int = 0, limit: int = 8
) -> tuple[list[CadreItem], int]:
    """Reserve cadres (in the pool) the actor may pair, those with fewer mentors first."""
    where = and_(manageable_by(actor), _in_pool())
    active = (
        select(Pairing.nomination_id, func.count().label("mentors"))
        .where(Pairing.ended_at.is_(None))
        .group_by(Pairing.nomination_id)
        .subquery()
    )
    mentors = func.coalesce(active.c.mentors, 0)
    rows, total = await page(
        session,
        with_names(
            select(Nomination.id, Person.full_name, Township.name, Village.name, mentors),
            village=True,
        )
        .outerjoin(active, active.c.nomination_id == Nomination.id)
        .where(where)
        .order_by(mentors, func.coalesce(Person.full_name, ""), Nomination.id),
        select(func.count()).select_from(Nomination).where(where),
        offset=offset,
        limit=limit,
    )
    return [CadreItem(n, name or "", t, v, int(m)) for n, name, t, v, m in rows], total


async def cadre_pairings(
    session: AsyncSession, actor: Actor, nomination_id: int, *, lock: bool = False
) -> CadrePairings:
    """A reserve cadre the actor may pair, with its current mentors; NotAllowed or Stale."""
    query = with_names(
        select(
            Nomination.id,
            Nomination.status,
            Nomination.township_id,
            Person.full_name,
            Township.name,
            Village.name,
        ),
        village=True,
    ).where(Nomination.id == nomination_id, manageable_by(actor))
    if lock:
        # Two officials pairing the same cadre at once take turns (PostgreSQL row lock).
        query = query.with_for_update(of=Nomination)
    row = await row_or_refuse(session, query)
    if row.status != Status.IN_POOL.value:
        raise Stale
    current = (
        await session.execute(
            select(Pairing, Person.full_name)
            .join(Person, Person.id == Pairing.mentor_person_id)
            .where(Pairing.nomination_id == nomination_id, Pairing.ended_at.is_(None))
        )
    ).all()
    return CadrePairings(
        nomination_id=row.id,
        full_name=row[3] or "",
        township_id=row.township_id,
        township=row[4],
        village=row[5],
        current={
            p.slot: SlotMentor(p.id, p.slot, p.mentor_person_id, name, p.assigned_at)
            for p, name in current
        },
    )


def _mentor_grants(township_id: int, slot: str | None = None) -> Select[int]:
    query = select(RoleGrant.person_id).where(
        RoleGrant.role == Role.MENTOR.value,
        RoleGrant.revoked_at.is_(None),
        RoleGrant.township_id == township_id,
    )
    if slot is not None:
        query = query.where(RoleGrant.mentor_slot == slot)
    return query


async def eligible_mentors(
    session: AsyncSession,
    actor: Actor,
    nomination_id: int,
    slot: str,
    *,
    offset: int = 0,
    limit: int = 8,
) -> MentorChoice:
    """Mentors of the cadre's township whose grant has this slot, least loaded first."""
    if slot not in MENTOR_SLOTS:
        raise NotAllowed
    cadre = await cadre_pairings(session, actor, nomination_id)
    where = Person.id.in_(_mentor_grants(cadre.township_id, slot))
    load = (
        select(func.count())
        .select_from(Pairing)
        .where(Pairing.mentor_person_id == Person.id, Pairing.ended_at.is_(None))
        .correlate(Person)
        .scalar_subquery()
    )
    rows, total = await page(
        session,
        select(Person.id, Person.full_name, load)
        .where(where)
        .order_by(load, func.coalesce(Person.full_name, ""), Person.id),
        select(func.count()).select_from(Person).where(where),
        offset=offset,
        limit=limit,
    )
    mentors = [MentorRef(int(p), name, int(n or 0)) for p, name, n in rows]
    return MentorChoice(cadre, slot, mentors, total)


async def assign_mentor(
    session: AsyncSession,
    actor: Actor,
    nomination_id: int,
    slot: str,
    mentor_person_id: int,
    *,
    now: datetime,
) -> Assignment:
    """Put a mentor into one slot of a cadre's "2+1"; a mentor already there is ended.

    The slot must match the mentor's grant (a township cadre cannot fill the village-secretary
    slot) in the cadre's township, and one person cannot fill both slots of the same cadre.
    The replaced pairing keeps its row with `ended_at` set: the history stays.
    """
    if slot not in MENTOR_SLOTS:
        raise NotAllowed
    cadre = await cadre_pairings(session, actor, nomination_id, lock=True)
    slots = set(
        await session.scalars(
            select(RoleGrant.mentor_slot).where(
                RoleGrant.person_id == mentor_person_id,
                RoleGrant.role == Role.MENTOR.value,
                RoleGrant.revoked_at.is_(None),
                RoleGrant.township_id == cadre.township_id,
            )
        )
    )
    if not slots:
        raise NotAllowed
    if slot not in slots:
        raise PairingRefused("slot")
    other = next((m for s, m in cadre.current.items() if s != slot), None)
    if other is not None and other.person_id == mentor_person_id:
        raise PairingRefused("same_person")
    mentor_name = await session.scalar(
        select(Person.full_name).where(Person.id == mentor_person_id)
    )
    current = cadre.current.get(slot)
    if current is not None and current.person_id == mentor_person_id:
        return Assignment(
            current.pairing_id, cadre, slot, mentor_person_id, mentor_name, changed=False
        )
    try:
        async with session.begin_nested():
            if current is not None:
                # Ended first: the partial unique index allows one active pairing per slot.
                await session.execute(
                    update(Pairing).where(Pairing.id == current.pairing_id).values(ended_at=now)
                )
            pairing = Pairing(
                nomination_id=cadre.nomination_id,
                mentor_person_id=mentor_person_id,
                slot=slot,
                assigned_by_person_id=actor.person_id,
                assigned_at=now,
            )
            session.add(pairing)
            await session.flush()
    except IntegrityError:
        # Someone else changed this slot in the same instant; show them the new state.
        raise Stale from None
    await audit.record(
        session,
        actor.person_id,
        "pairing.assign",
        "pairing",
        pairing.id,
        nomination_id=cadre.nomination_id,
        slot=slot,
        mentor_person_id=mentor_person_id,
        replaced_pairing_id=current.pairing_id if current else None,
    )
    people = [mentor_person_id] + ([current.person_id] if current else [])
    chats = await _telegram_ids(session, people)
    return Assignment(
        pairing.id,
        cadre,
        slot,
        mentor_person_id,
        mentor_name,
        changed=True,
        previous_person_id=current.person_id if current else None,
        previous_name=current.full_name if current else None,
        mentor_telegram_id=chats.get(mentor_person_id),
        previous_telegram_id=chats.get(current.person_id) if current else None,
    )


# ---------------------------------------------------------------------------------------------
# Mentees and the talk cadence


@dataclass(frozen=True, slots=True)
class Mentee:
    """One active pairing of the acting mentor, with where its talk cadence stands."""

    pairing_id: int
    nomination_id: int
    full_name: str
    township: str
    village: str | None
    slot: str
    paired_on: date
    last_talk: date | None
    cadence: CadenceStatus


async def note_talk(session: AsyncSession, pairing_id: int, talk_date: date) -> None:
    """Keep Pairing.last_talk_on after a talk of this pairing on `talk_date` was added.

    One conditional UPDATE, so two talks saved at once for the same pairing cannot leave the
    older date behind (the row lock orders them and each compares with the row as committed).
    """
    later = or_(Pairing.last_talk_on.is_(None), Pairing.last_talk_on < talk_date)
    await session.execute(
        update(Pairing)
        .where(Pairing.id == pairing_id)
        .values(last_talk_on=case((later, talk_date), else_=Pairing.last_talk_on))
        # A Pairing loaded in this session shows the new date too.
        .execution_options(synchronize_session="fetch")
    )


async def refresh_last_talks(
    session: AsyncSession, pairing_ids: Sequence[int] | None = None
) -> None:
    """Recompute Pairing.last_talk_on from talk_log: for these pairings, or all (None).

    For any change note_talk does not cover: a talk deleted, edited (date or pairing) or
    inserted in bulk. Migration 0008 backfills the column the same way.
    """
    # Correlated MAX: one probe of ix_talk_log_pairing_date per pairing updated.
    latest = (
        select(func.max(TalkLog.talk_date))
        .where(TalkLog.pairing_id == Pairing.id)
        .correlate(Pairing)
        .scalar_subquery()
    )
    query = update(Pairing).values(last_talk_on=latest)
    if pairing_ids is not None:
        if not pairing_ids:
            return
        query = query.where(Pairing.id.in_(sorted(set(pairing_ids))))
    await session.execute(query.execution_options(synchronize_session="fetch"))


async def _mentees(
    session: AsyncSession,
    actor: Actor,
    *,
    now: datetime,
    tz: ZoneInfo,
    every_days: int,
    soon_days: int,
    pairing_id: int | None = None,
) -> list[Mentee]:
    query = with_names(
        select(
            Pairing.id,
            Pairing.nomination_id,
            Pairing.slot,
            Pairing.assigned_at,
            Person.full_name,
            Township.name,
            Village.name,
            Pairing.last_talk_on,
        ).join(Nomination, Nomination.id == Pairing.nomination_id),
        village=True,
    ).where(own_pairings(actor), _in_pool())
    if pairing_id is not None:
        query = query.where(Pairing.id == pairing_id)
    mentees = []
    for pid, nid, slot, assigned_at, name, township, village, last_talk in (
        await session.execute(query)
    ).all():
        paired_on = local_date(assigned_at, tz)
        status = talk_status(
            last_talk, paired_on, now, every_days=every_days, soon_days=soon_days, tz=tz
        )
        mentees.append(
            Mentee(pid, nid, name or "", township, village, slot, paired_on, last_talk, status)
        )
    mentees.sort(key=lambda m: (m.cadence.due_date, m.full_name, m.pairing_id))
    return mentees


async def list_mentees(
    session: AsyncSession,
    actor: Actor,
    *,
    now: datetime,
    tz: ZoneInfo = SHANGHAI,
    every_days: int = EVERY_DAYS,
    soon_days: int = SOON_DAYS,
) -> list[Mentee]:
    """The acting mentor's active mentees still in the pool, most urgent talk first."""
    return await _mentees(
        session, actor, now=now, tz=tz, every_days=every_days, soon_days=soon_days
    )


async def own_mentee(
    session: AsyncSession,
    actor: Actor,
    pairing_id: int,
    *,
    now: datetime,
    tz: ZoneInfo = SHANGHAI,
    every_days: int = EVERY_DAYS,
    soon_days: int = SOON_DAYS,
) -> Mentee:
    """One of the acting mentor's active pairings; NotAllowed for anyone else's."""
    found = await _mentees(
        session,
        actor,
        now=now,
        tz=tz,
        every_days=every_days,
        soon_days=soon_days,
        pairing_id=pairing_id,
    )
    if not found:
        await _own_pairing(session, actor, pairing_id)  # NotAllowed, or Stale if it ended
        raise Stale
    return found[0]


@dataclass(frozen=True, slots=True)
class DuePairing:
    """An active pairing whose talk is due soon or overdue: for reminders and escalation."""

    pairing_id: int
    nomination_id: int
    full_name: str
    township_id: int
    township: str
    slot: str
    mentor_person_id: int
    mentor_name: str | None
    mentor_telegram_id: int | None
    paired_on: date
    last_talk: date | None
    cadence: CadenceStatus
    # False once the mentor's grant is revoked: remind the township official, not them.
    mentor_active: bool = True


def local_midnight_after(day: date, tz: ZoneInfo) -> datetime:
    """The instant the county's next day after `day` begins."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)


def base_at_most(day: date, tz: ZoneInfo) -> ColumnElement[bool]:
    """The pairing's base date (last talk, else pairing date in `tz`) is on or before `day`.

    The pairing date is compared as an instant (paired before the next local midnight), so the
    same SQL works on SQLite and PostgreSQL without time-zone functions. Each branch is a
    range over ix_pairing_cadence (last_talk_on, assigned_at) for active pairings.
    """
    # IS NOT NULL spelled out: never NULL, so that NOT of this clause means what it says.
    last = Pairing.last_talk_on
    return or_(
        and_(last.is_not(None), last <= day),
        and_(last.is_(None), Pairing.assigned_at < local_midnight_after(day, tz)),
    )


async def due_pairings(
    session: AsyncSession,
    now: datetime,
    every_days: int = EVERY_DAYS,
    soon_days: int = SOON_DAYS,
    *,
    tz: ZoneInfo = SHANGHAI,
    township_id: int | None = None,
) -> list[DuePairing]:
    """Active pairings of cadres in the pool that are due soon or overdue, as of `now`.

    One query: the latest talk is kept on the pairing (last_talk_on), and the due condition
    is a range over ix_pairing_cadence, so the cost follows the pairings due, not the table;
    pairings that are fine today are never read. Most overdue first.
    """
    today = local_date(now, tz)
    threshold = due_threshold(today, every_days=every_days, soon_days=soon_days)
    # The pairings due first, from ix_pairing_cadence alone: base_at_most's two branches as
    # two ranges (SQLite plans an OR of them as a full scan), materialized so that neither
    # engine merges them into the join and starts from every cadre in the pool instead.
    active = Pairing.ended_at.is_(None)
    # With the pairing's own columns, so that no join back to pairing reads the whole table.
    columns = (
        Pairing.id,
        Pairing.nomination_id,
        Pairing.slot,
        Pairing.assigned_at,
        Pairing.mentor_person_id,
        Pairing.last_talk_on,
    )
    due_now = (
        union_all(
            select(*columns).where(active, Pairing.last_talk_on <= threshold),
            select(*columns).where(
                active,
                Pairing.last_talk_on.is_(None),
                Pairing.assigned_at < local_midnight_after(threshold, tz),
            ),
        )
        .cte("due")
        .prefix_with("MATERIALIZED")
    )
    in_pool = _in_pool()
    if session.get_bind().dialect.name == "sqlite":
        # Checked on each due row, not searched: SQLite cannot estimate the CTE's size and,
        # given ix_nomination_status, starts from every cadre in the pool. (PostgreSQL
        # estimates both and needs the plain condition: an opaque one misleads it.)
        in_pool = func.coalesce(Nomination.status, "") == Status.IN_POOL.value
    query = with_names(
        select(
            due_now.c.id,
            due_now.c.nomination_id,
            due_now.c.slot,
            due_now.c.assigned_at,
            due_now.c.mentor_person_id,
            Nomination.township_id,
            Township.name,
            Person.full_name,
            due_now.c.last_talk_on.label("last_talk"),
            # LIMIT 1 rather than EXISTS: one probe of ix_role_grant_person_active per due row
            # (PostgreSQL would hash every mentor grant for an EXISTS).
            select(RoleGrant.id)
            .where(
                RoleGrant.person_id == due_now.c.mentor_person_id,
                RoleGrant.role == Role.MENTOR.value,
                RoleGrant.revoked_at.is_(None),
            )
            .limit(1)
            .scalar_subquery()
            .is_not(None)
            .label("mentor_active"),
        )
        .select_from(due_now)
        .join(Nomination, Nomination.id == due_now.c.nomination_id)
    ).where(in_pool)
    if township_id is not None:
        query = query.where(Nomination.township_id == township_id)
    rows = (await session.execute(query)).all()
    mentor_ids = sorted({r.mentor_person_id for r in rows})
    names = {
        int(person_id): name
        for person_id, name in await session.execute(
            select(Person.id, Person.full_name).where(Person.id.in_(mentor_ids))
        )
    }
    chats = await _telegram_ids(session, mentor_ids)
    due = []
    for r in rows:
        paired_on = local_date(r.assigned_at, tz)
        due.append(
            DuePairing(
                pairing_id=r.id,
                nomination_id=r.nomination_id,
                full_name=r.full_name or "",
                township_id=r.township_id,
                township=r.name,
                slot=r.slot,
                mentor_person_id=r.mentor_person_id,
                mentor_name=names.get(r.mentor_person_id),
                mentor_telegram_id=chats.get(r.mentor_person_id),
                paired_on=paired_on,
                last_talk=r.last_talk,
                cadence=talk_status(
                    r.last_talk,
                    paired_on,
                    now,
                    every_days=every_days,
                    soon_days=soon_days,
                    tz=tz,
                ),
                mentor_active=bool(r.mentor_active),
            )
        )
    due.sort(key=lambda d: (d.cadence.days_left, d.pairing_id))
    return due


# ---------------------------------------------------------------------------------------------
# Talks (谈心谈话): the four must-talk topics and the practical difficulties raised.


@dataclass(frozen=True, slots=True)
class TalkInput:
    """What a mentor reports. A topic is {"text": str} or {"voice": telegram_file_id}."""

    talk_date: date
    mode: str
    topics: Mapping[str, Mapping[str, str]]
    difficulties: Sequence[str] = ()


def _checked_topics(topics: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """The topics as stored; ValueError for anything the talk flow would never produce."""
    if set(topics) != set(TALK_TOPICS):
        raise ValueError("all four must-talk topics are required")
    stored: dict[str, dict[str, str]] = {}
    for code in TALK_TOPICS:
        answer = dict(topics[code])
        if set(answer) == {"text"}:
            stored[code] = {
                "text": clean_text(answer["text"], min_len=TOPIC_MIN_LEN, max_len=TOPIC_MAX_LEN)
            }
        elif set(answer) == {"voice"} and 0 < len(answer["voice"]) <= MAX_FILE_ID_LEN:
            stored[code] = {"voice": answer["voice"]}
        else:
            raise ValueError(f"topic {code} needs either text or a voice file id")
    return stored


async def _own_pairing(session: AsyncSession, actor: Actor, pairing_id: int) -> Pairing:
    """The acting mentor's pairing: NotAllowed if not theirs, Stale if ended or out of pool."""
    pairing, status = await row_or_refuse(
        session,
        select(Pairing, Nomination.status)
        .join(Nomination, Nomination.id == Pairing.nomination_id)
        .where(
            Pairing.id == pairing_id,
            Pairing.mentor_person_id == actor.person_id,
            true() if actor.has(Role.MENTOR) else false(),
        ),
    )
    if pairing.ended_at is not None or status != Status.IN_POOL.value:
        raise Stale
    return pairing


def sealed_json(cipher: DataCipher, value: object) -> bytes:
    return cipher.encrypt(json.dumps(value, ensure_ascii=False, sort_keys=True))


def talk_topics(
    cipher: DataCipher, plain: Mapping[str, Any] | None, sealed: bytes | None
) -> Mapping[str, Any]:
    """A talk's topics from its encrypted column, or from the plain one for a row written
    before migration 0011 that storage.rekey.seal_plaintext has not reached yet."""
    if sealed is not None:
        opened = json.loads(cipher.decrypt(sealed))
        return opened if isinstance(opened, Mapping) else {}
    return plain if isinstance(plain, Mapping) else {}


def opened_text(cipher: DataCipher, plain: str | None, sealed: bytes | None) -> str | None:
    """A text from its encrypted column, or the plain one of a row from before 0011."""
    return cipher.decrypt(sealed) if sealed is not None else plain


def difficulty_texts(cipher: DataCipher, d: Difficulty) -> tuple[str, str | None]:
    """(description, resolution), from the encrypted columns or the plain ones of old rows."""
    description = opened_text(cipher, d.description, d.description_enc)
    return description or "", opened_text(cipher, d.resolution, d.resolution_enc)


async def save_talk(
    session: AsyncSession,
    actor: Actor,
    pairing_id: int,
    talk: TalkInput,
    *,
    cipher: DataCipher,
    now: datetime,
    tz: ZoneInfo = SHANGHAI,
    back_days: int = BACK_DAYS,
) -> TalkLog:
    """Store a talk and the difficulties raised in it, in the caller's transaction.

    The date is checked again here (RuleError): a draft kept open past midnight or for weeks
    must not slip a date outside the window, nor before the pairing began.
    """
    pairing = await _own_pairing(session, actor, pairing_id)
    return await store_talk(
        session, actor, pairing, talk, cipher=cipher, now=now, tz=tz, back_days=back_days
    )


def _checked_talk(talk: TalkInput) -> TalkInput:
    """The talk as stored (topics and difficulties cleaned); ValueError for anything a talk
    flow would never produce."""
    if talk.mode not in TALK_MODES:
        raise ValueError(f"unknown talk mode {talk.mode!r}")
    topics = _checked_topics(talk.topics)
    if len(talk.difficulties) > MAX_DIFFICULTIES:
        raise ValueError("too many difficulties in one talk")
    difficulties = [
        clean_text(d, min_len=DIFFICULTY_MIN_LEN, max_len=DIFFICULTY_MAX_LEN)
        for d in talk.difficulties
    ]
    return TalkInput(talk.talk_date, talk.mode, topics, difficulties)


async def store_talk(
    session: AsyncSession,
    actor: Actor,
    pairing: Pairing,
    talk: TalkInput,
    *,
    cipher: DataCipher,
    now: datetime,
    tz: ZoneInfo,
    back_days: int | None,
) -> TalkLog:
    """Store a talk of `pairing`, which the caller has checked `actor` may record: as its
    mentor, or as an official on the mentor's behalf (then marked with who recorded it)."""
    talk = _checked_talk(talk)
    check_talk_date(
        talk.talk_date,
        today=local_date(now, tz),
        back_days=back_days,
        not_before=local_date(pairing.assigned_at, tz),
    )
    on_behalf = actor.person_id != pairing.mentor_person_id
    log = TalkLog(
        pairing_id=pairing.id,
        nomination_id=pairing.nomination_id,
        mentor_person_id=pairing.mentor_person_id,
        recorded_by_person_id=actor.person_id if on_behalf else None,
        talk_date=talk.talk_date,
        mode=talk.mode,
        topics={},
        topics_enc=sealed_json(cipher, talk.topics),
        created_at=now,
    )
    session.add(log)
    await session.flush()
    await note_talk(session, pairing.id, log.talk_date)
    for description in talk.difficulties:
        session.add(
            Difficulty(
                nomination_id=pairing.nomination_id,
                talk_id=log.id,
                description="",
                description_enc=cipher.encrypt(description),
                status=OPEN,
                raised_at=now,
            )
        )
    await session.flush()
    await audit.record(
        session,
        actor.person_id,
        "talk.create",
        "talk_log",
        log.id,
        pairing_id=pairing.id,
        nomination_id=pairing.nomination_id,
        difficulties=len(talk.difficulties),
        **({"on_behalf_of": pairing.mentor_person_id} if on_behalf else {}),
    )
    return log


# ---------------------------------------------------------------------------------------------
# Difficulties (实际困难): open → resolved with a note, by a mentor or an official in scope.


@dataclass(frozen=True, slots=True)
class DifficultyItem:
    id: int
    nomination_id: int
    full_name: str
    township: str
    village: str | None
    description: str
    status: str
    raised_at: datetime
    resolution: str | None
    resolved_at: datetime | None
    # The same moments as county-time dates, for display.
    raised_on: date
    resolved_on: date | None


def _difficulty_query() -> Select[Difficulty, str | None, str, str]:
    return with_names(
        select(Difficulty, Person.full_name, Township.name, Village.name).join(
            Nomination, Nomination.id == Difficulty.nomination_id
        ),
        village=True,
    )


def _difficulty_item(
    row: Row[Difficulty, str | None, str, str], tz: ZoneInfo, cipher: DataCipher
) -> DifficultyItem:
    # The village is None when the cadre has none (outer join), whatever the row type says.
    d, name, township, village = row
    description, resolution = difficulty_texts(cipher, d)
    return DifficultyItem(
        d.id,
        d.nomination_id,
        name or "",
        township,
        village,
        description,
        d.status,
        d.raised_at,
        resolution,
        d.resolved_at,
        local_date(d.raised_at, tz),
        local_date(d.resolved_at, tz) if d.resolved_at else None,
    )


async def open_difficulties(
    session: AsyncSession,
    actor: Actor,
    *,
    cipher: DataCipher,
    offset: int = 0,
    limit: int = 5,
    tz: ZoneInfo = SHANGHAI,
) -> tuple[list[DifficultyItem], int]:
    """Open difficulties in the actor's scope, oldest first."""
    where = and_(difficulties_visible_to(actor), Difficulty.status == OPEN)
    rows, total = await page(
        session,
        _difficulty_query().where(where).order_by(Difficulty.raised_at, Difficulty.id),
        select(func.count())
        .select_from(Difficulty)
        .join(Nomination, Nomination.id == Difficulty.nomination_id)
        .where(where),
        offset=offset,
        limit=limit,
    )
    return [_difficulty_item(row, tz, cipher) for row in rows], total


async def difficulty_for_resolution(
    session: AsyncSession,
    actor: Actor,
    difficulty_id: int,
    *,
    cipher: DataCipher,
    tz: ZoneInfo = SHANGHAI,
) -> DifficultyItem:
    """An open difficulty in scope; NotAllowed if out of scope, Stale if already resolved."""
    row = await row_or_refuse(
        session,
        _difficulty_query().where(Difficulty.id == difficulty_id, difficulties_visible_to(actor)),
    )
    item = _difficulty_item(row, tz, cipher)
    if item.status != OPEN:
        raise Stale
    return item


async def resolve_difficulty(
    session: AsyncSession,
    actor: Actor,
    difficulty_id: int,
    *,
    cipher: DataCipher,
    note: str,
    now: datetime,
    tz: ZoneInfo = SHANGHAI,
) -> DifficultyItem:
    """Mark an open difficulty resolved with a note (RuleError if the note is unusable).

    One conditional UPDATE decides between two people resolving the same item at once.
    """
    note = clean_text(note, min_len=RESOLUTION_MIN_LEN, max_len=RESOLUTION_MAX_LEN)
    in_scope = select(Nomination.id).where(difficulties_visible_to(actor))
    resolved = (
        await session.execute(
            update(Difficulty)
            .where(
                Difficulty.id == difficulty_id,
                Difficulty.status == OPEN,
                Difficulty.nomination_id.in_(in_scope),
            )
            .values(
                status=RESOLVED,
                resolution=None,
                resolution_enc=cipher.encrypt(note),
                resolved_by_person_id=actor.person_id,
                resolved_at=now,
            )
            .returning(Difficulty.id)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if resolved is None:
        # NotAllowed or Stale
        await difficulty_for_resolution(session, actor, difficulty_id, cipher=cipher)
        raise Stale
    await audit.record(session, actor.person_id, "difficulty.resolve", "difficulty", resolved)
    row = (
        await session.execute(
            _difficulty_query()
            .where(Difficulty.id == resolved)
            .execution_options(populate_existing=True)
        )
    ).one()
    return _difficulty_item(row, tz, cipher)


# ---------------------------------------------------------------------------------------------
# Counts for summaries. The caller decides who may see which township: pass `township_id` to
# restrict the counts to one. Every township is listed, zeros included, by township id.


@dataclass(frozen=True, slots=True)
class TownshipLine:
    """One township's line in the counts below (each of them lists every township)."""

    township_id: int
    township: str


@dataclass(frozen=True, slots=True)
class DifficultyCount(TownshipLine):
    """Difficulties of one township: raised and resolved in the period, open now."""

    raised: int = 0
    resolved: int = 0
    open: int = 0


async def _townships(session: AsyncSession, township_id: int | None) -> list[tuple[int, str]]:
    query = select(Township.id, Township.name).order_by(Township.id)
    if township_id is not None:
        query = query.where(Township.id == township_id)
    return [(int(i), n) for i, n in (await session.execute(query)).all()]


async def difficulty_counts(
    session: AsyncSession,
    *,
    township_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[DifficultyCount]:
    """Per township: raised (raised_at in [since, until)), resolved (resolved_at in it), open.

    Without a period, raised and resolved count all time. One GROUP BY query.
    """
    raised = func.sum(case((_period(Difficulty.raised_at, since, until), 1), else_=0))
    resolved = func.sum(
        case(
            (
                and_(Difficulty.status == RESOLVED, _period(Difficulty.resolved_at, since, until)),
                1,
            ),
            else_=0,
        )
    )
    still_open = func.sum(case((Difficulty.status == OPEN, 1), else_=0))
    query = (
        select(Nomination.township_id, raised, resolved, still_open)
        .join(Nomination, Nomination.id == Difficulty.nomination_id)
        .group_by(Nomination.township_id)
    )
    if township_id is not None:
        query = query.where(Nomination.township_id == township_id)
    counts = {
        int(t): (int(a or 0), int(b or 0), int(c or 0))
        for t, a, b, c in await session.execute(query)
    }
    return [
        DifficultyCount(tid, name, *counts.get(tid, (0, 0, 0)))
        for tid, name in await _townships(session, township_id)
    ]


@dataclass(frozen=True, slots=True)
class TalkCount(TownshipLine):
    """Mentoring of one township: talks held in the period; pairings and cadence now."""

    talks: int = 0
    pairings: int = 0
    cadres_paired: int = 0
    due_soon: int = 0
    overdue: int = 0


async def talk_counts(
    session: AsyncSession,
    *,
    now: datetime,
    township_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    every_days: int = EVERY_DAYS,
    soon_days: int = SOON_DAYS,
    tz: ZoneInfo = SHANGHAI,
) -> list[TalkCount]:
    """Per township: talks held (talk_date, a county-time date, within the period's dates);
    active pairings of cadres in the pool, cadres with at least one, and how many of those
    pairings are due soon or overdue today. Two GROUP BY queries.
    """
    held: list[ColumnElement[bool]] = [true()]
    if since is not None:
        held.append(TalkLog.talk_date >= local_date(since, tz))
    if until is not None:
        held.append(TalkLog.talk_date < local_date(until, tz))
    talks_query = (
        select(Nomination.township_id, func.count())
        .select_from(TalkLog)
        .join(Nomination, Nomination.id == TalkLog.nomination_id)
        .where(*held)
        .group_by(Nomination.township_id)
    )
    today = local_date(now, tz)
    due = base_at_most(due_threshold(today, every_days=every_days, soon_days=soon_days), tz)
    overdue = base_at_most(overdue_threshold(today, every_days=every_days), tz)
    pairing_query = (
        select(
            Nomination.township_id,
            func.count(Pairing.id),
            func.count(func.distinct(Pairing.nomination_id)),
            func.sum(case((overdue, 0), (due, 1), else_=0)),
            func.sum(case((overdue, 1), else_=0)),
        )
        .select_from(Pairing)
        .join(Nomination, Nomination.id == Pairing.nomination_id)
        .where(Pairing.ended_at.is_(None), _in_pool())
        .group_by(Nomination.township_id)
    )
    if township_id is not None:
        talks_query = talks_query.where(Nomination.township_id == township_id)
        pairing_query = pairing_query.where(Nomination.township_id == township_id)
    talks = {int(t): int(n) for t, n in await session.execute(talks_query)}
    pairings = {
        int(t): (int(p), int(c), int(s or 0), int(o or 0))
        for t, p, c, s, o in await session.execute(pairing_query)
    }
    return [
        TalkCount(tid, name, talks.get(tid, 0), *pairings.get(tid, (0, 0, 0, 0)))
        for tid, name in await _townships(session, township_id)
    ]


# ---------------------------------------------------------------------------------------------
# The mentoring part of a dossier (一人一档). The dossier checks scope and audits the read.


@dataclass(frozen=True, slots=True)
class MentorHistory:
    slot: str
    person_id: int
    full_name: str | None
    # County-time dates.
    assigned_on: date
    ended_on: date | None


@dataclass(frozen=True, slots=True)
class TopicView:
    """One must-talk topic of a talk as a reader sees it: its text, or that it was a voice."""

    code: str
    text: str | None
    voice: bool


@dataclass(frozen=True, slots=True)
class TalkSummary:
    id: int
    talk_date: date
    mode: str
    slot: str
    mentor_person_id: int
    mentor_name: str | None
    topics: tuple[TopicView, ...]
    difficulties: int
    # The official who recorded it on the mentor's behalf; None when the mentor logged it.
    recorded_by: str | None = None


@dataclass(frozen=True, slots=True)
class MentoringSection:
    """Mentors (current and past), talks newest first, difficulties with their status."""

    nomination_id: int
    current: list[MentorHistory]
    past: list[MentorHistory]
    talks: list[TalkSummary]
    difficulties: list[DifficultyItem]

    @property
    def open_difficulties(self) -> int:
        return sum(1 for d in self.difficulties if d.status == OPEN)


def topic_views(topics: Mapping[str, Mapping[str, str]]) -> tuple[TopicView, ...]:
    """The four topics in their fixed order, as text or a voice marker."""
    views = []
    for code in TALK_TOPICS:
        answer = topics.get(code) or {}
        text = answer.get("text")
        views.append(TopicView(code, text, text is None and bool(answer.get("voice"))))
    return tuple(views)


async def dossier_section(
    session: AsyncSession, nomination_id: int, *, cipher: DataCipher, tz: ZoneInfo = SHANGHAI
) -> MentoringSection:
    """The mentoring history of one cadre. No scope check: the dossier has done it."""
    pairings = (
        await session.execute(
            select(Pairing, Person.full_name)
            .join(Person, Person.id == Pairing.mentor_person_id)
            .where(Pairing.nomination_id == nomination_id)
            .order_by(Pairing.assigned_at, Pairing.id)
        )
    ).all()
    history = [
        MentorHistory(
            p.slot,
            p.mentor_person_id,
            name,
            local_date(p.assigned_at, tz),
            local_date(p.ended_at, tz) if p.ended_at else None,
        )
        for p, name in pairings
    ]
    raised = (
        select(Difficulty.talk_id, func.count().label("n"))
        .where(Difficulty.nomination_id == nomination_id)
        .group_by(Difficulty.talk_id)
        .subquery()
    )
    talks = (
        await session.execute(
            select(
                TalkLog,
                Pairing.slot,
                Person.full_name,
                func.coalesce(raised.c.n, 0),
                RECORDER.full_name,
            )
            .join(Pairing, Pairing.id == TalkLog.pairing_id)
            .join(Person, Person.id == TalkLog.mentor_person_id)
            .outerjoin(raised, raised.c.talk_id == TalkLog.id)
            .outerjoin(RECORDER, RECORDER.id == TalkLog.recorded_by_person_id)
            .where(TalkLog.nomination_id == nomination_id)
            .order_by(TalkLog.talk_date.desc(), TalkLog.id.desc())
        )
    ).all()
    difficulties = (
        await session.execute(
            _difficulty_query()
            .where(Difficulty.nomination_id == nomination_id)
            .order_by(Difficulty.raised_at, Difficulty.id)
        )
    ).all()
    return MentoringSection(
        nomination_id=nomination_id,
        current=[h for h in history if h.ended_on is None],
        past=[h for h in history if h.ended_on is not None],
        talks=[
            TalkSummary(
                t.id,
                t.talk_date,
                t.mode,
                slot,
                t.mentor_person_id,
                name,
                topic_views(talk_topics(cipher, t.topics, t.topics_enc)),
                int(n),
                # An official without a name on file still shows that it was recorded.
                (recorder or f"#{t.recorded_by_person_id}") if t.recorded_by_person_id else None,
            )
            for t, slot, name, n, recorder in talks
        ],
        difficulties=[_difficulty_item(row, tz, cipher) for row in difficulties],
    )
