"""People told what happened to them: the candidate, and the mentors of a cadre.

Each function is called by the flow or screen that makes the change, with that change's
session, so a notice is queued (the outbox) if and only if the change is committed. Every
notice goes to each recipient in their own language (`notices/<event>` templates) and says
only what the person needs: names, dates, a result; never an ID number, a phone or an
official's reason. Its outbox key names the event and the row that caused it, so the same
change is never told twice; its subject is the cadre's file, so erasing the person cancels
what is still queued about them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.port import Chat
from storage import notices, people
from storage.grades import Applied
from storage.mentoring import DifficultyItem
from storage.projects import ProjectRow


async def _tell(
    chat: Chat,
    session: AsyncSession,
    chats: list[int],
    event: str,
    *,
    key: str,
    subject: int,
    **values: Any,
) -> int:
    recipients = await people.recipients(session, chats)
    template = f"notices/{event}"
    key = f"notice-{event}:{key}"
    return await chat.notify(session, recipients, template, key=key, subject=subject, **values)


async def _to_candidate(
    chat: Chat, session: AsyncSession, nomination_id: int, event: str, key: str, **values: Any
) -> int:
    chats = await notices.candidate_chats(session, nomination_id)
    return await _tell(chat, session, chats, event, key=key, subject=nomination_id, **values)


async def sent_to_vetting(chat: Chat, session: AsyncSession, nomination_id: int) -> int:
    """The file went to joint vetting (no department named: which ones is the county's)."""
    return await _to_candidate(chat, session, nomination_id, "vetting", str(nomination_id))


async def paired(chat: Chat, session: AsyncSession, nomination_id: int, pairing_id: int) -> int:
    """A mentor was assigned: the cadre hears who their mentors now are."""
    mentors = await notices.mentors_of(session, nomination_id)
    return await _to_candidate(
        chat, session, nomination_id, "paired", str(pairing_id), mentors=mentors
    )


async def project_lead(
    chat: Chat,
    session: AsyncSession,
    leads: list[int],
    project: ProjectRow,
) -> int:
    """Each lead of a new project hears they lead it."""
    told = 0
    for nomination_id in leads:
        key = f"{project.id}:{nomination_id}"
        told += await _to_candidate(chat, session, nomination_id, "lead", key, project=project)
    return told


async def assessed(chat: Chat, session: AsyncSession, applied: Applied) -> int:
    """An annual result was recorded: the result and the grade it leaves the cadre at."""
    nid, year = applied.nomination_id, applied.year
    key = f"{nid}:{year}"
    return await _to_candidate(chat, session, nid, "assessed", key, year=year, move=applied.move)


async def adjusted_out(
    chat: Chat, session: AsyncSession, nomination_id: int, mentors: list[int], full_name: str
) -> int:
    """The cadre left the pool: they hear it neutrally (the reason stays with the officials),
    and their mentors (`mentors`, read before the pairings ended) that the pairing is over."""
    key = str(nomination_id)
    told = await _to_candidate(chat, session, nomination_id, "adjusted", key)
    await _tell(
        chat, session, mentors, "mentee_left", key=key, subject=nomination_id, full_name=full_name
    )
    return told


async def elected(
    chat: Chat, session: AsyncSession, nomination_id: int, election_id: int, **values: Any
) -> int:
    """A mentee was elected into the two committees: their mentors hear it."""
    chats = await notices.mentor_chats(session, nomination_id)
    key = str(election_id)
    return await _tell(
        chat, session, chats, "mentee_elected", key=key, subject=nomination_id, **values
    )


async def difficulty_resolved(
    chat: Chat, session: AsyncSession, item: DifficultyItem, resolver: int
) -> int:
    """The mentor who raised a difficulty in a talk hears that it was resolved, unless they
    resolved it themselves."""
    chats = await notices.raiser_chats(session, item.id, besides=resolver)
    return await _tell(
        chat,
        session,
        chats,
        "difficulty_resolved",
        key=str(item.id),
        subject=item.nomination_id,
        item=item,
    )
