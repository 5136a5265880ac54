"""Grades, results (one by one and by CSV) and practice posts on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from storage import grades, posts
from storage.db import Database
from storage.grades import CsvFileError, GradeError, RowError
from storage.models import AuditLog, GradeMove, GradeState, PracticePost
from storage.nominations import NotAllowed
from storage.people import Actor
from storage.rules.identity import RuleError
from storage.rules.ladder import Result, load_policy
from tests.support.county import four_cadres, officials, townships

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
THIS_YEAR = 2026
TODAY = date(2026, 3, 1)
POLICY = load_policy()
E, C, B, N = Result.EXCELLENT, Result.COMPETENT, Result.BASIC, Result.INCOMPETENT


@dataclass
class World:
    a: int  # township ids
    b: int
    official_a: Actor
    official_b: Actor
    county: Actor
    nobody: Actor
    cadre_a: int  # nomination ids
    cadre_a2: int
    cadre_b: int
    new_a: int  # a nomination still under review: not on the ladder
    cadre_a_person: int


async def _world(db: Database) -> World:
    async with db.sessionmaker.begin() as session:
        towns = await townships(session, [("青山镇", "青山村"), ("木黄镇", "木黄村")])
        a, b = towns["青山镇"], towns["木黄镇"]
        staff = await officials(session, a, b)
        cadre_a, cadre_a2, cadre_b, new_a = await four_cadres(session, a, b)
        return World(
            a,
            b,
            *staff,
            cadre_a.id,
            cadre_a2.id,
            cadre_b.id,
            new_a.id,
            cadre_a.person_id,
        )


async def _count(db: Database, model: type, *where: object) -> int:
    async with db.sessionmaker() as session:
        query = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
        return int(await session.scalar(query) or 0)


async def _record(
    db: Database, actor: Actor, nomination_id: int, year: int, result: Result
) -> grades.Applied:
    async with db.sessionmaker.begin() as session:
        return await grades.record_result(
            session, actor, nomination_id, year, result, POLICY, this_year=THIS_YEAR, now=NOW
        )


# -- grades -----------------------------------------------------------------------------------


async def test_record_result_writes_move_state_and_audit(db: Database) -> None:
    w = await _world(db)
    applied = await _record(db, w.official_a, w.cadre_a, 2024, E)
    assert (applied.move.to_grade, applied.move.to_years, applied.move.bonus_yuan) == (2, 0, 1000)
    async with db.sessionmaker() as session:
        state = await session.get(GradeState, w.cadre_a)
        assert state is not None
        assert (state.grade, state.years_in_grade, state.subsidy_yuan) == (2, 0, 250)
        move = await session.scalar(select(GradeMove))
        assert move is not None
        assert (move.year, move.result, move.from_grade, move.to_grade) == (
            2024,
            "excellent",
            1,
            2,
        )
        assert move.actor_person_id == w.official_a.person_id
        log = await session.scalar(select(AuditLog).where(AuditLog.action == "grade.record"))
        assert log is not None and log.subject_id == move.id
        assert log.detail["bonus_yuan"] == 1000 and log.detail["nomination_id"] == w.cadre_a


async def test_history_over_years(db: Database) -> None:
    w = await _world(db)
    for year, result in [(2021, C), (2022, C), (2023, C), (2024, C), (2025, N)]:
        await _record(db, w.county, w.cadre_a, year, result)
    async with db.sessionmaker() as session:
        view = await grades.grade_of(session, w.cadre_a_person, POLICY)
    assert view is not None
    assert (view.grade, view.years_in_grade, view.subsidy_yuan) == (4, 0, 350)
    assert [(m.year, m.from_grade, m.to_grade, m.kind) for m in view.moves] == [
        (2021, 1, 2, "promoted"),
        (2022, 2, 3, "promoted"),
        (2023, 3, 4, "promoted"),
        (2024, 4, 5, "promoted"),
        (2025, 5, 4, "demoted"),
    ]
    assert view.next.next_grade == 5 and view.next.years_to_go == 1


async def test_other_township_and_roleless_are_refused(db: Database) -> None:
    w = await _world(db)
    for actor in (w.official_b, w.nobody):
        with pytest.raises(NotAllowed):
            await _record(db, actor, w.cadre_a, 2025, C)
    with pytest.raises(NotAllowed):
        await _record(db, w.official_a, 999_999, 2025, C)
    assert await _count(db, GradeMove) == 0
    assert await _count(db, GradeState) == 0


async def test_one_result_per_year_and_in_year_order(db: Database) -> None:
    w = await _world(db)
    await _record(db, w.official_a, w.cadre_a, 2024, C)
    with pytest.raises(GradeError) as caught:
        await _record(db, w.official_a, w.cadre_a, 2024, E)
    assert caught.value.code == "grade.duplicate_year" and caught.value.params == {"year": 2024}
    with pytest.raises(GradeError) as caught:
        await _record(db, w.official_a, w.cadre_a, 2023, E)
    assert caught.value.code == "grade.out_of_order"
    assert caught.value.params == {"year": 2023, "latest": 2024}
    for year in (1999, THIS_YEAR + 1):
        with pytest.raises(GradeError) as caught:
            await _record(db, w.official_a, w.cadre_a, year, C)
        assert caught.value.code == "grade.bad_year"
    with pytest.raises(GradeError) as caught:
        await _record(db, w.official_a, w.new_a, 2025, C)
    assert caught.value.code == "grade.not_on_ladder"
    assert await _count(db, GradeMove) == 1
    # The session stays usable after a refusal: the same transaction records another year.
    async with db.sessionmaker.begin() as session:
        with pytest.raises(GradeError):
            await grades.record_result(
                session, w.official_a, w.cadre_a, 2024, C, POLICY, this_year=THIS_YEAR, now=NOW
            )
        await grades.record_result(
            session, w.official_a, w.cadre_a, 2025, C, POLICY, this_year=THIS_YEAR, now=NOW
        )
    assert await _count(db, GradeMove) == 2


async def test_enter_pool_is_idempotent(db: Database) -> None:
    w = await _world(db)
    async with db.sessionmaker.begin() as session:
        state = await grades.enter_pool(session, w.cadre_a, POLICY, now=NOW)
        assert (state.grade, state.years_in_grade, state.subsidy_yuan) == (1, 0, 200)
    await _record(db, w.official_a, w.cadre_a, 2025, C)
    async with db.sessionmaker.begin() as session:
        state = await grades.enter_pool(session, w.cadre_a, POLICY, now=NOW)
        assert state.grade == 2
    assert await _count(db, GradeState) == 1


async def test_grade_views_are_scoped(db: Database) -> None:
    w = await _world(db)
    async with db.sessionmaker.begin() as session:
        view = await grades.grade_of(session, w.cadre_a_person, POLICY)
        assert view is not None and (view.grade, view.years_in_grade, view.moves) == (1, 0, [])
        assert await grades.grade_of(session, w.official_a.person_id, POLICY) is None
        seen = await grades.grade_for(session, w.official_a, w.cadre_a, POLICY)
        assert seen.full_name == "张三" and seen.township == "青山镇"
        for actor, nid in [(w.official_b, w.cadre_a), (w.nobody, w.cadre_a)]:
            with pytest.raises(NotAllowed):
                await grades.grade_for(session, actor, nid, POLICY)
        with pytest.raises(NotAllowed):  # visible, but not on the ladder
            await grades.grade_for(session, w.official_a, w.new_a, POLICY)
        section = await grades.dossier_section(session, w.official_a, w.cadre_a, POLICY)
        assert section is not None and section.grade == 1
        assert await grades.dossier_section(session, w.official_a, w.new_a, POLICY) is None
        with pytest.raises(NotAllowed):
            await grades.dossier_section(session, w.official_b, w.cadre_a, POLICY)
    assert await _count(db, AuditLog, AuditLog.action == "grade.read") == 1


async def test_pending_for_year_lists_own_township_without_a_result(db: Database) -> None:
    w = await _world(db)
    await _record(db, w.official_a, w.cadre_a, 2025, C)
    async with db.sessionmaker() as session:
        items, total = await grades.pending_for_year(session, w.official_a, 2025)
        assert [c.nomination_id for c in items] == [w.cadre_a2] and total == 1
        items, total = await grades.pending_for_year(session, w.official_a, 2026)
        assert {c.nomination_id for c in items} == {w.cadre_a, w.cadre_a2} and total == 2
        assert next(c for c in items if c.nomination_id == w.cadre_a).grade == 2
        items, total = await grades.pending_for_year(session, w.county, 2025)
        assert {c.nomination_id for c in items} == {w.cadre_a2, w.cadre_b}
        assert await grades.pending_for_year(session, w.nobody, 2025) == ([], 0)
        page, total = await grades.pending_for_year(session, w.county, 2026, offset=2, limit=2)
        assert len(page) == 1 and total == 3
        assert (await grades.candidate(session, w.official_a, w.cadre_a)).grade == 2
        with pytest.raises(NotAllowed):
            await grades.candidate(session, w.official_a, w.cadre_b)
        with pytest.raises(NotAllowed):
            await grades.candidate(session, w.official_a, w.new_a)


async def test_move_counts_group_by_township_and_year(db: Database) -> None:
    w = await _world(db)
    await _record(db, w.county, w.cadre_a, 2024, C)  # 1 → 2
    await _record(db, w.county, w.cadre_a, 2025, N)  # 2 → 1
    await _record(db, w.county, w.cadre_a2, 2025, B)  # stays
    await _record(db, w.county, w.cadre_b, 2025, E)  # 1 → 2
    async with db.sessionmaker() as session:
        counts = await grades.move_counts(session)
        only_a = await grades.move_counts(session, township_id=w.a, year=2025)
    table = {(c.township_id, c.year): (c.promoted, c.demoted, c.stayed) for c in counts}
    assert table == {
        (w.a, 2024): (1, 0, 0),
        (w.a, 2025): (0, 1, 1),
        (w.b, 2025): (1, 0, 0),
    }
    assert len(only_a) == 1 and only_a[0].total == 2 and only_a[0].township == "青山镇"
    assert only_a[0].by_result == {"excellent": 0, "competent": 0, "basic": 1, "incompetent": 1}


# -- CSV --------------------------------------------------------------------------------------


def test_parse_csv_reads_bom_gbk_aliases_and_extra_columns() -> None:
    body = "编号,姓名,年度,结果\r\n12,张三,2024,优秀\r\n\r\n13 , 李四 ,２０２５年, competent\r\n"
    for data in (body.encode("utf-8-sig"), body.encode("utf-8"), body.encode("gbk")):
        parsed = grades.parse_results_csv(data, this_year=THIS_YEAR)
        assert parsed.errors == []
        assert [(r.line, r.nomination_id, r.year, r.result) for r in parsed.rows] == [
            (2, 12, 2024, E),
            (4, 13, 2025, C),
        ]


def test_parse_csv_reports_every_bad_row() -> None:
    data = (
        "id,year,result\n"
        "1,2024,优秀\n"  # 2 fine
        "x,2024,优秀\n"  # 3 bad id
        "2,1999,称职\n"  # 4 bad year
        "3,2027,称职\n"  # 5 future year
        "4,2024,良好\n"  # 6 bad result
        "1,2024,称职\n"  # 7 repeats line 2
        "5\n"  # 8 too few columns
        "-1,abc,\n"  # 9 three problems
    ).encode()
    parsed = grades.parse_results_csv(data, this_year=THIS_YEAR)
    assert [r.line for r in parsed.rows] == [2]
    assert parsed.errors == [
        RowError(3, "csv.bad_id"),
        RowError(4, "csv.bad_year"),
        RowError(5, "csv.bad_year"),
        RowError(6, "csv.bad_result"),
        RowError(7, "csv.duplicate_row", 2),
        RowError(8, "csv.columns"),
        RowError(9, "csv.bad_id"),
        RowError(9, "csv.bad_year"),
        RowError(9, "csv.bad_result"),
    ]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "csv.empty"),
        (b"id,year,result\n\n", "csv.empty"),
        (b"name,year,result\n1,2024,excellent\n", "csv.header"),
        (b"id,id,year,result\n1,1,2024,excellent\n", "csv.header"),
        (b"\xff\xfe\x00\x00garbage\xff\xff", "csv.encoding"),
        (b"id,year,result\n" + b"1,2024,excellent\n" * 4, "csv.too_many_rows"),
        (b"id,year,result\n" + b"x" * 600, "csv.too_big"),
        (b'id,year,result\n"1,2024,excellent\n', "csv.format"),
    ],
)
def test_parse_csv_file_errors(data: bytes, code: str) -> None:
    with pytest.raises(CsvFileError) as caught:
        grades.parse_results_csv(data, this_year=THIS_YEAR, max_bytes=512, max_rows=3)
    assert caught.value.code == code


async def _import(db: Database, actor: Actor, text: str) -> grades.ImportReport:
    parsed = grades.parse_results_csv(text.encode(), this_year=THIS_YEAR)
    async with db.sessionmaker.begin() as session:
        return await grades.import_results(
            session, actor, parsed, POLICY, this_year=THIS_YEAR, now=NOW
        )


async def test_import_is_all_or_nothing(db: Database) -> None:
    w = await _world(db)
    await _record(db, w.official_a, w.cadre_a2, 2025, C)
    bad = (
        "id,year,result\n"
        f"{w.cadre_a},2024,优秀\n"  # 2 fine on its own
        "999999,2024,称职\n"  # 3 unknown person
        f"{w.cadre_b},2024,称职\n"  # 4 other township
        f"{w.new_a},2024,称职\n"  # 5 not on the ladder
        f"{w.cadre_a2},2025,称职\n"  # 6 year already recorded
        f"{w.cadre_a2},2024,称职\n"  # 7 earlier than a recorded year
        f"{w.cadre_a},2024,称职\n"  # 8 repeats line 2
        f"{w.cadre_a},2023,坏\n"  # 9 bad result
    )
    report = await _import(db, w.official_a, bad)
    assert not report.ok and report.applied == [] and report.bad_lines == 7
    assert [(e.line, e.code) for e in report.errors] == [
        (3, "csv.unknown_person"),
        (4, "csv.other_township"),
        (5, "csv.not_on_ladder"),
        (6, "csv.duplicate_year"),
        (7, "csv.out_of_order"),
        (8, "csv.duplicate_row"),
        (9, "csv.bad_result"),
    ]
    assert await _count(db, GradeMove) == 1
    assert await _count(db, GradeState) == 1

    # The same cadre over several years, listed out of order: applied in year order.
    good = (
        "id,year,result\n"
        f"{w.cadre_a},2025,excellent\n"
        f"{w.cadre_a},2023,competent\n"
        f"{w.cadre_a},2024,basic\n"
        f"{w.cadre_a2},2026,incompetent\n"
    )
    report = await _import(db, w.official_a, good)
    assert report.ok
    assert [(a.nomination_id, a.year, a.move.to_grade) for a in report.applied] == [
        (w.cadre_a, 2023, 2),
        (w.cadre_a, 2024, 2),
        (w.cadre_a, 2025, 3),
        (w.cadre_a2, 2026, 1),
    ]
    async with db.sessionmaker() as session:
        state = await session.get(GradeState, w.cadre_a)
        assert state is not None and (state.grade, state.years_in_grade) == (3, 0)
    assert await _count(db, GradeMove) == 5
    assert await _count(db, AuditLog, AuditLog.action == "grade.record") == 5


async def test_import_by_county_official_reaches_every_township(db: Database) -> None:
    w = await _world(db)
    report = await _import(
        db, w.county, f"id,year,result\n{w.cadre_a},2025,优秀\n{w.cadre_b},2025,称职\n"
    )
    assert report.ok and len(report.applied) == 2
    report = await _import(db, w.nobody, f"id,year,result\n{w.cadre_a},2026,优秀\n")
    assert [e.code for e in report.errors] == ["csv.other_township"]


# -- practice posts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-03-01", date(2025, 3, 1)),
        ("2025/3/1", date(2025, 3, 1)),
        ("2025.03.01", date(2025, 3, 1)),
        ("2025年3月1日", date(2025, 3, 1)),
        (" ２０２５年３月１日 ", date(2025, 3, 1)),
        ("20250301", date(2025, 3, 1)),
    ],
)
def test_parse_date_forms(raw: str, expected: date) -> None:
    assert posts.parse_date(raw, today=TODAY) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("下周一", "date.format"),
        ("2025-3", "date.format"),
        ("", "date.format"),
        ("2025-02-30", "date.invalid"),
        ("2025-13-01", "date.invalid"),
        ("1999-12-31", "date.range"),
        ("2027-03-03", "date.range"),
    ],
)
def test_parse_date_errors(raw: str, code: str) -> None:
    with pytest.raises(RuleError) as caught:
        posts.parse_date(raw, today=TODAY)
    assert caught.value.code == code


def test_dates_must_be_ordered() -> None:
    posts.check_dates(date(2025, 3, 1), None)
    posts.check_dates(date(2025, 3, 1), date(2025, 3, 1))
    with pytest.raises(RuleError) as caught:
        posts.check_dates(date(2025, 3, 1), date(2025, 2, 28))
    assert caught.value.code == "date.order"


async def _assign(db: Database, actor: Actor, nid: int, **kwargs: object) -> PracticePost:
    values: dict[str, object] = {
        "kind": "intern",
        "title": None,
        "start_date": date(2026, 1, 1),
        "end_date": None,
    }
    values.update(kwargs)
    async with db.sessionmaker.begin() as session:
        return await posts.assign_post(session, actor, nid, now=NOW, **values)  # type: ignore[arg-type]


async def test_posts_assign_scope_list_and_counts(db: Database) -> None:
    w = await _world(db)
    await _assign(db, w.official_a, w.cadre_a, kind="intern", title="ignored")
    await _assign(
        db,
        w.official_a,
        w.cadre_a,
        kind="hard_post",
        title="  闲置资产\n盘活  ",
        start_date=date(2025, 1, 1),
        end_date=date(2025, 12, 31),
    )
    await _assign(db, w.county, w.cadre_b, kind="grid", start_date=date(2026, 6, 1))
    for actor, nid in [(w.official_b, w.cadre_a), (w.nobody, w.cadre_a), (w.official_a, w.new_a)]:
        with pytest.raises(NotAllowed):
            await _assign(db, actor, nid)
    with pytest.raises(RuleError):
        await _assign(db, w.official_a, w.cadre_a, kind="boss")
    with pytest.raises(RuleError):
        await _assign(db, w.official_a, w.cadre_a, kind="hard_post", title=None)
    with pytest.raises(RuleError):
        await _assign(
            db, w.official_a, w.cadre_a, start_date=date(2026, 2, 1), end_date=date(2026, 1, 1)
        )
    assert await _count(db, PracticePost) == 3
    assert await _count(db, AuditLog, AuditLog.action == "post.assign") == 3

    async with db.sessionmaker() as session:
        rows = await posts.posts_of(session, w.cadre_a, today=TODAY)
        assert [(r.kind, r.title, r.active) for r in rows] == [
            ("intern", None, True),
            ("hard_post", "闲置资产 盘活", False),
        ]
        section = await posts.dossier_section(session, w.official_a, w.cadre_a, today=TODAY)
        assert section.active == 1 and len(section.posts) == 2
        with pytest.raises(NotAllowed):
            await posts.dossier_section(session, w.official_b, w.cadre_a, today=TODAY)
        counts = {c.township_id: c for c in await posts.post_counts(session, today=TODAY)}
        assert (counts[w.a].total, counts[w.a].active) == (2, 1)
        assert counts[w.a].by_kind == {"hard_post": 1, "intern": 1}
        assert (counts[w.b].total, counts[w.b].active) == (1, 0)  # starts in June
        later = await posts.post_counts(session, today=date(2026, 7, 1), township_id=w.b)
        assert [(c.township_id, c.active) for c in later] == [(w.b, 1)]
        items, total = await posts.assignable(session, w.official_a)
        assert {i.nomination_id for i in items} == {w.cadre_a, w.cadre_a2} and total == 2
        assert await posts.assignable(session, w.nobody) == ([], 0)
        with pytest.raises(NotAllowed):
            await posts.assignee(session, w.official_a, w.cadre_b)
