"""Outcomes (用): elections into the village two committees, awards, publicity, pay.

- An election moves the nomination IN_POOL → ELECTED through the vetting state machine
  (`storage.rules.vetting.transition`, event ELECT) with a StatusChange, like every other move.
  A cadre already elected may get a further election recorded (a new term or position); the
  status then stays ELECTED and no move is written.
- Awards are an award (表彰) or an exemplary-cadre recognition (选树典型).
- Publicity is a media report; it names a cadre, or none (a county-level report, which only
  county officials and admins may record).
- Pay links an annual assessment to performance pay: it is written on the GradeMove of that
  year, which must exist.

Changes are scoped by `manageable_by` (a township official acts in their own township only)
and audited. Functions take a session and never commit.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit, nominations, scoped
from storage import cadres as cadre_list
from storage.cadres import CadreRow
from storage.models import (
    Award,
    Election,
    GradeMove,
    Nomination,
    Publicity,
    Role,
)
from storage.nominations import NotAllowed
from storage.people import Actor
from storage.posts import EARLIEST_DATE
from storage.projects import SHANGHAI, local_day
from storage.rules.identity import RuleError, clean_text
from storage.rules.vetting import Event, Status

OUTCOME_KINDS = ("elected", "award", "exemplary", "publicity", "pay")
AWARD_KINDS = ("award", "exemplary")
# Outcomes are recorded for reserve cadres in the pool or already elected.
CADRE_STATUSES = (Status.IN_POOL.value, Status.ELECTED.value)
POSITION_MIN, POSITION_MAX = 2, 60
AWARD_TITLE_MIN, AWARD_TITLE_MAX = 2, 100
OUTLET_MIN, OUTLET_MAX = 2, 60
PUBLICITY_TITLE_MIN, PUBLICITY_TITLE_MAX = 2, 200
# Annual performance pay, in yuan: far above a village cadre's, inside a 32-bit column.
PAY_MAX_YUAN = 1_000_000


# ---------------------------------------------------------------------------------------------
# Input rules: plain functions.


def _one_line(raw: str, low: int, high: int) -> str:
    return " ".join(clean_text(raw, max_len=high, min_len=low).split())


def clean_position(raw: str) -> str:
    """The position in the two committees (e.g. 村委会委员), 2–60 characters."""
    return _one_line(raw, POSITION_MIN, POSITION_MAX)


def clean_award_title(raw: str) -> str:
    return _one_line(raw, AWARD_TITLE_MIN, AWARD_TITLE_MAX)


def clean_outlet(raw: str) -> str:
    return _one_line(raw, OUTLET_MIN, OUTLET_MAX)


def clean_publicity_title(raw: str) -> str:
    return _one_line(raw, PUBLICITY_TITLE_MIN, PUBLICITY_TITLE_MAX)


def check_past(value: date, today: date) -> date:
    """Outcomes have happened: from 2000 to today (RuleError `date.past`; params min, max)."""
    if not EARLIEST_DATE <= value <= today:
        raise RuleError("date.past", {"min": EARLIEST_DATE.isoformat(), "max": today.isoformat()})
    return value


def parse_pay(raw: str) -> int:
    """Performance pay in whole yuan: "30000", "30,000", "３００００元".

    RuleError `pay.format` (not whole yuan), `pay.negative`, `pay.range` (params max).
    """
    text = unicodedata.normalize("NFKC", raw).strip().replace(" ", "")
    text = text.removesuffix("元")
    if text[:1] in ("-", "−"):
        raise RuleError("pay.negative")
    digits = text.replace(",", "")
    if not digits.isascii() or not digits.isdigit() or len(digits) > 12:
        raise RuleError("pay.format")
    if "," in text and not _grouped(text):
        raise RuleError("pay.format")
    return check_pay(int(digits))


def _grouped(text: str) -> bool:
    head, *groups = text.split(",")
    return 1 <= len(head) <= 3 and all(len(g) == 3 for g in groups)


def check_pay(yuan: int) -> int:
    if yuan < 0:
        raise RuleError("pay.negative")
    if yuan > PAY_MAX_YUAN:
        raise RuleError("pay.range", {"max": PAY_MAX_YUAN})
    return yuan


# ---------------------------------------------------------------------------------------------
# Choosing the cadre.


# A cadre an outcome may be recorded for.
Cadre = CadreRow
# Reserve cadres (pool or elected) in the actor's scope, by township and name: a page of
# them, the one a pressed button names, the nomination locked for a record.
_RECORDABLE = cadre_list.Picker(CADRE_STATUSES)
cadres = _RECORDABLE.page
cadre = _RECORDABLE.one
_locked = _RECORDABLE.locked


def may_record_county_publicity(actor: Actor) -> bool:
    """A report naming no cadre belongs to no township: county officials and admins only."""
    return actor.has(Role.ADMIN, Role.COUNTY_OFFICIAL)


# ---------------------------------------------------------------------------------------------
# Recording.


_Outcome = TypeVar("_Outcome", Election, Award, Publicity)


async def _recorded(session: AsyncSession, actor: Actor, row: _Outcome, **detail: str) -> _Outcome:
    """Store an outcome, audited as `outcome.<its table>` with the cadre it names (if any)."""
    action = f"outcome.{row.__tablename__}"
    return await scoped.added(
        session, row, actor.person_id, action, nomination_id=row.nomination_id, **detail
    )


async def record_election(
    session: AsyncSession,
    actor: Actor,
    nomination_id: int,
    *,
    position: str,
    elected_on: date,
    today: date,
    now: datetime,
) -> Election:
    """Elected into the two committees: the Election row and, from the pool, the ELECT move.

    NotAllowed outside scope or for a nomination neither in the pool nor elected; RuleError for
    the position or a date not in [2000-01-01, today].
    """
    position = clean_position(position)
    check_past(elected_on, today)
    nomination = await _locked(session, actor, nomination_id)
    if nomination.status == Status.IN_POOL.value:
        await nominations.move(session, nomination, Event.ELECT, actor, now=now)
    election = Election(
        nomination_id=nomination.id,
        position=position,
        elected_on=elected_on,
        recorded_by_person_id=actor.person_id,
        created_at=now,
    )
    return await _recorded(session, actor, election)


async def record_award(
    session: AsyncSession,
    actor: Actor,
    nomination_id: int,
    *,
    kind: str,
    title: str,
    awarded_on: date,
    today: date,
) -> Award:
    """An award or an exemplary-cadre recognition (RuleError `award.kind`, title, date)."""
    if kind not in AWARD_KINDS:
        raise RuleError("award.kind")
    title = clean_award_title(title)
    check_past(awarded_on, today)
    nomination = await _locked(session, actor, nomination_id)
    award = Award(
        nomination_id=nomination.id,
        kind=kind,
        title=title,
        awarded_on=awarded_on,
        recorded_by_person_id=actor.person_id,
    )
    return await _recorded(session, actor, award, kind=kind)


async def record_publicity(
    session: AsyncSession,
    actor: Actor,
    nomination_id: int | None,
    *,
    outlet: str,
    title: str,
    published_on: date,
    today: date,
) -> Publicity:
    """A media report on a cadre, or (nomination_id None) a county-level one."""
    outlet = clean_outlet(outlet)
    title = clean_publicity_title(title)
    check_past(published_on, today)
    if nomination_id is None:
        if not may_record_county_publicity(actor):
            raise NotAllowed
        target = None
    else:
        target = (await _locked(session, actor, nomination_id)).id
    publicity = Publicity(
        nomination_id=target,
        outlet=outlet,
        title=title,
        published_on=published_on,
        recorded_by_person_id=actor.person_id,
    )
    return await _recorded(session, actor, publicity)


@dataclass(frozen=True, slots=True)
class YearResult:
    """An annual assessment already recorded, with its pay (None: not linked yet)."""

    year: int
    result: str
    performance_pay_yuan: int | None
    bonus_yuan: int
    subsidy_yuan: int


async def _years(session: AsyncSession, nomination_id: int) -> list[YearResult]:
    rows = await session.execute(
        select(
            GradeMove.year,
            GradeMove.result,
            GradeMove.performance_pay_yuan,
            GradeMove.bonus_yuan,
            GradeMove.subsidy_yuan,
        )
        .where(GradeMove.nomination_id == nomination_id)
        .order_by(GradeMove.year.desc())
    )
    return [YearResult(*r) for r in rows.all()]


async def assessment_years(
    session: AsyncSession, actor: Actor, nomination_id: int
) -> list[YearResult]:
    """The recorded assessment years of a cadre in scope, latest first."""
    await cadre(session, actor, nomination_id)
    return await _years(session, nomination_id)


async def link_pay(
    session: AsyncSession,
    actor: Actor,
    nomination_id: int,
    *,
    year: int,
    pay_yuan: int,
) -> YearResult:
    """Write the performance pay tied to that year's assessment result.

    RuleError `pay.no_result` (params year) when no result is recorded for the year; a value
    already there is replaced (the audit row keeps the previous one).
    """
    check_pay(pay_yuan)
    nomination = await _locked(session, actor, nomination_id)
    move = await session.scalar(
        select(GradeMove)
        .where(GradeMove.nomination_id == nomination.id, GradeMove.year == year)
        .with_for_update()
    )
    if move is None:
        raise RuleError("pay.no_result", {"year": year})
    previous = move.performance_pay_yuan
    move.performance_pay_yuan = pay_yuan
    await session.flush()
    await audit.record(
        session,
        actor.person_id,
        "outcome.pay",
        "grade_move",
        move.id,
        nomination_id=nomination.id,
        year=year,
        previous_yuan=previous,
        pay_yuan=pay_yuan,
    )
    return YearResult(move.year, move.result, pay_yuan, move.bonus_yuan, move.subsidy_yuan)


# ---------------------------------------------------------------------------------------------
# Figures for the summaries.


@dataclass(frozen=True, slots=True)
class OutcomeFigureRow:
    """Outcomes of one township, or of the county when township_id is None, dated in the period.

    `elections`: election records; `elected`: distinct cadres elected; `awards` by kind
    (award, exemplary) and their total; `publicity`: media reports. The county row's
    publicity includes `county_publicity`, the reports naming no cadre.
    """

    township_id: int | None
    township: str | None
    elections: int = 0
    elected: int = 0
    awards: int = 0
    by_award_kind: Mapping[str, int] = field(default_factory=dict)
    publicity: int = 0
    county_publicity: int = 0


OutcomeFigures = scoped.Figures[OutcomeFigureRow]


def _day_after(until: date | datetime) -> date:
    """The first day not in a period ending at `until` (exclusive for days and midnights)."""
    day = local_day(until)
    if isinstance(until, datetime) and until.astimezone(SHANGHAI).time() != time():
        return day + timedelta(days=1)
    return day


async def outcome_figures(
    session: AsyncSession,
    *,
    township_id: int | None = None,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
) -> OutcomeFigures:
    """Elections, awards and publicity per township (zeros included) and for the county.

    Two queries: one grouped per township, one for the county (distinct cadres elected, and
    the reports naming no cadre). The period [since, until) applies to the outcome's own date
    (a datetime is taken as its Shanghai day). A datetime `until` in the middle of a day counts
    that whole day: outcomes are dated, not timed, so one dated today happened before "now".
    Pass `township_id` to restrict to one township; the total is then that township's. The
    caller decides who may see which township.
    """
    day_since = local_day(since) if since is not None else None
    day_until = _day_after(until) if until is not None else None
    elected_in = scoped.in_period(Election.elected_on, day_since, day_until)
    awarded_in = scoped.in_period(Award.awarded_on, day_since, day_until)
    published_in = scoped.in_period(Publicity.published_on, day_since, day_until)
    elections = (
        # The election carries its nomination's township (kept by a trigger, storage/tally.py).
        select(
            Election.township_id.label("tid"),
            func.count(Election.id).label("elections"),
            func.count(func.distinct(Election.nomination_id)).label("elected"),
        )
        .where(
            *elected_in,
            *([] if township_id is None else [Election.township_id == township_id]),
        )
        .group_by(Election.township_id)
        .subquery()
    )
    awards = (
        select(
            Nomination.township_id.label("tid"),
            func.count(Award.id).label("awards"),
            *scoped.counts_of(Award.kind, AWARD_KINDS),
        )
        .join(Nomination, Nomination.id == Award.nomination_id)
        .where(*awarded_in)
        .group_by(Nomination.township_id)
        .subquery()
    )
    publicity = (
        select(Nomination.township_id.label("tid"), func.count(Publicity.id).label("publicity"))
        .join(Nomination, Nomination.id == Publicity.nomination_id)
        .where(*published_in)
        .group_by(Nomination.township_id)
        .subquery()
    )
    county = {
        "elections": select(func.count(Election.id)).where(*elected_in),
        "elected": select(func.count(func.distinct(Election.nomination_id))).where(*elected_in),
        "awards": select(func.count(Award.id)).where(*awarded_in),
        "publicity": select(func.count(Publicity.id)).where(*published_in),
        "county_publicity": select(func.count(Publicity.id)).where(
            Publicity.nomination_id.is_(None), *published_in
        ),
        **{
            k: select(func.count(Award.id)).where(Award.kind == k, *awarded_in)
            for k in AWARD_KINDS
        },
    }
    return await scoped.figures(
        session,
        township_id,
        (day_since, day_until),
        (elections, awards, publicity),
        county,
        OutcomeFigureRow,
        ("by_award_kind", AWARD_KINDS),
    )


# ---------------------------------------------------------------------------------------------
# The dossier.


@dataclass(frozen=True, slots=True)
class ElectionRow:
    position: str
    elected_on: date


@dataclass(frozen=True, slots=True)
class AwardRow:
    kind: str
    title: str
    awarded_on: date


@dataclass(frozen=True, slots=True)
class PublicityRow:
    outlet: str
    title: str
    published_on: date


@dataclass(frozen=True, slots=True)
class OutcomeSection:
    """The outcomes part of a dossier, each list latest first; `pay` is the assessment years
    with their performance pay (None where not linked), bonus and grade subsidy."""

    nomination_id: int
    elections: list[ElectionRow] = field(default_factory=list)
    awards: list[AwardRow] = field(default_factory=list)
    publicity: list[PublicityRow] = field(default_factory=list)
    pay: list[YearResult] = field(default_factory=list)


async def dossier_section(session: AsyncSession, nomination_id: int) -> OutcomeSection:
    """Elections, awards, publicity and pay of one cadre.

    No scope check here: the dossier's caller has checked that the actor may read the file
    (`nominations.load_dossier`), and that read is audited.
    """
    elections = await session.execute(
        select(Election.position, Election.elected_on)
        .where(Election.nomination_id == nomination_id)
        .order_by(Election.elected_on.desc(), Election.id.desc())
    )
    awards = await session.execute(
        select(Award.kind, Award.title, Award.awarded_on)
        .where(Award.nomination_id == nomination_id)
        .order_by(Award.awarded_on.desc(), Award.id.desc())
    )
    publicity = await session.execute(
        select(Publicity.outlet, Publicity.title, Publicity.published_on)
        .where(Publicity.nomination_id == nomination_id)
        .order_by(Publicity.published_on.desc(), Publicity.id.desc())
    )
    return OutcomeSection(
        nomination_id,
        [ElectionRow(*r) for r in elections.all()],
        [AwardRow(*r) for r in awards.all()],
        [PublicityRow(*r) for r in publicity.all()],
        await _years(session, nomination_id),
    )
