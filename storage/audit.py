"""The audit log: every read of a dossier, every change of a record, every refusal.

Rows are never changed or deleted: the database refuses it on both engines (migration 0012).
They hold ids and action names only, so erasing a person leaves them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditLog, Nomination, TelegramAccount

DENIED = "denied"


async def record(
    session: AsyncSession,
    actor_person_id: int | None,
    action: str,
    subject_type: str,
    subject_id: int | None = None,
    *,
    actor_telegram_id: int | None = None,
    **detail: Any,
) -> None:
    """Add an audit row in the caller's transaction. `detail` must hold no personal data."""
    session.add(
        AuditLog(
            actor_person_id=actor_person_id,
            actor_telegram_id=actor_telegram_id,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            detail=detail,
        )
    )


async def denied(
    session: AsyncSession,
    *,
    telegram_id: int,
    action: str,
    subject_type: str = "",
    subject_id: int | None = None,
) -> None:
    """Record a refused attempt: who (account, and person if any), what, on which subject."""
    person_id = await session.scalar(
        select(TelegramAccount.person_id).where(TelegramAccount.telegram_id == telegram_id)
    )
    await record(
        session,
        person_id,
        DENIED,
        subject_type or "-",
        subject_id,
        actor_telegram_id=telegram_id,
        attempted=action,
    )


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    at: datetime
    actor_person_id: int | None
    actor_telegram_id: int | None
    action: str
    subject_type: str
    subject_id: int | None
    detail: dict[str, Any]


async def entries(
    session: AsyncSession,
    *,
    person_id: int | None = None,
    actor_telegram_id: int | None = None,
    since: datetime | None = None,
    limit: int = 1000,
) -> list[Entry]:
    """Rows oldest first. `person_id`: by the person, about them or about their files.

    `actor_telegram_id`: by that account (its person's rows too).
    """
    query = select(AuditLog).order_by(AuditLog.id).limit(limit)
    if person_id is not None:
        files = select(Nomination.id).where(Nomination.person_id == person_id)
        query = query.where(
            or_(
                AuditLog.actor_person_id == person_id,
                and_(AuditLog.subject_type == "person", AuditLog.subject_id == person_id),
                and_(AuditLog.subject_type == "nomination", AuditLog.subject_id.in_(files)),
            )
        )
    if actor_telegram_id is not None:
        person = select(TelegramAccount.person_id).where(
            TelegramAccount.telegram_id == actor_telegram_id
        )
        query = query.where(
            or_(
                AuditLog.actor_telegram_id == actor_telegram_id,
                AuditLog.actor_person_id.in_(person),
            )
        )
    if since is not None:
        query = query.where(AuditLog.at >= since)
    return [_entry(row) for row in await session.scalars(query)]


async def reads_of(
    session: AsyncSession, nomination_ids: Sequence[int], *, actions: Sequence[str]
) -> list[Entry]:
    """Who read these files (dossier reads, exports), newest first."""
    if not nomination_ids:
        return []
    query = (
        select(AuditLog)
        .where(
            AuditLog.subject_type == "nomination",
            AuditLog.subject_id.in_(list(nomination_ids)),
            AuditLog.action.in_(list(actions)),
        )
        .order_by(AuditLog.id.desc())
        .limit(200)
    )
    return [_entry(row) for row in await session.scalars(query)]


def _entry(row: AuditLog) -> Entry:
    return Entry(
        row.id,
        row.at,
        row.actor_person_id,
        row.actor_telegram_id,
        row.action,
        row.subject_type,
        row.subject_id,
        dict(row.detail or {}),
    )
