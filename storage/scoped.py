"""Query and record shapes several storage modules share, written once, and the two refusals
every scoped read raises.

A scoped read names the actor's condition in the SQL itself, so no row comes back for a
record outside the actor's reach: that is `NotAllowed`, and a record that does not exist
gets the same answer (guessing ids teaches nothing). `Stale` is a record that is the
actor's to handle but has moved on since the screen or button was made. Both are one type
for all of storage, so the chat layer maps each of them once.

- `one_or_refuse`, `row_or_refuse`, `page` and `with_names`: the scoped reads of one record
  or of a page of them.
- `in_period` and `count_when`: the conditions and conditional counts of every figure.
- `by_township` and `totals`: the figures of each township (zeros included) and of the
  county, as the summaries and the /figures screens read them.
- `added`: a new row stored with its audit entry, as every recorded change is.

It imports only the models and the audit log, so that any storage module may use it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, Protocol, TypeVar, TypeVarTuple

from sqlalchemy import ColumnElement, Row, Select, Subquery, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from storage import audit
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


class _Stored(Protocol):
    """A model instance with an integer id, named after its table."""

    __tablename__: Any

    @property
    def id(self) -> int: ...


R = TypeVar("R", bound=_Stored)


async def added(
    session: AsyncSession, row: R, actor_person_id: int | None, action: str, **detail: Any
) -> R:
    """Store a new row and audit it as `action` (subject: the row's table and id), in the
    caller's transaction. `detail` must hold no personal data."""
    session.add(row)
    await session.flush()
    await audit.record(session, actor_person_id, action, row.__tablename__, row.id, **detail)
    return row


def in_period(
    column: QueryableAttribute[Any], since: date | None, until: date | None
) -> list[ColumnElement[bool]]:
    """The conditions keeping `column` in [since, until); an open end adds none. Dates or
    instants (a datetime is a date), for any figures counted over a period."""
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return conditions


def count_when(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """How many rows of the group meet `condition` (0, not NULL, for an empty group)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def counts_of(column: QueryableAttribute[str], codes: Iterable[str]) -> list[ColumnElement[int]]:
    """A count per code of `column` (a status, a kind), each labelled with its code."""
    return [count_when(column == code).label(code) for code in codes]


async def by_township(
    session: AsyncSession, township_id: int | None, *parts: Subquery
) -> list[tuple[int, str, dict[str, int]]]:
    """Every township (or only `township_id`) by id, with the figures of each part.

    A part is a subquery grouped per township, its township column labelled `tid`; its
    other columns come back by label, as ints, 0 for a township the part has no row for.
    """
    figures = [
        func.coalesce(column, 0).label(column.name)
        for part in parts
        for column in part.c
        if column.name != "tid"
    ]
    query: Select[*tuple[Any, ...]] = select(Township.id, Township.name, *figures)
    for part in parts:
        query = query.outerjoin(part, part.c.tid == Township.id)
    if township_id is not None:
        query = query.where(Township.id == township_id)
    rows = (await session.execute(query.order_by(Township.id))).all()
    # int(): PostgreSQL sums BIGINT into NUMERIC, which arrives as a Decimal.
    return [
        (int(tid), str(name), {f.name: int(n) for f, n in zip(figures, values, strict=True)})
        for tid, name, *values in rows
    ]


Figure = TypeVar("Figure")


@dataclass(frozen=True, slots=True)
class Figures(Generic[Figure]):
    """Figures of a period, [since, until) (open ends None): per township, and their total."""

    since: date | None
    until: date | None
    townships: list[Figure]
    total: Figure


async def figures(
    session: AsyncSession,
    township_id: int | None,
    period: tuple[date | None, date | None],
    parts: Sequence[Subquery],
    county: Mapping[str, Select[*tuple[Any, ...]]],
    row: Callable[..., Figure],
    by_code: tuple[str, Sequence[str]],
) -> Figures[Figure]:
    """The figures of every township (or only `township_id`) from the `parts` (as
    `by_township` reads them), and their total, which names no township: that one
    township's own figures, or the county's, counted by the `county` queries (as `totals`
    reads them) so that what two townships share (a cadre in both) is counted once.

    `row(township_id, township, **figures)` makes each row: a figure is passed under its
    label, except the counts per code (`by_code`: the field, and the codes, as labels),
    which go as one mapping; a figure no query gives keeps its default.
    """
    field, codes = by_code

    def made(tid: int | None, name: str | None, n: Mapping[str, int]) -> Figure:
        figures = {label: value for label, value in n.items() if label not in codes}
        return row(tid, name, **figures, **{field: {code: n[code] for code in codes}})

    found = await by_township(session, township_id, *parts)
    townships = [made(tid, name, n) for tid, name, n in found]
    if township_id is None:
        total = made(None, None, await totals(session, **county))
    else:
        # An unknown township counts nothing.
        total = made(None, None, found[0][2] if found else Counter())
    return Figures(*period, townships, total)


async def totals(session: AsyncSession, **queries: Select[*tuple[Any, ...]]) -> dict[str, int]:
    """Single-value queries (a county-wide count or sum each) in one round trip, by name."""
    row = (
        await session.execute(
            select(*(query.scalar_subquery().label(name) for name, query in queries.items()))
        )
    ).one()
    return {name: int(value) for name, value in zip(queries, row, strict=True)}
