"""Figures of the select (选) stage, per township and county-wide, counted in SQL.

Every figure comes from a GROUP BY township_id query; Python only adds the per-township rows
up into the county total. Definitions (the summaries quote these numbers, so they are fixed):

Flow figures, within the period [since, until) when one is given, else all time:
- `nominations`, `by_channel`, `by_key_group`, `college_or_higher`: nominations received
  (Nomination.created_at in the period); college or higher = education in COLLEGE_OR_HIGHER
  (大专 or higher).
- `vetting_approved` / `vetting_rejected`: nominations whose joint vetting ended that way
  (status_change events vetting_approved / vetting_rejected at a time in the period).
- `adjusted_out`: adjust_out events (不适宜人选及时调整) at a time in the period.
- `reviews_approved` / `reviews_rejected`: single department decisions (vetting_review rows)
  decided in the period.

Stock figures, as of now whatever the period:
- `by_status`: nominations per current status; `pool` = status in_pool, with
  `pool_college_or_higher` of them; `vetting_pending` = status vetting; `adjusted` = status
  adjusted.
- `reviews_pending`: undecided department reviews of nominations still in vetting (a review
  left open after another department's veto settled the case is not pending work).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypedDict

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Nomination, Person, StatusChange, Township, VettingReview
from storage.nominations import manageable_by
from storage.people import Actor
from storage.rules.options import COLLEGE_OR_HIGHER, CollegeShares
from storage.rules.vetting import Event, Status
from storage.scoped import Figures, count_when, in_period


@dataclass(frozen=True, slots=True)
class SelectRow(CollegeShares):
    """The select-stage figures of one township, or of the county when township_id is None."""

    township_id: int | None
    township: str | None
    nominations: int = 0
    by_channel: Mapping[str, int] = field(default_factory=dict)
    by_key_group: Mapping[str, int] = field(default_factory=dict)
    college_or_higher: int = 0
    by_status: Mapping[str, int] = field(default_factory=dict)
    pool: int = 0
    pool_college_or_higher: int = 0
    vetting_pending: int = 0
    vetting_approved: int = 0
    vetting_rejected: int = 0
    reviews_pending: int = 0
    reviews_approved: int = 0
    reviews_rejected: int = 0
    adjusted: int = 0
    adjusted_out: int = 0


SelectFigures = Figures[SelectRow]


class StageCounts(TypedDict):
    """What a select row and a summary both show of the select stage."""

    nominations: int
    by_channel: dict[str, int]
    by_key_group: dict[str, int]
    college_or_higher: int
    by_status: dict[str, int]
    pool: int
    pool_college_or_higher: int
    vetting_pending: int
    vetting_approved: int
    vetting_rejected: int
    adjusted_out: int


@dataclass(slots=True)
class SelectTally:
    """The select stage's counters while they are read, for these figures and storage.summary."""

    nominations: int = 0
    by_channel: Counter[str] = field(default_factory=Counter)
    by_key_group: Counter[str] = field(default_factory=Counter)
    college_or_higher: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    pool_college_or_higher: int = 0
    events: Counter[str] = field(default_factory=Counter)
    reviews: Counter[str] = field(default_factory=Counter)

    def add(self, other: SelectTally) -> None:
        self.nominations += other.nominations
        self.by_channel.update(other.by_channel)
        self.by_key_group.update(other.by_key_group)
        self.college_or_higher += other.college_or_higher
        self.by_status.update(other.by_status)
        self.pool_college_or_higher += other.pool_college_or_higher
        self.events.update(other.events)
        self.reviews.update(other.reviews)

    def counts(self) -> StageCounts:
        """The figures a select row and a summary both show, as plain dicts."""
        return StageCounts(
            nominations=self.nominations,
            by_channel=dict(self.by_channel),
            by_key_group=dict(self.by_key_group),
            college_or_higher=self.college_or_higher,
            by_status=dict(self.by_status),
            pool=self.by_status[Status.IN_POOL.value],
            pool_college_or_higher=self.pool_college_or_higher,
            vetting_pending=self.by_status[Status.VETTING.value],
            vetting_approved=self.events[Event.VETTING_APPROVED.value],
            vetting_rejected=self.events[Event.VETTING_REJECTED.value],
            adjusted_out=self.events[Event.ADJUST_OUT.value],
        )

    def row(self, township_id: int | None, township: str | None) -> SelectRow:
        return SelectRow(
            township_id=township_id,
            township=township,
            **self.counts(),
            reviews_pending=self.reviews[_PENDING],
            reviews_approved=self.reviews["approve"],
            reviews_rejected=self.reviews["reject"],
            adjusted=self.by_status[Status.ADJUSTED.value],
        )


_PENDING = "pending"
_EVENTS = (Event.VETTING_APPROVED.value, Event.VETTING_REJECTED.value, Event.ADJUST_OUT.value)


def _college() -> ColumnElement[int]:
    return func.sum(case((Nomination.education.in_(COLLEGE_OR_HIGHER), 1), else_=0))


def received_by_township(
    *where: ColumnElement[bool],
) -> Select[int, str, str, int, int, int]:
    """Nominations received, per township, channel and key group, with how many of them
    have 大专 or higher and how many have no education given yet (a recommendation): the
    select stage's intake, for these figures and storage.summary."""
    return (
        select(
            Nomination.township_id,
            Nomination.channel,
            Nomination.key_group,
            func.count(),
            _college(),
            count_when(Nomination.education.is_(None)),
        )
        .where(*where)
        .group_by(Nomination.township_id, Nomination.channel, Nomination.key_group)
    )


async def select_figures(
    session: AsyncSession,
    *,
    township_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> SelectFigures:
    """The select-stage figures of every township (or of one) and their county total.

    Five grouped queries whatever the number of nominations. The caller decides who may see
    which township; pass `township_id` to restrict the figures to one.
    """
    scope: list[ColumnElement[bool]] = []
    if township_id is not None:
        scope.append(Nomination.township_id == township_id)
    township_query = select(Township.id, Township.name).order_by(Township.id)
    if township_id is not None:
        township_query = township_query.where(Township.id == township_id)
    townships = (await session.execute(township_query)).all()
    tallies: dict[int, SelectTally] = {t.id: SelectTally() for t in townships}

    def tally(tid: int) -> SelectTally:
        return tallies.setdefault(tid, SelectTally())

    received = await session.execute(
        received_by_township(*scope, *in_period(Nomination.created_at, since, until))
    )
    for tid, channel, key_group, count, college, _unknown in received.all():
        t = tally(tid)
        t.nominations += count
        t.by_channel[channel] += count
        t.by_key_group[key_group] += count
        t.college_or_higher += int(college or 0)

    stock = await session.execute(
        select(Nomination.township_id, Nomination.status, func.count(), _college())
        .where(*scope)
        .group_by(Nomination.township_id, Nomination.status)
    )
    for tid, status, count, college in stock.all():
        t = tally(tid)
        t.by_status[status] += count
        if status == Status.IN_POOL.value:
            t.pool_college_or_higher += int(college or 0)

    events = await session.execute(
        select(Nomination.township_id, StatusChange.event, func.count())
        .join(Nomination, Nomination.id == StatusChange.nomination_id)
        .where(
            *scope,
            StatusChange.event.in_(_EVENTS),
            *in_period(StatusChange.at, since, until),
        )
        .group_by(Nomination.township_id, StatusChange.event)
    )
    for tid, event, count in events.all():
        tally(tid).events[event] += count

    decision = func.coalesce(VettingReview.decision, _PENDING)
    reviews = await session.execute(
        select(Nomination.township_id, decision, func.count())
        .join(Nomination, Nomination.id == VettingReview.nomination_id)
        .where(
            *scope,
            or_(
                and_(
                    VettingReview.decision.is_(None),
                    Nomination.status == Status.VETTING.value,
                ),
                and_(
                    VettingReview.decision.is_not(None),
                    *in_period(VettingReview.decided_at, since, until),
                ),
            ),
        )
        .group_by(Nomination.township_id, decision)
    )
    for tid, outcome, count in reviews.all():
        tally(tid).reviews[outcome] += count

    names = {t.id: t.name for t in townships}
    total = SelectTally()
    rows = []
    for tid in sorted(tallies):
        total.add(tallies[tid])
        rows.append(tallies[tid].row(tid, names.get(tid)))
    return Figures(since, until, rows, total.row(None, None))


@dataclass(frozen=True, slots=True)
class ManagedNomination:
    id: int
    full_name: str
    status: str


async def managed_nomination(
    session: AsyncSession, actor: Actor, nomination_id: int
) -> ManagedNomination | None:
    """The nomination if the actor may change it (adjust it out), else None.

    Belongs next to `adjust_out` in storage.nominations; kept here until it moves. It applies
    the same SQL scope filter as `adjust_out`, so a button shown is a button allowed. Unlike
    `load_dossier` it is not a read of the file (only the name), so it is not audited.
    """
    row = (
        await session.execute(
            select(Nomination.id, Person.full_name, Nomination.status)
            .join(Person, Person.id == Nomination.person_id)
            .where(Nomination.id == nomination_id, manageable_by(actor))
        )
    ).first()
    if row is None:
        return None
    return ManagedNomination(row.id, row.full_name or "", row.status)
