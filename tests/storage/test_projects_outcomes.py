"""Hard-post projects, reports, outcomes and their figures on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import models, outcomes, projects
from storage.db import Database
from storage.nominations import NotAllowed
from storage.people import Actor
from storage.projects import format_wan, parse_wan
from storage.rules.identity import RuleError
from storage.rules.vetting import Channel, Event, IllegalTransition, Status, transition
from tests.support.county import four_cadres, grade_move, officials, townships

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
TODAY = date(2026, 3, 1)


# -- money: plain functions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "yuan"),
    [
        ("120", 1_200_000),
        ("120.5", 1_205_000),
        ("１２０万", 1_200_000),
        ("1,200.25", 12_002_500),
        ("52.33", 523_300),
        ("5233万元", 52_330_000),
        (" 52.33 万元 ", 523_300),
        ("０．５", 5_000),
        ("1，200", 12_000_000),
        ("0", 0),
        ("0.0001", 1),
        ("1.23450", 12_345),
        ("100000", 1_000_000_000),
        ("12.", None),
    ],
)
def test_parse_wan_is_exact(typed: str, yuan: int | None) -> None:
    if yuan is None:
        with pytest.raises(RuleError):
            parse_wan(typed)
        return
    assert parse_wan(typed) == yuan
    assert isinstance(parse_wan(typed), int)


# What the two money parsers refuse: (typed, error code).
WAN_REFUSED = [
    ("abc", "money.format"),
    ("", "money.format"),
    ("1.2.3", "money.format"),
    ("1,20", "money.format"),
    ("12,3456", "money.format"),
    ("١٢", "money.format"),
    ("1e3", "money.format"),
    ("-5", "money.negative"),
    ("－5万", "money.negative"),
    ("1.234567", "money.decimals"),
    ("0.00001", "money.decimals"),
    ("5000元", "money.unit"),
    ("100000.0001", "money.range"),
    ("99999999999999999999", "money.range"),
]
PAY_REFUSED = [
    ("abc", "pay.format"),
    ("3.5", "pay.format"),
    ("3,00", "pay.format"),
    ("-1", "pay.negative"),
    ("1000001", "pay.range"),
]


@pytest.mark.parametrize(
    ("parse", "typed", "code"),
    [(parse_wan, *case) for case in WAN_REFUSED]
    + [(outcomes.parse_pay, *case) for case in PAY_REFUSED],
)
def test_money_parsers_refuse(parse: Callable[[str], int], typed: str, code: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse(typed)
    assert caught.value.code == code


def test_format_wan_and_round_trip() -> None:
    assert format_wan(52_330_000) == "5,233"
    assert format_wan(1_205_000) == "120.5"
    assert format_wan(523_300) == "52.33"
    assert format_wan(1) == "0.0001"
    assert format_wan(0) == "0"
    assert format_wan(1_000_000_000) == "100,000"
    for yuan in (0, 1, 9_999, 10_000, 523_300, 1_205_000, 12_345_678, 999_999_999):
        assert parse_wan(format_wan(yuan)) == yuan


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("30000", 30_000), ("30,000", 30_000), ("３００００元", 30_000), ("0", 0)],
)
def test_parse_pay(typed: str, expected: int) -> None:
    assert outcomes.parse_pay(typed) == expected


# -- a small county ---------------------------------------------------------------------------


@dataclass
class World:
    a: int  # townships
    b: int
    a1: int  # villages
    a2: int
    b1: int
    official_a: Actor
    official_b: Actor
    county: Actor
    nobody: Actor
    cadre_a1: int  # nominations in the pool
    cadre_a2: int
    cadre_b1: int
    new_a: int  # still under review
    lead_a1: Actor  # the people behind the cadres, acting for themselves
    lead_a2: Actor
    lead_b1: Actor


async def _world(db: Database) -> World:
    async with db.sessionmaker.begin() as session:
        towns = await townships(
            session, [("青山镇", "青山村"), ("青山镇", "石板村"), ("木黄镇", "木黄村")]
        )
        a, b = towns["青山镇"], towns["木黄镇"]
        villages = {v.name: v.id for v in await session.scalars(select(models.Village))}
        staff = await officials(session, a, b)
        a1, a2, b1, new_a = await four_cadres(session, a, b)
        return World(
            a,
            b,
            villages["青山村"],
            villages["石板村"],
            villages["木黄村"],
            *staff,
            a1.id,
            a2.id,
            b1.id,
            new_a.id,
            Actor(a1.person_id, 11, ()),
            Actor(a2.person_id, 12, ()),
            Actor(b1.person_id, 13, ()),
        )


async def _count(db: Database, model: type, *where: object) -> int:
    async with db.sessionmaker() as session:
        query = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
        return int(await session.scalar(query) or 0)


async def _create(
    db: Database,
    actor: Actor,
    village: int,
    leads: list[int],
    funds: str,
    *,
    name: str = "闲置校舍改民宿",
    status: str = "planned",
) -> int:
    async with db.sessionmaker.begin() as session:
        project = await projects.create_project(
            session,
            actor,
            village_id=village,
            name=name,
            funds_yuan=parse_wan(funds),
            status=status,
            lead_ids=leads,
            now=NOW,
        )
        return project.id


async def _report(
    db: Database,
    actor: Actor,
    project_id: int,
    income: str,
    *,
    day: date = TODAY,
    status: str | None = None,
    note: str | None = None,
) -> projects.ReportSaved:
    async with db.sessionmaker.begin() as session:
        return await projects.add_report(
            session,
            actor,
            project_id,
            income_yuan=parse_wan(income),
            status=status,
            note=note,
            report_date=day,
            now=NOW,
        )


@dataclass
class Three:
    p1: int  # 青山村, 120.5万, led by 张三 and 李四
    p2: int  # 石板村, 52.33万, led by 张三
    p3: int  # 木黄村, 5,233万, led by 王五


async def _three(db: Database, w: World) -> Three:
    p1 = await _create(db, w.official_a, w.a1, [w.cadre_a1, w.cadre_a2], "120.5")
    p2 = await _create(db, w.official_a, w.a2, [w.cadre_a1], "52.33", status="under_way")
    p3 = await _create(db, w.county, w.b1, [w.cadre_b1], "5,233", status="done")
    return Three(p1, p2, p3)


# -- projects ---------------------------------------------------------------------------------


async def test_create_project_stores_yuan_exactly_with_leads_and_audit(db: Database) -> None:
    w = await _world(db)
    pid = await _create(db, w.official_a, w.a1, [w.cadre_a1, w.cadre_a2, w.cadre_a1], "120.5")
    async with db.sessionmaker() as session:
        project = await session.get(models.Project, pid)
        assert project is not None
        assert (project.funds_yuan, project.status, project.village_id) == (
            1_205_000,
            "planned",
            w.a1,
        )
        assert project.created_by_person_id == w.official_a.person_id
        leads = set(
            await session.scalars(
                select(models.ProjectLead.nomination_id).where(
                    models.ProjectLead.project_id == pid
                )
            )
        )
        assert leads == {w.cadre_a1, w.cadre_a2}
        log = await session.scalar(
            select(models.AuditLog).where(models.AuditLog.action == "project.create")
        )
        assert log is not None and log.subject_id == pid
        assert log.detail["funds_yuan"] == 1_205_000
        assert log.detail["leads"] == sorted([w.cadre_a1, w.cadre_a2])


async def test_create_project_scope_and_rules(db: Database) -> None:
    w = await _world(db)
    # Another township's official: refused, whatever the leads.
    with pytest.raises(NotAllowed):
        await _create(db, w.official_b, w.a1, [w.cadre_a1], "1")
    with pytest.raises(NotAllowed):
        await _create(db, w.nobody, w.a1, [w.cadre_a1], "1")
    # A lead from another township, or not in the pool: refused.
    for leads in ([w.cadre_b1], [w.cadre_a1, w.cadre_b1], [w.new_a], [987654]):
        with pytest.raises(RuleError) as caught:
            await _create(db, w.official_a, w.a1, leads, "1")
        assert caught.value.code == "project.leads"
    with pytest.raises(RuleError) as caught:
        await _create(db, w.official_a, w.a1, [], "1")
    assert caught.value.code == "project.no_leads"
    with pytest.raises(RuleError) as caught:
        await _create(db, w.official_a, w.a1, [w.cadre_a1], "1", name="x")
    assert caught.value.code == "text.length"
    with pytest.raises(RuleError) as caught:
        await _create(db, w.official_a, w.a1, [w.cadre_a1], "1", status="stalled")
    assert caught.value.code == "project.status"
    async with db.sessionmaker() as session:
        with pytest.raises(RuleError):
            await projects.create_project(
                session,
                w.official_a,
                village_id=w.a1,
                name="负数项目",
                funds_yuan=-1,
                status="planned",
                lead_ids=[w.cadre_a1],
                now=NOW,
            )
    assert await _count(db, models.Project) == 0
    assert await _count(db, models.ProjectLead) == 0


async def test_choices_are_scoped(db: Database) -> None:
    w = await _world(db)
    async with db.sessionmaker() as session:
        assert [p.id for p in await projects.townships_for(session, w.official_a)] == [w.a]
        assert [p.id for p in await projects.townships_for(session, w.county)] == [w.a, w.b]
        assert await projects.townships_for(session, w.nobody) == []
        with pytest.raises(NotAllowed):
            await projects.township_in_scope(session, w.official_a, w.b)
        villages, total = await projects.villages_for(session, w.official_a, w.a)
        assert total == 2 and {v.id for v in villages} == {w.a1, w.a2}
        assert await projects.villages_for(session, w.official_a, w.b) == ([], 0)
        with pytest.raises(NotAllowed):
            await projects.village_in_scope(session, w.official_b, w.a1)
        found = await projects.village_in_scope(session, w.county, w.a1)
        assert (found.township_id, found.township) == (w.a, "青山镇")
        leads, total = await projects.lead_candidates(session, w.official_a, w.a)
        assert total == 2 and [c.full_name for c in leads] == sorted(["张三", "李四"])
        assert await projects.lead_candidates(session, w.official_b, w.a) == ([], 0)
        named = await projects.leads_named(session, w.official_a, w.a, [w.cadre_a1, w.cadre_b1])
        assert [c.nomination_id for c in named] == [w.cadre_a1]


async def test_list_projects_by_scope(db: Database) -> None:
    w = await _world(db)
    t = await _three(db, w)
    async with db.sessionmaker() as session:
        rows, total = await projects.list_projects(session, w.official_a)
        assert total == 2 and [r.id for r in rows] == [t.p2, t.p1]
        assert rows[1].funds_wan == "120.5" and rows[1].leads == 2
        rows, total = await projects.list_projects(session, w.official_b)
        assert total == 1 and rows[0].id == t.p3 and rows[0].funds_wan == "5,233"
        assert (await projects.list_projects(session, w.county))[1] == 3
        assert await projects.list_projects(session, w.nobody) == ([], 0)
        # A lead cadre sees the projects they lead.
        rows, total = await projects.list_projects(session, w.lead_a1)
        assert total == 2 and {r.id for r in rows} == {t.p1, t.p2}
        rows, _ = await projects.list_projects(session, w.lead_a1, offset=1, limit=1)
        assert [r.id for r in rows] == [t.p1]


async def test_reports_by_leads_only(db: Database) -> None:
    w = await _world(db)
    t = await _three(db, w)
    saved = await _report(db, w.lead_a1, t.p1, "10.5", status="under_way", note=" 首月营业 ")
    assert (saved.income_yuan, saved.total_income_yuan) == (105_000, 105_000)
    assert (saved.old_status, saved.new_status, saved.note) == ("planned", "under_way", "首月营业")
    assert (saved.township_id, saved.township, saved.village) == (w.a, "青山镇", "青山村")
    assert saved.reporter == "张三" and saved.income_wan == "10.5"
    saved = await _report(db, w.lead_a2, t.p1, "2", day=date(2026, 2, 1), status="under_way")
    assert saved.total_income_wan == "12.5" and saved.new_status is None  # same status
    await _report(db, w.lead_a1, t.p2, "0.33")
    await _report(db, w.lead_a1, t.p2, "0")
    await _report(db, w.lead_b1, t.p3, "100", day=date(2025, 12, 31))
    # Not a lead of that project: refused, nothing stored.
    for actor, pid in [
        (w.lead_b1, t.p1),
        (w.lead_a2, t.p2),
        (w.official_a, t.p1),
        (w.county, t.p3),
        (w.nobody, t.p1),
    ]:
        with pytest.raises(NotAllowed):
            await _report(db, actor, pid, "1")
    with pytest.raises(NotAllowed):
        await _report(db, w.lead_a1, 987654, "1")
    assert await _count(db, models.ProjectReport) == 5
    assert await _count(db, models.AuditLog, models.AuditLog.action == "project.report") == 5
    async with db.sessionmaker() as session:
        project = await session.get(models.Project, t.p1)
        assert project is not None and project.status == "under_way"
        led = await projects.led_projects(session, w.lead_a1)
        assert {r.id: r.income_yuan for r in led} == {t.p1: 125_000, t.p2: 3_300}
        one = await projects.led_project(session, w.lead_a2, t.p1)
        assert one.last_report == TODAY
        with pytest.raises(NotAllowed):
            await projects.led_project(session, w.lead_a2, t.p2)
        assert await projects.led_projects(session, w.official_a) == []
        with pytest.raises(RuleError):
            await projects.add_report(
                session,
                w.lead_a1,
                t.p1,
                income_yuan=-1,
                status=None,
                note=None,
                report_date=TODAY,
                now=NOW,
            )


async def test_project_figures_exact_sums_per_township_and_county(db: Database) -> None:
    w = await _world(db)
    t = await _three(db, w)
    # 张三 leads two projects in 青山镇: one cadre, two projects.
    await _report(db, w.lead_a1, t.p1, "10.5", day=date(2026, 1, 15))
    await _report(db, w.lead_a2, t.p1, "2", day=date(2026, 2, 1))
    await _report(db, w.lead_a1, t.p2, "0.33", day=date(2026, 2, 28))
    await _report(db, w.lead_b1, t.p3, "100", day=date(2025, 12, 31))
    async with db.sessionmaker() as session:
        figures = await projects.project_figures(session)
        by_id = {r.township_id: r for r in figures.townships}
        a, b = by_id[w.a], by_id[w.b]
        assert (a.projects, a.leads, a.funds_yuan, a.income_yuan) == (2, 2, 1_728_300, 128_300)
        assert (a.funds_wan, a.income_wan) == ("172.83", "12.83")
        assert a.by_status == {"planned": 1, "under_way": 1, "done": 0}
        assert (b.projects, b.leads, b.funds_yuan, b.income_yuan) == (1, 1, 52_330_000, 1_000_000)
        total = figures.total
        assert (total.projects, total.leads) == (3, 3)
        assert (total.funds_yuan, total.income_yuan) == (54_058_300, 1_128_300)
        assert (total.funds_wan, total.income_wan) == ("5,405.83", "112.83")
        assert total.by_status == {"planned": 1, "under_way": 1, "done": 1}
        # A period (income only), as days or as aware datetimes (their Shanghai day).
        february = await projects.project_figures(
            session, since=date(2026, 2, 1), until=date(2026, 3, 1)
        )
        assert february.total.income_yuan == 23_300 and february.total.projects == 3
        assert {r.township_id: r.income_yuan for r in february.townships} == {
            w.a: 23_300,
            w.b: 0,
        }
        # 2026-01-31 16:00 UTC is 2026-02-01 00:00 in Shanghai.
        by_time = await projects.project_figures(
            session,
            since=datetime(2026, 1, 31, 16, 0, tzinfo=UTC),
            until=datetime(2026, 2, 28, 16, 0, tzinfo=UTC),
        )
        assert by_time.since == date(2026, 2, 1) and by_time.total.income_yuan == 23_300
        one = await projects.project_figures(session, township_id=w.b)
        assert [r.township_id for r in one.townships] == [w.b]
        assert one.total.township_id is None and one.total.funds_yuan == 52_330_000


async def test_project_figures_of_an_empty_county(db: Database) -> None:
    w = await _world(db)
    async with db.sessionmaker() as session:
        figures = await projects.project_figures(session)
        assert [r.township_id for r in figures.townships] == [w.a, w.b]
        assert all(r.projects == 0 and r.funds_yuan == 0 for r in figures.townships)
        assert (figures.total.projects, figures.total.income_yuan, figures.total.leads) == (
            0,
            0,
            0,
        )


async def test_project_dossier_section(db: Database) -> None:
    w = await _world(db)
    t = await _three(db, w)
    await _report(db, w.lead_a1, t.p1, "10.5")
    await _report(db, w.lead_a1, t.p2, "0.33")
    async with db.sessionmaker() as session:
        section = await projects.dossier_section(session, w.cadre_a1)
        assert [p.id for p in section.projects] == [t.p2, t.p1]
        assert (section.funds_yuan, section.income_yuan) == (1_728_300, 108_300)
        assert (section.funds_wan, section.income_wan) == ("172.83", "10.83")
        empty = await projects.dossier_section(session, w.new_a)
        assert empty.projects == [] and empty.funds_wan == "0"


# -- outcomes ---------------------------------------------------------------------------------


async def _elect(db: Database, actor: Actor, nomination_id: int, on: date = TODAY) -> int:
    async with db.sessionmaker.begin() as session:
        election = await outcomes.record_election(
            session,
            actor,
            nomination_id,
            position=" 村委会 委员 ",
            elected_on=on,
            today=TODAY,
            now=NOW,
        )
        return election.id


async def _award(
    session: AsyncSession, actor: Actor, nid: int, kind: str, title: str, on: date = TODAY
) -> models.Award:
    return await outcomes.record_award(
        session, actor, nid, kind=kind, title=title, awarded_on=on, today=TODAY
    )


async def _publicity(
    session: AsyncSession, actor: Actor, nid: int | None, outlet: str, title: str, on: date = TODAY
) -> models.Publicity:
    return await outcomes.record_publicity(
        session, actor, nid, outlet=outlet, title=title, published_on=on, today=TODAY
    )


async def test_election_moves_the_nomination_to_elected(db: Database) -> None:
    w = await _world(db)
    with pytest.raises(NotAllowed):
        await _elect(db, w.official_b, w.cadre_a1)
    with pytest.raises(NotAllowed):
        await _elect(db, w.official_a, w.new_a)  # not a reserve cadre yet
    await _elect(db, w.official_a, w.cadre_a1, date(2025, 12, 1))
    async with db.sessionmaker() as session:
        nomination = await session.get(models.Nomination, w.cadre_a1)
        assert nomination is not None and nomination.status == Status.ELECTED.value
        change = await session.scalar(
            select(models.StatusChange).where(models.StatusChange.nomination_id == w.cadre_a1)
        )
        assert change is not None
        assert (change.from_status, change.to_status, change.event) == (
            "in_pool",
            "elected",
            "elect",
        )
        assert change.actor_person_id == w.official_a.person_id
        actions = set(await session.scalars(select(models.AuditLog.action)))
        assert {"nomination.elect", "outcome.election"} <= actions
    # Already elected: a further election is recorded, the status stays, no second move.
    await _elect(db, w.county, w.cadre_a1)
    assert (
        await _count(db, models.StatusChange, models.StatusChange.nomination_id == w.cadre_a1) == 1
    )
    async with db.sessionmaker() as session:
        section = await outcomes.dossier_section(session, w.cadre_a1)
        assert [e.elected_on for e in section.elections] == [TODAY, date(2025, 12, 1)]
        assert section.elections[0].position == "村委会 委员"
        # Out of the pool the cadre can no longer be adjusted out: the state machine says so.
        nomination = await session.get(models.Nomination, w.cadre_a1)
        assert nomination is not None
        with pytest.raises(IllegalTransition):
            transition(Status(nomination.status), Event.ADJUST_OUT, channel=Channel.ORGANIZATION)


async def test_election_rules(db: Database) -> None:
    w = await _world(db)
    async with db.sessionmaker() as session:
        for position, on, code in [
            ("x", TODAY, "text.length"),
            ("村委会委员", date(2026, 3, 2), "date.past"),
            ("村委会委员", date(1999, 12, 31), "date.past"),
        ]:
            with pytest.raises(RuleError) as caught:
                await outcomes.record_election(
                    session,
                    w.official_a,
                    w.cadre_a1,
                    position=position,
                    elected_on=on,
                    today=TODAY,
                    now=NOW,
                )
            assert caught.value.code == code


async def test_awards_publicity_and_pay(db: Database) -> None:
    w = await _world(db)
    async with db.sessionmaker.begin() as session:
        await _award(
            session, w.official_a, w.cadre_a1, "exemplary", "优秀村级后备干部", date(2025, 7, 1)
        )
        await _award(session, w.county, w.cadre_b1, "award", "乡村振兴先进个人", date(2026, 1, 5))
        await _publicity(
            session,
            w.official_a,
            w.cadre_a1,
            "铜仁日报",
            "返乡青年盘活闲置校舍",
            date(2026, 2, 10),
        )
        await _publicity(
            session, w.county, None, "贵州日报", "印江：“选育管用”全链条机制", date(2026, 2, 20)
        )
        session.add(
            grade_move(
                w.cadre_a2, 2025, "excellent", (1, 2), (0, 0), subsidy_yuan=250, bonus_yuan=1000
            )
        )
    async with db.sessionmaker() as session:
        with pytest.raises(NotAllowed):
            await _award(session, w.official_b, w.cadre_a1, "award", "先进个人")
        with pytest.raises(RuleError):
            await _award(session, w.official_a, w.cadre_a1, "medal", "先进个人")
        # A report naming nobody belongs to the county: a township official may not add one.
        with pytest.raises(NotAllowed):
            await _publicity(session, w.official_a, None, "铜仁日报", "一篇报道")
        with pytest.raises(NotAllowed):
            await _publicity(session, w.official_b, w.cadre_a1, "铜仁日报", "一篇报道")
    assert await _count(db, models.Publicity) == 2
    async with db.sessionmaker.begin() as session:
        years = await outcomes.assessment_years(session, w.official_a, w.cadre_a2)
        assert [(y.year, y.result, y.performance_pay_yuan) for y in years] == [
            (2025, "excellent", None)
        ]
        with pytest.raises(NotAllowed):
            await outcomes.assessment_years(session, w.official_b, w.cadre_a2)
        linked = await outcomes.link_pay(
            session, w.official_a, w.cadre_a2, year=2025, pay_yuan=36_000
        )
        assert linked.performance_pay_yuan == 36_000
        with pytest.raises(RuleError) as caught:
            await outcomes.link_pay(session, w.official_a, w.cadre_a2, year=2024, pay_yuan=1)
        assert caught.value.code == "pay.no_result" and caught.value.params == {"year": 2024}
        with pytest.raises(NotAllowed):
            await outcomes.link_pay(session, w.official_b, w.cadre_a2, year=2025, pay_yuan=1)
    async with db.sessionmaker() as session:
        move = await session.scalar(select(models.GradeMove))
        assert move is not None and move.performance_pay_yuan == 36_000
        log = await session.scalar(
            select(models.AuditLog).where(models.AuditLog.action == "outcome.pay")
        )
        assert log is not None and log.detail["pay_yuan"] == 36_000
        assert log.detail["previous_yuan"] is None
        section = await outcomes.dossier_section(session, w.cadre_a1)
        assert [(a.kind, a.title) for a in section.awards] == [("exemplary", "优秀村级后备干部")]
        assert [p.outlet for p in section.publicity] == ["铜仁日报"]
        assert section.pay == [] and section.elections == []
        pay = (await outcomes.dossier_section(session, w.cadre_a2)).pay
        assert [(p.year, p.performance_pay_yuan, p.bonus_yuan) for p in pay] == [
            (2025, 36_000, 1000)
        ]


async def test_outcome_figures(db: Database) -> None:
    w = await _world(db)
    await _elect(db, w.official_a, w.cadre_a1, date(2025, 12, 1))
    await _elect(db, w.official_a, w.cadre_a1, date(2026, 2, 1))
    await _elect(db, w.official_a, w.cadre_a2, date(2026, 2, 2))
    await _elect(db, w.official_b, w.cadre_b1, date(2026, 2, 3))
    async with db.sessionmaker.begin() as session:
        for actor, nid, kind, on in [
            (w.official_a, w.cadre_a1, "award", date(2026, 1, 1)),
            (w.official_a, w.cadre_a2, "exemplary", date(2026, 2, 1)),
            (w.official_b, w.cadre_b1, "exemplary", date(2026, 2, 5)),
        ]:
            await _award(session, actor, nid, kind, "先进个人", on)
        reports: list[tuple[int | None, date]] = [
            (w.cadre_a1, date(2026, 2, 10)),
            (None, date(2026, 2, 11)),
        ]
        for named, on in reports:
            await _publicity(session, w.county, named, "铜仁日报", "报道", on)
    async with db.sessionmaker() as session:
        figures = await outcomes.outcome_figures(session)
        by_id = {r.township_id: r for r in figures.townships}
        a, b = by_id[w.a], by_id[w.b]
        assert (a.elections, a.elected, a.awards, a.publicity) == (3, 2, 2, 1)
        assert a.by_award_kind == {"award": 1, "exemplary": 1}
        assert (b.elections, b.elected, b.awards, b.publicity) == (1, 1, 1, 0)
        total = figures.total
        assert (total.elections, total.elected, total.awards) == (4, 3, 3)
        assert (total.publicity, total.county_publicity) == (2, 1)
        assert total.by_award_kind == {"award": 1, "exemplary": 2}
        february = await outcomes.outcome_figures(
            session, since=date(2026, 2, 1), until=date(2026, 3, 1)
        )
        assert (february.total.elections, february.total.elected) == (3, 3)
        assert (february.total.awards, february.total.publicity) == (2, 2)
        one = await outcomes.outcome_figures(session, township_id=w.a)
        assert [r.township_id for r in one.townships] == [w.a]
        assert (one.total.elections, one.total.publicity, one.total.county_publicity) == (3, 1, 0)


async def test_cadres_to_choose_are_scoped(db: Database) -> None:
    w = await _world(db)
    await _elect(db, w.official_a, w.cadre_a2)
    async with db.sessionmaker() as session:
        found, total = await outcomes.cadres(session, w.official_a)
        assert total == 2 and {c.full_name: c.status for c in found} == {
            "张三": "in_pool",
            "李四": "elected",
        }
        assert (await outcomes.cadres(session, w.county))[1] == 3
        assert await outcomes.cadres(session, w.nobody) == ([], 0)
        with pytest.raises(NotAllowed):
            await outcomes.cadre(session, w.official_b, w.cadre_a1)
        with pytest.raises(NotAllowed):
            await outcomes.cadre(session, w.official_a, w.new_a)
        assert not outcomes.may_record_county_publicity(w.official_a)
        assert outcomes.may_record_county_publicity(w.county)
