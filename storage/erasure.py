"""Erasure on request (PIPL), and what it shares with retention.

A person who asks (`/withdraw`, or `cadrebot erase` for a request made elsewhere) leaves no
name, ID number, phone or free text behind, anywhere:
- their nominations stay as anonymous rows (status, township, channel, key group, education,
  dates) with every fact the county counts (talks held, difficulties raised, elections,
  grade moves), so an elected cadre stays counted; what named or described them is blanked,
  and the row points at a fresh person with no name and no Telegram account, so nothing
  links it back to the account that asked;
- active pairings end (no mentor is reminded about them again) and undecided vetting
  reviews go (no reviewer is reminded either);
- outbox rows about them (their `subject_nomination_id`) or to them: pending ones are
  cancelled, sent ones keep their key and status but lose their text;
- their drafts (user_data) and conversation states are deleted, and an `erasure_event` row
  tells every running bot to drop what it holds in memory for them (bot/forget.py);
- the audit log is never touched: it holds ids and actions only, and records the erasure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.models import (
    Award,
    ConversationState,
    Difficulty,
    ErasureEvent,
    Nomination,
    OutboxMessage,
    Pairing,
    Person,
    PracticePost,
    Publicity,
    QuarantinedState,
    StatusChange,
    TalkLog,
    TelegramAccount,
    UserData,
    VettingReview,
)
from storage.rules.vetting import Event, Status

# The error an outbox row cancelled by erasure or retention ends with.
CANCELLED = "cancelled: erased"
# What a sent row keeps of its body: no text, no buttons.
BLANK_BODY: dict[str, list[str]] = {"parts": []}


@dataclass(frozen=True, slots=True)
class Erased:
    person_id: int
    nominations: int
    cancelled: int = 0
    blanked: int = 0
    conversations: int = 0


@dataclass(frozen=True, slots=True)
class Held:
    """What erasure would take away from a person: shown before they confirm /withdraw."""

    nominations: int
    talks: int
    difficulties: int
    drafts: int
    messages: int


async def person_of_nomination(session: AsyncSession, nomination_id: int) -> int | None:
    """The person behind a file not erased yet (an erased one belongs to nobody)."""
    return await session.scalar(
        select(Nomination.person_id).where(
            Nomination.id == nomination_id, Nomination.erased_at.is_(None)
        )
    )


async def person_of_telegram(session: AsyncSession, telegram_id: int) -> int | None:
    return await session.scalar(
        select(TelegramAccount.person_id).where(TelegramAccount.telegram_id == telegram_id)
    )


async def _telegram_ids(session: AsyncSession, person_id: int) -> list[int]:
    return list(
        await session.scalars(
            select(TelegramAccount.telegram_id).where(TelegramAccount.person_id == person_id)
        )
    )


async def _live_nominations(session: AsyncSession, person_id: int) -> list[int]:
    return list(
        await session.scalars(
            select(Nomination.id).where(
                Nomination.person_id == person_id, Nomination.erased_at.is_(None)
            )
        )
    )


def _outbox_about(nominations: Sequence[int], chats: Sequence[int]) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    if nominations:
        clauses.append(OutboxMessage.subject_nomination_id.in_(nominations))
    if chats:
        clauses.append(OutboxMessage.chat_id.in_(chats))
    return or_(*clauses)


async def held(session: AsyncSession, person_id: int) -> Held:
    """Counts of what erasure would remove or anonymize for this person."""
    nominations = await _live_nominations(session, person_id)
    chats = await _telegram_ids(session, person_id)

    async def count(statement: object) -> int:
        return int(await session.scalar(statement) or 0)  # type: ignore[call-overload]

    talks = difficulties = messages = drafts = 0
    if nominations:
        talks = await count(select(func.count()).where(TalkLog.nomination_id.in_(nominations)))
        difficulties = await count(
            select(func.count()).where(Difficulty.nomination_id.in_(nominations))
        )
    if nominations or chats:
        messages = await count(
            select(func.count()).where(
                _outbox_about(nominations, chats), OutboxMessage.status == "pending"
            )
        )
    if chats:
        drafts = await count(select(func.count()).where(UserData.user_id.in_(chats)))
    return Held(len(nominations), talks, difficulties, drafts, messages)


# Where a withdrawal leaves a file that was still moving: out of the pool, or turned down
# before a decision; terminal files keep their status (an elected cadre stays elected).
WITHDRAWN = {
    Status.NEW.value: (Status.DECLINED.value, Event.DECLINE.value),
    Status.CONTACTED.value: (Status.DECLINED.value, Event.DECLINE.value),
    Status.VETTING.value: (Status.DECLINED.value, Event.DECLINE.value),
    Status.IN_POOL.value: (Status.ADJUSTED.value, Event.ADJUST_OUT.value),
}


async def withdraw(
    session: AsyncSession,
    nominations: Sequence[int],
    *,
    now: datetime,
    actor_person_id: int | None = None,
) -> None:
    """Move files still in the pipeline to where a withdrawal leaves them, with history: the
    actor is the person withdrawing, or None for the operator's `cadrebot erase`."""
    rows = (
        await session.execute(
            select(Nomination.id, Nomination.status).where(
                Nomination.id.in_(list(nominations)),
                Nomination.status.in_(list(WITHDRAWN)),
            )
        )
    ).all()
    for nomination_id, status in rows:
        to_status, event = WITHDRAWN[status]
        await session.execute(
            update(Nomination)
            .where(Nomination.id == nomination_id)
            .values(status=to_status, status_changed_at=now)
        )
        session.add(
            StatusChange(
                nomination_id=nomination_id,
                from_status=status,
                to_status=to_status,
                event=event,
                actor_person_id=actor_person_id,
                at=now,
            )
        )
    await session.flush()


async def anonymize_nominations(
    session: AsyncSession, nominations: Sequence[int], *, now: datetime
) -> None:
    """Blank everything that names or describes the people behind these files; keep the
    counted facts. The files then belong to a new person with no name and no account."""
    if not nominations:
        return
    ids = list(nominations)
    anonymous = Person(full_name=None)
    session.add(anonymous)
    await session.flush()
    await session.execute(
        update(Nomination)
        .where(Nomination.id.in_(ids))
        .values(
            person_id=anonymous.id,
            submitted_by_person_id=None,
            village_id=None,
            gender=None,
            birth_date=None,
            ethnicity=None,
            political_status=None,
            specialties=None,
            work_history=None,
            motivation=None,
            reason=None,
            id_number_enc=None,
            id_number_hash=None,
            id_number_masked=None,
            phone_enc=None,
            phone_hash=None,
            phone_masked=None,
            erased_at=now,
        )
    )
    # Free text written about them; the rows stay (they are what the summaries count).
    await session.execute(
        update(StatusChange)
        .where(StatusChange.nomination_id.in_(ids))
        .values(reason=None, reason_enc=None)
    )
    await session.execute(
        update(VettingReview)
        .where(VettingReview.nomination_id.in_(ids))
        .values(note=None, note_enc=None)
    )
    await session.execute(
        delete(VettingReview).where(
            VettingReview.nomination_id.in_(ids), VettingReview.decision.is_(None)
        )
    )
    await session.execute(
        update(TalkLog).where(TalkLog.nomination_id.in_(ids)).values(topics={}, topics_enc=None)
    )
    await session.execute(
        update(Difficulty)
        .where(Difficulty.nomination_id.in_(ids))
        .values(description="", resolution=None, description_enc=None, resolution_enc=None)
    )
    await session.execute(
        update(PracticePost).where(PracticePost.nomination_id.in_(ids)).values(title=None)
    )
    await session.execute(update(Award).where(Award.nomination_id.in_(ids)).values(title=""))
    await session.execute(
        update(Publicity).where(Publicity.nomination_id.in_(ids)).values(title="")
    )
    await session.execute(
        update(Pairing)
        .where(Pairing.nomination_id.in_(ids), Pairing.ended_at.is_(None))
        .values(ended_at=now)
    )


async def clear_outbox(
    session: AsyncSession, nominations: Sequence[int], chats: Sequence[int], *, now: datetime
) -> tuple[int, int]:
    """Cancel unsent rows about these files or to these chats; blank the text of sent ones.

    Rows keep their key, so a planner that sees the same event again plans nothing."""
    if not nominations and not chats:
        return 0, 0
    about = _outbox_about(nominations, chats)
    blanked = await session.execute(
        update(OutboxMessage)
        .where(about, OutboxMessage.status.in_(("sent", "failed")))
        .values(parts=BLANK_BODY)
    )
    cancelled = await session.execute(
        update(OutboxMessage)
        .where(about, OutboxMessage.status.in_(("pending", "sending")))
        .values(status="failed", error=CANCELLED, parts=BLANK_BODY, claimed_at=now)
    )
    return (
        int(cancelled.rowcount),  # type: ignore[attr-defined]
        int(blanked.rowcount),  # type: ignore[attr-defined]
    )


def conversation_keys_of(telegram_id: int) -> ColumnElement[bool]:
    """Conversation state rows of a user: keys are JSON lists such as [chat, user]."""
    return or_(
        ConversationState.key == f"[{telegram_id}]",
        ConversationState.key.like(f"[{telegram_id}, %"),
        ConversationState.key.like(f"%, {telegram_id}]"),
    )


async def forget_sessions(
    session: AsyncSession, telegram_ids: Sequence[int], *, now: datetime | None = None
) -> int:
    """Delete drafts and conversation states, and tell every running bot to forget them."""
    if not telegram_ids:
        return 0
    await session.execute(delete(UserData).where(UserData.user_id.in_(telegram_ids)))
    # A draft set aside at start-up as unreadable is still the person's draft.
    await session.execute(
        delete(QuarantinedState).where(QuarantinedState.user_id.in_(telegram_ids))
    )
    result = await session.execute(
        delete(ConversationState).where(or_(*(conversation_keys_of(t) for t in telegram_ids)))
    )
    for telegram_id in telegram_ids:
        session.add(ErasureEvent(telegram_id=telegram_id, at=now or datetime.now(UTC)))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def erase_person(
    session: AsyncSession,
    person_id: int,
    *,
    actor_person_id: int | None,
    now: datetime | None = None,
) -> Erased:
    """Erase what identifies the person, everywhere; keep anonymous counts (module doc)."""
    now = now or datetime.now(UTC)
    nominations = await _live_nominations(session, person_id)
    telegram_ids = await _telegram_ids(session, person_id)
    await withdraw(session, nominations, now=now, actor_person_id=actor_person_id)
    await anonymize_nominations(session, nominations, now=now)
    cancelled, blanked = await clear_outbox(session, nominations, telegram_ids, now=now)
    conversations = await forget_sessions(session, telegram_ids, now=now)
    if telegram_ids:
        await session.execute(
            update(TelegramAccount)
            .where(TelegramAccount.telegram_id.in_(telegram_ids))
            .values(language_code=None, locale=None, unreachable_reason=None)
        )
    await session.execute(update(Person).where(Person.id == person_id).values(full_name=None))
    await audit.record(
        session,
        actor_person_id,
        "person.erase",
        "person",
        person_id,
        nominations=nominations,
        cancelled=cancelled,
        blanked=blanked,
    )
    return Erased(person_id, len(nominations), cancelled, blanked, conversations)
