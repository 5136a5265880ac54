"""Hard-post projects (闲置资产盘活): villages' idle-asset projects, their lead cadres, reports.

Money is whole yuan in the database and 万元 on screen: `parse_wan` turns what an official
types into yuan exactly (integer arithmetic, no float anywhere), `format_wan` turns yuan back.

Scope, in SQL:
- officials manage the projects of villages in their township (county officials and admins:
  every village), `manageable_projects`;
- a reserve cadre reads and reports on the projects they lead (their person owns a nomination
  that is a ProjectLead), `led_by`.
Functions take a session and never commit; every change is audited.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, overload
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, Subquery, and_, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from storage import cadres, scoped
from storage.models import (
    Nomination,
    Person,
    Project,
    ProjectLead,
    ProjectReport,
    Role,
    Township,
    Village,
)
from storage.nominations import NotAllowed
from storage.people import Actor
from storage.rules.identity import RuleError, clean_text
from storage.rules.vetting import Status

SHANGHAI = ZoneInfo("Asia/Shanghai")
PROJECT_STATUSES = ("planned", "under_way", "done")
NAME_MIN = 2
NAME_MAX = 100
NOTE_MAX = 500
YUAN_PER_WAN = 10_000
# 100,000万元 (one billion yuan): far above any village project, well inside BIGINT.
MAX_WAN = 100_000
MAX_YUAN = MAX_WAN * YUAN_PER_WAN
# 万元 with four decimals is exactly one yuan: a fifth decimal would be a fraction of a yuan.
WAN_DECIMALS = 4
MAX_LEADS = 20
# Reserve cadres who may be named to lead a project: those in the pool.
LEAD_STATUSES = (Status.IN_POOL.value,)

_AMOUNT = re.compile(r"^(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.(?P<frac>[0-9]+))?$")


# ---------------------------------------------------------------------------------------------
# Money: plain functions.


def parse_wan(raw: str, *, max_yuan: int = MAX_YUAN) -> int:
    """An amount in 万元 as people type it, in whole yuan: "120.5" → 1,205,000.

    Accepted: "120", "120.5", "１２０万" (full-width), "1,200.25", "52.33万元", spaces around.
    RuleError codes: `money.format` (not a number), `money.negative`, `money.unit` (typed in
    元, not 万元), `money.decimals` (finer than one yuan; params max), `money.range` (above
    the ceiling; params max, in 万元).
    """
    text = unicodedata.normalize("NFKC", raw).strip().replace(" ", "")
    if text.endswith("万元"):
        text = text[:-2]
    elif text.endswith("万"):
        text = text[:-1]
    elif text.endswith("元"):
        raise RuleError("money.unit")
    negative = text[:1] in ("-", "−")
    if negative:
        text = text[1:]
    match = _AMOUNT.match(text)
    if match is None:
        raise RuleError("money.format")
    if negative:
        raise RuleError("money.negative")
    frac = (match.group("frac") or "").rstrip("0")
    if len(frac) > WAN_DECIMALS:
        raise RuleError("money.decimals", {"max": WAN_DECIMALS})
    whole = match.group("int").replace(",", "")
    if len(whole) > 15:
        raise RuleError("money.range", {"max": format_wan(max_yuan)})
    yuan = int(whole) * YUAN_PER_WAN + int(frac.ljust(WAN_DECIMALS, "0"))
    if yuan > max_yuan:
        raise RuleError("money.range", {"max": format_wan(max_yuan)})
    return yuan


def format_wan(yuan: int) -> str:
    """Whole yuan shown in 万元, exactly: 1,205,000 → "120.5", 52,330,000 → "5,233"."""
    sign = "-" if yuan < 0 else ""
    whole, rest = divmod(abs(int(yuan)), YUAN_PER_WAN)
    shown = f"{whole:,}"
    if rest:
        shown += "." + f"{rest:0{WAN_DECIMALS}d}".rstrip("0")
    return sign + shown


class InWan:
    """A yuan field of the same record shown in 万元 for the templates (`format_wan`):
    `funds_wan = InWan("funds_yuan")` reads `funds_yuan`."""

    def __init__(self, yuan_field: str) -> None:
        self.yuan_field = yuan_field

    @overload
    def __get__(self, record: None, owner: type) -> InWan: ...
    @overload
    def __get__(self, record: object, owner: type) -> str: ...
    def __get__(self, record: object | None, owner: type) -> InWan | str:
        return self if record is None else format_wan(getattr(record, self.yuan_field))


def check_yuan(yuan: int, *, max_yuan: int = MAX_YUAN) -> int:
    """An amount already in yuan, for the storage functions: 0 ≤ yuan ≤ max (RuleError)."""
    if yuan < 0:
        raise RuleError("money.negative")
    if yuan > max_yuan:
        raise RuleError("money.range", {"max": format_wan(max_yuan)})
    return yuan


def clean_name(raw: str) -> str:
    """A project's name on one line, 2–100 characters (RuleError `text.length`/`text.chars`)."""
    return " ".join(clean_text(raw, max_len=NAME_MAX, min_len=NAME_MIN).split())


def clean_note(raw: str) -> str:
    """A report's note, 1–500 characters, paragraphs kept."""
    return clean_text(raw, max_len=NOTE_MAX)


def check_status(status: str) -> str:
    if status not in PROJECT_STATUSES:
        raise RuleError("project.status")
    return status


def local_day(value: date | datetime) -> date:
    """A period bound as a Shanghai calendar day: reports are dated, not timed."""
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).date()
    return value


# ---------------------------------------------------------------------------------------------
# Scope.


def _is_county(actor: Actor) -> bool:
    return actor.has(Role.ADMIN, Role.COUNTY_OFFICIAL)


def villages_managed_by(actor: Actor) -> ColumnElement[bool]:
    """The villages whose projects an actor manages. Deny by default."""
    if _is_county(actor):
        return true()
    townships = actor.township_ids(Role.TOWNSHIP_OFFICIAL)
    return Village.township_id.in_(townships) if townships else false()


def manageable_projects(actor: Actor) -> ColumnElement[bool]:
    """Projects an actor may create, list and see reported on, as officials."""
    if _is_county(actor):
        return true()
    townships = actor.township_ids(Role.TOWNSHIP_OFFICIAL)
    if not townships:
        return false()
    return Project.village_id.in_(select(Village.id).where(Village.township_id.in_(townships)))


def led_by(actor: Actor) -> ColumnElement[bool]:
    """Projects one of the actor's own nominations leads."""
    return Project.id.in_(
        select(ProjectLead.project_id)
        .join(Nomination, Nomination.id == ProjectLead.nomination_id)
        .where(Nomination.person_id == actor.person_id)
    )


def visible_projects(actor: Actor) -> ColumnElement[bool]:
    return or_(manageable_projects(actor), led_by(actor))


# ---------------------------------------------------------------------------------------------
# Choosing a village and the lead cadres.


@dataclass(frozen=True, slots=True)
class Place:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class VillageRef:
    id: int
    name: str
    township_id: int
    township: str


@dataclass(frozen=True, slots=True)
class LeadCandidate:
    nomination_id: int
    full_name: str
    village: str | None


async def townships_for(session: AsyncSession, actor: Actor) -> list[Place]:
    """Townships in which the actor may create projects (none for non-officials)."""
    if _is_county(actor):
        where: ColumnElement[bool] = true()
    else:
        townships = actor.township_ids(Role.TOWNSHIP_OFFICIAL)
        where = Township.id.in_(townships) if townships else false()
    rows = await session.execute(
        select(Township.id, Township.name).where(where).order_by(Township.id)
    )
    return [Place(i, n) for i, n in rows.all()]


async def township_in_scope(session: AsyncSession, actor: Actor, township_id: int) -> Place:
    """One township the actor may create projects in (a pressed button is re-checked here)."""
    for place in await townships_for(session, actor):
        if place.id == township_id:
            return place
    raise NotAllowed


async def villages_for(
    session: AsyncSession, actor: Actor, township_id: int, *, offset: int = 0, limit: int = 8
) -> tuple[list[Place], int]:
    """One page of a township's villages, if the actor manages that township."""
    where = and_(Village.township_id == township_id, villages_managed_by(actor))
    rows, total = await scoped.page(
        session,
        select(Village.id, Village.name).where(where).order_by(Village.id),
        select(func.count()).select_from(Village).where(where),
        offset=offset,
        limit=limit,
    )
    return [Place(i, n) for i, n in rows], total


async def village_in_scope(session: AsyncSession, actor: Actor, village_id: int) -> VillageRef:
    row = await scoped.row_or_refuse(
        session,
        select(Village.id, Village.name, Township.id, Township.name)
        .join(Township, Township.id == Village.township_id)
        .where(Village.id == village_id, villages_managed_by(actor)),
    )
    return VillageRef(row[0], row[1], row[2], row[3])


def _lead_pool(actor: Actor, township_id: int) -> ColumnElement[bool]:
    return and_(cadres.managed(actor, LEAD_STATUSES), Nomination.township_id == township_id)


async def lead_candidates(
    session: AsyncSession, actor: Actor, township_id: int, *, offset: int = 0, limit: int = 8
) -> tuple[list[LeadCandidate], int]:
    """Reserve cadres in the pool of a township the actor manages, by name."""
    where = _lead_pool(actor, township_id)
    rows, total = await scoped.page(
        session,
        select(Nomination.id, Person.full_name, Village.name)
        .join(Person, Person.id == Nomination.person_id)
        .outerjoin(Village, Village.id == Nomination.village_id)
        .where(where)
        .order_by(Person.full_name, Nomination.id),
        select(func.count()).select_from(Nomination).where(where),
        offset=offset,
        limit=limit,
    )
    return [LeadCandidate(i, n or "", v) for i, n, v in rows], total


async def leads_named(
    session: AsyncSession, actor: Actor, township_id: int, nomination_ids: Sequence[int]
) -> list[LeadCandidate]:
    """Those of `nomination_ids` who may still lead a project there (others are dropped)."""
    if not nomination_ids:
        return []
    rows = await session.execute(
        select(Nomination.id, Person.full_name, Village.name)
        .join(Person, Person.id == Nomination.person_id)
        .outerjoin(Village, Village.id == Nomination.village_id)
        .where(_lead_pool(actor, township_id), Nomination.id.in_(list(nomination_ids)))
        .order_by(Person.full_name, Nomination.id)
    )
    return [LeadCandidate(i, n or "", v) for i, n, v in rows.all()]


# ---------------------------------------------------------------------------------------------
# Creating and listing projects.


async def create_project(
    session: AsyncSession,
    actor: Actor,
    *,
    village_id: int,
    name: str,
    funds_yuan: int,
    status: str,
    lead_ids: Sequence[int],
    now: datetime,
) -> Project:
    """Store a project with its lead cadres.

    NotAllowed when the village is out of scope. RuleError: `text.length`/`text.chars` (name),
    `money.*` (funds), `project.status`, `project.no_leads` (none chosen), `project.leads` (a
    chosen cadre is no longer in that township's pool, or too many).
    """
    name = clean_name(name)
    check_yuan(funds_yuan)
    check_status(status)
    leads = sorted(set(lead_ids))
    if not leads:
        raise RuleError("project.no_leads")
    if len(leads) > MAX_LEADS:
        raise RuleError("project.leads", {"max": MAX_LEADS})
    village = await village_in_scope(session, actor, village_id)
    valid = await leads_named(session, actor, village.township_id, leads)
    if len(valid) != len(leads):
        raise RuleError("project.leads", {"max": MAX_LEADS})
    project = Project(
        village_id=village.id,
        name=name,
        funds_yuan=funds_yuan,
        status=status,
        created_by_person_id=actor.person_id,
        created_at=now,
    )
    await scoped.added(
        session,
        project,
        actor.person_id,
        "project.create",
        village_id=village.id,
        funds_yuan=funds_yuan,
        status=status,
        leads=leads,
    )
    session.add_all(ProjectLead(project_id=project.id, nomination_id=nid) for nid in leads)
    await session.flush()
    return project


@dataclass(frozen=True, slots=True)
class ProjectRow:
    """A project as listed: where, how much, how far, what it has brought in."""

    id: int
    name: str
    status: str
    village: str
    township: str
    funds_yuan: int
    income_yuan: int
    leads: int
    last_report: date | None

    funds_wan = InWan("funds_yuan")
    income_wan = InWan("income_yuan")


_ProjectSelect = Select[int, str, str, str, str, int, int, int, date | None]


def _project_rows(where: ColumnElement[bool]) -> _ProjectSelect:
    """Projects with their place, income gained (all reports) and number of leads."""
    income = (
        select(
            ProjectReport.project_id.label("project_id"),
            func.sum(ProjectReport.income_yuan).label("income"),
            func.max(ProjectReport.report_date).label("last"),
        )
        .group_by(ProjectReport.project_id)
        .subquery()
    )
    leads = (
        select(ProjectLead.project_id.label("project_id"), func.count().label("n"))
        .group_by(ProjectLead.project_id)
        .subquery()
    )
    query: _ProjectSelect = (
        select(
            Project.id,
            Project.name,
            Project.status,
            Village.name,
            Township.name,
            Project.funds_yuan,
            func.coalesce(income.c.income, 0),
            func.coalesce(leads.c.n, 0),
            income.c.last,
        )
        .join(Village, Village.id == Project.village_id)
        .join(Township, Township.id == Village.township_id)
        .outerjoin(income, income.c.project_id == Project.id)
        .outerjoin(leads, leads.c.project_id == Project.id)
        .where(where)
    )
    return query


def _row(values: tuple[int, str, str, str, str, int, int, int, date | None]) -> ProjectRow:
    pid, name, status, village, township, funds, income, leads, last = values
    # int(): PostgreSQL sums BIGINT into NUMERIC, which arrives as a Decimal.
    return ProjectRow(
        pid, name, status, village, township, int(funds), int(income), int(leads), last
    )


async def list_projects(
    session: AsyncSession, actor: Actor, *, offset: int = 0, limit: int = 10
) -> tuple[list[ProjectRow], int]:
    """Projects the actor manages or leads, newest first; deny by default."""
    where = visible_projects(actor)
    rows, total = await scoped.page(
        session,
        _project_rows(where).order_by(Project.id.desc()),
        select(func.count()).select_from(Project).where(where),
        offset=offset,
        limit=limit,
    )
    return [_row(r) for r in rows], total


async def project_row(session: AsyncSession, actor: Actor, project_id: int) -> ProjectRow:
    """One project the actor manages or leads; NotAllowed otherwise."""
    where = and_(Project.id == project_id, visible_projects(actor))
    return _row(await scoped.row_or_refuse(session, _project_rows(where)))


# ---------------------------------------------------------------------------------------------
# Progress reports by lead cadres.


async def led_projects(session: AsyncSession, actor: Actor) -> list[ProjectRow]:
    """The projects the actor leads (for /report), newest first."""
    rows = await session.execute(_project_rows(led_by(actor)).order_by(Project.id.desc()))
    return [_row(r) for r in rows.all()]


async def led_project(session: AsyncSession, actor: Actor, project_id: int) -> ProjectRow:
    """One project the actor leads; NotAllowed for any other (a forged button included)."""
    where = and_(Project.id == project_id, led_by(actor))
    return _row(await scoped.row_or_refuse(session, _project_rows(where)))


@dataclass(frozen=True, slots=True)
class ReportSaved:
    """A report stored, with what the township's officials are told."""

    report_id: int
    project_id: int
    project: str
    village: str
    township_id: int
    township: str
    reporter: str
    income_yuan: int
    total_income_yuan: int
    old_status: str
    new_status: str | None
    note: str | None
    report_date: date

    income_wan = InWan("income_yuan")
    total_income_wan = InWan("total_income_yuan")


async def add_report(
    session: AsyncSession,
    actor: Actor,
    project_id: int,
    *,
    income_yuan: int,
    status: str | None,
    note: str | None,
    report_date: date,
    now: datetime,
) -> ReportSaved:
    """A lead cadre's progress report: income gained since the last one, maybe a new status.

    NotAllowed unless the actor leads the project. RuleError for a bad amount, status or note.
    A status equal to the current one is no change.
    """
    check_yuan(income_yuan)
    if status is not None:
        check_status(status)
    note = clean_note(note) if note else None
    project = await scoped.one_or_refuse(
        session, select(Project).where(Project.id == project_id, led_by(actor)).with_for_update()
    )
    old_status = project.status
    new_status = status if status is not None and status != old_status else None
    if new_status is not None:
        project.status = new_status
    report = ProjectReport(
        project_id=project.id,
        reported_by_person_id=actor.person_id,
        report_date=report_date,
        income_yuan=income_yuan,
        status=new_status,
        note=note,
        created_at=now,
    )
    await scoped.added(
        session,
        report,
        actor.person_id,
        "project.report",
        project_id=project.id,
        income_yuan=income_yuan,
        status=new_status,
    )
    place = (
        await session.execute(
            select(Village.name, Township.id, Township.name)
            .join(Township, Township.id == Village.township_id)
            .where(Village.id == project.village_id)
        )
    ).one()
    total = await session.scalar(
        select(func.coalesce(func.sum(ProjectReport.income_yuan), 0)).where(
            ProjectReport.project_id == project.id
        )
    )
    reporter = await session.scalar(select(Person.full_name).where(Person.id == actor.person_id))
    return ReportSaved(
        report_id=report.id,
        project_id=project.id,
        project=project.name,
        village=place[0],
        township_id=place[1],
        township=place[2],
        reporter=reporter or "",
        income_yuan=income_yuan,
        total_income_yuan=int(total or 0),
        old_status=old_status,
        new_status=new_status,
        note=note,
        report_date=report_date,
    )


# ---------------------------------------------------------------------------------------------
# Figures for the summaries.


@dataclass(frozen=True, slots=True)
class ProjectFigureRow:
    """Projects of one township, or of the county when township_id is None.

    `projects`, `funds_yuan`, `by_status` and `leads` (distinct cadres leading at least one of
    the projects) are as of now; `income_yuan` is the sum of reports dated in the period.
    """

    township_id: int | None
    township: str | None
    projects: int = 0
    leads: int = 0
    funds_yuan: int = 0
    income_yuan: int = 0
    by_status: Mapping[str, int] = field(default_factory=dict)

    funds_wan = InWan("funds_yuan")
    income_wan = InWan("income_yuan")


ProjectFigures = scoped.Figures[ProjectFigureRow]


def _per_township(
    *figures: ColumnElement[Any],
    via: QueryableAttribute[int] | None = None,
    where: Sequence[ColumnElement[bool]] = (),
) -> Subquery:
    """`figures` per township (`tid`, for `scoped.by_township`) of the projects, or of the
    leads or reports joined to their project `via` its id."""
    query = select(Village.township_id.label("tid"), *figures)
    if via is not None:
        query = query.join(Project, Project.id == via)
    return (
        query.join(Village, Village.id == Project.village_id)
        .where(*where)
        .group_by(Village.township_id)
        .subquery()
    )


async def project_figures(
    session: AsyncSession,
    *,
    township_id: int | None = None,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
) -> ProjectFigures:
    """Per township (every township, zeros included) and for the county, in two queries.

    The period [since, until) applies to the income only (report dates; a datetime is taken as
    its Shanghai day). The caller decides who may see which township: pass `township_id` to
    restrict the figures to one (the total is then that township's).
    """
    day_since = local_day(since) if since is not None else None
    day_until = local_day(until) if until is not None else None
    period = scoped.in_period(ProjectReport.report_date, day_since, day_until)
    stock = _per_township(
        func.count(Project.id).label("projects"),
        func.coalesce(func.sum(Project.funds_yuan), 0).label("funds_yuan"),
        *scoped.counts_of(Project.status, PROJECT_STATUSES),
    )
    leads = _per_township(
        func.count(func.distinct(ProjectLead.nomination_id)).label("leads"),
        via=ProjectLead.project_id,
    )
    income = _per_township(
        func.coalesce(func.sum(ProjectReport.income_yuan), 0).label("income_yuan"),
        via=ProjectReport.project_id,
        where=period,
    )
    # The county's own queries: a cadre leading in two townships is still one cadre.
    county = {
        "projects": select(func.count(Project.id)),
        "leads": select(func.count(func.distinct(ProjectLead.nomination_id))),
        "funds_yuan": select(func.coalesce(func.sum(Project.funds_yuan), 0)),
        "income_yuan": select(func.coalesce(func.sum(ProjectReport.income_yuan), 0)).where(
            *period
        ),
        **{s: select(func.count(Project.id)).where(Project.status == s) for s in PROJECT_STATUSES},
    }
    return await scoped.figures(
        session,
        township_id,
        (day_since, day_until),
        (stock, leads, income),
        county,
        ProjectFigureRow,
        ("by_status", PROJECT_STATUSES),
    )


# ---------------------------------------------------------------------------------------------
# The dossier.


@dataclass(frozen=True, slots=True)
class ProjectSection:
    """The projects part of a dossier: the projects this cadre leads, newest first."""

    nomination_id: int
    projects: list[ProjectRow] = field(default_factory=list)

    @property
    def funds_yuan(self) -> int:
        return sum(p.funds_yuan for p in self.projects)

    @property
    def income_yuan(self) -> int:
        return sum(p.income_yuan for p in self.projects)

    funds_wan = InWan("funds_yuan")
    income_wan = InWan("income_yuan")


async def dossier_section(session: AsyncSession, nomination_id: int) -> ProjectSection:
    """Projects led by one cadre, with funds and income gained.

    No scope check here: the dossier's caller has checked that the actor may read the file
    (`nominations.load_dossier`), and that read is audited.
    """
    led = Project.id.in_(
        select(ProjectLead.project_id).where(ProjectLead.nomination_id == nomination_id)
    )
    rows = await session.execute(_project_rows(led).order_by(Project.id.desc()))
    return ProjectSection(nomination_id, [_row(r) for r in rows.all()])
