"""/project, /projects, /report and /outcome through a real Application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from storage import geo, outcomes, projects
from storage.db import Database
from storage.models import (
    AuditLog,
    GradeMove,
    Nomination,
    Project,
    ProjectLead,
    ProjectReport,
    Publicity,
    Role,
    RoleGrant,
    StatusChange,
    Village,
)
from storage.people import Actor, Grant
from templates import build_environment, render
from tests.conftest import make_settings
from tests.support.county import person as _person
from tests.support.drafts import store_old_drafts
from tests.support.fake_telegram import Sent
from tests.support.harness import BotHarness, assert_cancel_keeps, assert_refused, count, first_row
from tests.support.telegram_html import check

OFFICIAL_A = 7501  # 青山镇
OFFICIAL_B = 7502  # 木黄镇
COUNTY = 7503
CADRE_A = 7601  # 张三, 青山镇
CADRE_A2 = 7602  # 李四, 青山镇
CADRE_B = 7603  # 王五, 木黄镇
STRANGER = 7701
TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date()
NOW = datetime.now(UTC)


@pytest.fixture
async def harness(sqlite_database: Database) -> AsyncIterator[BotHarness]:
    harness = BotHarness(make_settings(sqlite_database), sqlite_database)
    await harness.start()
    yield harness
    if harness.app is not None:
        await harness.stop()
    await sqlite_database.close()


@dataclass
class World:
    bot: BotHarness
    a: int
    b: int
    qingshan: int  # villages
    shiban: int
    muhuang: int
    zhang: int  # nominations in the pool
    li: int
    wang: int
    official_a: Actor
    county: Actor


@pytest.fixture
async def world(harness: BotHarness) -> World:
    async with harness.database.sessionmaker.begin() as session:
        await geo.import_pairs(
            session, "示例县", [("青山镇", "青山村"), ("青山镇", "石板村"), ("木黄镇", "木黄村")]
        )
        a = await geo.township_by_name(session, "青山镇")
        b = await geo.township_by_name(session, "木黄镇")
        assert a is not None and b is not None
        villages = {v.name: v.id for v in await session.scalars(select(Village))}
        grants: list[tuple[int, str, int | None]] = [
            (OFFICIAL_A, "township_official", a.id),
            (OFFICIAL_B, "township_official", b.id),
            (COUNTY, "county_official", None),
        ]
        person_of: dict[int, int] = {}
        for telegram_id, role, township in grants:
            person_id = await _person(session, None, telegram_id)
            session.add(RoleGrant(person_id=person_id, role=role, township_id=township))
            person_of[telegram_id] = person_id
        await _person(session, None, STRANGER)
        ids = []
        cadres: list[tuple[str, int, int, int]] = [
            ("张三", a.id, villages["青山村"], CADRE_A),
            ("李四", a.id, villages["石板村"], CADRE_A2),
            ("王五", b.id, villages["木黄村"], CADRE_B),
        ]
        for name, township, village, account in cadres:
            nomination = Nomination(
                person_id=await _person(session, name, account),
                channel="organization",
                status="in_pool",
                township_id=township,
                village_id=village,
                key_group="veteran",
            )
            session.add(nomination)
            await session.flush()
            ids.append(nomination.id)
    official_a = Actor(
        person_of[OFFICIAL_A], OFFICIAL_A, (Grant(Role.TOWNSHIP_OFFICIAL, a.id, None, None),)
    )
    county = Actor(person_of[COUNTY], COUNTY, (Grant(Role.COUNTY_OFFICIAL, None, None, None),))
    return World(
        harness,
        a.id,
        b.id,
        villages["青山村"],
        villages["石板村"],
        villages["木黄村"],
        ids[0],
        ids[1],
        ids[2],
        official_a,
        county,
    )


def last(replies: list[Sent]) -> Sent:
    assert replies, "the bot sent nothing"
    return replies[-1]


def everything(replies: list[Sent]) -> str:
    return "\n".join(r.text for r in replies)


async def make_project(
    w: World, village: int, leads: list[int], funds: str, *, name: str = "闲置校舍改民宿"
) -> int:
    async with w.bot.database.sessionmaker.begin() as session:
        project = await projects.create_project(
            session,
            w.county,
            village_id=village,
            name=name,
            funds_yuan=projects.parse_wan(funds),
            status="planned",
            lead_ids=leads,
            now=NOW,
        )
        return project.id


# -- /project ---------------------------------------------------------------------------------


async def test_project_creation_with_bad_input_in_every_state(world: World) -> None:
    bot = world.bot
    await assert_refused(bot, STRANGER, "/project")
    await assert_refused(bot, CADRE_A, "/project")

    # One township: straight to its villages.
    villages = last(await bot.send(OFFICIAL_A, "/project"))
    assert "青山镇" in villages.text and villages.labels == ["青山村", "石板村"]
    again = await bot.send(OFFICIAL_A, "随便写点")
    assert "请点击下方按钮" in again[0].text and last(again).labels == villages.labels
    forged = await bot.press(OFFICIAL_A, f"prj:v:{world.muhuang}")
    assert "已失效" in forged[0].text and last(forged).labels == villages.labels
    ask_name = last(await bot.press(OFFICIAL_A, villages.button("青山村")))
    assert "项目名称" in ask_name.text

    sticker = await bot.send_sticker(OFFICIAL_A)
    assert "需要文字回复" in sticker[0].text and "项目名称" in last(sticker).text
    short = await bot.send(OFFICIAL_A, "x")
    assert "2–100" in short[0].text and "项目名称" in last(short).text
    ask_funds = last(await bot.send(OFFICIAL_A, "闲置校舍改民宿"))
    assert "万元" in ask_funds.text

    for typed, expected in [
        ("abc", "没有看懂这个金额"),
        ("-5", "不能为负数"),
        ("1.234567", "小数最多 4 位"),
        ("5000元", "以万元为单位"),
        ("100001", "不能超过 100,000 万元"),
    ]:
        replies = await bot.send(OFFICIAL_A, typed)
        assert expected in replies[0].text.replace("<b>", "").replace("</b>", ""), typed
        assert "万元" in last(replies).text and not last(replies).buttons
    status_q = last(await bot.send(OFFICIAL_A, "１２０.５万"))
    assert status_q.labels == ["谋划中", "推进中", "已完成"]
    again = await bot.send(OFFICIAL_A, "推进中")
    assert "请点击下方按钮" in again[0].text and last(again).labels == status_q.labels
    stale = await bot.press(OFFICIAL_A, "prj:s:stalled")
    assert "已失效" in stale[0].text and last(stale).labels == status_q.labels

    leads = last(await bot.press(OFFICIAL_A, status_q.button("推进中")))
    assert "⬜ 张三（青山村）" in leads.labels and "王五" not in " ".join(leads.labels)
    assert "已选 0 人" in leads.text
    none = await bot.press(OFFICIAL_A, "prj:ld")
    assert "至少选择一名" in none[0].text and "选好了" in " ".join(last(none).labels)
    forged = await bot.press(OFFICIAL_A, f"prj:l:{world.wang}")
    assert "已失效" in forged[0].text
    picked = last(await bot.press(OFFICIAL_A, leads.button("张三")))
    assert picked.edited and "✅ 张三（青山村）" in picked.labels
    picked = last(await bot.press(OFFICIAL_A, leads.button("李四")))
    assert "已选 2 人" in picked.text
    picked = last(await bot.press(OFFICIAL_A, leads.button("李四")))
    assert "⬜ 李四（石板村）" in picked.labels and "已选 1 人：张三" in picked.text

    review = last(await bot.press(OFFICIAL_A, picked.button("选好了")))
    assert "请核对项目信息" in review.text
    assert "120.5 万元" in review.text and "推进中" in review.text
    assert "张三" in review.text and "李四" not in review.text
    # Change the funds from the review, then come back to it.
    ask = last(await bot.press(OFFICIAL_A, review.button("改资金")))
    assert "万元" in ask.text
    review = last(await bot.send(OFFICIAL_A, "52.33"))
    assert "请核对项目信息" in review.text and "52.33 万元" in review.text
    assert await count(bot, Project) == 0  # nothing before submitting

    saved = last(await bot.press(OFFICIAL_A, review.button("确认提交")))
    assert "项目已保存" in saved.text and "52.33 万元" in saved.text
    project = await first_row(bot, Project)
    assert (project.funds_yuan, project.status, project.village_id) == (
        523_300,
        "under_way",
        world.qingshan,
    )
    async with bot.database.sessionmaker() as session:
        leads_stored = list(await session.scalars(select(ProjectLead.nomination_id)))
    assert leads_stored == [world.zhang]
    # The old submit button again: the flow is over, nothing is stored twice.
    replay = await bot.press(OFFICIAL_A, "prj:ok")
    assert "已失效" in replay[0].text
    assert await count(bot, Project) == 1


async def test_project_by_county_official_chooses_township(world: World) -> None:
    bot = world.bot
    townships = last(await bot.send(COUNTY, "/project"))
    assert townships.labels == ["青山镇", "木黄镇"]
    stale = await bot.press(COUNTY, "prj:t:99999")
    assert "已失效" in stale[0].text and last(stale).labels == townships.labels
    villages = last(await bot.press(COUNTY, townships.button("木黄镇")))
    assert villages.labels == ["木黄村"]
    await bot.press(COUNTY, villages.button("木黄村"))
    await bot.send(COUNTY, "木黄村闲置厂房出租")
    status_q = last(await bot.send(COUNTY, "1,200.25"))
    leads = last(await bot.press(COUNTY, status_q.button("已完成")))
    assert [label for label in leads.labels if "王五" in label] == ["⬜ 王五（木黄村）"]
    assert not any("张三" in label for label in leads.labels)
    await bot.press(COUNTY, leads.button("王五"))
    review = last(await bot.press(COUNTY, "prj:ld"))
    assert "1,200.25 万元" in review.text
    await bot.press(COUNTY, review.button("确认提交"))
    async with bot.database.sessionmaker() as session:
        project = await session.scalar(select(Project))
        assert project is not None and project.funds_yuan == 12_002_500
    (listing,) = await bot.send(OFFICIAL_A, "/projects")
    assert "暂无项目" in listing.text
    (listing,) = await bot.send(OFFICIAL_B, "/projects")
    assert "木黄村闲置厂房出租" in listing.text and "1,200.25 万元" in listing.text


async def test_project_restart_mid_flow_and_cancel(world: World) -> None:
    bot = world.bot
    villages = last(await bot.send(OFFICIAL_A, "/project"))
    await bot.press(OFFICIAL_A, villages.button("石板村"))
    await bot.send(OFFICIAL_A, "石板村闲置仓库")
    await bot.restart()
    status_q = last(await bot.send(OFFICIAL_A, "30"))
    assert status_q.labels == ["谋划中", "推进中", "已完成"]
    leads = last(await bot.press(OFFICIAL_A, status_q.button("谋划中")))
    await bot.press(OFFICIAL_A, leads.button("李四"))
    await bot.restart()
    review = last(await bot.press(OFFICIAL_A, "prj:ld"))
    assert "石板村闲置仓库" in review.text and "30 万元" in review.text and "李四" in review.text
    busy = await bot.send(OFFICIAL_A, "/projects")
    assert "正在新建急难险重项目" in busy[0].text and "请核对项目信息" in last(busy).text
    await assert_cancel_keeps(bot, OFFICIAL_A, "prj:ok", Project, 0)


async def test_project_leads_rechecked_and_townships_without_cadres(world: World) -> None:
    bot = world.bot
    villages = last(await bot.send(OFFICIAL_A, "/project"))
    await bot.press(OFFICIAL_A, villages.button("青山村"))
    await bot.send(OFFICIAL_A, "青山村闲置粮站")
    status_q = last(await bot.send(OFFICIAL_A, "8"))
    leads = last(await bot.press(OFFICIAL_A, status_q.button("谋划中")))
    await bot.press(OFFICIAL_A, leads.button("张三"))
    # 张三 leaves the pool before the leads are confirmed: the choice is checked again.
    async with bot.database.sessionmaker.begin() as session:
        nomination = await session.get(Nomination, world.zhang)
        assert nomination is not None
        nomination.status = "adjusted"
    replies = await bot.press(OFFICIAL_A, "prj:ld")
    assert "已不在本乡镇（街道）资源库中" in replies[0].text
    assert "已选 0 人" in last(replies).text
    assert not any("张三" in label for label in last(replies).labels)
    await bot.press(OFFICIAL_A, last(replies).button("李四"))
    review = last(await bot.press(OFFICIAL_A, "prj:ld"))
    assert "李四" in review.text and "张三" not in review.text
    await bot.press(OFFICIAL_A, review.button("确认提交"))
    assert await count(bot, ProjectLead, ProjectLead.nomination_id == world.li) == 1

    # A township whose pool is empty is told so before anything is typed.
    async with bot.database.sessionmaker.begin() as session:
        nomination = await session.get(Nomination, world.wang)
        assert nomination is not None
        nomination.status = "adjusted"
    (empty,) = await bot.send(OFFICIAL_B, "/project")
    assert "暂无在库后备干部" in empty.text and "木黄镇" in empty.text
    (after,) = await bot.send(OFFICIAL_B, "木黄村项目")
    assert "没有理解" in after.text
    # The same for a county official, once that township is chosen.
    townships = last(await bot.send(COUNTY, "/project"))
    (empty,) = await bot.press(COUNTY, townships.button("木黄镇"))
    assert "暂无在库后备干部" in empty.text and "木黄镇" in empty.text
    (after,) = await bot.send(COUNTY, "木黄村项目")
    assert "没有理解" in after.text


async def test_projects_list_by_scope(world: World) -> None:
    bot = world.bot
    await make_project(world, world.qingshan, [world.zhang, world.li], "120.5")
    await make_project(world, world.muhuang, [world.wang], "5,233", name="木黄村茶园")
    (a,) = await bot.send(OFFICIAL_A, "/projects")
    assert "闲置校舍改民宿" in a.text and "120.5 万元" in a.text and "木黄村茶园" not in a.text
    (county,) = await bot.send(COUNTY, "/projects")
    assert "共 2 个项目" in county.text and "5,233 万元" in county.text
    (mine,) = await bot.send(CADRE_B, "/projects")
    assert "我牵头的项目" in mine.text and "木黄村茶园" in mine.text
    assert "闲置校舍改民宿" not in mine.text
    await assert_refused(bot, STRANGER, "/projects")
    (en,) = await bot.send(OFFICIAL_A, "/projects", language_code="en")
    assert "Funds 120.5 × 10,000 yuan" in en.text


# -- /report ----------------------------------------------------------------------------------


async def test_report_by_a_lead_notifies_the_township(world: World) -> None:
    bot = world.bot
    mine = await make_project(world, world.qingshan, [world.zhang], "120.5")
    theirs = await make_project(world, world.muhuang, [world.wang], "10", name="木黄村茶园")

    # Not a lead: told so, and a forged button afterwards stores nothing.
    for who in (STRANGER, CADRE_A2, OFFICIAL_A):
        (none,) = await bot.send(who, "/report")
        assert "没有牵头" in none.text
        forged = await bot.press(who, f"rpt:p:{mine}")
        assert "已失效" in forged[0].text
    assert await count(bot, ProjectReport) == 0

    choose = last(await bot.send(CADRE_A, "/report"))
    assert choose.labels == ["闲置校舍改民宿"]
    forged = await bot.press(CADRE_A, f"rpt:p:{theirs}")
    assert "已失效" in forged[0].text and last(forged).labels == ["闲置校舍改民宿"]
    ask = last(await bot.press(CADRE_A, choose.button("闲置校舍改民宿")))
    assert "增收多少" in ask.text
    for typed, expected in [("abc", "没有看懂"), ("-1", "负数"), ("0.123456", "小数最多")]:
        replies = await bot.send(CADRE_A, typed)
        assert expected in replies[0].text and "增收多少" in last(replies).text
    status_q = last(await bot.send(CADRE_A, "2.5"))
    assert status_q.labels == ["推进中", "已完成", "状态不变"]
    note_q = last(await bot.press(CADRE_A, status_q.button("推进中")))
    assert "不写备注" in note_q.labels
    review = last(await bot.send(CADRE_A, "民宿首月营业"))
    assert "2.5 万元" in review.text and "谋划中 → 推进中" in review.text
    assert await count(bot, ProjectReport) == 0
    saved = last(await bot.press(CADRE_A, review.button("确认提交")))
    assert "进展报告已提交" in saved.text and "累计增收 2.5 万元" in saved.text
    report = await first_row(bot, ProjectReport)
    assert (report.income_yuan, report.status, report.note) == (
        25_000,
        "under_way",
        "民宿首月营业",
    )
    assert report.report_date == TODAY
    async with bot.database.sessionmaker() as session:
        project = await session.get(Project, mine)
    assert project is not None and project.status == "under_way"
    delivered = await bot.drain()
    assert [d.chat_id for d in delivered] == [OFFICIAL_A]
    assert "项目进展报告" in delivered[0].text and "张三" in delivered[0].text
    assert "本期增收 2.5 万元" in delivered[0].text and "民宿首月营业" in delivered[0].text

    # A second report with no income and no note, after a restart mid-flow.
    choose = last(await bot.send(CADRE_A, "/report"))
    await bot.press(CADRE_A, choose.button("闲置校舍改民宿"))
    await bot.restart()
    status_q = last(await bot.send(CADRE_A, "0"))
    note_q = last(await bot.press(CADRE_A, status_q.button("状态不变")))
    review = last(await bot.press(CADRE_A, note_q.button("不写备注")))
    assert "（不变）" in review.text and "备注：无" in review.text
    saved = last(await bot.press(CADRE_A, review.button("确认提交")))
    assert "累计增收 2.5 万元" in saved.text
    assert await count(bot, ProjectReport) == 2


async def test_report_cancel_keeps_nothing(world: World) -> None:
    bot = world.bot
    await make_project(world, world.qingshan, [world.zhang], "1")
    choose = last(await bot.send(CADRE_A, "/report"))
    await bot.press(CADRE_A, choose.button("闲置校舍改民宿"))
    await bot.send(CADRE_A, "3")
    (cancelled,) = await bot.send(CADRE_A, "/cancel")
    assert "已退出" in cancelled.text
    assert await count(bot, ProjectReport) == 0


# -- /outcome ---------------------------------------------------------------------------------


async def test_outcome_elected_moves_status_and_shows_in_the_dossier(world: World) -> None:
    bot = world.bot
    await assert_refused(bot, STRANGER, "/outcome")
    people_b = last(await bot.send(OFFICIAL_B, "/outcome"))
    assert "王五" in people_b.text and "张三" not in people_b.text
    assert not any("县级宣传报道" in label for label in people_b.labels)
    forged = await bot.press(OFFICIAL_B, f"out:p:{world.zhang}")
    assert "已失效" in forged[0].text and "王五" in last(forged).text
    (cancelled,) = await bot.send(OFFICIAL_B, "/cancel")
    assert "已退出" in cancelled.text

    people = last(await bot.send(OFFICIAL_A, "/outcome"))
    assert "张三" in people.text and "李四" in people.text and "王五" not in people.text
    kinds = last(await bot.press(OFFICIAL_A, people.button("张三")))
    assert kinds.labels[:5] == [
        "当选村两委",
        "表彰奖励",
        "选树典型",
        "宣传报道",
        "考核结果与绩效挂钩",
    ]
    ask = last(await bot.press(OFFICIAL_A, kinds.button("当选村两委")))
    assert "职务" in ask.text
    short = await bot.send(OFFICIAL_A, "委")
    assert "2–60" in short[0].text and "职务" in last(short).text
    ask_date = last(await bot.send(OFFICIAL_A, "村委会委员"))
    assert "当选日期" in ask_date.text
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    for typed, expected in [
        ("明天", "没有看懂"),
        (tomorrow, "不能晚于今天"),
        ("2025-02-30", "不存在"),
    ]:
        replies = await bot.send(OFFICIAL_A, typed)
        assert expected in replies[0].text and "当选日期" in last(replies).text
    review = last(await bot.press(OFFICIAL_A, ask_date.button("今天")))
    assert "村委会委员" in review.text and TODAY.isoformat() in review.text
    assert "已进入村两委" in review.text
    saved = last(await bot.press(OFFICIAL_A, review.button("确认提交")))
    assert "已记录" in saved.text and "已进入村两委" in saved.text

    async with bot.database.sessionmaker() as session:
        nomination = await session.get(Nomination, world.zhang)
        assert nomination is not None and nomination.status == "elected"
        change = await session.scalar(
            select(StatusChange).where(StatusChange.nomination_id == world.zhang)
        )
        assert change is not None and (change.from_status, change.event) == ("in_pool", "elect")
        assert await session.scalar(
            select(func.count()).where(AuditLog.action == "outcome.election")
        )
        section = await outcomes.dossier_section(session, world.zhang)
    assert [(e.position, e.elected_on) for e in section.elections] == [("村委会委员", TODAY)]
    env = build_environment()
    for locale, expected in [("zh_CN", "当选村两委：村委会委员"), ("en", "elected to the two")]:
        html = env.get_template(f"{locale}/dossier/_outcomes.html.j2").render(
            outcome_section=section
        )
        check(html.strip())
        assert expected in html
    # An elected cadre is still offered (a further term), marked as such.
    people = last(await bot.send(OFFICIAL_A, "/outcome"))
    assert any("张三" in label and "已进入村两委" in label for label in people.labels)


async def test_outcome_pay_award_and_county_publicity(world: World) -> None:
    bot = world.bot
    people = last(await bot.send(OFFICIAL_A, "/outcome"))
    assert not any("县级宣传报道" in label for label in people.labels)
    stale = await bot.press(OFFICIAL_A, "out:np")
    assert "已失效" in stale[0].text
    kinds = last(await bot.press(OFFICIAL_A, people.button("李四")))
    no_results = await bot.press(OFFICIAL_A, kinds.button("考核结果与绩效挂钩"))
    assert "还没有任何年度考核结果" in no_results[0].text
    assert "当选村两委" in last(no_results).labels
    async with bot.database.sessionmaker.begin() as session:
        session.add(
            GradeMove(
                nomination_id=world.li,
                year=2025,
                result="excellent",
                from_grade=1,
                to_grade=2,
                from_years=0,
                to_years=0,
                subsidy_yuan=250,
                bonus_yuan=1000,
            )
        )
    years = last(await bot.press(OFFICIAL_A, kinds.button("考核结果与绩效挂钩")))
    assert years.labels == ["2025 年 · 优秀"]
    missing = await bot.send(OFFICIAL_A, "2024")
    assert "2024 年没有" in missing[0].text and last(missing).labels == years.labels
    ask_pay = last(await bot.press(OFFICIAL_A, years.button("2025")))
    assert "绩效报酬" in ask_pay.text
    bad = await bot.send(OFFICIAL_A, "三万")
    assert "整数金额" in bad[0].text
    review = last(await bot.send(OFFICIAL_A, "36,000"))
    assert "2025 年" in review.text and "36000 元" in review.text
    await bot.press(OFFICIAL_A, review.button("确认提交"))
    async with bot.database.sessionmaker() as session:
        move = await session.scalar(select(GradeMove))
        assert move is not None and move.performance_pay_yuan == 36_000

    # An exemplary-cadre recognition, with a restart in the middle.
    people = last(await bot.send(OFFICIAL_A, "/outcome"))
    kinds = last(await bot.press(OFFICIAL_A, people.button("李四")))
    await bot.press(OFFICIAL_A, kinds.button("选树典型"))
    await bot.restart()
    ask_date = last(await bot.send(OFFICIAL_A, "优秀村级后备干部"))
    review = last(await bot.send(OFFICIAL_A, "2025年7月1日"))
    assert "优秀村级后备干部" in review.text and "2025-07-01" in review.text
    await bot.press(OFFICIAL_A, review.button("确认提交"))
    assert "日期" in ask_date.text
    async with bot.database.sessionmaker() as session:
        section = await outcomes.dossier_section(session, world.li)
    assert [(a.kind, a.title) for a in section.awards] == [("exemplary", "优秀村级后备干部")]
    assert [(p.year, p.performance_pay_yuan) for p in section.pay] == [(2025, 36_000)]
    nomination_status = await count(
        bot, Nomination, Nomination.id == world.li, Nomination.status == "in_pool"
    )
    assert nomination_status == 1

    # A county-level publicity record naming nobody.
    people = last(await bot.send(COUNTY, "/outcome"))
    ask_outlet = last(await bot.press(COUNTY, people.button("县级宣传报道")))
    assert "发布媒体" in ask_outlet.text
    ask_title = last(await bot.send(COUNTY, "贵州日报"))
    assert "报道标题" in ask_title.text
    await bot.send(COUNTY, "印江：“选育管用”全链条机制促进乡村人才振兴")
    review = last(await bot.send(COUNTY, "2025-06-18"))
    assert "县级宣传报道" in review.text and "贵州日报" in review.text
    await bot.press(COUNTY, review.button("确认提交"))
    async with bot.database.sessionmaker() as session:
        publicity = await session.scalar(select(Publicity))
        assert publicity is not None and publicity.nomination_id is None
        assert publicity.published_on == date(2025, 6, 18)


async def test_outcome_busy_and_cancel(world: World) -> None:
    bot = world.bot
    people = last(await bot.send(OFFICIAL_A, "/outcome"))
    kinds = last(await bot.press(OFFICIAL_A, people.button("张三")))
    await bot.press(OFFICIAL_A, kinds.button("宣传报道"))
    # Another flow's command waits (the one-flow-at-a-time guard); any other command is told
    # how to go on, and the question comes again.
    (guarded,) = await bot.send(OFFICIAL_A, "/project")
    assert "还有一项操作没有完成" in guarded.text
    busy = await bot.send(OFFICIAL_A, "/whatever")
    assert "正在记录使用成效" in busy[0].text and "发布媒体" in last(busy).text
    sticker = await bot.send_sticker(OFFICIAL_A)
    assert "需要文字回复" in sticker[0].text
    (cancelled,) = await bot.send(OFFICIAL_A, "/cancel")
    assert "已退出" in cancelled.text
    assert await count(bot, Publicity) == 0
    (after,) = await bot.send(OFFICIAL_A, "铜仁日报")
    assert "没有理解" in after.text


def test_callback_data_stays_short() -> None:
    longest = [
        "prj:v:999999999",
        "prj:lp:9999",
        "prjs:p:9999",
        "rpt:s:under_way",
        "out:k:exemplary",
        "out:pg:9999",
    ]
    assert all(len(data.encode()) <= 64 for data in longest)


def test_dossier_fragments_render_real_sections() -> None:
    env = build_environment()
    section = projects.ProjectSection(
        1,
        [
            projects.ProjectRow(
                3, "闲置校舍<改>民宿", "done", "青山村", "青山镇", 52_330_000, 1_205_000, 2, None
            )
        ],
    )
    empty = outcomes.OutcomeSection(1)
    for locale in ("zh_CN", "en"):
        html = env.get_template(f"{locale}/dossier/_projects.html.j2").render(
            project_section=section
        )
        check(html.strip())
        assert "5,233" in html and "120.5" in html and "&lt;改&gt;" in html
        html = env.get_template(f"{locale}/dossier/_outcomes.html.j2").render(
            outcome_section=empty
        )
        assert check(html.strip())
    assert "谋划中" in render(env, "zh_CN", "projects/report_status", current="planned")


# -- drafts written before the flow engine ----------------------------------------------------


async def test_project_and_report_drafts_from_before_the_flow_engine_are_finished(
    world: World,
) -> None:
    """Nobody is stranded by the deploy: /project at its leads (25) and at its review (26),
    /report at its note (43), resume where they were with what was entered, and are saved."""
    bot = world.bot
    project_id = await make_project(world, world.muhuang, [world.wang], "10", name="木黄村茶园")
    place = {"tid": world.a, "tname": "青山镇", "vid": world.qingshan, "vname": "青山村"}
    await store_old_drafts(
        bot,
        {
            OFFICIAL_A: (
                "project",
                {
                    **place,
                    "vpage": 0,
                    "name": "青山村闲置粮站",
                    "funds": 80_000,
                    "status": "planned",
                    "leads": [world.zhang],
                    "lpage": 0,
                    "at": 25,
                },
                25,
            ),
            COUNTY: (
                "project",
                {
                    "tid": world.b,
                    "tname": "木黄镇",
                    "vid": world.muhuang,
                    "vname": "木黄村",
                    "name": "木黄村闲置厂房",
                    "funds": 1_200_000,
                    "status": "done",
                    "leads": [world.wang],
                    "at": 26,
                },
                26,
            ),
            CADRE_B: (
                "project_report",
                {
                    "pid": project_id,
                    "pname": "木黄村茶园",
                    "current": "planned",
                    "income": 25_000,
                    "status": None,
                    "at": 43,
                },
                43,
            ),
        },
    )
    # At the leads: 张三 is still chosen; "done" goes to the review with every answer.
    review = last(await bot.press(OFFICIAL_A, "prj:ld"))
    assert "请核对项目信息" in review.text and "青山村闲置粮站" in review.text
    assert "8 万元" in review.text and "张三" in review.text and "谋划中" in review.text
    saved = last(await bot.press(OFFICIAL_A, review.button("确认提交")))
    assert "项目已保存" in saved.text
    # At the review: its submit button (the same data as before) saves it.
    saved = last(await bot.press(COUNTY, "prj:ok"))
    assert "项目已保存" in saved.text and "120 万元" in saved.text
    async with bot.database.sessionmaker() as session:
        stored = {
            p.name: (p.village_id, p.funds_yuan, p.status)
            for p in await session.scalars(select(Project))
        }
        leads = set(await session.scalars(select(ProjectLead.nomination_id)))
    assert stored["青山村闲置粮站"] == (world.qingshan, 80_000, "planned")
    assert stored["木黄村闲置厂房"] == (world.muhuang, 1_200_000, "done")
    assert {world.zhang, world.wang} <= leads
    # /report at its note, the status kept: "no note" goes to the review, then it is stored.
    review = last(await bot.press(CADRE_B, "rpt:skip"))
    assert "2.5 万元" in review.text and "（不变）" in review.text and "备注：无" in review.text
    done = last(await bot.press(CADRE_B, review.button("确认提交")))
    assert "进展报告已提交" in done.text
    async with bot.database.sessionmaker() as session:
        report = await session.scalar(select(ProjectReport))
    assert report is not None and (report.income_yuan, report.status) == (25_000, None)


async def test_outcome_drafts_from_before_the_flow_engine_are_finished(world: World) -> None:
    """/outcome at its date (65) for a cadre, and at its title (64) for a county publicity
    record naming nobody (its "nid" None), resume there and are saved."""
    bot = world.bot
    cadre = {"nid": world.zhang, "name": "张三", "township": "青山镇", "status": "in_pool"}
    nobody = {"nid": None, "name": "", "township": "", "status": "", "kind": "publicity"}
    await store_old_drafts(
        bot,
        {
            OFFICIAL_A: (
                "outcome",
                {**cadre, "page": 0, "kind": "award", "title": "乡村振兴先进个人", "at": 65},
                65,
            ),
            COUNTY: ("outcome", {**nobody, "page": 0, "outlet": "铜仁日报", "at": 64}, 64),
        },
    )
    review = last(await bot.send(OFFICIAL_A, "2025-05-04"))
    assert "乡村振兴先进个人" in review.text and "张三" in review.text
    assert "2025-05-04" in review.text
    saved = last(await bot.press(OFFICIAL_A, review.button("确认提交")))
    assert "已记录" in saved.text
    ask_date = last(await bot.send(COUNTY, "返乡青年带富一方"))
    assert "发布" in ask_date.text
    review = last(await bot.press(COUNTY, ask_date.button("今天")))
    assert "县级宣传报道" in review.text and "铜仁日报" in review.text
    await bot.press(COUNTY, review.button("确认提交"))
    async with bot.database.sessionmaker() as session:
        section = await outcomes.dossier_section(session, world.zhang)
        publicity = await session.scalar(select(Publicity))
    assert [(a.kind, a.title, a.awarded_on) for a in section.awards] == [
        ("award", "乡村振兴先进个人", date(2025, 5, 4))
    ]
    assert publicity is not None and publicity.nomination_id is None
    assert (publicity.outlet, publicity.title) == ("铜仁日报", "返乡青年带富一方")
