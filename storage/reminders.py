"""What has become due, asked of the database: each query returns only due rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Nomination,
    Role,
    RoleGrant,
    TelegramAccount,
    Township,
    VettingReview,
)
from storage.rules.vetting import Status


async def role_recipients(
    session: AsyncSession, role: Role, *where: ColumnElement[bool]
) -> list[tuple[int, str | None]]:
    """The reachable holders of an active `role` (narrowed by `where`), with their language."""
    rows = await session.execute(
        select(
            TelegramAccount.telegram_id,
            func.coalesce(TelegramAccount.locale, TelegramAccount.language_code),
        )
        .join(RoleGrant, RoleGrant.person_id == TelegramAccount.person_id)
        .where(
            RoleGrant.role == role.value,
            RoleGrant.revoked_at.is_(None),
            TelegramAccount.unreachable_at.is_(None),
            *where,
        )
        .distinct()
    )
    return [(int(t), lang) for t, lang in rows.all()]


async def township_official_recipients(
    session: AsyncSession, township_id: int
) -> list[tuple[int, str | None]]:
    """The township's officials who can be reached, with their language."""
    return await role_recipients(
        session, Role.TOWNSHIP_OFFICIAL, RoleGrant.township_id == township_id
    )


@dataclass(frozen=True, slots=True)
class PendingReview:
    review_id: int
    department: str
    township: str
    days: int


async def vetting_pending_longer_than(
    session: AsyncSession, now: datetime, days: int
) -> list[PendingReview]:
    """Undecided reviews of nominations still in vetting, requested over `days` ago."""
    rows = await session.execute(
        select(
            VettingReview.id, VettingReview.department, Township.name, VettingReview.requested_at
        )
        .join(Nomination, Nomination.id == VettingReview.nomination_id)
        .join(Township, Township.id == Nomination.township_id)
        .where(
            VettingReview.decision.is_(None),
            Nomination.status == Status.VETTING.value,
            VettingReview.requested_at <= now - timedelta(days=days),
        )
        .order_by(VettingReview.id)
    )
    result = []
    for review_id, department, township, requested_at in rows.all():
        age = (now - requested_at).days
        result.append(PendingReview(review_id, department, township, age))
    return result


async def reviewer_recipients(
    session: AsyncSession, department: str
) -> list[tuple[int, str | None]]:
    return await role_recipients(session, Role.REVIEWER, RoleGrant.department == department)
