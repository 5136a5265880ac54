"""Push summaries (督查简报): the pipeline in the seed article's numbers, and who gets them when.

`build_summary` assembles one scope's figures (the county, or one township) from grouped SQL
only; Python adds up per-township rows, never rows of people or talks. It uses the storage
modules' counts where they are cheap (posts, trainings, recognition) and its own grouped
queries for the rest: projects, funds, income, elections and unreachable people, which no
module counts, and the select-stage and mentoring figures, which keep storage.figures' and
storage.mentoring.talk_counts' definitions (a test checks they agree) but are shaped for a
county of a million nominations (issue 5: under 1 s county-wide, 100 ms for a township):
- the stocks (status, pool education share, pairings, cadres paired), talks held and the
  cadence of pairings already talked in come from the tallies that triggers keep in every
  writing transaction (storage/tally.py): a few thousand rows, not millions;
- the other figures filter on the township that each fact row carries (also kept by a
  trigger), so one township is an index range, never a join to every nomination;
- the overdue count per mentor is the one scan left: county-wide, of the covering index
  ix_pairing_mentor (~0.1 s at 800,000 pairings); for a township, of its range of the
  partial index of active pairings (see `_mentoring_stage`).

Definitions, for a period [since, until):
- flow figures count what happened in the period: nominations received, vetting approved /
  rejected, trainings started and their person-times, talks held (talk dates, county days),
  difficulties raised / resolved, collective income reported (report dates), elections
  (election dates), grade moves of the latest assessment year up to the period's year;
- stock figures are as of `now`: pool size and its structure, vetting pending, pairings
  ("2+1" groups and their mentors), talks due soon / overdue, open difficulties, active
  practice posts, projects with their funds and lead cadres, unreachable people;
- a past period asked for by its dates (`stocks_at_end`, `cadrebot summary --until`) takes its
  stocks as of its end instead, rebuilt from dated facts (status changes, pairing and post
  dates, difficulty, project, report and election dates); what no dated fact can rebuild
  (talks due and overdue, projects done, unreachable people) is left out (`past`) and the
  text says so. Those rebuilt stocks are read from the fact rows, not the tallies: a past
  summary is an operator's question, not the bot's weekly push.
A period ending mid-day counts that day's dated records (talks, reports, elections): they
cannot be dated in the future, so they happened before `until`.

Schedules: each official gets a summary per period of their cadence (weekly: ISO week,
"2026-W48"; monthly: "2026-11") once their chosen moment of that period has passed in county
time. The summary sent in period P reports the calendar period before P. `claim_period`
makes "once" hold across ticks, restarts and processes; the outbox key is the second guard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Subquery, and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import grades, mentoring, outcomes, posts, trainings
from storage.db import upsert
from storage.figures import SelectTally, received_by_township
from storage.models import (
    CadenceTally,
    County,
    Difficulty,
    Election,
    GradeMove,
    Nomination,
    NominationTally,
    Pairing,
    Person,
    Project,
    ProjectLead,
    ProjectReport,
    Role,
    RoleGrant,
    StatusChange,
    SummarySchedule,
    TalkTally,
    TelegramAccount,
    Township,
    Village,
)
from storage.people import Actor, Grant
from storage.rules.cadence import due_threshold, local_date, overdue_threshold
from storage.rules.options import COLLEGE_OR_HIGHER, CollegeShares
from storage.rules.vetting import Event, Status
from storage.scoped import count_when

TOP_MENTORS = 5
# People still in the pipeline: an unreachable one is someone an official must chase.
LIVE_STATUSES = (
    Status.NEW.value,
    Status.CONTACTED.value,
    Status.VETTING.value,
    Status.IN_POOL.value,
    Status.ELECTED.value,
)
FUNNEL_STEPS = ("nominated", "vetted", "pool", "paired", "elected")
# Party members as organization departments count them: 中共党员, 预备党员 included.
PARTY_MEMBERS = ("party_member", "probationary")
YOUNG_AGE = 35
# Villages without a reserve cadre named in the text; the rest are counted.
VILLAGES_NAMED = 10
EVENTS = (Event.VETTING_APPROVED.value, Event.VETTING_REJECTED.value, Event.ADJUST_OUT.value)


@dataclass(frozen=True, slots=True)
class TownshipLine:
    """One township's figures for the chart: talks held in the period against talks due."""

    township_id: int
    township: str
    nominations: int
    pool: int
    cadres_paired: int
    talks_held: int
    talks_due_soon: int
    talks_overdue: int


@dataclass(frozen=True, slots=True)
class OverdueMentor:
    person_id: int
    name: str | None
    overdue: int


@dataclass(frozen=True, slots=True)
class PoolStructure:
    """The pool's structure at the stock moment, as an organization department reports it:
    under 35, women, party members, and education (unknown education counted apart and left
    out of the 大专-or-higher share, never taken as below 大专)."""

    under_35: int = 0
    women: int = 0
    party_members: int = 0
    college_or_higher: int = 0
    education_unknown: int = 0


@dataclass(frozen=True, slots=True)
class TrainingFigures:
    """Sessions started in the period and their person-times (人次), per kind and in all."""

    sessions: int = 0
    person_times: int = 0
    sessions_by_kind: Mapping[str, int] = field(default_factory=dict)
    person_times_by_kind: Mapping[str, int] = field(default_factory=dict)

    @property
    def integrity_visits(self) -> int:
        return self.sessions_by_kind.get("integrity", 0)

    @property
    def classes(self) -> int:
        """Training classes, the article's "20余期": every kind but integrity visits."""
        return self.sessions - self.integrity_visits

    @property
    def class_person_times(self) -> int:
        return self.person_times - self.person_times_by_kind.get("integrity", 0)


@dataclass(frozen=True, slots=True)
class Summary(CollegeShares):
    """One scope's summary. `township_id` None is the county; `scope_name` names either."""

    township_id: int | None
    scope_name: str
    since: datetime
    until: datetime
    now: datetime
    # Select (选).
    nominations: int
    by_channel: Mapping[str, int]
    by_key_group: Mapping[str, int]
    college_or_higher: int
    by_status: Mapping[str, int]
    vetting_pending: int
    vetting_approved: int
    vetting_rejected: int
    pool: int
    pool_college_or_higher: int
    adjusted_out: int
    # Cultivate (育).
    trainings: TrainingFigures | None
    pairings: int
    cadres_paired: int
    posts_active: int
    posts_active_by_kind: Mapping[str, int]
    # Manage (管).
    talks_held: int
    talks_due_soon: int
    talks_overdue: int
    overdue_mentors: tuple[OverdueMentor, ...]
    difficulties_raised: int
    difficulties_resolved: int
    difficulties_open: int
    grade_year: int | None
    grade_promoted: int
    grade_demoted: int
    grade_stayed: int
    # Use (用).
    projects: int
    projects_done: int
    project_leads: int
    funds_yuan: int
    income_yuan: int
    income_total_yuan: int
    elected: int
    elected_total: int
    # Who cannot be reached (blocked the bot).
    unreachable_candidates: int
    unreachable_mentors: int
    # Recognition in the period: awards and exemplary titles, media reports (宣传报道).
    awards: int = 0
    publicity: int = 0
    townships: tuple[TownshipLine, ...] = ()
    # "2+1" as a county counts it: groups (one per cadre paired, `cadres_paired`) and the
    # distinct mentors of their active pairings.
    mentors: int = 0
    # Cadres given a mentor in the period (the period's funnel).
    paired_in_period: int = 0
    # Nominations received in the period whose education nobody has given yet.
    education_unknown: int = 0
    structure: PoolStructure = PoolStructure()
    villages: int = 0
    villages_without_cadre: int = 0
    villages_without_cadre_named: tuple[str, ...] = ()
    # Stocks as of a past period's end: the ones no dated fact rebuilds are left out.
    past: bool = False

    @property
    def selected(self) -> int:
        """Cadres selected into the pool in the period (the article's "精心选拔了754名"):
        joint vetting's approvals, the one way into the pool."""
        return self.vetting_approved

    @property
    def key_groups_ranked(self) -> tuple[tuple[str, int], ...]:
        """Nominations of the period per key group, largest first."""
        return tuple(sorted(self.by_key_group.items(), key=lambda item: (-item[1], item[0])))

    @property
    def funnel(self) -> tuple[tuple[str, int], ...]:
        """The period's pipeline: nominated → through vetting → into the pool → given a
        mentor → elected, each counted when it happened in the period."""
        return (
            ("nominated", self.nominations),
            ("vetted", self.vetting_approved + self.vetting_rejected),
            ("pool", self.selected),
            ("paired", self.paired_in_period),
            ("elected", self.elected),
        )


def key_figures(summary: Summary) -> dict[str, int]:
    """The stock figures a later summary compares with ("▲3 since the last summary"): those
    the text shows with their change, and no others, so that a change hint is never printed
    for a difference the text does not show.

    Stocks only: a period's flow (talks this week) is not comparable with a different
    period's, and an on-demand summary covers part of a period.
    """
    return {
        "pool": summary.pool,
        "vetting_pending": summary.vetting_pending,
        "cadres_paired": summary.cadres_paired,
        "talks_due_soon": summary.talks_due_soon,
        "talks_overdue": summary.talks_overdue,
        "difficulties_open": summary.difficulties_open,
        "projects": summary.projects,
        "income_total_yuan": summary.income_total_yuan,
        "elected_total": summary.elected_total,
    }


def changes(current: Mapping[str, int], previous: Mapping[str, Any] | None) -> dict[str, int]:
    """The non-zero differences from the previous key figures (a zero is no change to show);
    empty when there are none."""
    if not previous:
        return {}
    differences = {
        name: value - int(previous[name])
        for name, value in current.items()
        if isinstance(previous.get(name), int)
    }
    return {name: difference for name, difference in differences.items() if difference}


def scope_key(township_id: int | None) -> str:
    return "county" if township_id is None else f"township:{township_id}"


# ---------------------------------------------------------------------------------------------
# Building a summary.


def _local_midnight_ceiling(moment: datetime, tz: ZoneInfo) -> datetime:
    """`moment` if it is a county midnight, else the next one (dated records count whole days)."""
    local = moment.astimezone(tz)
    if local.time() == time():
        return moment
    return datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=tz)


def _scope_actor(township_id: int | None) -> Actor:
    """An official of exactly this scope, for the storage functions that count by actor."""
    if township_id is None:
        grant = Grant(Role.COUNTY_OFFICIAL, None, None, None)
    else:
        grant = Grant(Role.TOWNSHIP_OFFICIAL, township_id, None, None)
    return Actor(person_id=0, telegram_id=0, grants=(grant,))


def _in_scope(column: Any, township_id: int | None) -> list[ColumnElement[bool]]:
    return [] if township_id is None else [column == township_id]


async def _scope_name(session: AsyncSession, township_id: int | None) -> str:
    if township_id is None:
        name = await session.scalar(select(County.name).order_by(County.id).limit(1))
    else:
        name = await session.scalar(select(Township.name).where(Township.id == township_id))
    return name or ""


async def _training_figures(
    session: AsyncSession, township_id: int | None, since: datetime, until: datetime
) -> TrainingFigures:
    rows = await trainings.counts_by_kind(
        session, _scope_actor(township_id), since=since, until=until
    )
    by_kind = {r.kind: r.sessions for r in rows if r.kind is not None}
    times = {r.kind: r.person_times for r in rows if r.kind is not None}
    return TrainingFigures(sum(by_kind.values()), sum(times.values()), by_kind, times)


async def _use_figures(
    session: AsyncSession,
    township_id: int | None,
    day_since: date,
    day_until: date,
    past_end: datetime | None,
) -> tuple[int, int, int, int, int, int, int, int]:
    """Projects (all, done), distinct lead cadres, funds, income (period, up to its end),
    elections (period, up to its end). Three scoped aggregate queries; distinct leads are
    counted over the whole scope, so a cadre leading projects in two townships is one cadre.
    At a past period's end, the projects are those created by then."""
    scope = _in_scope(Village.township_id, township_id)
    if past_end is not None:
        scope.append(Project.created_at < past_end)
    projects, done, funds = (
        await session.execute(
            select(
                func.count(Project.id),
                count_when(Project.status == "done"),
                func.coalesce(func.sum(Project.funds_yuan), 0),
            )
            .join(Village, Village.id == Project.village_id)
            .where(*scope)
        )
    ).one()
    leads = await session.scalar(
        select(func.count(func.distinct(ProjectLead.nomination_id)))
        .join(Project, Project.id == ProjectLead.project_id)
        .join(Village, Village.id == Project.village_id)
        .where(*scope)
    )
    in_period = and_(ProjectReport.report_date >= day_since, ProjectReport.report_date < day_until)
    income, income_total = (
        await session.execute(
            select(
                func.coalesce(func.sum(case((in_period, ProjectReport.income_yuan), else_=0)), 0),
                func.coalesce(func.sum(ProjectReport.income_yuan), 0),
            )
            .join(Project, Project.id == ProjectReport.project_id)
            .join(Village, Village.id == Project.village_id)
            .where(*scope, ProjectReport.report_date < day_until)
        )
    ).one()
    elections = select(
        count_when(Election.elected_on >= day_since),
        func.count(),
    ).where(Election.elected_on < day_until, *_in_scope(Election.township_id, township_id))
    elected, elected_total = (await session.execute(elections)).one()
    return (
        int(projects),
        int(done),
        int(leads or 0),
        int(funds),
        int(income),
        int(income_total),
        int(elected),
        int(elected_total),
    )


async def _difficulty_figures(
    session: AsyncSession,
    township_id: int | None,
    since: datetime,
    until: datetime,
    past_end: datetime | None,
) -> tuple[int, int, int]:
    """Difficulties raised and resolved in the period, open now (or at a past period's end):
    storage.mentoring's difficulty_counts definitions in one pass; a township's from
    ix_difficulty_township alone (the row carries its township)."""
    open_then: ColumnElement[bool] = Difficulty.status == mentoring.OPEN
    if past_end is not None:
        open_then = and_(
            Difficulty.raised_at < past_end,
            or_(Difficulty.resolved_at.is_(None), Difficulty.resolved_at >= past_end),
        )
    query = select(
        count_when(and_(Difficulty.raised_at >= since, Difficulty.raised_at < until)),
        count_when(
            and_(
                Difficulty.status == mentoring.RESOLVED,
                Difficulty.resolved_at >= since,
                Difficulty.resolved_at < until,
            )
        ),
        count_when(open_then),
    )
    query = query.where(*_in_scope(Difficulty.township_id, township_id))
    raised, resolved, still_open = (await session.execute(query)).one()
    return int(raised), int(resolved), int(still_open)


async def _grade_figures(
    session: AsyncSession, township_id: int | None, period_year: int
) -> tuple[int | None, int, int, int]:
    """The latest assessment year with results up to `period_year`, and its promotions,
    demotions and stays: storage.grades.move_counts' definitions, grouped by year only.
    Read from ix_grade_move_year alone, or ix_grade_move_township for one township."""
    query = (
        select(
            GradeMove.year,
            *grades.move_kind_counts(),
        )
        .where(GradeMove.year <= period_year)
        .group_by(GradeMove.year)
        .order_by(GradeMove.year.desc())
    )
    query = query.where(*_in_scope(GradeMove.township_id, township_id))
    latest = (await session.execute(query)).first()
    if latest is None:
        return None, 0, 0, 0
    year, promoted, demoted, stayed = latest
    return int(year), int(promoted), int(demoted), int(stayed)


@dataclass(slots=True)
class _Select(SelectTally):
    """Select-stage totals of the scope (storage.figures' counters; `reviews` stays empty: a
    summary shows vetting per nomination) and the per-township figures the chart needs."""

    education_unknown: int = 0
    nominations_by_township: dict[int, int] = field(default_factory=dict)
    pool_by_township: dict[int, int] = field(default_factory=dict)
    # Active pairings (not ended, cadre in the pool), cadres with at least one ("2+1"
    # groups), and the distinct mentors of those pairings.
    pairings: dict[int, int] = field(default_factory=dict)
    cadres: dict[int, int] = field(default_factory=dict)
    mentors: int = 0


def _add(counts: dict[Any, int], key: Any, n: int) -> None:
    counts[key] = counts.get(key, 0) + int(n)


# What the pool's structure and its villages are read from, for each file.
_POOL_FACTS = (
    Nomination.id,
    Nomination.township_id,
    Nomination.village_id,
    Nomination.education,
    Nomination.gender,
    Nomination.birth_date,
    Nomination.political_status,
)


def _statuses_at(moment: datetime, township_id: int | None) -> Subquery:
    """Nominations received before `moment` with their status then: the latest status
    change before it, or `new` (a file's first change is its submission)."""
    ranked = (
        select(
            StatusChange.nomination_id,
            StatusChange.to_status,
            func.row_number()
            .over(
                partition_by=StatusChange.nomination_id,
                order_by=(StatusChange.at.desc(), StatusChange.id.desc()),
            )
            .label("rank"),
        )
        .where(StatusChange.at < moment, *_in_scope(StatusChange.township_id, township_id))
        .subquery()
    )
    return (
        select(
            *_POOL_FACTS,
            func.coalesce(ranked.c.to_status, Status.NEW.value).label("status"),
        )
        .outerjoin(ranked, and_(ranked.c.nomination_id == Nomination.id, ranked.c.rank == 1))
        .where(Nomination.created_at < moment, *_in_scope(Nomination.township_id, township_id))
        .subquery()
    )


def _pool_rows(township_id: int | None, past_end: datetime | None) -> Subquery:
    """The pool's nominations at the stock moment: now, or at a past period's end."""
    if past_end is not None:
        rows = _statuses_at(past_end, township_id)
        return select(rows).where(rows.c.status == Status.IN_POOL.value).subquery()
    return (
        select(*_POOL_FACTS)
        .where(
            Nomination.status == Status.IN_POOL.value,
            *_in_scope(Nomination.township_id, township_id),
        )
        .subquery()
    )


async def _stocks_at(
    session: AsyncSession, result: _Select, township_id: int | None, moment: datetime
) -> None:
    """The status stock, the pool's education share, pairings and mentors as of a past
    `moment`, rebuilt from status changes and pairing dates (the tallies hold only now)."""
    rows = _statuses_at(moment, township_id)
    college = count_when(rows.c.education.in_(COLLEGE_OR_HIGHER))
    stock = await session.execute(
        select(rows.c.township_id, rows.c.status, func.count(), college).group_by(
            rows.c.township_id, rows.c.status
        )
    )
    for tid, status, n, college_n in stock.all():
        _add(result.by_status, status, n)
        if status == Status.IN_POOL.value:
            _add(result.pool_by_township, int(tid), n)
            result.pool_college_or_higher += int(college_n)
    active = and_(
        rows.c.status == Status.IN_POOL.value,
        Pairing.assigned_at < moment,
        or_(Pairing.ended_at.is_(None), Pairing.ended_at >= moment),
    )
    paired = await session.execute(
        select(Pairing.township_id, func.count(), func.count(func.distinct(Pairing.nomination_id)))
        .join(rows, rows.c.id == Pairing.nomination_id)
        .where(active)
        .group_by(Pairing.township_id)
    )
    for tid, pairings, cadres in paired.all():
        # A pairing carries its cadre's township (a trigger keeps it): never None here.
        _add(result.pairings, int(tid or 0), pairings)
        _add(result.cadres, int(tid or 0), cadres)
    mentors = await session.scalar(
        select(func.count(func.distinct(Pairing.mentor_person_id)))
        .join(rows, rows.c.id == Pairing.nomination_id)
        .where(active)
    )
    result.mentors = int(mentors or 0)


async def _stocks_now(session: AsyncSession, result: _Select, township_id: int | None) -> None:
    """The status stock, education share and pairings from nomination_tally (a few hundred
    rows, however many nominations); mentors from the active pairings' indexes."""
    stock = await session.execute(
        select(
            NominationTally.township_id,
            NominationTally.status,
            NominationTally.college,
            NominationTally.active_pairings,
            func.sum(NominationTally.n),
        )
        .where(*_in_scope(NominationTally.township_id, township_id), NominationTally.n != 0)
        .group_by(
            NominationTally.township_id,
            NominationTally.status,
            NominationTally.college,
            NominationTally.active_pairings,
        )
    )
    for tid, status, college, active, n in stock.all():
        _add(result.by_status, status, n)
        if status == Status.IN_POOL.value:
            _add(result.pool_by_township, int(tid), n)
            if college:
                result.pool_college_or_higher += int(n)
            if active:
                _add(result.pairings, int(tid), int(n) * int(active))
                _add(result.cadres, int(tid), n)
    mentors = await session.scalar(
        select(func.count(func.distinct(Pairing.mentor_person_id))).where(
            *_active_pairing(), *_in_scope(Pairing.township_id, township_id)
        )
    )
    result.mentors = int(mentors or 0)


async def _select_stage(
    session: AsyncSession,
    township_id: int | None,
    since: datetime,
    until: datetime,
    past_end: datetime | None,
) -> _Select:
    """storage.figures' definitions, without its per-department review counts (a summary
    shows vetting per nomination); the stocks as of now, or as of `past_end`."""
    result = _Select()
    received = await session.execute(
        received_by_township(
            *_in_scope(Nomination.township_id, township_id),
            Nomination.created_at >= since,
            Nomination.created_at < until,
        )
    )
    for tid, channel, key_group, n, college, unknown in received.all():
        result.nominations += int(n)
        # A group always has rows, so its SUM is never NULL; `or 0` is for the type.
        result.college_or_higher += int(college or 0)
        result.education_unknown += int(unknown)
        _add(result.by_channel, channel, n)
        _add(result.by_key_group, key_group, n)
        _add(result.nominations_by_township, tid, n)
    if past_end is None:
        await _stocks_now(session, result, township_id)
    else:
        await _stocks_at(session, result, township_id, past_end)
    events = (
        select(StatusChange.event, func.count())
        .where(StatusChange.event.in_(EVENTS), StatusChange.at >= since, StatusChange.at < until)
        .where(*_in_scope(StatusChange.township_id, township_id))
        .group_by(StatusChange.event)
    )
    for name, n in (await session.execute(events)).all():
        _add(result.events, name, n)
    return result


async def _pool_structure(
    session: AsyncSession, township_id: int | None, past_end: datetime | None, day: date
) -> PoolStructure:
    """Under 35 on `day`, women, party members and education of the pool, in one pass."""
    pool = _pool_rows(township_id, past_end)
    # Under 35 on `day`: born after the day 35 years before (29 February → 28th).
    try:
        born_after = day.replace(year=day.year - YOUNG_AGE)
    except ValueError:
        born_after = day.replace(year=day.year - YOUNG_AGE, day=28)
    row = (
        await session.execute(
            select(
                count_when(pool.c.birth_date > born_after),
                count_when(pool.c.gender == "female"),
                count_when(pool.c.political_status.in_(PARTY_MEMBERS)),
                count_when(pool.c.education.in_(COLLEGE_OR_HIGHER)),
                count_when(pool.c.education.is_(None)),
            )
        )
    ).one()
    return PoolStructure(*(int(n) for n in row))


async def _villages_without_cadre(
    session: AsyncSession, township_id: int | None, past_end: datetime | None
) -> tuple[int, int, tuple[str, ...]]:
    """Villages in scope, how many have nobody in the pool, and the first of them by name."""
    pool = _pool_rows(township_id, past_end)
    covered = select(pool.c.village_id).where(pool.c.village_id.is_not(None))
    scope = _in_scope(Village.township_id, township_id)
    villages = await session.scalar(select(func.count()).select_from(Village).where(*scope))
    empty = (
        select(Township.name, Village.name)
        .join(Township, Township.id == Village.township_id)
        .where(*scope, Village.id.not_in(covered))
        .order_by(Township.id, Village.id)
    )
    found = (await session.execute(empty)).all()
    # In a township's summary the township goes without saying.
    named = tuple(
        village if township_id is not None else f"{township}{village}"
        for township, village in found[:VILLAGES_NAMED]
    )
    return int(villages or 0), len(found), named


@dataclass(slots=True)
class _Mentoring:
    held: dict[int, int] = field(default_factory=dict)
    due_or_overdue: dict[int, int] = field(default_factory=dict)
    overdue: dict[int, int] = field(default_factory=dict)
    top_overdue_mentors: list[tuple[int, int]] = field(default_factory=list)


def _active_pairing() -> tuple[ColumnElement[bool], ...]:
    # Spelled as ix_pairing_active_township's predicate (in_pool = 1 / in_pool), so that both
    # engines can read that partial index. in_pool is kept by a trigger on the nomination.
    return (Pairing.ended_at.is_(None), Pairing.in_pool == True)  # noqa: E712


async def _mentoring_stage(
    session: AsyncSession,
    township_id: int | None,
    *,
    day_since: date,
    day_until: date,
    now: datetime,
    tz: ZoneInfo,
    every_days: int,
    soon_days: int,
) -> _Mentoring:
    """storage.mentoring's talk_counts definitions, per township, plus overdue per mentor.

    Talks held and the cadence of pairings that have had a talk come from talk_tally and
    cadence_tally; pairings never talked in yet from ix_pairing_cadence; the overdue count
    per mentor from ix_pairing_mentor (county) or ix_pairing_active_township, read from the
    index alone.
    """
    result = _Mentoring()
    held = await session.execute(
        select(TalkTally.township_id, func.sum(TalkTally.n))
        .where(
            *_in_scope(TalkTally.township_id, township_id),
            TalkTally.talk_date >= day_since,
            TalkTally.talk_date < day_until,
        )
        .group_by(TalkTally.township_id)
    )
    result.held = {int(t): int(n) for t, n in held.all() if n}

    today = local_date(now, tz)
    due_day = due_threshold(today, every_days=every_days, soon_days=soon_days)
    overdue_day = overdue_threshold(today, every_days=every_days)
    # Overdue pairings are a subset of the due ones (overdue_day <= due_day): one pass each.
    talked = await session.execute(
        select(
            CadenceTally.township_id,
            func.sum(CadenceTally.n),
            func.sum(case((CadenceTally.last_talk_on <= overdue_day, CadenceTally.n), else_=0)),
        )
        .where(
            *_in_scope(CadenceTally.township_id, township_id),
            CadenceTally.last_talk_on <= due_day,
        )
        .group_by(CadenceTally.township_id)
    )
    never = await session.execute(
        select(
            Pairing.township_id,
            func.count(),
            count_when(Pairing.assigned_at < mentoring.local_midnight_after(overdue_day, tz)),
        )
        .where(
            *_active_pairing(),
            *_in_scope(Pairing.township_id, township_id),
            Pairing.last_talk_on.is_(None),
            Pairing.assigned_at < mentoring.local_midnight_after(due_day, tz),
        )
        .group_by(Pairing.township_id)
    )
    for tid, due, overdue in (*talked.all(), *never.all()):
        _add(result.due_or_overdue, int(tid), due or 0)
        _add(result.overdue, int(tid), overdue or 0)
    overdue_count = func.count().label("overdue")
    mentors = await session.execute(
        select(Pairing.mentor_person_id, overdue_count)
        .where(
            *_active_pairing(),
            *_in_scope(Pairing.township_id, township_id),
            mentoring.base_at_most(overdue_day, tz),
        )
        .group_by(Pairing.mentor_person_id)
        .order_by(overdue_count.desc(), Pairing.mentor_person_id)
        .limit(TOP_MENTORS)
    )
    result.top_overdue_mentors = [(int(m), int(n)) for m, n in mentors.all()]
    return result


async def _top_mentors(
    session: AsyncSession, top: list[tuple[int, int]]
) -> tuple[OverdueMentor, ...]:
    if not top:
        return ()
    names = dict(
        (
            await session.execute(
                select(Person.id, Person.full_name).where(Person.id.in_([p for p, _ in top]))
            )
        ).all()
    )
    return tuple(OverdueMentor(p, names.get(p), n) for p, n in top)


async def unreachable_counts(
    session: AsyncSession, *, township_id: int | None = None
) -> tuple[int, int]:
    """People in scope who blocked the bot: candidates still in the pipeline, active mentors."""
    # One account per person: counting accounts counts people. EXISTS, not a join, so that
    # the few blocked accounts (ix_telegram_account_unreachable) drive the query, not the
    # township's nominations.
    live_nomination = (
        select(Nomination.id)
        .where(
            Nomination.person_id == TelegramAccount.person_id,
            Nomination.status.in_(LIVE_STATUSES),
            *_in_scope(Nomination.township_id, township_id),
        )
        .exists()
    )
    candidates = await session.scalar(
        select(func.count()).where(TelegramAccount.unreachable_at.is_not(None), live_nomination)
    )
    mentors = await session.scalar(
        select(func.count(func.distinct(TelegramAccount.person_id)))
        .join(RoleGrant, RoleGrant.person_id == TelegramAccount.person_id)
        .where(
            TelegramAccount.unreachable_at.is_not(None),
            RoleGrant.role == Role.MENTOR.value,
            RoleGrant.revoked_at.is_(None),
            *_in_scope(RoleGrant.township_id, township_id),
        )
    )
    return int(candidates or 0), int(mentors or 0)


async def build_summary(
    session: AsyncSession,
    *,
    township_id: int | None,
    since: datetime,
    until: datetime,
    now: datetime,
    tz: ZoneInfo,
    talk_every_days: int,
    talk_soon_days: int,
    stocks_at_end: bool = False,
) -> Summary:
    """The summary of a scope (county when `township_id` is None) for [since, until), with
    its stocks as of now, or, with `stocks_at_end` and a period that has ended, as of its end.

    The caller decides who may see which scope. About twenty grouped queries, whatever the
    number of people and talks.
    """
    dated_until = _local_midnight_ceiling(until, tz)
    day_since, day_until = local_date(since, tz), local_date(dated_until, tz)
    past_end = until if stocks_at_end and until < now else None
    # The day the stocks are of: today, or a past period's last day.
    stock_day = local_date(now if past_end is None else until - timedelta(microseconds=1), tz)

    chosen = await session.execute(
        select(Township.id, Township.name)
        .where(*_in_scope(Township.id, township_id))
        .order_by(Township.id)
    )
    townships = [(int(i), str(n)) for i, n in chosen.all()]
    stage = await _select_stage(session, township_id, since, until, past_end)
    talks = await _mentoring_stage(
        session,
        township_id,
        day_since=day_since,
        day_until=day_until,
        now=now,
        tz=tz,
        every_days=talk_every_days,
        soon_days=talk_soon_days,
    )
    if past_end is not None:
        # Talks due and overdue are read from each pairing's latest talk, which is today's:
        # no dated fact gives them as of a past day, so a past period leaves them out.
        talks.due_or_overdue, talks.overdue, talks.top_overdue_mentors = {}, {}, []
    raised, resolved, still_open = await _difficulty_figures(
        session, township_id, since, until, past_end
    )
    active_by_kind: dict[str, int] = {}
    for row in await posts.post_counts(session, today=stock_day, township_id=township_id):
        for kind, n in row.active_by_kind.items():
            if n:
                _add(active_by_kind, kind, n)

    period_year = (dated_until - timedelta(microseconds=1)).astimezone(tz).year
    grade_year, promoted, demoted, stayed = await _grade_figures(session, township_id, period_year)

    training = await _training_figures(session, township_id, since, until)
    (
        projects,
        done,
        leads,
        funds,
        income,
        income_total,
        elected,
        elected_total,
    ) = await _use_figures(session, township_id, day_since, day_until, past_end)
    unreachable_candidates, unreachable_mentors = (0, 0)
    if past_end is None:
        # Who blocked the bot is known for now only.
        unreachable_candidates, unreachable_mentors = await unreachable_counts(
            session, township_id=township_id
        )
    villages, without_cadre, named = await _villages_without_cadre(session, township_id, past_end)
    lines = tuple(
        TownshipLine(
            township_id=tid,
            township=name,
            nominations=stage.nominations_by_township.get(tid, 0),
            pool=stage.pool_by_township.get(tid, 0),
            cadres_paired=stage.cadres.get(tid, 0),
            talks_held=talks.held.get(tid, 0),
            talks_due_soon=talks.due_or_overdue.get(tid, 0) - talks.overdue.get(tid, 0),
            talks_overdue=talks.overdue.get(tid, 0),
        )
        for tid, name in townships
    )
    # County days, as the elections above: an award or report dated today is in a period
    # that ends now (the county's clock, not outcome_figures' default).
    recognition = await outcomes.outcome_figures(
        session, township_id=township_id, since=day_since, until=day_until
    )
    return Summary(
        township_id=township_id,
        awards=recognition.total.awards,
        publicity=recognition.total.publicity,
        scope_name=await _scope_name(session, township_id),
        since=since,
        until=until,
        now=now,
        **stage.counts(),
        trainings=training,
        pairings=sum(stage.pairings.values()),
        cadres_paired=sum(stage.cadres.values()),
        mentors=stage.mentors,
        paired_in_period=await _paired_in_period(session, township_id, since, until),
        posts_active=sum(active_by_kind.values()),
        posts_active_by_kind=active_by_kind,
        talks_held=sum(talks.held.values()),
        talks_due_soon=sum(line.talks_due_soon for line in lines),
        talks_overdue=sum(talks.overdue.values()),
        overdue_mentors=await _top_mentors(session, talks.top_overdue_mentors),
        difficulties_raised=raised,
        difficulties_resolved=resolved,
        difficulties_open=still_open,
        grade_year=grade_year,
        grade_promoted=promoted,
        grade_demoted=demoted,
        grade_stayed=stayed,
        projects=projects,
        # A project's status has no history: how many were done at a past end is unknown.
        projects_done=done if past_end is None else 0,
        project_leads=leads,
        funds_yuan=funds,
        income_yuan=income,
        income_total_yuan=income_total,
        elected=elected,
        elected_total=elected_total,
        unreachable_candidates=unreachable_candidates,
        unreachable_mentors=unreachable_mentors,
        townships=lines,
        education_unknown=stage.education_unknown,
        structure=await _pool_structure(session, township_id, past_end, stock_day),
        villages=villages,
        villages_without_cadre=without_cadre,
        villages_without_cadre_named=named,
        past=past_end is not None,
    )


async def _paired_in_period(
    session: AsyncSession, township_id: int | None, since: datetime, until: datetime
) -> int:
    """Cadres given a mentor in the period (a reassignment counts its cadre once)."""
    paired = await session.scalar(
        select(func.count(func.distinct(Pairing.nomination_id))).where(
            Pairing.assigned_at >= since,
            Pairing.assigned_at < until,
            *_in_scope(Pairing.township_id, township_id),
        )
    )
    return int(paired or 0)


# ---------------------------------------------------------------------------------------------
# Schedules and periods: plain functions (no SQL), then the few queries the planner needs.

WEEKLY = "weekly"
MONTHLY = "monthly"
OFF = "off"
CADENCES = (WEEKLY, MONTHLY, OFF)
# The times an official can pick with a button, in minutes after county midnight.
TIMES = (7 * 60, 8 * 60 + 30, 12 * 60, 18 * 60)
DEFAULT_AT = 8 * 60 + 30
MONTH_DAYS = 28


@dataclass(frozen=True, slots=True)
class Schedule:
    cadence: str
    # weekly: 0 = Monday … 6 = Sunday; monthly: 1–28.
    day: int
    at_minute: int = DEFAULT_AT
    last_period: str | None = None
    last_figures: Mapping[str, Any] | None = None
    is_default: bool = False


def check_schedule(cadence: str, day: int, at_minute: int) -> None:
    """ValueError unless this is a schedule the buttons can produce."""
    if cadence not in CADENCES:
        raise ValueError("unknown cadence")
    if cadence == WEEKLY and not 0 <= day <= 6:
        raise ValueError("weekday out of range")
    if cadence == MONTHLY and not 1 <= day <= MONTH_DAYS:
        raise ValueError("day of month out of range")
    if not 0 <= at_minute < 24 * 60:
        raise ValueError("time out of range")


def default_schedule(*, county_official: bool, township_official: bool) -> Schedule | None:
    """County officials: monthly on the 1st; township officials: weekly on Monday; 08:30.

    Admins who hold neither role get none until they choose one.
    """
    if county_official:
        return Schedule(MONTHLY, 1, DEFAULT_AT, is_default=True)
    if township_official:
        return Schedule(WEEKLY, 0, DEFAULT_AT, is_default=True)
    return None


def period_start(cadence: str, day: date) -> date:
    """The first day of the week (Monday) or month that contains `day`."""
    if cadence == WEEKLY:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_key(cadence: str, day: date) -> str:
    """ "2026-W48" (ISO week) or "2026-11": the period that contains the county date `day`."""
    if cadence == WEEKLY:
        iso = day.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    return f"{day.year}-{day.month:02d}"


def _next_period_start(cadence: str, start: date) -> date:
    if cadence == WEEKLY:
        return start + timedelta(days=7)
    return (start + timedelta(days=32)).replace(day=1)


def _previous_period_start(cadence: str, start: date) -> date:
    if cadence == WEEKLY:
        return start - timedelta(days=7)
    return (start - timedelta(days=1)).replace(day=1)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz)


def moment_in_period(schedule: Schedule, start: date, tz: ZoneInfo) -> datetime:
    """The scheduled moment within the period that begins on `start`."""
    offset = schedule.day if schedule.cadence == WEEKLY else schedule.day - 1
    return _midnight(start + timedelta(days=offset), tz) + timedelta(minutes=schedule.at_minute)


def due_period(schedule: Schedule, now: datetime, tz: ZoneInfo) -> str | None:
    """The key of the period whose summary is due at `now`, or None.

    Due once this period's moment has passed in county time and the summary of this period has
    not been sent: a bot that was down at the moment catches up later in the same period.
    """
    if schedule.cadence == OFF:
        return None
    today = local_date(now, tz)
    start = period_start(schedule.cadence, today)
    key = period_key(schedule.cadence, today)
    if now < moment_in_period(schedule, start, tz) or schedule.last_period == key:
        return None
    return key


def next_moment(schedule: Schedule, now: datetime, tz: ZoneInfo) -> datetime | None:
    """When the next scheduled summary goes out (county time), or None when off."""
    if schedule.cadence == OFF:
        return None
    today = local_date(now, tz)
    start = period_start(schedule.cadence, today)
    moment = moment_in_period(schedule, start, tz)
    if moment > now and schedule.last_period != period_key(schedule.cadence, today):
        return moment
    return moment_in_period(schedule, _next_period_start(schedule.cadence, start), tz)


def reported_period(cadence: str, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The calendar period before the one containing `now`: last week, or last month."""
    start = period_start(cadence, local_date(now, tz))
    return _midnight(_previous_period_start(cadence, start), tz), _midnight(start, tz)


def current_period(cadence: str, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """From the start of this week (or month) in county time up to `now`."""
    return _midnight(period_start(cadence, local_date(now, tz)), tz), now


@dataclass(frozen=True, slots=True)
class Official:
    """An official who may receive summaries, with the schedule row if they have one."""

    person_id: int
    telegram_id: int
    language: str | None
    county_official: bool
    admin: bool
    township_ids: tuple[int, ...]
    schedule: Schedule | None

    @property
    def county_level(self) -> bool:
        return self.county_official or self.admin

    @property
    def scopes(self) -> tuple[int | None, ...]:
        """None (the county) for county officials and admins, else their townships."""
        return (None,) if self.county_level else self.township_ids

    def effective_schedule(self) -> Schedule | None:
        if self.schedule is not None:
            return self.schedule
        return default_schedule(
            county_official=self.county_official, township_official=bool(self.township_ids)
        )


SUMMARY_ROLES = (Role.TOWNSHIP_OFFICIAL.value, Role.COUNTY_OFFICIAL.value, Role.ADMIN.value)


def _schedule(row: Any) -> Schedule | None:
    if row.cadence is None:
        return None
    return Schedule(row.cadence, row.day, row.at_minute, row.last_period, row.last_figures)


async def officials(session: AsyncSession, *, person_id: int | None = None) -> list[Official]:
    """Officials with an active grant and a reachable Telegram account (or one person's)."""
    query = (
        select(
            RoleGrant.person_id,
            RoleGrant.role,
            RoleGrant.township_id,
            TelegramAccount.telegram_id,
            func.coalesce(TelegramAccount.locale, TelegramAccount.language_code).label("lang"),
            SummarySchedule.cadence,
            SummarySchedule.day,
            SummarySchedule.at_minute,
            SummarySchedule.last_period,
            SummarySchedule.last_figures,
        )
        .join(TelegramAccount, TelegramAccount.person_id == RoleGrant.person_id)
        .outerjoin(SummarySchedule, SummarySchedule.person_id == RoleGrant.person_id)
        .where(
            RoleGrant.role.in_(SUMMARY_ROLES),
            RoleGrant.revoked_at.is_(None),
            TelegramAccount.unreachable_at.is_(None),
        )
        .order_by(RoleGrant.person_id, RoleGrant.id)
    )
    if person_id is not None:
        query = query.where(RoleGrant.person_id == person_id)
    grouped: dict[int, list[Any]] = {}
    for row in (await session.execute(query)).all():
        grouped.setdefault(int(row.person_id), []).append(row)
    found = []
    for pid, rows in grouped.items():
        roles = {r.role for r in rows}
        townships = sorted(
            {int(r.township_id) for r in rows if r.role == Role.TOWNSHIP_OFFICIAL.value}
        )
        first = rows[0]
        found.append(
            Official(
                person_id=pid,
                telegram_id=int(first.telegram_id),
                language=first.lang,
                county_official=Role.COUNTY_OFFICIAL.value in roles,
                admin=Role.ADMIN.value in roles,
                township_ids=tuple(townships),
                schedule=_schedule(first),
            )
        )
    return found


async def load_schedule(session: AsyncSession, person_id: int) -> Schedule | None:
    row = await session.get(SummarySchedule, person_id)
    return _schedule(row) if row is not None else None


async def save_schedule(session: AsyncSession, person_id: int, schedule: Schedule) -> None:
    """Store an official's choice. The period last sent and its figures are kept, so changing
    the time within a period never sends that period's summary twice."""
    check_schedule(schedule.cadence, schedule.day, schedule.at_minute)
    values = {"cadence": schedule.cadence, "day": schedule.day, "at_minute": schedule.at_minute}
    await session.execute(
        upsert(session)(SummarySchedule)
        .values(person_id=person_id, **values)
        .on_conflict_do_update(index_elements=[SummarySchedule.person_id], set_=values)
    )


async def claim_period(
    session: AsyncSession, person_id: int, period: str, schedule: Schedule
) -> bool:
    """Mark `period` as sent for this person; False if it already was (another tick or process).

    Runs before the summary is planned, in the same transaction: on PostgreSQL a concurrent
    claim waits for this transaction and then finds the period taken; on SQLite write
    transactions run one at a time.
    """
    inserted = await session.execute(
        upsert(session)(SummarySchedule)
        .values(
            person_id=person_id,
            cadence=schedule.cadence,
            day=schedule.day,
            at_minute=schedule.at_minute,
            last_period=period,
        )
        .on_conflict_do_nothing(index_elements=[SummarySchedule.person_id])
    )
    if inserted.rowcount:  # type: ignore[attr-defined]
        return True
    updated = await session.execute(
        update(SummarySchedule)
        .where(
            SummarySchedule.person_id == person_id,
            or_(SummarySchedule.last_period.is_(None), SummarySchedule.last_period != period),
        )
        .values(last_period=period)
    )
    return bool(updated.rowcount)  # type: ignore[attr-defined]


async def record_figures(
    session: AsyncSession, person_id: int, by_scope: Mapping[str, Mapping[str, int]]
) -> None:
    """Keep the key figures of the summary just planned, per scope, for the next one."""
    await session.execute(
        update(SummarySchedule)
        .where(SummarySchedule.person_id == person_id)
        .values(last_figures={"scopes": {k: dict(v) for k, v in by_scope.items()}})
    )


def previous_figures(schedule: Schedule | None, scope: str) -> Mapping[str, Any] | None:
    """The key figures the last summary showed for this scope, if any."""
    if schedule is None or not schedule.last_figures:
        return None
    scopes = schedule.last_figures.get("scopes")
    if not isinstance(scopes, Mapping):
        return None
    found = scopes.get(scope)
    return found if isinstance(found, Mapping) else None


async def township_by_name(session: AsyncSession, name: str) -> int | None:
    return await session.scalar(select(Township.id).where(Township.name == name))
