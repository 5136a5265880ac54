"""The one "cadres in a list" query: reserve cadres matching a scoped condition, paged by
township and name. The pickers of /outcome, /post and /training (and any list of cadres a
button chooses from) read it, so paging, ordering and the re-check of a pressed button are
the same everywhere: a pressed id is looked up again under the same condition (deny by
default), never trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Row, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Nomination, Person, Township
from storage.nominations import NotAllowed


@dataclass(frozen=True, slots=True)
class CadreRow:
    """A cadre as a list shows them: file number, name, township, status."""

    nomination_id: int
    full_name: str
    township: str
    status: str


def _rows(where: ColumnElement[bool]) -> Select[int, str | None, str, str]:
    return (
        select(Nomination.id, Person.full_name, Township.name, Nomination.status)
        .join(Person, Person.id == Nomination.person_id)
        .join(Township, Township.id == Nomination.township_id)
        .where(where)
    )


def _made(rows: Sequence[Row[int, str | None, str, str]]) -> list[CadreRow]:
    return [CadreRow(i, name or "", township, status) for i, name, township, status in rows]


async def page(
    session: AsyncSession, where: ColumnElement[bool], *, offset: int, limit: int
) -> tuple[list[CadreRow], int]:
    """One page of the cadres matching `where`, by township and name, and how many in all."""
    total = await session.scalar(select(func.count()).select_from(Nomination).where(where))
    ordered = _rows(where).order_by(Township.id, Person.full_name, Nomination.id)
    rows = (await session.execute(ordered.offset(offset).limit(limit))).all()
    return _made(rows), int(total or 0)


async def one(session: AsyncSession, where: ColumnElement[bool], nomination_id: int) -> CadreRow:
    """The cadre `nomination_id` if it matches `where` (a pressed button), else NotAllowed."""
    rows = await session.execute(_rows(Nomination.id == nomination_id).where(where))
    found = _made(rows.all())
    if not found:
        raise NotAllowed
    return found[0]


async def some(
    session: AsyncSession, where: ColumnElement[bool], ids: Sequence[int]
) -> list[CadreRow]:
    """Those of `ids` that match `where`, by name; the others are left out."""
    if not ids:
        return []
    query = _rows(Nomination.id.in_(ids)).where(where).order_by(Person.full_name, Nomination.id)
    return _made((await session.execute(query)).all())
