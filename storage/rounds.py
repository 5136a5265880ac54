"""Selection rounds (选拔批次) and who may nominate in which.

A county official opens a round: a year or a batch, with its first and last day. The rules:

- One open nomination per person, whatever the round (the database's partial unique indexes
  on the ID number's and the phone's lookup hashes, migration 0015).
- One nomination per person per round: a person rejected, declined or adjusted out in a round
  may nominate again in a later one, not in the same one.
- Before a county has opened any round, every nomination belongs to the implicit round
  (round_id NULL) and /nominate works as it always did: once per person. Once a round has
  been opened, self-nominations are taken only while a round is open (today between its
  dates); recommendations are always taken, and join the open round when there is one.

Rounds never overlap, so "the open round" is at most one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Nomination, Role, SelectionRound
from storage.people import Actor
from storage.rules.vetting import CLOSED
from storage.scoped import NotAllowed, added


class RoundsOverlap(Exception):
    """The dates cross those of a round already opened: its id, name and dates, read while
    the session was open, so that they can be said after it rolled back."""

    def __init__(self, other: SelectionRound) -> None:
        super().__init__(other.name)
        self.round_id = other.id
        self.name = other.name
        self.starts_on = other.starts_on
        self.ends_on = other.ends_on


@dataclass(frozen=True, slots=True)
class Rounds:
    """Where the county stands on `today`: the round open, if any; whether it has ever
    opened one; the next one to open."""

    current: SelectionRound | None
    any_opened: bool
    upcoming: SelectionRound | None

    @property
    def round_id(self) -> int | None:
        return self.current.id if self.current else None

    @property
    def nominating(self) -> bool:
        """Whether /nominate takes a self-nomination today."""
        return self.current is not None or not self.any_opened


async def open_round(
    session: AsyncSession, actor: Actor, *, name: str, starts_on: date, ends_on: date
) -> SelectionRound:
    """Open a round, as a county official or an admin; RoundsOverlap if the dates cross
    another round's."""
    if not actor.has(Role.ADMIN, Role.COUNTY_OFFICIAL):
        raise NotAllowed
    if ends_on < starts_on:
        raise ValueError("a round ends on or after its first day")
    other = await session.scalar(
        select(SelectionRound)
        .where(SelectionRound.starts_on <= ends_on, SelectionRound.ends_on >= starts_on)
        .order_by(SelectionRound.starts_on)
        .limit(1)
    )
    if other is not None:
        raise RoundsOverlap(other)
    row = SelectionRound(
        name=name, starts_on=starts_on, ends_on=ends_on, opened_by_person_id=actor.person_id
    )
    return await added(session, row, actor.person_id, "round.open")


async def all_rounds(session: AsyncSession) -> list[SelectionRound]:
    """Every round, newest first."""
    query = select(SelectionRound).order_by(SelectionRound.starts_on.desc())
    return list(await session.scalars(query))


async def on(session: AsyncSession, today: date) -> Rounds:
    """The county's rounds as they stand on `today`."""
    current = await session.scalar(
        select(SelectionRound).where(
            SelectionRound.starts_on <= today, SelectionRound.ends_on >= today
        )
    )
    upcoming = await session.scalar(
        select(SelectionRound)
        .where(SelectionRound.starts_on > today)
        .order_by(SelectionRound.starts_on)
        .limit(1)
    )
    any_opened = bool(await session.scalar(select(exists().select_from(SelectionRound))))
    return Rounds(current, any_opened, upcoming)


def holds_person(round_id: int | None) -> ColumnElement[bool]:
    """The nominations that keep a person from nominating in round `round_id` (None: the
    implicit round): any open one, and any of theirs in that very round."""
    same_round = (
        Nomination.round_id.is_(None) if round_id is None else Nomination.round_id == round_id
    )
    return or_(Nomination.status.not_in([s.value for s in CLOSED]), same_round)


async def holding(
    session: AsyncSession, person_id: int, round_id: int | None
) -> Nomination | None:
    """The person's own nomination that keeps them from nominating in `round_id`, newest
    first; None if they may."""
    query = (
        select(Nomination)
        .where(and_(Nomination.person_id == person_id, holds_person(round_id)))
        .order_by(Nomination.id.desc())
        .limit(1)
    )
    return await session.scalar(query)
