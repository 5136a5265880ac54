"""The audit log: every read of a dossier and every change of a record."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditLog


async def record(
    session: AsyncSession,
    actor_person_id: int | None,
    action: str,
    subject_type: str,
    subject_id: int | None = None,
    **detail: Any,
) -> None:
    """Add an audit row in the caller's transaction. `detail` must hold no personal data."""
    session.add(
        AuditLog(
            actor_person_id=actor_person_id,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            detail=detail,
        )
    )
