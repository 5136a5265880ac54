"""Cadres in an official's scope, paged: the one query behind every "pick a cadre" list.

/pool, /post, /outcome, /pair and the training invitations each listed "a cadre in my scope"
with a record and a paged query of their own (posts.Assignee, outcomes.Cadre,
trainings.PoolPick, mentoring.CadreItem, grades.Candidate); they differ only in which
statuses they take and their order. `in_scope` is that query once; a list adds its own
conditions (a status, a filter) and reads `ScopedCadre`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Nomination, Person, Role, Township
from storage.nominations import manageable_by
from storage.people import Actor
from storage.rules.vetting import Status

OFFICIALS = (Role.ADMIN, Role.COUNTY_OFFICIAL, Role.TOWNSHIP_OFFICIAL)


@dataclass(frozen=True, slots=True)
class ScopedCadre:
    """One cadre as a list shows it (a button carries `nomination_id` only)."""

    nomination_id: int
    full_name: str
    township: str
    status: str
    key_group: str


async def in_scope(
    session: AsyncSession,
    actor: Actor,
    conditions: Sequence[ColumnElement[bool]],
    *,
    by_township: bool = True,
    offset: int = 0,
    limit: int = 8,
) -> tuple[list[ScopedCadre], int]:
    """The cadres the actor manages that meet `conditions`, one page, and how many in all.

    Deny by default: someone who is no official gets nothing. Erased files are never listed.
    Ordered by township then name (a township official's list reads as one block), or by name
    alone (`by_township=False`, the pool's search)."""
    if not actor.has(*OFFICIALS):
        return [], 0
    where = and_(manageable_by(actor), Nomination.erased_at.is_(None), *conditions)
    base = select(Nomination.id).join(Person, Person.id == Nomination.person_id).where(where)
    total = await session.scalar(select(func.count()).select_from(base.subquery()))
    order = (Person.full_name, Nomination.id)
    rows = await session.execute(
        select(
            Nomination.id, Person.full_name, Township.name, Nomination.status, Nomination.key_group
        )
        .join(Person, Person.id == Nomination.person_id)
        .join(Township, Township.id == Nomination.township_id)
        .where(where)
        .order_by(*((Township.id, *order) if by_township else order))
        .offset(offset)
        .limit(limit)
    )
    items = [ScopedCadre(i, n or "", t, s, k) for i, n, t, s, k in rows.all()]
    return items, int(total or 0)


@dataclass(frozen=True, slots=True)
class PoolFilter:
    """What /pool is narrowed to; no status: the reserve pool itself."""

    township_id: int | None = None
    key_group: str | None = None
    education: str | None = None
    status: str | None = None
    name: str | None = None


async def search_pool(
    session: AsyncSession, actor: Actor, flt: PoolFilter, *, offset: int = 0, limit: int = 10
) -> tuple[list[ScopedCadre], int]:
    """The reserve pool (and, with a status filter, any stage) within the actor's scope."""
    conditions: list[ColumnElement[bool]] = [
        Nomination.status == (flt.status or Status.IN_POOL.value)
    ]
    if flt.township_id is not None:
        conditions.append(Nomination.township_id == flt.township_id)
    if flt.key_group:
        conditions.append(Nomination.key_group == flt.key_group)
    if flt.education:
        conditions.append(Nomination.education == flt.education)
    if flt.name:
        escaped = flt.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(Person.full_name.like(f"%{escaped}%", escape="\\"))
    return await in_scope(
        session, actor, conditions, by_township=False, offset=offset, limit=limit
    )
