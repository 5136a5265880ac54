"""Erasure on request (PIPL): a person's nominations, drafts and personal fields go.

What stays is what the county must keep without personal data: the audit log (which holds
ids and actions only) and the fact that an erasure happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.models import Nomination, Person, TelegramAccount, UserData


@dataclass(frozen=True, slots=True)
class Erased:
    person_id: int
    nominations: int


async def person_of_nomination(session: AsyncSession, nomination_id: int) -> int | None:
    return await session.scalar(select(Nomination.person_id).where(Nomination.id == nomination_id))


async def person_of_telegram(session: AsyncSession, telegram_id: int) -> int | None:
    return await session.scalar(
        select(TelegramAccount.person_id).where(TelegramAccount.telegram_id == telegram_id)
    )


async def erase_person(
    session: AsyncSession, person_id: int, *, actor_person_id: int | None
) -> Erased:
    """Delete the person's nominations (their files cascade) and drafts; blank their name."""
    nominations = list(
        await session.scalars(select(Nomination.id).where(Nomination.person_id == person_id))
    )
    await session.execute(delete(Nomination).where(Nomination.person_id == person_id))
    telegram_ids = list(
        await session.scalars(
            select(TelegramAccount.telegram_id).where(TelegramAccount.person_id == person_id)
        )
    )
    if telegram_ids:
        await session.execute(delete(UserData).where(UserData.user_id.in_(telegram_ids)))
        await session.execute(
            update(TelegramAccount)
            .where(TelegramAccount.telegram_id.in_(telegram_ids))
            .values(language_code=None, locale=None)
        )
    await session.execute(update(Person).where(Person.id == person_id).values(full_name=None))
    await audit.record(
        session, actor_person_id, "person.erase", "person", person_id, nominations=len(nominations)
    )
    return Erased(person_id, len(nominations))
