"""Query shapes the storage modules share, and the two refusals every scoped read raises.

A scoped read names the actor's condition in the SQL itself, so no row comes back for a
record outside the actor's reach: that is `NotAllowed`, and a record that does not exist
gets the same answer (guessing ids teaches nothing). `Stale` is a record that is the
actor's to handle but has moved on since the screen or button was made. Both are one type
for all of storage, so the chat layer maps each of them once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, TypeVarTuple

from sqlalchemy import Row, Select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Nomination, Person, Township, Village

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class NotAllowed(Exception):
    """The actor may not see or change this record (or it does not exist: same answer)."""


class Stale(Exception):
    """In scope, but no longer in the state the screen or button was made for (left the pool,
    decided already, …)."""


async def one_or_refuse(session: AsyncSession, query: Select[T]) -> T:
    """The one object (first column) the scoped query finds; NotAllowed when none."""
    found = await session.scalar(query)
    if found is None:
        raise NotAllowed
    return found


async def row_or_refuse(session: AsyncSession, query: Select[*Ts]) -> Row[*Ts]:
    """The first row the scoped query finds; NotAllowed when none."""
    row = (await session.execute(query)).first()
    if row is None:
        raise NotAllowed
    return row


async def page(
    session: AsyncSession,
    rows: Select[*Ts],
    counted: Select[Any],
    *,
    offset: int,
    limit: int,
) -> tuple[Sequence[Row[*Ts]], int]:
    """One page of the ordered `rows`, and how many there are in all (`counted`, a count)."""
    total = await session.scalar(counted)
    found = (await session.execute(rows.offset(offset).limit(limit))).all()
    return found, int(total or 0)


def with_names(query: Select[*Ts], *, village: bool = False) -> Select[*Ts]:
    """`query`, which reaches Nomination, joined to the nominee's person and township; with
    `village`, to their village too (an outer join: a cadre may have none)."""
    named = query.join(Person, Person.id == Nomination.person_id).join(
        Township, Township.id == Nomination.township_id
    )
    return named.outerjoin(Village, Village.id == Nomination.village_id) if village else named
