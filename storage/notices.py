"""Who is told what happened to a file, and what a candidate sees of their own (/status).

The notices are rendered and queued by the handlers (handlers/notices.py) in the transaction
of the change that causes them; these are the reads they need. Every read here is keyed by
a nomination the caller has just changed in its actor's scope, or by the asking person's own
id (/status), so none of them widens what anyone may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Difficulty,
    Nomination,
    Pairing,
    Person,
    StatusChange,
    TalkLog,
    TelegramAccount,
    Township,
    Village,
)


async def _chats_of(session: AsyncSession, person_ids: list[int]) -> list[int]:
    if not person_ids:
        return []
    return list(
        await session.scalars(
            select(TelegramAccount.telegram_id)
            .where(TelegramAccount.person_id.in_(person_ids))
            .order_by(TelegramAccount.telegram_id)
        )
    )


async def candidate_chats(session: AsyncSession, nomination_id: int) -> list[int]:
    """The Telegram chats of the person a file is about (none for a nominee never seen)."""
    person = select(Nomination.person_id).where(Nomination.id == nomination_id)
    return await _chats_of(session, list(await session.scalars(person)))


async def mentor_chats(session: AsyncSession, nomination_id: int) -> list[int]:
    """The Telegram chats of a cadre's mentors now (the active pairings)."""
    mentors = select(Pairing.mentor_person_id).where(
        Pairing.nomination_id == nomination_id, Pairing.ended_at.is_(None)
    )
    return await _chats_of(session, list(await session.scalars(mentors)))


async def raiser_chats(
    session: AsyncSession, difficulty_id: int, *, besides: int | None = None
) -> list[int]:
    """The chats of the mentor whose talk raised a difficulty, unless that mentor is `besides`
    (the person who resolved it needs no notice of their own act)."""
    raiser = await session.scalar(
        select(TalkLog.mentor_person_id)
        .join(Difficulty, Difficulty.talk_id == TalkLog.id)
        .where(Difficulty.id == difficulty_id)
    )
    if raiser is None or raiser == besides:
        return []
    return await _chats_of(session, [raiser])


@dataclass(frozen=True, slots=True)
class MentorName:
    slot: str
    full_name: str | None


async def mentors_of(session: AsyncSession, nomination_id: int) -> list[MentorName]:
    """A cadre's mentors now, township slot first: the names a paired candidate is told."""
    rows = await session.execute(
        select(Pairing.slot, Person.full_name)
        .join(Person, Person.id == Pairing.mentor_person_id)
        .where(Pairing.nomination_id == nomination_id, Pairing.ended_at.is_(None))
        .order_by(Pairing.slot)
    )
    return [MentorName(slot, name) for slot, name in rows.all()]


@dataclass(frozen=True, slots=True)
class Step:
    """One move of a file: what happened (its event), the status it reached, and when. Who
    moved it and why stay with the officials (a candidate is told neutrally)."""

    event: str
    status: str
    at: datetime


@dataclass(frozen=True, slots=True)
class OwnFile:
    """One of the asking person's own files, as /status shows it."""

    status: str
    channel: str
    township: str
    village: str | None
    steps: tuple[Step, ...]
    mentors: tuple[MentorName, ...]


async def own_files(session: AsyncSession, person_id: int) -> list[OwnFile]:
    """The person's files (erased ones left out), oldest first, each with its history."""
    rows = (
        await session.execute(
            select(Nomination, Township.name, Village.name)
            .join(Township, Township.id == Nomination.township_id)
            .outerjoin(Village, Village.id == Nomination.village_id)
            .where(Nomination.person_id == person_id, Nomination.erased_at.is_(None))
            .order_by(Nomination.created_at, Nomination.id)
        )
    ).all()
    ids = [n.id for n, _, _ in rows]
    steps: dict[int, list[Step]] = {i: [] for i in ids}
    if ids:
        history = await session.execute(
            select(
                StatusChange.nomination_id,
                StatusChange.event,
                StatusChange.to_status,
                StatusChange.at,
            )
            .where(StatusChange.nomination_id.in_(ids))
            .order_by(StatusChange.at, StatusChange.id)
        )
        for nid, event, status, at in history.all():
            # "submit:mass" → "submit": who put the person forward is not theirs to read.
            steps[nid].append(Step(event.partition(":")[0], status, at))
    return [
        OwnFile(
            n.status,
            n.channel,
            township,
            village,
            tuple(steps[n.id]),
            tuple(await mentors_of(session, n.id)),
        )
        for n, township, village in rows
    ]
