"""/grade, /results (buttons and CSV upload) and /post through a real Application."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from handlers.chat.flow import Turn
from handlers.chat.tg import TelegramChat
from storage import geo
from storage.models import (
    GradeMove,
    GradeState,
    Nomination,
    PracticePost,
    RoleGrant,
)
from templates import build_environment
from tests.support.county import person as _person
from tests.support.drafts import store_old_drafts
from tests.support.fake_telegram import Sent
from tests.support.harness import BotHarness, assert_cancel_keeps, assert_refused, count
from tests.support.hostile import hostile_values
from tests.support.telegram_html import check

OFFICIAL_A = 7101
OFFICIAL_B = 7102
CADRE = 7201
STRANGER = 7301
THIS_YEAR = datetime.now(ZoneInfo("Asia/Shanghai")).year
_ids = itertools.count(900_000)


@dataclass
class World:
    bot: BotHarness
    cadre_a: int  # 张三, township A, has a Telegram account
    cadre_a2: int  # 李四, township A
    cadre_b: int  # 王五, township B


@pytest.fixture
async def world(harness: BotHarness) -> World:
    async with harness.database.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "青山村"), ("木黄镇", "木黄村")])
        a = await geo.township_by_name(session, "青山镇")
        b = await geo.township_by_name(session, "木黄镇")
        assert a is not None and b is not None
        for telegram_id, township in [(OFFICIAL_A, a.id), (OFFICIAL_B, b.id)]:
            person_id = await _person(session, None, telegram_id)
            session.add(
                RoleGrant(person_id=person_id, role="township_official", township_id=township)
            )
        await _person(session, None, STRANGER)
        ids = []
        cadres: list[tuple[str, int, int | None]] = [
            ("张三", a.id, CADRE),
            ("李四", a.id, None),
            ("王五", b.id, None),
        ]
        for name, township, account in cadres:
            nomination = Nomination(
                person_id=await _person(session, name, account),
                channel="organization",
                status="in_pool",
                township_id=township,
                key_group="veteran",
            )
            session.add(nomination)
            await session.flush()
            ids.append(nomination.id)
    return World(harness, *ids)


def last(replies: list[Sent]) -> Sent:
    assert replies, "the bot sent nothing"
    return replies[-1]


def everything(replies: list[Sent]) -> str:
    return "\n".join(r.text for r in replies)


# -- /grade -----------------------------------------------------------------------------------


async def test_grade_for_cadre_official_and_stranger(world: World) -> None:
    bot = world.bot
    (mine,) = await bot.send(CADRE, "/grade")
    assert "我的职级" in mine.text and "第 1 级" in mine.text and "每月 200 元" in mine.text
    assert "晋升到第 2 级" in mine.text
    (mine_en,) = await bot.send(CADRE, "/grade", language_code="en")
    assert "Grade: 1 of 13" in mine_en.text
    (stranger,) = await bot.send(STRANGER, "/grade")
    assert "还没有进入" in stranger.text
    (official,) = await bot.send(OFFICIAL_A, "/grade")
    assert "/grade 编号" in official.text
    (seen,) = await bot.send(OFFICIAL_A, f"/grade {world.cadre_a}")
    assert "张三" in seen.text and "青山镇" in seen.text
    (other,) = await bot.send(OFFICIAL_B, f"/grade {world.cadre_a}")
    assert "没有找到" in other.text and "张三" not in other.text
    (probe,) = await bot.send(STRANGER, f"/grade {world.cadre_a}")
    assert "没有找到" in probe.text
    for bad in ("/grade abc", "/grade 1 2", "/grade -3", "/grade ١٢"):
        (usage,) = await bot.send(OFFICIAL_A, bad)
        assert "用法" in usage.text


# -- /results, guided -------------------------------------------------------------------------


async def test_results_flow_with_bad_input(world: World) -> None:
    bot = world.bot
    await assert_refused(bot, STRANGER, "/results")
    (year_q,) = await bot.send(OFFICIAL_A, "/results")
    assert "CSV" in year_q.text
    assert year_q.labels == [f"{THIS_YEAR - 1} 年度", f"{THIS_YEAR} 年度"]
    again = await bot.send(OFFICIAL_A, "随便写点")
    assert "请点击下方按钮" in again[0].text and last(again).labels == year_q.labels
    again = await bot.press(OFFICIAL_A, "grd:y:1999")
    assert "已失效" in again[0].text and last(again).labels == year_q.labels

    people = last(await bot.press(OFFICIAL_A, year_q.button(str(THIS_YEAR))))
    assert f"{THIS_YEAR} 年度" in people.text
    assert "张三" in people.text and "李四" in people.text and "王五" not in people.text
    # A forged button for another township's cadre: refused, the list again.
    forged = await bot.press(OFFICIAL_A, f"grd:p:{world.cadre_b}")
    assert "已失效" in forged[0].text and "张三" in last(forged).text

    pick = last(await bot.press(OFFICIAL_A, people.button("张三")))
    assert "各结果的效果" in pick.text and "一次性补贴 1000 元" in pick.text
    assert pick.labels[:4] == ["优秀", "称职", "基本称职", "不称职"]
    stale = await bot.press(OFFICIAL_A, "grd:r:great")
    assert "已失效" in stale[0].text and "各结果的效果" in last(stale).text
    confirm = last(await bot.press(OFFICIAL_A, pick.button("优秀")))
    assert "请确认" in confirm.text and "第 2 级" in confirm.text
    pick = last(await bot.press(OFFICIAL_A, confirm.button("返回")))
    confirm = last(await bot.press(OFFICIAL_A, pick.button("称职")))
    assert await count(bot, GradeMove) == 0  # nothing before confirming
    done = await bot.press(OFFICIAL_A, confirm.button("确认提交"))
    assert "已录入" in done[0].text and "张三" in done[0].text and "晋升一级" in done[0].text
    people = last(done)
    assert "李四" in people.text and "张三" not in people.text
    assert await count(bot, GradeMove) == 1

    # Replaying the old confirm button does not record twice.
    replay = await bot.press(OFFICIAL_A, "grd:ok")
    assert "已失效" in replay[0].text
    assert await count(bot, GradeMove) == 1

    (mine,) = await bot.send(CADRE, "/grade")
    assert "第 2 级" in mine.text and f"{THIS_YEAR} 年 称职" in mine.text

    # Another command mid-flow: told how to go on; /cancel leaves with nothing half-saved.
    pick = last(await bot.press(OFFICIAL_A, people.button("李四")))
    busy = await bot.send(OFFICIAL_A, "/post")
    assert "没有完成" in busy[0].text and "/post" in busy[0].text  # one flow at a time
    confirm = last(await bot.press(OFFICIAL_A, pick.button("不称职")))
    await assert_cancel_keeps(bot, OFFICIAL_A, "grd:ok", GradeMove, 1)


async def test_results_round_ends_when_everyone_is_recorded(world: World) -> None:
    bot = world.bot
    (year_q,) = await bot.send(OFFICIAL_B, "/results")
    people = last(await bot.press(OFFICIAL_B, year_q.button(str(THIS_YEAR - 1))))
    pick = last(await bot.press(OFFICIAL_B, people.button("王五")))
    confirm = last(await bot.press(OFFICIAL_B, pick.button("基本称职")))
    replies = await bot.press(OFFICIAL_B, confirm.button("确认提交"))
    assert "职级不变" in replies[0].text
    assert "都已录入" in last(replies).text
    (after,) = await bot.send(OFFICIAL_B, "随便")
    assert "没有理解" in after.text  # the conversation is over


async def test_results_restart_resumes(world: World) -> None:
    bot = world.bot
    (year_q,) = await bot.send(OFFICIAL_A, "/results")
    people = last(await bot.press(OFFICIAL_A, year_q.button(str(THIS_YEAR))))
    pick = last(await bot.press(OFFICIAL_A, people.button("李四")))
    await bot.restart()
    confirm = last(await bot.press(OFFICIAL_A, pick.button("优秀")))
    assert "请确认" in confirm.text and "李四" in confirm.text
    await bot.press(OFFICIAL_A, confirm.button("确认提交"))
    async with bot.database.sessionmaker() as session:
        state = await session.get(GradeState, world.cadre_a2)
        assert state is not None and state.grade == 2


async def test_a_results_draft_from_before_the_flow_engine_is_finished(world: World) -> None:
    """Nobody stranded by the deploy: an official who had picked 李四 (state 2, the results)
    presses a result on the message they already had, confirms, and it is recorded."""
    bot = world.bot
    old_draft = {
        "year": THIS_YEAR,
        "page": 0,
        "nid": world.cadre_a2,
        "name": "李四",
        "township": "青山镇",
        "grade": 1,
        "years": 0,
    }
    await store_old_drafts(bot, {OFFICIAL_A: ("grade_results", old_draft, 2)})
    confirm = last(await bot.press(OFFICIAL_A, "grd:r:excellent"))
    assert "请确认" in confirm.text and "李四" in confirm.text and "第 2 级" in confirm.text
    done = await bot.press(OFFICIAL_A, confirm.button("确认提交"))
    assert "已录入" in done[0].text and "李四" in done[0].text
    assert "张三" in last(done).text  # the round goes on with who is left
    async with bot.database.sessionmaker() as session:
        state = await session.get(GradeState, world.cadre_a2)
        assert state is not None and state.grade == 2


async def test_a_post_draft_from_before_the_flow_engine_is_finished(world: World) -> None:
    """Nobody stranded by the deploy: an official at the end date of a hard post (state 14)
    types it, sees the review with what they had entered, and the post is stored."""
    bot = world.bot
    old_draft = {
        "page": 0,
        "nid": world.cadre_a,
        "name": "张三",
        "township": "青山镇",
        "kind": "hard_post",
        "title": "闲置校舍盘活",
        "start": f"{THIS_YEAR}-03-01",
    }
    await store_old_drafts(bot, {OFFICIAL_A: ("practice_post", old_draft, 14)})
    review = last(await bot.send(OFFICIAL_A, f"{THIS_YEAR}-06-30"))
    assert "请核对" in review.text and "闲置校舍盘活" in review.text
    assert f"{THIS_YEAR}-03-01" in review.text and f"{THIS_YEAR}-06-30" in review.text
    saved = last(await bot.press(OFFICIAL_A, review.button("确认提交")))
    assert "已为 张三 安排" in saved.text
    async with bot.database.sessionmaker() as session:
        post = await session.scalar(select(PracticePost))
        assert post is not None and post.title == "闲置校舍盘活"
        assert post.end_date is not None and post.end_date.isoformat() == f"{THIS_YEAR}-06-30"


# -- /results, CSV upload ---------------------------------------------------------------------


async def send_document(
    bot: BotHarness,
    user_id: int,
    *,
    file_name: str = "results.csv",
    mime_type: str = "text/csv",
    file_size: int = 100,
) -> list[Sent]:
    """Upload a document: the payload Telegram would deliver for it."""
    assert bot.app is not None
    file_id = f"DOC{next(_ids)}"
    payload = {
        "update_id": next(_ids),
        "message": {
            "message_id": next(_ids),
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": "U", "language_code": "zh"},
            "document": {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "file_name": file_name,
                "mime_type": mime_type,
                "file_size": file_size,
            },
        },
    }
    return await bot._process(payload)


@pytest.fixture
def uploads(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What the next downloads return, in order; a download beyond them fails the test."""
    queue: list[bytes] = []

    async def fake_download(chat: TelegramChat, turn: Turn) -> bytes:
        assert queue, "unexpected download"
        return queue.pop(0)

    # The seam is the adapter's download: the transport fake holds no files.
    monkeypatch.setattr(TelegramChat, "download", fake_download)
    return queue


async def test_csv_upload_all_or_nothing(world: World, uploads: list[bytes]) -> None:
    bot = world.bot
    bad = (
        "id,姓名,year,result\n"
        f"{world.cadre_a},张三,{THIS_YEAR},优秀\n"  # 2 fine
        f"{world.cadre_b},王五,{THIS_YEAR},称职\n"  # 3 other township
        f"999999,谁,{THIS_YEAR},称职\n"  # 4 unknown
        f"{world.cadre_a2},李四,1999,称职\n"  # 5 bad year
        f"{world.cadre_a2},李四,{THIS_YEAR},良好\n"  # 6 bad result
        f"{world.cadre_a},张三,{THIS_YEAR},称职\n"  # 7 repeats line 2
        f"abc,<b>x</b>,{THIS_YEAR},称职\n"  # 8 bad id
    )
    uploads.append(bad.encode("utf-8-sig"))
    (report,) = await send_document(bot, OFFICIAL_A)
    assert "6 行有误" in report.text and "均未导入" in report.text
    for reason, line in [
        ("不属于您管理的乡镇", "第 3 行"),
        ("没有这个编号的人员", "第 4 行"),
        ("年度有误", "第 5 行"),
        ("考核结果有误", "第 6 行"),
        ("重复", "第 7（同第 2 行） 行"),
        ("编号不是有效数字", "第 8 行"),
    ]:
        assert reason in report.text and line in report.text, (reason, line)
    assert await count(bot, GradeMove) == 0

    good = (
        "id,year,result\n"
        f"{world.cadre_a},{THIS_YEAR - 1},优秀\n"
        f"{world.cadre_a},{THIS_YEAR},称职\n"
        f"{world.cadre_a2},{THIS_YEAR},basic\n"
    )
    uploads.append(good.encode())
    (summary,) = await send_document(bot, OFFICIAL_A)
    assert "已导入 3 条" in summary.text and "晋升 2 人次" in summary.text
    assert "1000 元" in summary.text
    assert await count(bot, GradeMove) == 3
    async with bot.database.sessionmaker() as session:
        state = await session.get(GradeState, world.cadre_a)
        assert state is not None and state.grade == 3

    # The same file again: every row is now a year already recorded.
    uploads.append(good.encode())
    (again,) = await send_document(bot, OFFICIAL_A)
    assert "3 行有误" in again.text and "已录入过" in again.text
    assert await count(bot, GradeMove) == 3


async def test_csv_upload_refusals(world: World, uploads: list[bytes]) -> None:
    bot = world.bot
    uploads.append(f"id,year,result\n{world.cadre_a},{THIS_YEAR},优秀\n".encode())
    (refused,) = await send_document(bot, STRANGER)
    assert "没有权限" in refused.text
    uploads.clear()
    # Outside /results another kind of document is not ours; inside, it is the wrong file.
    (elsewhere,) = await send_document(
        bot, OFFICIAL_A, file_name="photo.pdf", mime_type="application/pdf"
    )
    assert "没有理解" in elsewhere.text
    await bot.send(OFFICIAL_A, "/results")
    (not_csv,) = await send_document(
        bot, OFFICIAL_A, file_name="photo.pdf", mime_type="application/pdf"
    )
    assert ".csv" in not_csv.text
    # A CSV named oddly but typed by Telegram as text/csv is taken.
    uploads.append(b"")
    (empty,) = await send_document(bot, OFFICIAL_A, file_name="RESULTS.TXT")
    assert "没有数据行" in empty.text
    (too_big,) = await send_document(bot, OFFICIAL_A, file_size=300 * 1024)
    assert "文件太大" in too_big.text and "200 KB" in too_big.text
    uploads.append(b"name,year,result\n1,2024,excellent\n")
    (header,) = await send_document(bot, OFFICIAL_A)
    assert "表头" in header.text and "CSV 文件格式" in header.text
    rows = "id,year,result\n" + f"{world.cadre_a},{THIS_YEAR},优秀\n" * 2001
    uploads.append(rows.encode())
    (many,) = await send_document(bot, OFFICIAL_A)
    assert "2001 行数据" in many.text and "最多 2000 行" in many.text
    assert await count(bot, GradeMove) == 0


async def test_csv_upload_inside_results_flow_ends_it(world: World, uploads: list[bytes]) -> None:
    bot = world.bot
    await bot.send(OFFICIAL_A, "/results")
    uploads.append(f"id,year,result\n{world.cadre_a},{THIS_YEAR},不称职\n".encode())
    (summary,) = await send_document(bot, OFFICIAL_A)
    assert "已导入 1 条" in summary.text
    (after,) = await bot.send(OFFICIAL_A, "随便")
    assert "没有理解" in after.text


# -- /post ------------------------------------------------------------------------------------


async def test_post_flow_with_bad_dates(world: World) -> None:
    bot = world.bot
    await assert_refused(bot, STRANGER, "/post")
    (people,) = await bot.send(OFFICIAL_A, "/post")
    assert "张三" in people.text and "王五" not in people.text
    forged = await bot.press(OFFICIAL_A, f"pst:p:{world.cadre_b}")
    assert "已失效" in forged[0].text
    kind = last(await bot.press(OFFICIAL_A, people.button("张三")))
    assert kind.labels == ["实习村干部", "网格员", "急难险重岗位"]
    typed = await bot.send(OFFICIAL_A, "网格员")
    assert "请点击下方按钮" in typed[0].text and last(typed).labels == kind.labels
    title_q = last(await bot.press(OFFICIAL_A, kind.button("急难险重岗位")))
    assert "岗位的名称" in title_q.text
    start_q = last(await bot.send(OFFICIAL_A, "木黄村闲置校舍盘活"))
    assert "开始日期" in start_q.text
    for garbage, why in [("下周一", "没有看懂"), ("2026-02-30", "不存在"), ("1999-1-1", "之间")]:
        error, again = await bot.send(OFFICIAL_A, garbage)
        assert why in error.text and "开始日期" in again.text
    end_q = last(await bot.send(OFFICIAL_A, f"{THIS_YEAR}年3月1日"))
    assert f"{THIS_YEAR}-03-01" in end_q.text
    error, again = await bot.send(OFFICIAL_A, f"{THIS_YEAR}-02-01")
    assert "不能早于开始日期" in error.text and "结束日期" in again.text
    error, again = await bot.send_sticker(OFFICIAL_A)
    assert "文字" in error.text and "结束日期" in again.text
    review = last(await bot.press(OFFICIAL_A, end_q.button("暂不设结束日期")))
    assert "急难险重岗位" in review.text and "木黄村闲置校舍盘活" in review.text
    assert "未定" in review.text
    assert await count(bot, PracticePost) == 0
    saved = last(await bot.press(OFFICIAL_A, review.button("确认提交")))
    assert "已为 张三 安排" in saved.text and "木黄村闲置校舍盘活" in saved.text
    async with bot.database.sessionmaker() as session:
        post = await session.scalar(select(PracticePost))
        assert post is not None
        assert (post.kind, post.title, post.end_date) == ("hard_post", "木黄村闲置校舍盘活", None)
        assert post.start_date.isoformat() == f"{THIS_YEAR}-03-01"


async def test_post_cancel_keeps_nothing(world: World) -> None:
    bot = world.bot
    (people,) = await bot.send(OFFICIAL_A, "/post")
    kind = last(await bot.press(OFFICIAL_A, people.button("李四")))
    start_q = last(await bot.press(OFFICIAL_A, kind.button("网格员")))
    end_q = last(await bot.press(OFFICIAL_A, start_q.button("今天")))
    assert "结束日期" in end_q.text
    busy = await bot.send(OFFICIAL_A, "/grade")
    assert "安排实践锻炼岗位" in busy[0].text and "结束日期" in last(busy).text
    await assert_cancel_keeps(bot, OFFICIAL_A, "pst:skip", PracticePost, 0)
    # Cancelling on the review screen by its button also stores nothing.
    (people,) = await bot.send(OFFICIAL_A, "/post")
    kind = last(await bot.press(OFFICIAL_A, people.button("李四")))
    start_q = last(await bot.press(OFFICIAL_A, kind.button("实习村干部")))
    end_q = last(await bot.press(OFFICIAL_A, start_q.button("今天")))
    review = last(await bot.send(OFFICIAL_A, f"{THIS_YEAR + 1}-01-01"))
    assert "请核对" in review.text
    (dropped,) = await bot.press(OFFICIAL_A, review.button("取消"))
    assert "已退出" in dropped.text
    assert await count(bot, PracticePost) == 0


async def test_a_file_sent_in_post_is_not_an_answer(world: World) -> None:
    """/post takes no files: at a button step the buttons are pointed at and shown again,
    at a typed step text is asked for (only /results reads a CSV file)."""
    bot = world.bot
    (people,) = await bot.send(OFFICIAL_A, "/post")
    kind = last(await bot.press(OFFICIAL_A, people.button("张三")))
    said, again = await send_document(bot, OFFICIAL_A)
    assert "请点击下方按钮" in said.text and again.labels == kind.labels
    title_q = last(await bot.press(OFFICIAL_A, kind.button("急难险重岗位")))
    said, again = await send_document(bot, OFFICIAL_A)
    assert "文字" in said.text and again.text == title_q.text
    assert await count(bot, GradeMove) == 0


async def test_post_with_no_cadres_in_scope(world: World) -> None:
    bot = world.bot
    async with bot.database.sessionmaker.begin() as session:
        nomination = await session.get(Nomination, world.cadre_b)
        assert nomination is not None
        nomination.status = "adjusted"
    (none,) = await bot.send(OFFICIAL_B, "/post")
    assert "暂无在库" in none.text


# -- dossier fragments ------------------------------------------------------------------------


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
@pytest.mark.parametrize("name", ["_grades", "_posts"])
def test_dossier_fragments_render_hostile_values(locale: str, name: str) -> None:
    env = build_environment()
    path = f"{locale}/dossier/{name}.html.j2"
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, path)
    for equal in (False, True):
        html = env.get_template(path).render(**hostile_values(env, source, equal=equal)).strip()
        check(html)
        assert "&lt;script&gt;" in html and "<script" not in html
    empty = env.get_template(path).render(grade_section=None, post_section={"posts": []})
    assert check(empty.strip())
