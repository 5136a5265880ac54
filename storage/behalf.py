"""Talks recorded by an official on a mentor's behalf (补录): a talk held longer ago than a
mentor may log it (30 days, storage.rules.cadence.BACK_DAYS), typed in afterwards from the
county's paper records. The row names the pairing's mentor as the one who talked and the
official as the one who recorded it; the dossier shows both.

Scope, deny by default: officials (`manageable_by`) over the cadre's township, an active
pairing of a cadre in the pool. Functions take a session and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Row, Select, and_, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.crypto import DataCipher
from storage.mentoring import TalkInput, store_talk
from storage.models import OFFICIAL_ROLES, Nomination, Pairing, Person, TalkLog, Township
from storage.nominations import manageable_by
from storage.people import Actor
from storage.rules.cadence import local_date
from storage.scoped import Stale, page, row_or_refuse, with_names

MENTOR = aliased(Person)


@dataclass(frozen=True, slots=True)
class RecordablePairing:
    """A cadre and one of their mentors, as the official picks them."""

    pairing_id: int
    full_name: str
    township: str
    mentor_name: str
    slot: str
    paired_on: date


def recordable(actor: Actor) -> ColumnElement[bool]:
    """Pairings an official may record a talk of; nobody else gets a row."""
    if not actor.has(*OFFICIAL_ROLES):
        return false()
    return manageable_by(actor, Pairing.township_id)


def _active() -> ColumnElement[bool]:
    return and_(Pairing.ended_at.is_(None), Pairing.in_pool)


def _listed(actor: Actor) -> Select[int, str | None, str, str | None, str, datetime]:
    """The active pairings in the official's scope with the names the picker shows."""
    return (
        with_names(
            select(
                Pairing.id,
                Person.full_name,
                Township.name,
                MENTOR.full_name,
                Pairing.slot,
                Pairing.assigned_at,
            )
            .select_from(Pairing)
            .join(Nomination, Nomination.id == Pairing.nomination_id)
        )
        .join(MENTOR, MENTOR.id == Pairing.mentor_person_id)
        .where(recordable(actor), _active())
        .order_by(Nomination.township_id, Person.full_name, Pairing.slot, Pairing.id)
    )


def _shown(
    row: Row[int, str | None, str, str | None, str, datetime], tz: ZoneInfo
) -> RecordablePairing:
    pid, name, town, mentor, slot, at = row
    return RecordablePairing(pid, name or "", town, mentor or "", slot, local_date(at, tz))


async def recordable_pairings(
    session: AsyncSession, actor: Actor, *, tz: ZoneInfo, offset: int = 0, limit: int = 8
) -> tuple[list[RecordablePairing], int]:
    """Active pairings in the official's scope, by township, cadre and slot."""
    counted = select(func.count()).select_from(Pairing).where(recordable(actor), _active())
    rows, total = await page(session, _listed(actor), counted, offset=offset, limit=limit)
    return [_shown(row, tz) for row in rows], total


async def recordable_pairing(
    session: AsyncSession, actor: Actor, pairing_id: int, *, tz: ZoneInfo
) -> RecordablePairing:
    """One of them; NotAllowed outside the scope, Stale once it ended."""
    row = (await session.execute(_listed(actor).where(Pairing.id == pairing_id))).first()
    if row is None:
        await _pairing(session, actor, pairing_id)
        raise Stale
    return _shown(row, tz)


async def _pairing(session: AsyncSession, actor: Actor, pairing_id: int) -> Pairing:
    """The pairing if in the official's scope (NotAllowed otherwise); Stale unless active."""
    (pairing,) = await row_or_refuse(
        session, select(Pairing).where(Pairing.id == pairing_id, recordable(actor))
    )
    if pairing.ended_at is not None or not pairing.in_pool:
        raise Stale
    return pairing


async def record_talk(
    session: AsyncSession,
    actor: Actor,
    pairing_id: int,
    talk: TalkInput,
    *,
    cipher: DataCipher,
    now: datetime,
    tz: ZoneInfo,
) -> TalkLog:
    """Store a talk of the pairing for its mentor, marked as recorded by `actor`.

    NotAllowed outside the official's scope; Stale once the pairing ended or the cadre left
    the pool. Any date from the pairing's first day to today (RuleError otherwise).
    """
    pairing = await _pairing(session, actor, pairing_id)
    return await store_talk(
        session, actor, pairing, talk, cipher=cipher, now=now, tz=tz, back_days=None
    )
