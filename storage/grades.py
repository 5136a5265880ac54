"""The grade ladder in the database: states, annual results, history, CSV imports, counts.

The rules are `storage.rules.ladder`; this module only reads and writes. Functions take a
session and never commit. Changes are scoped in SQL by `manageable_by` (a township official
reaches their own township only) and audited; reads of someone else's grade use `visible_to`.

A cadre is on the ladder while their nomination is in the pool or elected (LADDER_STATUSES).
Someone on the ladder without a `grade_state` row stands at the initial state (grade 1, 0
years): `enter_pool` writes that row, and the first result writes it if nobody did.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit, cadres
from storage.models import GradeMove, GradeState, Nomination, Person, Township
from storage.nominations import NotAllowed, manageable_by, visible_to
from storage.people import Actor
from storage.rules.ladder import (
    EARLIEST_YEAR,
    LadderPolicy,
    LadderState,
    Move,
    MoveKind,
    NextStep,
    Result,
    apply_result,
    initial_state,
    move_kind,
    next_step,
    parse_result,
    valid_year,
)
from storage.rules.vetting import Status
from storage.scoped import count_when, page, row_or_refuse

LADDER_STATUSES = (Status.IN_POOL.value, Status.ELECTED.value)
# An uploaded results file: beyond these the whole file is refused before any row is read.
MAX_CSV_BYTES = 200 * 1024
MAX_CSV_ROWS = 2000
# Bound parameters per IN (...) list; SQLite and asyncpg both cap a statement's parameters.
_CHUNK = 500


class _CodedError(Exception):
    """`code` picks the message; `params` fill it in."""

    def __init__(self, code: str, **params: int) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


class GradeError(_CodedError):
    """A result that cannot be recorded."""


@dataclass(frozen=True, slots=True)
class MoveRow:
    """One year of the history, as stored."""

    year: int
    result: str
    from_grade: int
    to_grade: int
    from_years: int
    to_years: int
    subsidy_yuan: int

    @property
    def kind(self) -> MoveKind:
        return move_kind(self.from_grade, self.to_grade)


@dataclass(frozen=True, slots=True)
class Standing:
    """A cadre on the ladder and where they stand now."""

    nomination_id: int
    full_name: str
    township: str
    grade: int
    years_in_grade: int

    @property
    def state(self) -> LadderState:
        return LadderState(self.grade, self.years_in_grade)


@dataclass(frozen=True, slots=True)
class GradeView(Standing):
    """Where one cadre stands, with the way up and the history, for /grade and the dossier."""

    subsidy_yuan: int
    subsidy_period: str
    next: NextStep
    moves: list[MoveRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Applied:
    """A result written: the move and whom it concerned."""

    nomination_id: int
    year: int
    move: Move


def _on_ladder() -> ColumnElement[bool]:
    return Nomination.status.in_(LADDER_STATUSES)


def _chunks(values: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


async def enter_pool(
    session: AsyncSession, nomination_id: int, policy: LadderPolicy, *, now: datetime
) -> GradeState:
    """Put a cadre on the ladder at grade 1, 0 years, unless they already stand somewhere.

    Meant for the moment of 入库 (vetting approved); idempotent, so calling it twice or after
    a first result changes nothing.
    """
    state = await session.get(GradeState, nomination_id, with_for_update=True)
    if state is not None:
        return state
    state = _initial_row(nomination_id, policy, now)
    try:
        async with session.begin_nested():
            session.add(state)
            await session.flush()
    except IntegrityError:
        # Another transaction put them on the ladder first: theirs stands.
        found = await session.get(GradeState, nomination_id, populate_existing=True)
        assert found is not None
        return found
    return state


def _initial_row(nomination_id: int, policy: LadderPolicy, now: datetime) -> GradeState:
    """The grade_state row of someone entering the ladder (not yet added to the session)."""
    start = initial_state()
    return GradeState(
        nomination_id=nomination_id,
        grade=start.grade,
        years_in_grade=start.years,
        subsidy_yuan=policy.subsidy(start.grade),
        updated_at=now,
    )


async def _history(session: AsyncSession, nomination_id: int) -> list[MoveRow]:
    rows = await session.scalars(
        select(GradeMove).where(GradeMove.nomination_id == nomination_id).order_by(GradeMove.year)
    )
    return [
        MoveRow(
            m.year, m.result, m.from_grade, m.to_grade, m.from_years, m.to_years, m.subsidy_yuan
        )
        for m in rows
    ]


async def _view(
    session: AsyncSession,
    nomination: Nomination,
    full_name: str,
    township: str,
    policy: LadderPolicy,
) -> GradeView:
    state_row = await session.get(GradeState, nomination.id)
    if state_row is None:
        state = initial_state()
        subsidy = policy.subsidy(state.grade)
    else:
        state = LadderState(state_row.grade, state_row.years_in_grade)
        subsidy = state_row.subsidy_yuan
    return GradeView(
        nomination_id=nomination.id,
        full_name=full_name,
        township=township,
        grade=state.grade,
        years_in_grade=state.years,
        subsidy_yuan=subsidy,
        subsidy_period=policy.subsidy_period,
        next=next_step(state, policy),
        moves=await _history(session, nomination.id),
    )


async def _nominee(
    session: AsyncSession, *where: ColumnElement[bool]
) -> tuple[Nomination, str, str] | None:
    """The latest nomination matching `where`, with the person's name and the township."""
    row = (
        await session.execute(
            select(Nomination, Person.full_name, Township.name)
            .join(Person, Person.id == Nomination.person_id)
            .join(Township, Township.id == Nomination.township_id)
            .where(*where)
            .order_by(Nomination.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    nomination, name, township = row
    return nomination, name or "", township


async def grade_of(
    session: AsyncSession, person_id: int, policy: LadderPolicy
) -> GradeView | None:
    """The person's own place on the ladder (for /grade), or None if they are not on it."""
    found = await _nominee(session, Nomination.person_id == person_id, _on_ladder())
    return None if found is None else await _view(session, *found, policy)


async def grade_for(
    session: AsyncSession, actor: Actor, nomination_id: int, policy: LadderPolicy
) -> GradeView:
    """Someone's place on the ladder, if the actor may read their file; the read is audited.

    NotAllowed when the nomination is out of scope, unknown or not on the ladder: one answer,
    so that an id cannot be probed.
    """
    found = await _nominee(
        session, Nomination.id == nomination_id, visible_to(actor), _on_ladder()
    )
    if found is None:
        raise NotAllowed
    nomination = found[0]
    if nomination.person_id != actor.person_id:
        await audit.record(session, actor.person_id, "grade.read", "nomination", nomination.id)
    return await _view(session, *found, policy)


async def dossier_section(
    session: AsyncSession, actor: Actor, nomination_id: int, policy: LadderPolicy
) -> GradeView | None:
    """The grades part of a dossier: None when the person is not on the ladder.

    Scoped like the dossier itself (`visible_to`); NotAllowed otherwise. Not audited here:
    the dossier read that includes it is.
    """
    found = await _nominee(session, Nomination.id == nomination_id, visible_to(actor))
    if found is None:
        raise NotAllowed
    if found[0].status not in LADDER_STATUSES:
        return None
    return await _view(session, *found, policy)


# ---------------------------------------------------------------------------------------------
# Recording results.


# A cadre an official may record a result for, with where they stand now.
Candidate = Standing


def _candidate_query(actor: Actor) -> Select[int, str | None, str, int, int]:
    start = initial_state()
    return (
        select(
            Nomination.id,
            Person.full_name,
            Township.name,
            func.coalesce(GradeState.grade, start.grade),
            func.coalesce(GradeState.years_in_grade, start.years),
        )
        .join(Person, Person.id == Nomination.person_id)
        .join(Township, Township.id == Nomination.township_id)
        .outerjoin(GradeState, GradeState.nomination_id == Nomination.id)
        .where(cadres.managed(actor, LADDER_STATUSES))
    )


async def pending_for_year(
    session: AsyncSession, actor: Actor, year: int, *, offset: int = 0, limit: int = 8
) -> tuple[list[Candidate], int]:
    """Cadres in the actor's scope with no result for `year` yet; deny by default."""
    without = ~exists().where(GradeMove.nomination_id == Nomination.id, GradeMove.year == year)
    where = and_(cadres.managed(actor, LADDER_STATUSES), without)
    rows, total = await page(
        session,
        _candidate_query(actor)
        .where(without)
        .order_by(Township.id, Person.full_name, Nomination.id),
        select(func.count()).select_from(Nomination).where(where),
        offset=offset,
        limit=limit,
    )
    return [Candidate(i, n or "", t, g, y) for i, n, t, g, y in rows], total


async def candidate(session: AsyncSession, actor: Actor, nomination_id: int) -> Candidate:
    """One cadre the actor may record a result for (a pressed button is re-checked here)."""
    query = _candidate_query(actor).where(Nomination.id == nomination_id)
    i, n, t, g, y = await row_or_refuse(session, query)
    return Candidate(i, n or "", t, g, y)


async def _recorded_years(
    session: AsyncSession, nomination_ids: Sequence[int]
) -> dict[int, set[int]]:
    years: dict[int, set[int]] = defaultdict(set)
    for chunk in _chunks(list(nomination_ids)):
        rows = await session.execute(
            select(GradeMove.nomination_id, GradeMove.year).where(
                GradeMove.nomination_id.in_(chunk)
            )
        )
        for nid, year in rows.all():
            years[nid].add(year)
    return years


async def _states(
    session: AsyncSession, nomination_ids: Sequence[int], policy: LadderPolicy, now: datetime
) -> dict[int, GradeState]:
    states: dict[int, GradeState] = {}
    for chunk in _chunks(list(nomination_ids)):
        for state in await session.scalars(
            select(GradeState).where(GradeState.nomination_id.in_(chunk)).with_for_update()
        ):
            states[state.nomination_id] = state
    # The callers hold the nominations' row locks, so nobody else can create these rows now:
    # plain inserts, flushed with the moves, instead of enter_pool's savepoint per cadre.
    for nid in nomination_ids:
        if nid not in states:
            states[nid] = _initial_row(nid, policy, now)
            session.add(states[nid])
    return states


def _check_year(year: int, this_year: int, recorded: set[int]) -> None:
    if not valid_year(year, this_year):
        raise GradeError("grade.bad_year", min=EARLIEST_YEAR, max=this_year)
    if year in recorded:
        raise GradeError("grade.duplicate_year", year=year)
    latest = max(recorded, default=None)
    if latest is not None and latest > year:
        # Results are applied in year order; an earlier year after a later one would be
        # applied to the wrong state.
        raise GradeError("grade.out_of_order", year=year, latest=latest)


def _add_move(
    session: AsyncSession,
    actor: Actor,
    state: GradeState,
    year: int,
    result: Result,
    policy: LadderPolicy,
    now: datetime,
) -> tuple[GradeMove, Move]:
    """Stage one result: the history row and the new state (flushed by the caller)."""
    move = apply_result(LadderState(state.grade, state.years_in_grade), result, policy)
    row = GradeMove(
        nomination_id=state.nomination_id,
        year=year,
        result=result.value,
        from_grade=move.from_grade,
        to_grade=move.to_grade,
        from_years=move.from_years,
        to_years=move.to_years,
        subsidy_yuan=move.subsidy_yuan,
        actor_person_id=actor.person_id,
        at=now,
    )
    session.add(row)
    state.grade = move.to_grade
    state.years_in_grade = move.to_years
    state.subsidy_yuan = move.subsidy_yuan
    state.updated_at = now
    return row, move


async def _audit(
    session: AsyncSession, actor: Actor, row: GradeMove, move: Move, *, source: str
) -> Applied:
    # The one-off bonus has no column of its own yet: the audit row keeps it.
    await audit.record(
        session,
        actor.person_id,
        "grade.record",
        "grade_move",
        row.id,
        nomination_id=row.nomination_id,
        year=row.year,
        result=row.result,
        from_grade=move.from_grade,
        to_grade=move.to_grade,
        bonus_yuan=move.bonus_yuan,
        source=source,
    )
    return Applied(row.nomination_id, row.year, move)


async def _flush_moves(session: AsyncSession, year: int) -> None:
    try:
        await session.flush()
    except IntegrityError:
        # Someone recorded the same year in between: the unique (nomination, year) decided.
        raise GradeError("grade.duplicate_year", year=year) from None


async def _locked(session: AsyncSession, actor: Actor, nomination_id: int) -> Nomination:
    nomination = await cadres.locked(session, manageable_by(actor), nomination_id)
    if nomination.status not in LADDER_STATUSES:
        raise GradeError("grade.not_on_ladder")
    return nomination


async def record_result(
    session: AsyncSession,
    actor: Actor,
    nomination_id: int,
    year: int,
    result: Result,
    policy: LadderPolicy,
    *,
    this_year: int,
    now: datetime,
) -> Applied:
    """Apply one annual result: a GradeMove row, the new GradeState, an audit row.

    NotAllowed outside the actor's scope; GradeError for a cadre not on the ladder, a year out
    of range, a year already recorded (one result per year) or a year before a recorded one.
    """
    await _locked(session, actor, nomination_id)
    recorded = (await _recorded_years(session, [nomination_id]))[nomination_id]
    _check_year(year, this_year, recorded)
    states = await _states(session, [nomination_id], policy, now)
    try:
        # A savepoint, so that the caller's transaction stays usable after a lost race.
        async with session.begin_nested():
            row, move = _add_move(session, actor, states[nomination_id], year, result, policy, now)
            await session.flush()
    except IntegrityError:
        raise GradeError("grade.duplicate_year", year=year) from None
    return await _audit(session, actor, row, move, source="chat")


# ---------------------------------------------------------------------------------------------
# CSV upload: `id,year,result`, all rows or none.


class CsvFileError(_CodedError):
    """The file as a whole is unusable (size, encoding, header, row count)."""


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int
    nomination_id: int
    year: int
    result: Result


@dataclass(frozen=True, slots=True)
class RowError:
    """A bad row: its line in the file (the header is line 1), why, and for a repeated row the
    line it repeats."""

    line: int
    code: str
    other_line: int | None = None


@dataclass(slots=True)
class CsvParse:
    rows: list[CsvRow]
    errors: list[RowError]


# Header names, lower-cased; other columns (a name for the reader's benefit) are ignored.
HEADER_ALIASES = {
    "id": ("id", "编号"),
    "year": ("year", "年度", "年份"),
    "result": ("result", "结果", "考核结果"),
}


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Excel on Chinese Windows saves "CSV" in the ANSI code page (GBK, a subset of GB18030).
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise CsvFileError("csv.encoding") from None


def _cell(value: str) -> str:
    # Full-width digits and letters from a Chinese IME become ASCII; stray spaces go.
    return unicodedata.normalize("NFKC", value).strip()


def _header(cells: list[str]) -> dict[str, int]:
    names = [_cell(c).lower() for c in cells]
    found: dict[str, int] = {}
    for key, aliases in HEADER_ALIASES.items():
        positions = [i for i, name in enumerate(names) if name in aliases]
        if len(positions) != 1:
            raise CsvFileError("csv.header")
        found[key] = positions[0]
    return found


def parse_results_csv(
    data: bytes,
    *,
    this_year: int,
    max_bytes: int = MAX_CSV_BYTES,
    max_rows: int = MAX_CSV_ROWS,
) -> CsvParse:
    """Read an uploaded results file; no database. Every bad row is reported, not just one.

    CsvFileError for the file as a whole; row errors (bad id, year or result, a repeated
    id and year) in the result, with the rows that did parse.
    """
    if len(data) > max_bytes:
        raise CsvFileError("csv.too_big", max_kb=max_bytes // 1024)
    text = _decode(data)
    # Strict: a stray quote is reported (with its line) instead of swallowing the lines after.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        lines: list[tuple[int, list[str]]] = [
            (reader.line_num, cells) for cells in reader if any(c.strip() for c in cells)
        ]
    except csv.Error:
        raise CsvFileError("csv.format", line=reader.line_num) from None
    if not lines:
        raise CsvFileError("csv.empty")
    columns = _header(lines[0][1])
    body = lines[1:]
    if not body:
        raise CsvFileError("csv.empty")
    if len(body) > max_rows:
        raise CsvFileError("csv.too_many_rows", max=max_rows, found=len(body))
    rows: list[CsvRow] = []
    errors: list[RowError] = []
    seen: dict[tuple[int, int], int] = {}
    width = max(columns.values()) + 1
    for line, cells in body:
        if len(cells) < width:
            errors.append(RowError(line, "csv.columns"))
            continue
        raw_id, raw_year = _cell(cells[columns["id"]]), _cell(cells[columns["year"]])
        nomination_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() else None
        if nomination_id is None or nomination_id <= 0 or nomination_id > 2**31 - 1:
            nomination_id = None
            errors.append(RowError(line, "csv.bad_id"))
        raw_year = raw_year.removesuffix("年").strip()
        year = int(raw_year) if raw_year.isascii() and raw_year.isdigit() else None
        if year is None or not valid_year(year, this_year):
            year = None
            errors.append(RowError(line, "csv.bad_year"))
        result = parse_result(_cell(cells[columns["result"]]))
        if result is None:
            errors.append(RowError(line, "csv.bad_result"))
        if nomination_id is None or year is None:
            continue
        first = seen.setdefault((nomination_id, year), line)
        if first != line:
            errors.append(RowError(line, "csv.duplicate_row", first))
            continue
        if result is not None:
            rows.append(CsvRow(line, nomination_id, year, result))
    return CsvParse(rows, errors)


@dataclass(frozen=True, slots=True)
class ImportReport:
    """Either errors (and nothing applied) or every row applied."""

    errors: list[RowError]
    applied: list[Applied]
    bad_lines: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


async def import_results(
    session: AsyncSession,
    actor: Actor,
    parsed: CsvParse,
    policy: LadderPolicy,
    *,
    this_year: int,
    now: datetime,
) -> ImportReport:
    """Check every row against the database, then apply all of them or none.

    The database adds: unknown id, another township's cadre, not on the ladder, a year already
    recorded, a year before a recorded one. Rows of one cadre are applied in year order.
    A race lost while writing raises GradeError; the caller's transaction then rolls back
    whatever this import wrote.
    """
    errors = list(parsed.errors)
    ids = sorted({row.nomination_id for row in parsed.rows})
    status: dict[int, str] = {}
    manageable: set[int] = set()
    for chunk in _chunks(ids):
        for nid, st in (
            await session.execute(
                select(Nomination.id, Nomination.status).where(Nomination.id.in_(chunk))
            )
        ).all():
            status[nid] = st
        manageable.update(
            await session.scalars(
                select(Nomination.id)
                .where(Nomination.id.in_(chunk), manageable_by(actor))
                .with_for_update()
            )
        )
    recorded = await _recorded_years(session, ids)
    good: list[CsvRow] = []
    for row in parsed.rows:
        nid = row.nomination_id
        if nid not in status:
            errors.append(RowError(row.line, "csv.unknown_person"))
        elif nid not in manageable:
            errors.append(RowError(row.line, "csv.other_township"))
        elif status[nid] not in LADDER_STATUSES:
            errors.append(RowError(row.line, "csv.not_on_ladder"))
        elif row.year in recorded[nid]:
            errors.append(RowError(row.line, "csv.duplicate_year"))
        elif recorded[nid] and max(recorded[nid]) > row.year:
            errors.append(RowError(row.line, "csv.out_of_order"))
        else:
            good.append(row)
    if errors:
        errors.sort(key=lambda e: (e.line, e.code))
        return ImportReport(errors, [], len({e.line for e in errors}))
    states = await _states(session, sorted({r.nomination_id for r in good}), policy, now)
    staged = [
        _add_move(session, actor, states[r.nomination_id], r.year, r.result, policy, now)
        for r in sorted(good, key=lambda r: (r.nomination_id, r.year))
    ]
    # The nominations are locked above, so a concurrent result for them waits for this
    # transaction; one flush for the whole file instead of a savepoint per row.
    await _flush_moves(session, staged[0][0].year if staged else this_year)
    applied = [await _audit(session, actor, row, move, source="csv") for row, move in staged]
    return ImportReport([], applied)


# ---------------------------------------------------------------------------------------------
# Figures for the summaries.


@dataclass(frozen=True, slots=True)
class MoveCounts:
    """Grade moves of one township in one assessment year."""

    township_id: int
    township: str
    year: int
    promoted: int
    demoted: int
    stayed: int
    by_result: dict[str, int]

    @property
    def total(self) -> int:
        return self.promoted + self.demoted + self.stayed


def move_kind_counts() -> tuple[ColumnElement[int], ColumnElement[int], ColumnElement[int]]:
    """Promotions, demotions and stays among a group of grade moves, in that order."""
    return (
        count_when(GradeMove.to_grade > GradeMove.from_grade),
        count_when(GradeMove.to_grade < GradeMove.from_grade),
        count_when(GradeMove.to_grade == GradeMove.from_grade),
    )


async def move_counts(
    session: AsyncSession, *, township_id: int | None = None, year: int | None = None
) -> list[MoveCounts]:
    """Promotions, demotions and stays per township and year, from one GROUP BY query.

    The caller decides who may see which township (pass `township_id` to restrict).
    """
    query = (
        select(
            Nomination.township_id,
            Township.name,
            GradeMove.year,
            *move_kind_counts(),
            *(count_when(GradeMove.result == r.value) for r in Result),
        )
        .join(Nomination, Nomination.id == GradeMove.nomination_id)
        .join(Township, Township.id == Nomination.township_id)
        .group_by(Nomination.township_id, Township.name, GradeMove.year)
        .order_by(GradeMove.year, Nomination.township_id)
    )
    if township_id is not None:
        query = query.where(Nomination.township_id == township_id)
    if year is not None:
        query = query.where(GradeMove.year == year)
    counts = []
    for tid, name, yr, up, down, same, *per_result in (await session.execute(query)).all():
        counts.append(
            MoveCounts(
                township_id=tid,
                township=name,
                year=yr,
                promoted=int(up),
                demoted=int(down),
                stayed=int(same),
                by_result={r.value: int(n) for r, n in zip(Result, per_result, strict=True)},
            )
        )
    return counts
