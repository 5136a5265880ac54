"""The one "cadres in a list" query: reserve cadres matching a scoped condition, paged by
township and name. The pickers of /outcome, /post and /training, the /pool list (and any
list of cadres a button chooses from) read it, so paging, ordering and the re-check of a
pressed button are the same everywhere: a pressed id is looked up again under the same
condition (deny by default), never trusted.

`pool_conditions` turns /pool's filter into such a condition; the pool is listed by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Row, Select, and_, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import scoped
from storage.models import Nomination, Person, Role, Township
from storage.nominations import NotAllowed, manageable_by

# `locked` is named here too: the pickers and grades read it from this module.
from storage.nominations import locked as locked
from storage.people import Actor
from storage.rules.vetting import Status

OFFICIALS = (Role.ADMIN, Role.COUNTY_OFFICIAL, Role.TOWNSHIP_OFFICIAL)


@dataclass(frozen=True, slots=True)
class CadreRow:
    """A cadre as a list shows them: file number, name, township, status, group."""

    nomination_id: int
    full_name: str
    township: str
    status: str
    key_group: str = ""


def _rows(where: ColumnElement[bool]) -> Select[int, str | None, str, str, str]:
    return (
        select(
            Nomination.id, Person.full_name, Township.name, Nomination.status, Nomination.key_group
        )
        .join(Person, Person.id == Nomination.person_id)
        .join(Township, Township.id == Nomination.township_id)
        .where(where)
    )


def _made(rows: Sequence[Row[int, str | None, str, str, str]]) -> list[CadreRow]:
    return [CadreRow(i, name or "", town, status, group) for i, name, town, status, group in rows]


async def page(
    session: AsyncSession,
    where: ColumnElement[bool],
    *,
    offset: int,
    limit: int,
    by_name: bool = False,
) -> tuple[list[CadreRow], int]:
    """One page of the cadres matching `where`, by township and name (or by name alone), and
    how many in all."""
    # Counted over the same join as the rows: `where` may name the person (a name search).
    counted = (
        select(func.count())
        .select_from(Nomination)
        .join(Person, Person.id == Nomination.person_id)
    )
    order = (
        (Person.full_name, Nomination.id)
        if by_name
        else (Township.id, Person.full_name, Nomination.id)
    )
    rows, total = await scoped.page(
        session,
        _rows(where).order_by(*order),
        counted.where(where),
        offset=offset,
        limit=limit,
    )
    return _made(rows), total


async def one(session: AsyncSession, where: ColumnElement[bool], nomination_id: int) -> CadreRow:
    """The cadre `nomination_id` if it matches `where` (a pressed button), else NotAllowed."""
    rows = await session.execute(_rows(Nomination.id == nomination_id).where(where))
    found = _made(rows.all())
    if not found:
        raise NotAllowed
    return found[0]


def managed(actor: Actor, statuses: Sequence[str]) -> ColumnElement[bool]:
    """Nominations the actor manages (`manageable_by`) whose status is one of `statuses`."""
    return and_(manageable_by(actor), Nomination.status.in_(statuses))


@dataclass(frozen=True, slots=True)
class Picker:
    """The cadres one flow may choose from: those the actor manages at one of `statuses`.
    The list, the pressed cadre and the nomination locked for the change all read `where`."""

    statuses: tuple[str, ...]

    def where(self, actor: Actor) -> ColumnElement[bool]:
        return managed(actor, self.statuses)

    async def page(
        self, session: AsyncSession, actor: Actor, *, offset: int = 0, limit: int = 8
    ) -> tuple[list[CadreRow], int]:
        """One page of the cadres the actor may choose, by township and name, and how many."""
        return await page(session, self.where(actor), offset=offset, limit=limit)

    async def one(self, session: AsyncSession, actor: Actor, nomination_id: int) -> CadreRow:
        """One cadre the actor may choose (a pressed button is re-checked here)."""
        return await one(session, self.where(actor), nomination_id)

    async def locked(self, session: AsyncSession, actor: Actor, nomination_id: int) -> Nomination:
        """The chosen cadre's nomination, row-locked for the change; NotAllowed otherwise."""
        return await locked(session, self.where(actor), nomination_id)


async def some(
    session: AsyncSession, where: ColumnElement[bool], ids: Sequence[int]
) -> list[CadreRow]:
    """Those of `ids` that match `where`, by name; the others are left out."""
    if not ids:
        return []
    query = _rows(Nomination.id.in_(ids)).where(where).order_by(Person.full_name, Nomination.id)
    return _made((await session.execute(query)).all())


@dataclass(frozen=True, slots=True)
class PoolFilter:
    """What /pool is narrowed to; no status: the reserve pool itself."""

    township_id: int | None = None
    key_group: str | None = None
    education: str | None = None
    status: str | None = None
    name: str | None = None


def pool_conditions(actor: Actor, flt: PoolFilter) -> ColumnElement[bool]:
    """The pool (or, with a status filter, any stage) in the actor's scope, narrowed by `flt`;
    deny by default: nothing for someone who is no official. Erased files are never listed."""
    if not actor.has(*OFFICIALS):
        return false()
    conditions: list[ColumnElement[bool]] = [
        manageable_by(actor),
        Nomination.erased_at.is_(None),
        Nomination.status == (flt.status or Status.IN_POOL.value),
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
    return and_(*conditions)
