"""The /export workbook: the scope's records as an .xlsx, streamed from the database.

openpyxl's write-only mode keeps only the row being written in memory (each sheet goes to a
temporary file until the save zips them), and every query is streamed in batches, so the
whole county exports in bounded memory. Scope is a WHERE clause on the township, as for every
other read: a township official's workbook cannot hold another township's rows. Personal
numbers appear as their stored masks, except where the reader asked for them in full (phones
in the roster, `phones=True`; ID numbers in a vetting department's list), which
`storage/reveal.py` audits per file.

Every word in the workbook comes from the caller's `locale_labels` (the `_labels` table and
`export/_titles` merged): sheet and column titles are required, values fall back to codes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import IO, Any, TypeVar
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute, aliased

from storage import (
    audit,
    grades,
    mentoring,
    nominations,
    outcomes,
    posts,
    projects,
    reveal,
    trainings,
)
from storage.crypto import DataCipher
from storage.models import (
    County,
    Difficulty,
    GradeMove,
    GradeState,
    Nomination,
    Person,
    Project,
    ProjectLead,
    ProjectReport,
    Role,
    StatusChange,
    TalkLog,
    Township,
    Training,
    TrainingInvite,
    VettingReview,
    Village,
)
from storage.nominations import Dossier, NotAllowed
from storage.people import Actor
from storage.rules.ladder import LadderPolicy, load_policy
from storage.rules.vetting import Status

# Rows fetched per round trip: large enough to keep the database busy, small enough that a
# batch of the widest sheet stays a few hundred kilobytes.
YIELD_PER = 1000
# Excel refuses longer cells; our columns are far shorter, this only guards the format.
CELL_MAX = 32_767
TALK_TOPICS = ("thought", "work", "life", "problems")
YUAN_PER_WAN = Decimal(10_000)

DATETIME = "yyyy-mm-dd hh:mm"
WAN = "0.00##"
BOLD = Font(bold=True)

PathOrBuffer = str | os.PathLike[str] | IO[bytes]
# Rows of any width: each sheet's query picks its own columns.
AnyRow = Row[*tuple[Any, ...]]
AnySelect = Select[*tuple[Any, ...]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ExportScope:
    """Whose records: the whole county (`township_ids` None) or some townships."""

    township_ids: frozenset[int] | None = None

    @property
    def is_county(self) -> bool:
        return self.township_ids is None

    def covers(self, township_id: QueryableAttribute[Any]) -> ColumnElement[bool]:
        """The condition on a township id column; an empty set of townships covers nothing."""
        if self.township_ids is None:
            return true()
        if not self.township_ids:
            return false()
        return township_id.in_(sorted(self.township_ids))


def scope_of(actor: Actor) -> ExportScope | None:
    """An official's export scope (the same as what they manage); None for anyone else."""
    if actor.has(Role.ADMIN, Role.COUNTY_OFFICIAL):
        return ExportScope()
    townships = actor.township_ids(Role.TOWNSHIP_OFFICIAL)
    return ExportScope(townships) if townships else None


async def scope_names(session: AsyncSession, scope: ExportScope) -> list[str]:
    """The county's name, or the townships' names, for a file name or a caption."""
    if scope.township_ids is None:
        query = select(County.name).order_by(County.id).limit(1)
    else:
        query = select(Township.name).where(scope.covers(Township.id)).order_by(Township.id)
    return list((await session.scalars(query)).all())


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    width: float
    number_format: str | None = None


# Column runs both workbooks share: the county's sheets and one person's file.
NOMINEE = (Column("nomination_id", 8), Column("full_name", 12), Column("township", 14))
TRAINING = (
    Column("training_id", 8),
    Column("training", 24),
    Column("kind", 12),
    Column("topic", 12),
    Column("starts", 17, DATETIME),
    Column("place", 16),
)
INVITE = (Column("rsvp", 10), Column("attended", 8), Column("score", 8))
GRADE_MOVE = (
    Column("year", 8),
    Column("result", 10),
    Column("from_grade", 8),
    Column("to_grade", 8),
    Column("from_years", 10),
    Column("to_years", 10),
    Column("subsidy", 10),
)
DIFFICULTY = (
    Column("description", 40),
    Column("difficulty_status", 10),
    Column("resolution", 40),
)


SHEETS: dict[str, tuple[Column, ...]] = {
    "roster": (
        Column("nomination_id", 8),
        Column("full_name", 12),
        Column("gender", 6),
        Column("birth_date", 12),
        Column("id_number", 21),
        Column("phone", 14),
        Column("ethnicity", 10),
        Column("political_status", 14),
        Column("education", 12),
        Column("township", 14),
        Column("village", 14),
        Column("key_group", 20),
        Column("channel", 12),
        Column("status", 14),
        Column("grade", 6),
        Column("years_in_grade", 10),
    ),
    "nominations": (
        *NOMINEE,
        Column("channel", 12),
        Column("key_group", 20),
        Column("submitted", 14),
        Column("status", 14),
        Column("status_since", 14),
        Column("history", 60),
    ),
    "vetting": (
        *NOMINEE,
        Column("department", 12),
        Column("decision", 10),
        Column("requested", 12),
        Column("decided", 12),
        Column("note", 40),
    ),
    "talks": (
        Column("talk_date", 12),
        Column("mode", 10),
        Column("mentor", 12),
        Column("mentee", 12),
        Column("nomination_id", 8),
        Column("township", 14),
        *(Column(topic, 30) for topic in TALK_TOPICS),
    ),
    "difficulties": (
        Column("raised", 12),
        *NOMINEE,
        *DIFFICULTY,
        Column("resolved", 12),
    ),
    "trainings": (*TRAINING, Column("nomination_id", 8), Column("invitee", 12), *INVITE),
    "grades": (*NOMINEE, *GRADE_MOVE, Column("recorded", 12)),
    "projects": (
        Column("project_id", 8),
        Column("township", 14),
        Column("village", 14),
        Column("project", 30),
        Column("funds", 12, WAN),
        Column("project_status", 10),
        Column("leads", 30),
        Column("income", 14, WAN),
    ),
}


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What was written: rows per sheet (headers not counted), keyed like SHEETS."""

    rows: dict[str, int]


class _Words:
    """Titles (required: a missing one is a bug) and value labels (fall back to the code)."""

    def __init__(self, labels: Mapping[str, str]) -> None:
        self._labels = labels

    def title(self, key: str) -> str:
        return self._labels[f"export.{key}"]

    def value(self, prefix: str, code: str | None) -> str | None:
        if code is None:
            return None
        return self._labels.get(f"{prefix}.{code}", code)

    def name(self, full_name: str | None) -> str:
        return full_name or self._labels.get("person.unnamed", "")

    def yes_no(self, flag: bool) -> str:
        return self._labels.get("yes" if flag else "no", str(flag))


class _Clock:
    """UTC instants from the database as the county's local dates and times (Excel has no
    time zones: openpyxl refuses aware datetimes)."""

    def __init__(self, tz: tzinfo) -> None:
        self._tz = tz

    def local(self, at: datetime | None) -> datetime | None:
        return None if at is None else at.astimezone(self._tz).replace(tzinfo=None)

    def day(self, at: datetime | None) -> date | None:
        return None if at is None else at.astimezone(self._tz).date()


def _wan(yuan: int | None) -> Decimal | None:
    return None if yuan is None else Decimal(yuan) / YUAN_PER_WAN


async def _stream(session: AsyncSession, query: AnySelect) -> AsyncIterator[AnyRow]:
    """The rows of a query in batches of YIELD_PER, never the whole result at once."""
    result = await session.stream(query.execution_options(yield_per=YIELD_PER))
    try:
        async for row in result:
            yield row
    finally:
        await result.close()


async def _grouped(rows: AsyncIterator[AnyRow]) -> AsyncIterator[list[AnyRow]]:
    """Consecutive rows with the same first column (the query orders by it) as one list."""
    group: list[AnyRow] = []
    for_key: Any = None
    async for row in rows:
        if group and row[0] != for_key:
            yield group
            group = []
        for_key = row[0]
        group.append(row)
    if group:
        yield group


async def _mapped(
    items: AsyncIterator[T], convert: Callable[[T], list[Any]]
) -> AsyncIterator[list[Any]]:
    """Each streamed row (or group of rows) as the value row of its sheet."""
    async for item in items:
        yield convert(item)


def _of_people(query: AnySelect, scope: ExportScope) -> AnySelect:
    """A nomination's person and township joined, and only the scope's townships kept."""
    return (
        query.join(Person, Person.id == Nomination.person_id)
        .join(Township, Township.id == Nomination.township_id)
        .where(scope.covers(Nomination.township_id))
    )


def _of_nomination(
    query: AnySelect, nomination_id: QueryableAttribute[int], scope: ExportScope
) -> AnySelect:
    """A record of one nomination (a review, a difficulty, a grade move) with its person."""
    return _of_people(query.join(Nomination, Nomination.id == nomination_id), scope)


def _decision(decision: str | None, status: str) -> str:
    """A review's decision code; an open review of a case another department's veto already
    settled is "moot", not "pending"."""
    if decision is not None:
        return decision
    return "pending" if status == Status.VETTING.value else "moot"


# -- the sheets: each yields value rows in the order of its SHEETS columns --------------------


@dataclass(frozen=True, slots=True)
class _Ctx:
    """What turns stored values into cells: the words, the local clock, the cipher."""

    words: _Words
    clock: _Clock
    cipher: DataCipher
    # The roster's phones in full, as asked for explicitly (else their masks).
    phones: bool = False


@dataclass(frozen=True, slots=True)
class _Field:
    """A cell of a sheet's row (several with `spread`): the columns it is read from, in
    order, and `cell(ctx, *values)`, which writes them."""

    sql: tuple[Any, ...]
    cell: Callable[..., Any]
    spread: bool = False


def _as_is(column: Any) -> _Field:
    return _Field((column,), lambda _ctx, value: value)


def _label(column: Any, prefix: str) -> _Field:
    return _Field((column,), lambda ctx, code: ctx.words.value(prefix, code))


def _named(column: Any) -> _Field:
    return _Field((column,), lambda ctx, full_name: ctx.words.name(full_name))


def _day(column: Any) -> _Field:
    return _Field((column,), lambda ctx, at: ctx.clock.day(at))


def _opened(text: Any, encrypted: Any) -> _Field:
    """A free-text column stored in plain or encrypted form."""
    return _Field((text, encrypted), lambda ctx, t, e: mentoring.opened_text(ctx.cipher, t, e))


def _select(fields: Sequence[_Field], *more: Any) -> AnySelect:
    """The fields' columns in order, then `more` (read by position past the fields)."""
    return select(*(column for field in fields for column in field.sql), *more)


def _cells(fields: Sequence[_Field], row: AnyRow, ctx: _Ctx) -> list[Any]:
    cells: list[Any] = []
    at = 0
    for field in fields:
        value = field.cell(ctx, *row[at : at + len(field.sql)])
        at += len(field.sql)
        if field.spread:
            cells.extend(value)
        else:
            cells.append(value)
    return cells


# Who a record is about: the cells several sheets start with.
NOMINEE_FIELDS = (_as_is(Nomination.id), _named(Person.full_name), _as_is(Township.name))


def _roster_query(query: AnySelect, scope: ExportScope) -> AnySelect:
    return (
        _of_people(query, scope)
        .outerjoin(Village, Village.id == Nomination.village_id)
        .outerjoin(GradeState, GradeState.nomination_id == Nomination.id)
        .order_by(Nomination.township_id, Nomination.id)
    )


def _vetting_query(query: AnySelect, scope: ExportScope) -> AnySelect:
    return _of_nomination(query, VettingReview.nomination_id, scope).order_by(
        Nomination.id, VettingReview.department
    )


# Person is the mentee (the nomination's person); the mentor is a second Person.
_MENTOR = aliased(Person)


def _talks_query(query: AnySelect, scope: ExportScope) -> AnySelect:
    return (
        _of_nomination(query, TalkLog.nomination_id, scope)
        .join(_MENTOR, _MENTOR.id == TalkLog.mentor_person_id)
        .order_by(TalkLog.talk_date, TalkLog.id)
    )


def _difficulties_query(query: AnySelect, scope: ExportScope) -> AnySelect:
    return _of_nomination(query, Difficulty.nomination_id, scope).order_by(
        Difficulty.raised_at, Difficulty.id
    )


def _trainings_query(query: AnySelect, scope: ExportScope) -> AnySelect:
    # Invitees outside the scope are joined to nothing and their rows dropped; a session of
    # the scope's own townships is listed even before anyone is invited.
    in_scope = and_(
        Nomination.id == TrainingInvite.nomination_id, scope.covers(Nomination.township_id)
    )
    return (
        query.select_from(Training)
        .outerjoin(TrainingInvite, TrainingInvite.training_id == Training.id)
        .outerjoin(Nomination, in_scope)
        .outerjoin(Person, Person.id == Nomination.person_id)
        .where(
            or_(TrainingInvite.id.is_(None), Nomination.id.is_not(None)),
            or_(scope.covers(Training.township_id), Nomination.id.is_not(None)),
        )
        .order_by(Training.starts_at, Training.id, Nomination.id)
    )


def _grades_query(query: AnySelect, scope: ExportScope) -> AnySelect:
    return _of_nomination(query, GradeMove.nomination_id, scope).order_by(
        Nomination.id, GradeMove.year
    )


def _talk_topics(ctx: _Ctx, topics: Any, encrypted: Any) -> list[str | None]:
    opened = mentoring.talk_topics(ctx.cipher, topics, encrypted)
    return [_topic(opened.get(topic), ctx.words) for topic in TALK_TOPICS]


# The sheets of one row per record, as data: each cell's columns and how it is written (in
# the order of its SHEETS columns), and the joins, scope and order of its query.
_ROW_SHEETS: dict[
    str, tuple[tuple[_Field, ...], Callable[[AnySelect, ExportScope], AnySelect]]
] = {
    "roster": (
        (
            *NOMINEE_FIELDS[:2],
            _label(Nomination.gender, "gender"),
            _as_is(Nomination.birth_date),
            _as_is(Nomination.id_number_masked),
            _Field(
                (Nomination.phone_masked, Nomination.phone_enc),
                lambda ctx, masked, sealed: (
                    ctx.cipher.decrypt(sealed) if ctx.phones and sealed is not None else masked
                ),
            ),
            _label(Nomination.ethnicity, "ethnicity"),
            _label(Nomination.political_status, "political_status"),
            _label(Nomination.education, "education"),
            _as_is(Township.name),
            _as_is(Village.name),
            _label(Nomination.key_group, "key_group"),
            _label(Nomination.channel, "channel"),
            _label(Nomination.status, "status"),
            _as_is(GradeState.grade),
            _as_is(GradeState.years_in_grade),
        ),
        _roster_query,
    ),
    "vetting": (
        (
            *NOMINEE_FIELDS,
            _label(VettingReview.department, "dept"),
            _Field(
                (VettingReview.decision, Nomination.status),
                lambda ctx, decision, status: ctx.words.value(
                    "dossier.decision", _decision(decision, status)
                ),
            ),
            _day(VettingReview.requested_at),
            _day(VettingReview.decided_at),
            _opened(VettingReview.note, VettingReview.note_enc),
        ),
        _vetting_query,
    ),
    "talks": (
        (
            _as_is(TalkLog.talk_date),
            _label(TalkLog.mode, "talk_mode"),
            _named(_MENTOR.full_name),
            _named(Person.full_name),
            _as_is(Nomination.id),
            _as_is(Township.name),
            _Field((TalkLog.topics, TalkLog.topics_enc), _talk_topics, spread=True),
        ),
        _talks_query,
    ),
    "difficulties": (
        (
            _day(Difficulty.raised_at),
            *NOMINEE_FIELDS,
            _opened(Difficulty.description, Difficulty.description_enc),
            _label(Difficulty.status, "export.value.difficulty"),
            _opened(Difficulty.resolution, Difficulty.resolution_enc),
            _day(Difficulty.resolved_at),
        ),
        _difficulties_query,
    ),
    "trainings": (
        (
            _as_is(Training.id),
            _as_is(Training.title),
            _label(Training.kind, "training.kind"),
            _label(Training.topic, "training.topic"),
            _Field((Training.starts_at,), lambda ctx, at: ctx.clock.local(at)),
            _as_is(Training.place),
            _as_is(Nomination.id),
            # Person and Nomination join only for an invitee of the scope.
            _Field(
                (Person.id, Person.full_name),
                lambda ctx, pid, full_name: None if pid is None else ctx.words.name(full_name),
            ),
            _label(TrainingInvite.rsvp, "export.value.rsvp"),
            _Field(
                (Nomination.person_id, TrainingInvite.attended_at),
                lambda ctx, pid, at: None if pid is None else ctx.words.yes_no(at is not None),
            ),
            _as_is(TrainingInvite.score),
        ),
        _trainings_query,
    ),
    "grades": (
        (
            *NOMINEE_FIELDS,
            _as_is(GradeMove.year),
            _label(GradeMove.result, "result"),
            _as_is(GradeMove.from_grade),
            _as_is(GradeMove.to_grade),
            _as_is(GradeMove.from_years),
            _as_is(GradeMove.to_years),
            _as_is(GradeMove.subsidy_yuan),
            _day(GradeMove.at),
        ),
        _grades_query,
    ),
}


def _row_sheet(
    session: AsyncSession, key: str, scope: ExportScope, ctx: _Ctx
) -> AsyncIterator[list[Any]]:
    """A sheet of one row per record, written from its `_ROW_SHEETS` table."""
    fields, shaped = _ROW_SHEETS[key]
    query = shaped(_select(fields), scope)
    return _mapped(_stream(session, query), lambda row: _cells(fields, row, ctx))


_NOMINATION_FIELDS = (
    *NOMINEE_FIELDS,
    _label(Nomination.channel, "channel"),
    _label(Nomination.key_group, "key_group"),
    _day(Nomination.created_at),
    _label(Nomination.status, "status"),
    _day(Nomination.status_changed_at),
)


def _history(group: Sequence[AnyRow], words: _Words, clock: _Clock, cipher: DataCipher) -> str:
    entries = []
    for row in group:
        at, event = row[8], row[9]
        if at is None:
            continue
        reason = mentoring.opened_text(cipher, row[10], row[11])
        # Submissions are stored as "submit:<channel>"; the channel has its own column.
        name = words.value("dossier.event", event.split(":", 1)[0]) or ""
        day = clock.day(at)
        fmt = words.title("format.history_reason" if reason else "format.history_entry")
        entries.append(fmt.format(date=day.isoformat() if day else "", event=name, reason=reason))
    return words.title("format.history_sep").join(entries)


def _nominations(session: AsyncSession, scope: ExportScope, ctx: _Ctx) -> AsyncIterator[list[Any]]:
    """One row per nomination, its status changes (read past its fields) as one history."""
    query = _select(
        _NOMINATION_FIELDS,
        StatusChange.at,
        StatusChange.event,
        StatusChange.reason,
        StatusChange.reason_enc,
    )
    query = (
        _of_people(query, scope)
        .outerjoin(StatusChange, StatusChange.nomination_id == Nomination.id)
        .order_by(Nomination.id, StatusChange.at, StatusChange.id)
    )

    def row_of(group: list[AnyRow]) -> list[Any]:
        return [
            *_cells(_NOMINATION_FIELDS, group[0], ctx),
            _history(group, ctx.words, ctx.clock, ctx.cipher),
        ]

    return _mapped(_grouped(_stream(session, query)), row_of)


def _topic(value: Any, words: _Words) -> str | None:
    if not isinstance(value, Mapping):
        return None
    if "text" in value:
        return str(value["text"])
    # A voice note is a Telegram file id: meaningless outside the bot, so only say it exists.
    return words.title("value.voice") if "voice" in value else None


def _projects(
    session: AsyncSession, scope: ExportScope, words: _Words
) -> AsyncIterator[list[Any]]:
    income = (
        select(func.coalesce(func.sum(ProjectReport.income_yuan), 0))
        .where(ProjectReport.project_id == Project.id)
        .scalar_subquery()
    )
    # A lead from outside the scope joins to no nomination, so their name is never read.
    lead_in_scope = and_(
        Nomination.id == ProjectLead.nomination_id, scope.covers(Nomination.township_id)
    )
    query = (
        select(
            Project.id,
            Township.name,
            Village.name,
            Project.name,
            Project.funds_yuan,
            Project.status,
            income,
            Nomination.id,
            Person.full_name,
        )
        .join(Village, Village.id == Project.village_id)
        .join(Township, Township.id == Village.township_id)
        .outerjoin(ProjectLead, ProjectLead.project_id == Project.id)
        .outerjoin(Nomination, lead_in_scope)
        .outerjoin(Person, Person.id == Nomination.person_id)
        .where(scope.covers(Village.township_id))
        .order_by(Project.id, Nomination.id)
    )

    def row_of(group: list[AnyRow]) -> list[Any]:
        first = group[0]
        leads = [words.name(r[8]) for r in group if r[7] is not None]
        return [
            first[0],
            first[1],
            first[2],
            first[3],
            _wan(first[4]),
            words.value("export.value.project", first[5]),
            words.title("format.list_sep").join(leads) or None,
            _wan(int(first[6])),
        ]

    return _mapped(_grouped(_stream(session, query)), row_of)


# -- writing ----------------------------------------------------------------------------------


def _text(value: str) -> str:
    # Typed text may hold control characters, which the XLSX format cannot store.
    cleaned: str = ILLEGAL_CHARACTERS_RE.sub("", value)
    return cleaned[:CELL_MAX]


def _cell(sheet: Any, value: Any, column: Column) -> Any:
    # Plain values are cheapest; openpyxl itself formats a date as yyyy-mm-dd.
    if isinstance(value, str):
        value = _text(value)
        if value.startswith("="):
            # openpyxl writes "=…" as a formula: typed text must never run in Excel.
            cell = WriteOnlyCell(sheet, value)
            cell.data_type = "s"
            return cell
        return value
    if column.number_format and value is not None:
        cell = WriteOnlyCell(sheet, value)
        cell.number_format = column.number_format
        return cell
    return value


def _header(sheet: Any, title: str) -> Any:
    cell = WriteOnlyCell(sheet, title)
    cell.font = BOLD
    return cell


def _new_sheet(workbook: Any, key: str, columns: Sequence[Column], words: _Words) -> Any:
    """A titled sheet with its widths, frozen header and header row: the one sheet writer."""
    sheet = workbook.create_sheet(title=words.title(f"sheet.{key}"))
    # Write-only sheets take widths and panes before the first row, never after.
    for index, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    sheet.freeze_panes = "A2"
    sheet.append([_header(sheet, words.title(f"col.{c.key}")) for c in columns])
    return sheet


def _append(sheet: Any, values: Sequence[Any], columns: Sequence[Column]) -> None:
    sheet.append([_cell(sheet, v, c) for v, c in zip(values, columns, strict=True)])


async def _write_sheet(
    workbook: Any,
    key: str,
    rows: AsyncIterator[list[Any]],
    words: _Words,
    columns: Sequence[Column],
) -> int:
    sheet = _new_sheet(workbook, key, columns, words)
    count = 0
    async for values in rows:
        _append(sheet, values, columns)
        count += 1
    return count


def _sheet_rows(
    session: AsyncSession, scope: ExportScope, ctx: _Ctx
) -> Iterator[tuple[str, AsyncIterator[list[Any]]]]:
    # Generators are created lazily, one at a time: only one query is open on the session.
    words = ctx.words
    for key in SHEETS:
        if key == "nominations":
            yield key, _nominations(session, scope, ctx)
        elif key == "projects":
            yield key, _projects(session, scope, words)
        else:
            yield key, _row_sheet(session, key, scope, ctx)


async def write_workbook(
    session: AsyncSession,
    actor_or_scope: Actor | ExportScope,
    path_or_buffer: PathOrBuffer,
    *,
    locale_labels: Mapping[str, str],
    tz: tzinfo,
    cipher: DataCipher,
    phones: bool = False,
) -> ExportSummary:
    """Write the scope's workbook to a path or a binary file object, and audit the export.

    An actor exports their own scope (officials only, else NotAllowed); an ExportScope is the
    operator's command line. The caller's transaction carries the audit rows. `phones`: the
    roster's phones in full (asked for explicitly), audited for each file that had one.
    """
    if isinstance(actor_or_scope, Actor):
        scope = scope_of(actor_or_scope)
        if scope is None:
            raise NotAllowed
        actor_person_id: int | None = actor_or_scope.person_id
    else:
        scope, actor_person_id = actor_or_scope, None
    words = _Words(locale_labels)
    ctx = _Ctx(words, _Clock(tz), cipher, phones)
    workbook = Workbook(write_only=True)
    counts: dict[str, int] = {}
    for key, rows in _sheet_rows(session, scope, ctx):
        columns = SHEETS[key]
        if phones:
            # Its title says the numbers are whole, as the default's says they are masked.
            columns = tuple(
                replace(c, key="phone_full") if c.key == "phone" else c for c in columns
            )
        counts[key] = await _write_sheet(workbook, key, rows, words, columns)
    # Zipping the sheets is CPU and disk work: off the event loop, which serves other chats.
    await asyncio.to_thread(workbook.save, path_or_buffer)
    await audit.record(
        session,
        actor_person_id,
        "export.workbook",
        "export",
        None,
        scope="county" if scope.is_county else "township",
        township_ids=sorted(scope.township_ids or ()),
        rows=counts,
        **({"phones": True} if phones else {}),
    )
    if phones:
        phoned = select(Nomination.id).where(
            scope.covers(Nomination.township_id), Nomination.phone_enc.is_not(None)
        )
        ids = await session.scalars(phoned.order_by(Nomination.id))
        await reveal.audit_each(
            session, actor_person_id, reveal.PHONES_EXPORTED, ids, full=["phone"]
        )
    return ExportSummary(counts)


# -- one person's file ------------------------------------------------------------------------

# Sheets of the per-person workbook, in order; titles are `export.sheet.<key>`.
DOSSIER_SHEETS: dict[str, tuple[Column, ...]] = {
    "file_basics": (Column("field", 18), Column("value", 50)),
    "file_history": (
        Column("at", 17, DATETIME),
        Column("event", 20),
        Column("status", 14),
        Column("reason", 40),
    ),
    "vetting": (
        Column("department", 12),
        Column("decision", 10),
        Column("decided", 12),
        Column("note", 40),
    ),
    "file_mentors": (
        Column("slot", 18),
        Column("mentor", 12),
        Column("assigned", 12),
        Column("ended", 12),
    ),
    "talks": (
        Column("talk_date", 12),
        Column("mode", 10),
        Column("mentor", 12),
        *(Column(topic, 30) for topic in TALK_TOPICS),
    ),
    "difficulties": (
        Column("raised", 12),
        *DIFFICULTY,
        Column("resolved", 12),
    ),
    "trainings": (*TRAINING, *INVITE, Column("rank", 8)),
    "file_posts": (
        Column("post_kind", 16),
        Column("post_title", 24),
        Column("start_date", 12),
        Column("end_date", 12),
    ),
    "grades": GRADE_MOVE,
    "projects": (
        Column("project_id", 8),
        Column("project", 30),
        Column("township", 14),
        Column("village", 14),
        Column("funds", 12, WAN),
        Column("project_status", 10),
        Column("income", 14, WAN),
    ),
    "file_outcomes": (
        Column("outcome_kind", 16),
        Column("outcome_title", 30),
        Column("outlet", 16),
        Column("outcome_date", 12),
    ),
}


@dataclass(frozen=True, slots=True)
class DossierExport:
    """Whose file was written, and rows per sheet (headers not counted)."""

    full_name: str
    rows: dict[str, int]


def _write_rows(workbook: Any, key: str, rows: Sequence[Sequence[Any]], words: _Words) -> int:
    columns = DOSSIER_SHEETS[key]
    sheet = _new_sheet(workbook, key, columns, words)
    for values in rows:
        _append(sheet, values, columns)
    return len(rows)


def _basics(dossier: Dossier, words: _Words) -> list[list[Any]]:
    n = dossier.nomination
    fields: list[tuple[str, Any]] = [
        ("nomination_id", n.id),
        ("full_name", words.name(dossier.full_name)),
        ("status", words.value("status", n.status)),
        ("gender", words.value("gender", n.gender)),
        ("birth_date", n.birth_date),
        # Stored masks only: the encrypted numbers are never read here.
        ("id_number", n.id_number_masked),
        ("phone", n.phone_masked),
        ("ethnicity", words.value("ethnicity", n.ethnicity)),
        ("political_status", words.value("political_status", n.political_status)),
        ("education", words.value("education", n.education)),
        ("township", dossier.township),
        ("village", dossier.village),
        ("key_group", words.value("key_group", n.key_group)),
        ("channel", words.value("channel", n.channel)),
        ("specialties", n.specialties),
        ("work_history", n.work_history),
        ("motivation", n.motivation),
    ]
    if dossier.show_reasons:
        fields.append(("nomination_reason", n.reason))
    return [[words.title(f"col.{key}"), value] for key, value in fields]


async def write_dossier_workbook(
    session: AsyncSession,
    actor: Actor,
    nomination_id: int,
    target: PathOrBuffer,
    *,
    locale_labels: Mapping[str, str],
    tz: tzinfo,
    cipher: DataCipher,
    grade_policy: LadderPolicy | None = None,
) -> DossierExport:
    """Write one person's file as a workbook, one sheet per part of the /dossier.

    The read goes through `nominations.load_dossier` (scope in SQL, audited): NotAllowed
    propagates. Vetting reviews and reasons follow the same rules as the file on screen.
    """
    moment = datetime.now(UTC)
    dossier = await nominations.load_dossier(session, actor, nomination_id, now=moment)
    words = _Words(locale_labels)
    clock = _Clock(tz)
    sheets: dict[str, list[list[Any]]] = {"file_basics": _basics(dossier, words)}
    sheets["file_history"] = [
        [
            clock.local(change.at),
            words.value("dossier.event", change.event.split(":", 1)[0]),
            words.value("status", change.to_status),
            (
                mentoring.opened_text(cipher, change.reason, change.reason_enc)
                if dossier.show_reasons
                else None
            ),
        ]
        for change in dossier.history
    ]
    if dossier.show_reviews:
        sheets["vetting"] = [
            [
                words.value("dept", review.department),
                words.value(
                    "dossier.decision", _decision(review.decision, dossier.nomination.status)
                ),
                clock.day(review.decided_at),
                mentoring.opened_text(cipher, review.note, review.note_enc),
            ]
            for review in dossier.reviews
        ]
    # The mentoring section wants a ZoneInfo; the county's tz always is one.
    section = await mentoring.dossier_section(
        session,
        nomination_id,
        cipher=cipher,
        **({"tz": tz} if isinstance(tz, ZoneInfo) else {}),
    )
    sheets["file_mentors"] = [
        [words.value("mentor_slot", m.slot), words.name(m.full_name), m.assigned_on, m.ended_on]
        for m in (*section.current, *section.past)
    ]
    sheets["talks"] = [
        [
            t.talk_date,
            words.value("talk_mode", t.mode),
            words.name(t.mentor_name),
            *(_talk_topic(t, code, words) for code in TALK_TOPICS),
        ]
        for t in section.talks
    ]
    sheets["difficulties"] = [
        [
            d.raised_on,
            d.description,
            words.value("export.value.difficulty", d.status),
            d.resolution,
            d.resolved_on,
        ]
        for d in section.difficulties
    ]
    training = await trainings.dossier_section(session, nomination_id, tz=tz)
    sheets["trainings"] = [
        [
            t.training_id,
            t.title,
            words.value("training.kind", t.kind),
            words.value("training.topic", t.topic),
            t.starts_at.replace(tzinfo=None),
            t.place,
            words.value("export.value.rsvp", t.rsvp),
            words.yes_no(t.attended),
            t.score,
            t.rank,
        ]
        for t in training.items
    ]
    today = moment.astimezone(tz).date()
    post_section = await posts.dossier_section(session, actor, nomination_id, today=today)
    sheets["file_posts"] = [
        [words.value("post_kind", p.kind), p.title, p.start_date, p.end_date]
        for p in post_section.posts
    ]
    policy = grade_policy if grade_policy is not None else load_policy()
    grade = await grades.dossier_section(session, actor, nomination_id, policy)
    sheets["grades"] = [
        [
            m.year,
            words.value("result", m.result),
            m.from_grade,
            m.to_grade,
            m.from_years,
            m.to_years,
            m.subsidy_yuan,
        ]
        for m in (grade.moves if grade is not None else [])
    ]
    project_section = await projects.dossier_section(session, nomination_id)
    sheets["projects"] = [
        [
            p.id,
            p.name,
            p.township,
            p.village,
            _wan(p.funds_yuan),
            words.value("export.value.project", p.status),
            _wan(p.income_yuan),
        ]
        for p in project_section.projects
    ]
    outcome = await outcomes.dossier_section(session, nomination_id)
    sheets["file_outcomes"] = [
        *(
            [words.value("outcome_kind", "elected"), e.position, None, e.elected_on]
            for e in outcome.elections
        ),
        *(
            [words.value("outcome_kind", a.kind), a.title, None, a.awarded_on]
            for a in outcome.awards
        ),
        *(
            [words.value("outcome_kind", "publicity"), r.title, r.outlet, r.published_on]
            for r in outcome.publicity
        ),
    ]
    workbook = Workbook(write_only=True)
    counts = {key: _write_rows(workbook, key, rows, words) for key, rows in sheets.items()}
    await asyncio.to_thread(workbook.save, target)
    await audit.record(
        session,
        actor.person_id,
        "export.dossier",
        "nomination",
        nomination_id,
        rows=counts,
    )
    return DossierExport(dossier.full_name, counts)


def _talk_topic(talk: Any, code: str, words: _Words) -> str | None:
    for topic in talk.topics:
        if topic.code == code:
            return words.title("value.voice") if topic.voice else topic.text
    return None


# -- a vetting department's list for its check -------------------------------------------------

VETTING_LIST = (
    Column("department", 12),
    Column("nomination_id", 8),
    Column("full_name", 12),
    Column("id_number_full", 21),
    Column("gender", 6),
    Column("birth_date", 12),
    Column("township", 14),
    Column("village", 14),
    Column("requested", 12),
)


async def write_vetting_list(
    session: AsyncSession,
    actor: Actor,
    target: PathOrBuffer,
    *,
    locale_labels: Mapping[str, str],
    tz: tzinfo,
    cipher: DataCipher,
) -> int:
    """The reviews awaiting the actor's departments, oldest first, with what the check needs
    (full name, full ID number, gender, birth date, village), as a one-sheet workbook; each
    file listed is audited. NotAllowed for someone with no department. How many rows."""
    departments = actor.departments()
    if not departments:
        raise NotAllowed
    query = (
        select(
            VettingReview.department,
            Nomination.id,
            Person.full_name,
            Nomination.id_number_enc,
            Nomination.gender,
            Nomination.birth_date,
            Township.name,
            Village.name,
            VettingReview.requested_at,
        )
        .join(Nomination, Nomination.id == VettingReview.nomination_id)
        .join(Person, Person.id == Nomination.person_id)
        .join(Township, Township.id == Nomination.township_id)
        .outerjoin(Village, Village.id == Nomination.village_id)
        .where(
            VettingReview.department.in_(departments),
            VettingReview.decision.is_(None),
            Nomination.status == Status.VETTING.value,
            Nomination.erased_at.is_(None),
        )
        .order_by(VettingReview.requested_at, VettingReview.id)
    )
    rows = (await session.execute(query)).all()
    words = _Words(locale_labels)
    clock = _Clock(tz)
    workbook = Workbook(write_only=True)
    sheet = _new_sheet(workbook, "vetting_list", VETTING_LIST, words)
    for department, nid, full_name, sealed, gender, born, township, village, at in rows:
        id_number = cipher.decrypt(sealed) if sealed is not None else None
        values = [
            words.value("dept", department),
            nid,
            words.name(full_name),
            id_number,
            words.value("gender", gender),
            born,
            township,
            village,
            clock.day(at),
        ]
        _append(sheet, values, VETTING_LIST)
    await asyncio.to_thread(workbook.save, target)
    for department in sorted({row[0] for row in rows}):
        listed = sorted({row[1] for row in rows if row[0] == department})
        await reveal.audit_each(
            session,
            actor.person_id,
            reveal.CHECK_LISTED,
            listed,
            department=department,
            full=["id_number"],
        )
    return len(rows)
