"""/review and /vetting end to end: scope, forged buttons, notices, neutral candidate messages."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from storage import geo
from storage.crypto import DataCipher
from storage.models import (
    Nomination,
    Person,
    Role,
    StatusChange,
    VettingReview,
)
from storage.nominations import NominationForm, create_nomination
from storage.rules.identity import make_id_number
from storage.rules.vetting import Channel
from tests.support.county import invite_code
from tests.support.drafts import store_old_drafts
from tests.support.fake_telegram import Sent
from tests.support.harness import BotHarness

CANDIDATE = 5001
SECOND_CANDIDATE = 5002
RECOMMENDER = 6001
QINGSHAN_OFFICIAL = 7001
MUHUANG_OFFICIAL = 7002
COUNTY_OFFICIAL = 7003
POLICE = 7101
DISCIPLINE = 7102
JUDICIAL = 7103
REVIEWERS = {"police": POLICE, "discipline": DISCIPLINE, "judicial": JUDICIAL}
STRANGER = 9001

ID_1 = make_id_number("520221", date(1990, 3, 7), 12, male=True)
ID_2 = make_id_number("520221", date(1991, 5, 5), 40, male=True)
DEPARTMENT_NAMES = ("公安", "纪检监察", "司法")


def last(replies: list[Sent]) -> Sent:
    assert replies, "the bot sent nothing"
    return replies[-1]


def to(replies: list[Sent], chat_id: int) -> list[Sent]:
    return [s for s in replies if s.chat_id == chat_id]


async def grant(bot: BotHarness, user: int, role: Role, **scope: Any) -> None:
    """Give `user` a role the way people get one: an invite code redeemed with /start."""
    code = await invite_code(bot, role, **scope)
    replies = await bot.send(user, f"/start {code}")
    assert any("欢迎" in s.text for s in replies), [s.text for s in replies]


@pytest.fixture
async def county(harness: BotHarness) -> BotHarness:
    villages = [("青山镇", f"第{i}村") for i in range(1, 4)] + [("木黄镇", "木黄村")]
    async with harness.database.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", villages)
    await grant(harness, QINGSHAN_OFFICIAL, Role.TOWNSHIP_OFFICIAL, township="青山镇")
    await grant(harness, MUHUANG_OFFICIAL, Role.TOWNSHIP_OFFICIAL, township="木黄镇")
    for department, user in REVIEWERS.items():
        await grant(harness, user, Role.REVIEWER, department=department)
    # Notices go through the outbox; each step's replies include what it queued.
    harness.auto_drain = True
    return harness


# -- the nominations, through /nominate and /recommend as people submit them -----------------


async def nominate(bot: BotHarness, user: int, name: str, id_number: str, phone: str) -> int:
    """A self-nomination to 青山镇 第1村, submitted; returns the nomination's id."""
    (notice,) = await bot.send(user, "/nominate")
    (sensitive,) = await bot.press(user, notice.button("同意"))
    question = last(await bot.press(user, sensitive.button("同意")))
    question = last(await bot.send(user, name))
    question = last(await bot.press(user, question.button("男")))
    question = last(await bot.send(user, id_number))
    question = last(await bot.send(user, phone))
    for choice in ["土家族", "中共党员", "大专", "青山镇", "第1村", "返乡大学毕业生"]:
        question = last(await bot.press(user, question.button(choice)))
    for answer in ["电商运营", "在外务工五年", "建设家乡"]:
        question = last(await bot.send(user, answer))
    done = last(to(await bot.press(user, question.button("确认提交")), user))
    assert "报名已提交" in done.text
    return await nomination_id(bot, name)


async def recommend(bot: BotHarness, name: str) -> int:
    """A mass recommendation of `name` in 青山镇 第2村, without a phone."""
    await bot.send(RECOMMENDER, "/recommend")
    question = last(await bot.send(RECOMMENDER, name))
    for choice in ["青山镇", "第2村", "跳过", "致富能手"]:
        question = last(await bot.press(RECOMMENDER, question.button(choice)))
    review = last(await bot.send(RECOMMENDER, "带领村民种茶致富"))
    done = last(to(await bot.press(RECOMMENDER, review.button("确认提交")), RECOMMENDER))
    assert "推荐已提交" in done.text
    return await nomination_id(bot, name)


async def invite(bot: BotHarness, official: int, nid: int) -> str:
    """The code the township gives a recommended person to complete their own file."""
    item = await open_item(bot, official, nid)
    (shown,) = await bot.press(official, item.button("生成补全邀请码"))
    found = re.search(r"<code>([A-Z0-9]+)</code>", shown.text)
    assert found is not None, shown.text
    return found.group(1)


async def complete_by_code(
    bot: BotHarness, user: int, code: str, name: str, id_number: str, phone: str
) -> list[Sent]:
    """The nominee opens their file with the code, consents and completes it; the township,
    village and group the recommendation gave are not asked again."""
    opened, consent = await bot.send(user, f"/nominate {code}")
    assert "补全信息" in opened.text
    (sensitive,) = await bot.press(user, consent.button("同意"))
    question = last(await bot.press(user, sensitive.button("同意")))
    question = last(await bot.send(user, name))
    question = last(await bot.press(user, question.button("男")))
    question = last(await bot.send(user, id_number))
    question = last(await bot.send(user, phone))
    for choice in ["土家族", "中共党员", "大专"]:
        question = last(await bot.press(user, question.button(choice)))
    for answer in ["种茶", "在外务工五年", "建设家乡"]:
        question = last(await bot.send(user, answer))
    return await bot.press(user, question.button("确认提交"))


async def nomination_id(bot: BotHarness, name: str) -> int:
    async with bot.database.sessionmaker() as session:
        found = await session.scalar(
            select(Nomination.id)
            .join(Person, Person.id == Nomination.person_id)
            .where(Person.full_name == name)
        )
    assert found is not None
    return found


async def status_of(bot: BotHarness, nid: int) -> str:
    async with bot.database.sessionmaker() as session:
        nomination = await session.get(Nomination, nid)
    assert nomination is not None
    return nomination.status


async def assert_sealed_reason(bot: BotHarness, nid: int, status: str, reason: str) -> None:
    """The nomination is now `status`, and the change's reason is stored sealed, not plain."""
    assert await status_of(bot, nid) == status
    async with bot.database.sessionmaker() as session:
        change = await session.scalar(
            select(StatusChange).where(
                StatusChange.nomination_id == nid, StatusChange.to_status == status
            )
        )
    assert change is not None and change.reason is None and change.reason_enc is not None
    assert DataCipher(bot.settings.require_data_key()).decrypt(change.reason_enc) == reason


async def assert_still_queued(
    bot: BotHarness, nid: int, status: str, user: int, queue: str
) -> None:
    """Nothing was decided: 张三's nomination is still `status` and in `user`'s `queue`."""
    assert await status_of(bot, nid) == status
    (listing,) = await bot.send(user, queue)
    assert "张三" in listing.text


async def review_ids(bot: BotHarness, nid: int) -> dict[str, int]:
    async with bot.database.sessionmaker() as session:
        rows = await session.execute(
            select(VettingReview.department, VettingReview.id).where(
                VettingReview.nomination_id == nid
            )
        )
    return {department: rid for department, rid in rows.all()}


async def open_item(bot: BotHarness, official: int, nid: int) -> Sent:
    (queue,) = await bot.send(official, "/review")
    assert f"rv:o:{nid}" in [data for row in queue.buttons for _, data in row]
    (item,) = await bot.press(official, f"rv:o:{nid}")
    return item


async def send_to_vetting(bot: BotHarness, nid: int) -> list[Sent]:
    item = await open_item(bot, QINGSHAN_OFFICIAL, nid)
    return await bot.press(QINGSHAN_OFFICIAL, item.button("提交资格联审"))


async def in_vetting(
    bot: BotHarness,
    user: int = CANDIDATE,
    name: str = "张三",
    id_number: str = ID_1,
    phone: str = "13812345678",
) -> tuple[int, dict[str, int]]:
    """A self-nomination sent on to vetting: its id and its reviews' ids by department."""
    nid = await nominate(bot, user, name, id_number, phone)
    await send_to_vetting(bot, nid)
    return nid, await review_ids(bot, nid)


# -- the tests ---------------------------------------------------------------------------------


async def test_queue_is_scoped_and_forged_buttons_are_forbidden(county: BotHarness) -> None:
    nid = await nominate(county, CANDIDATE, "张三", ID_1, "13812345678")
    (queue,) = await county.send(QINGSHAN_OFFICIAL, "/review")
    assert "张三" in queue.text and "个人自荐" in queue.text and "待乡镇审核" in queue.text
    assert queue.button("张三") == f"rv:o:{nid}"

    (other,) = await county.send(MUHUANG_OFFICIAL, "/review")
    assert "张三" not in other.text and "没有待审核" in other.text and other.buttons == []
    for forged in (f"rv:o:{nid}", f"rv:s:{nid}", f"rv:c:{nid}", f"rv:r:{nid}"):
        (refused,) = await county.press(MUHUANG_OFFICIAL, forged)
        assert "没有权限" in refused.text, forged
    assert await status_of(county, nid) == "new"

    (item,) = await county.press(QINGSHAN_OFFICIAL, f"rv:o:{nid}")
    assert "张三" in item.text and "青山镇" in item.text and "第1村" in item.text
    assert "返乡大学毕业生" in item.text and "大专" in item.text and "建设家乡" in item.text
    assert ID_1 not in item.text and ID_1[:4] + "*" * 10 + ID_1[-4:] in item.text
    assert "138****5678" in item.text and "13812345678" not in item.text
    assert "提交资格联审" in item.labels[0] and any("不予推荐" in b for b in item.labels)
    # A self-nominee needs no contacting: no such button for this channel.
    assert not any("已联系" in b for b in item.labels)


async def test_all_departments_approve_and_the_candidate_enters_the_pool(
    county: BotHarness,
) -> None:
    nid = await nominate(county, CANDIDATE, "张三", ID_1, "13812345678")
    sent = await send_to_vetting(county, nid)
    confirmation = last(to(sent, QINGSHAN_OFFICIAL))
    assert "已将" in confirmation.text and "公安" in confirmation.text
    assert "已通知审核人 3 人" in confirmation.text
    for user in REVIEWERS.values():
        (notice,) = to(sent, user)
        assert "/vetting" in notice.text and "青山镇" in notice.text
        assert "张三" not in notice.text  # the notice carries no personal data
    assert await status_of(county, nid) == "vetting"
    reviews = await review_ids(county, nid)
    assert set(reviews) == {"police", "discipline", "judicial"}

    # Sending twice is a stale button, not a second set of reviews.
    (stale,) = await county.press(QINGSHAN_OFFICIAL, f"rv:s:{nid}")
    assert "已失效" in stale.text
    assert len(await review_ids(county, nid)) == 3

    for department, user in REVIEWERS.items():
        (queue,) = await county.send(user, "/vetting")
        assert "张三" in queue.text and "青山镇" in queue.text
        assert [data for row in queue.buttons for _, data in row] == [
            f"vt:o:{reviews[department]}"
        ]

    # A police reviewer forging the discipline department's buttons is refused.
    for forged in (f"vt:o:{reviews['discipline']}", f"vt:a:{reviews['discipline']}"):
        (refused,) = await county.press(POLICE, forged)
        assert "没有权限" in refused.text

    # Police: approve with "no comment".
    (item,) = await county.press(POLICE, f"vt:o:{reviews['police']}")
    assert "张三" in item.text and ID_1[:4] + "*" * 10 in item.text and "个人自荐" in item.text
    (ask,) = await county.press(POLICE, item.button("✅"))
    assert "无意见" in ask.labels[0]
    recorded = await county.press(POLICE, ask.button("无意见"))
    assert [s.chat_id for s in recorded] == [POLICE]  # pending: only the reviewer hears
    assert "等待其他部门" in last(recorded).text
    assert await status_of(county, nid) == "vetting"
    (queue,) = await county.send(POLICE, "/vetting")
    assert "没有待本部门审核" in queue.text
    (stale,) = await county.press(POLICE, f"vt:a:{reviews['police']}")
    assert "已失效" in stale.text

    # Discipline: approve with a typed note, after one that is too short.
    await county.press(DISCIPLINE, f"vt:o:{reviews['discipline']}")
    await county.press(DISCIPLINE, f"vt:a:{reviews['discipline']}")
    error, again = await county.send(DISCIPLINE, "好")
    assert "2–500" in error.text and "无意见" in again.labels[0]
    recorded = await county.send(DISCIPLINE, "未发现违纪问题")
    assert [s.chat_id for s in recorded] == [DISCIPLINE]

    # Judicial: the last approval settles it.
    await county.press(JUDICIAL, f"vt:a:{reviews['judicial']}")
    done = await county.send(JUDICIAL, "无违法犯罪记录")
    assert "进入村级后备干部资源库" in last(to(done, JUDICIAL)).text
    (pool,) = to(done, CANDIDATE)
    assert "入库" in pool.text
    (township,) = to(done, QINGSHAN_OFFICIAL)
    assert "张三" in township.text and "通过资格联审" in township.text
    assert "本人已收到入库通知" in township.text
    assert to(done, MUHUANG_OFFICIAL) == []
    assert await status_of(county, nid) == "in_pool"
    async with county.database.sessionmaker() as session:
        moves = list(
            await session.scalars(
                select(StatusChange.to_status)
                .where(StatusChange.nomination_id == nid)
                .order_by(StatusChange.id)
            )
        )
        stored = (
            await session.execute(
                select(VettingReview.department, VettingReview.note, VettingReview.note_enc).where(
                    VettingReview.nomination_id == nid
                )
            )
        ).all()
    # Encrypted at rest: the plain column stays empty.
    cipher = DataCipher(county.settings.require_data_key())
    assert all(note is None for _, note, _ in stored)
    notes = {d: cipher.decrypt(enc) if enc is not None else None for d, _, enc in stored}
    assert moves == ["new", "vetting", "in_pool"]
    assert notes == {"police": None, "discipline": "未发现违纪问题", "judicial": "无违法犯罪记录"}


async def test_one_department_rejects_and_the_candidate_hears_nothing_of_why(
    county: BotHarness,
) -> None:
    nid, reviews = await in_vetting(county, SECOND_CANDIDATE, "李四", ID_2, "13912345678")
    await county.press(DISCIPLINE, f"vt:a:{reviews['discipline']}")
    await county.press(DISCIPLINE, "vt:n:" + str(reviews["discipline"]))

    (item,) = await county.press(POLICE, f"vt:o:{reviews['police']}")
    (ask,) = await county.press(POLICE, item.button("❌"))
    assert "理由" in ask.text and ask.buttons == []  # a rejection cannot skip its reason
    (stale, again) = await county.press(POLICE, f"vt:n:{reviews['police']}")
    assert "已失效" in stale.text and "理由" in again.text
    error, again = await county.send(POLICE, "否")
    assert "2–500" in error.text
    sticker, again = await county.send_sticker(POLICE)
    assert "文字" in sticker.text and "理由" in again.text
    note = "该人员涉嫌违法案件尚在调查"
    done = await county.send(POLICE, note)
    assert "未通过资格联审" in last(to(done, POLICE)).text
    (candidate,) = to(done, SECOND_CANDIDATE)
    assert note not in candidate.text
    assert not any(name in candidate.text for name in DEPARTMENT_NAMES)
    assert "未能进入" in candidate.text
    (township,) = to(done, QINGSHAN_OFFICIAL)
    assert note in township.text and "公安" in township.text and "李四" in township.text
    assert "本人已收到不含理由的通知" in township.text
    await assert_sealed_reason(county, nid, "rejected", note)

    # The judicial review no longer waits: it left the queue and its buttons are stale.
    (queue,) = await county.send(JUDICIAL, "/vetting")
    assert "李四" not in queue.text
    (stale,) = await county.press(JUDICIAL, f"vt:r:{reviews['judicial']}")
    assert "已失效" in stale.text


async def test_township_declines_with_a_reason_after_bad_input(county: BotHarness) -> None:
    nid = await nominate(county, CANDIDATE, "张三", ID_1, "13812345678")
    item = await open_item(county, QINGSHAN_OFFICIAL, nid)
    (ask,) = await county.press(QINGSHAN_OFFICIAL, item.button("不予推荐"))
    assert "张三" in ask.text and "理由" in ask.text
    error, again = await county.send(QINGSHAN_OFFICIAL, "差")
    assert "2–500" in error.text and "理由" in again.text
    sticker, again = await county.send_sticker(QINGSHAN_OFFICIAL)
    assert "文字" in sticker.text and "理由" in again.text
    busy, again = await county.send(QINGSHAN_OFFICIAL, "/review")
    assert "/cancel" in busy.text and "理由" in again.text
    assert await status_of(county, nid) == "new"
    reason = "本人长期在外，不符合驻村要求"
    done = await county.send(QINGSHAN_OFFICIAL, reason)
    assert "不予推荐" in last(to(done, QINGSHAN_OFFICIAL)).text
    (candidate,) = to(done, CANDIDATE)
    assert reason not in candidate.text and "未被推荐" in candidate.text
    await assert_sealed_reason(county, nid, "declined", reason)
    (queue,) = await county.send(QINGSHAN_OFFICIAL, "/review")
    assert "张三" not in queue.text
    # The conversation is over: the next text is not taken as another reason.
    (reply,) = await county.send(QINGSHAN_OFFICIAL, "还有一句")
    assert "没有理解" in reply.text


async def test_declining_a_recommendation_tells_neither_nominee_nor_recommender(
    county: BotHarness,
) -> None:
    nid = await recommend(county, "孙八")
    item = await open_item(county, QINGSHAN_OFFICIAL, nid)
    await county.press(QINGSHAN_OFFICIAL, item.button("不予推荐"))
    done = await county.send(QINGSHAN_OFFICIAL, "经联系本人无意愿")
    assert [s.chat_id for s in done] == [QINGSHAN_OFFICIAL]
    assert "未向其发送通知" in done[0].text
    assert await status_of(county, nid) == "declined"


async def test_cancel_while_writing_the_reason_keeps_the_nomination(county: BotHarness) -> None:
    nid = await nominate(county, CANDIDATE, "张三", ID_1, "13812345678")
    item = await open_item(county, QINGSHAN_OFFICIAL, nid)
    await county.press(QINGSHAN_OFFICIAL, item.button("不予推荐"))
    (cancelled,) = await county.send(QINGSHAN_OFFICIAL, "/cancel")
    assert "已退出" in cancelled.text
    assert await status_of(county, nid) == "new"
    (reply,) = await county.send(QINGSHAN_OFFICIAL, "这不是理由")
    assert "没有理解" in reply.text
    await assert_still_queued(county, nid, "new", QINGSHAN_OFFICIAL, "/review")


async def test_a_pending_reason_survives_a_restart(county: BotHarness) -> None:
    nid = await nominate(county, CANDIDATE, "张三", ID_1, "13812345678")
    item = await open_item(county, QINGSHAN_OFFICIAL, nid)
    await county.press(QINGSHAN_OFFICIAL, item.button("不予推荐"))
    await county.restart()
    done = await county.send(QINGSHAN_OFFICIAL, "年龄条件不符合本村要求")
    assert "不予推荐" in last(to(done, QINGSHAN_OFFICIAL)).text
    assert await status_of(county, nid) == "declined"


async def test_cancel_while_writing_a_vetting_note_records_nothing(county: BotHarness) -> None:
    nid, reviews = await in_vetting(county)
    await county.press(POLICE, f"vt:r:{reviews['police']}")
    (cancelled,) = await county.send(POLICE, "/cancel")
    assert "已退出" in cancelled.text
    await assert_still_queued(county, nid, "vetting", POLICE, "/vetting")


async def test_mark_contacted_for_a_mass_recommendation(county: BotHarness) -> None:
    self_nid = await nominate(county, CANDIDATE, "张三", ID_1, "13812345678")
    nid = await recommend(county, "孙八")
    (queue,) = await county.send(QINGSHAN_OFFICIAL, "/review")
    assert "孙八" in queue.text and "群众举荐" in queue.text
    (item,) = await county.press(QINGSHAN_OFFICIAL, queue.button("孙八"))
    assert "带领村民种茶致富" in item.text
    # The recommender's identity is nowhere on the screen.
    assert str(RECOMMENDER) not in item.text and "U6001" not in item.text
    (contacted,) = await county.press(QINGSHAN_OFFICIAL, item.button("已联系"))
    assert contacted.edited and "已记录" in contacted.text and "乡镇已联系" in contacted.text
    assert not any("已联系" in b for b in contacted.labels)
    assert await status_of(county, nid) == "contacted"
    # Contacting twice, or a self-nominee, is not possible: stale buttons.
    for data in (f"rv:c:{nid}", f"rv:c:{self_nid}"):
        (stale,) = await county.press(QINGSHAN_OFFICIAL, data)
        assert "已失效" in stale.text
    assert await status_of(county, self_nid) == "new"
    (queue,) = await county.send(QINGSHAN_OFFICIAL, "/review")
    assert "孙八" in queue.text and "乡镇已联系" in queue.text
    # A contacted recommendation goes on to vetting like any other, once its nominee has
    # consented and completed it (issue 12).
    code = await invite(county, QINGSHAN_OFFICIAL, nid)
    await complete_by_code(county, SECOND_CANDIDATE, code, "孙八", ID_2, "13812340002")
    sent = await send_to_vetting(county, nid)
    assert len(to(sent, POLICE)) == 1
    assert await status_of(county, nid) == "vetting"


async def test_queue_pages_and_county_scope(county: BotHarness) -> None:
    assert county.app is not None
    cipher = DataCipher(county.settings.require_data_key())
    async with county.database.sessionmaker.begin() as session:
        qingshan = await geo.township_by_name(session, "青山镇")
        muhuang = await geo.township_by_name(session, "木黄镇")
        assert qingshan is not None and muhuang is not None
        for i in range(7):
            await create_nomination(
                session,
                cipher,
                NominationForm(
                    full_name=f"青山人{'甲乙丙丁戊己庚'[i]}",
                    township_id=qingshan.id,
                    key_group="veteran",
                ),
                channel=Channel.MASS,
                submitted_by=None,
                person_id=None,
                now=datetime.now(UTC),
            )
        await create_nomination(
            session,
            cipher,
            NominationForm(full_name="木黄人", township_id=muhuang.id, key_group="veteran"),
            channel=Channel.MASS,
            submitted_by=None,
            person_id=None,
            now=datetime.now(UTC),
        )
    (first,) = await county.send(QINGSHAN_OFFICIAL, "/review")
    assert "共 7 人" in first.text and "第 1/2 页" in first.text
    assert len(first.buttons) == 6  # five people and the page row
    assert first.labels[-1] == "下一页" and "木黄人" not in first.text
    (second,) = await county.press(QINGSHAN_OFFICIAL, first.button("下一页"))
    assert second.edited and "第 2/2 页" in second.text
    assert second.labels == ["6. 青山人己", "7. 青山人庚", "上一页"]
    (back,) = await county.press(QINGSHAN_OFFICIAL, second.button("上一页"))
    assert "1. 青山人甲" in back.labels
    (muhuang_queue,) = await county.send(MUHUANG_OFFICIAL, "/review")
    assert "共 1 人" in muhuang_queue.text and "青山人" not in muhuang_queue.text

    await grant(county, COUNTY_OFFICIAL, Role.COUNTY_OFFICIAL)
    (everything,) = await county.send(COUNTY_OFFICIAL, "/review")
    assert "共 8 人" in everything.text
    (last_page,) = await county.press(COUNTY_OFFICIAL, "rv:p:1")
    assert "木黄人" in last_page.text
    # A page past the end (the list shrank) shows the new last page.
    (clamped,) = await county.press(COUNTY_OFFICIAL, "rv:p:9")
    assert "第 2/2 页" in clamped.text


async def test_people_without_the_role_are_refused(county: BotHarness) -> None:
    nid = await nominate(county, CANDIDATE, "张三", ID_1, "13812345678")
    for user in (STRANGER, CANDIDATE, POLICE):
        (refused,) = await county.send(user, "/review")
        assert "没有权限" in refused.text, user
    for user in (STRANGER, CANDIDATE, QINGSHAN_OFFICIAL):
        (refused,) = await county.send(user, "/vetting")
        assert "没有权限" in refused.text, user
    # A candidate forging buttons about their own nomination changes nothing.
    for forged in (f"rv:o:{nid}", f"rv:s:{nid}", f"rv:r:{nid}"):
        (refused,) = await county.press(CANDIDATE, forged)
        assert "没有权限" in refused.text
    assert await status_of(county, nid) == "new"
    async with county.database.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(VettingReview)) == 0


async def test_english_reviewer_gets_english_screens(county: BotHarness) -> None:
    _nid, reviews = await in_vetting(county)
    (queue,) = await county.send(JUDICIAL, "/vetting", language_code="en")
    assert "Awaiting vetting" in queue.text and "Justice" in queue.text
    (item,) = await county.press(JUDICIAL, f"vt:o:{reviews['judicial']}", language_code="en")
    assert "Approve" in item.labels[0] and "Reject" in item.labels[1]


async def test_pressing_decline_on_another_nomination_switches_to_it(county: BotHarness) -> None:
    first = await nominate(county, CANDIDATE, "张三", ID_1, "13812345678")
    second = await recommend(county, "孙八")
    await county.press(QINGSHAN_OFFICIAL, f"rv:r:{first}")
    (ask,) = await county.press(QINGSHAN_OFFICIAL, f"rv:r:{second}")
    assert "孙八" in ask.text and "理由" in ask.text
    done = await county.send(QINGSHAN_OFFICIAL, "经联系本人无意愿")
    assert "不予推荐" in last(to(done, QINGSHAN_OFFICIAL)).text
    assert await status_of(county, second) == "declined"
    assert await status_of(county, first) == "new"
    (ask,) = await county.press(QINGSHAN_OFFICIAL, f"rv:r:{first}")
    assert "张三" in ask.text and "理由" in ask.text
    # Another township's official cannot decline it, with or without a decline of their own.
    (refused,) = await county.press(MUHUANG_OFFICIAL, f"rv:r:{first}")
    assert "没有权限" in refused.text
    (cancelled,) = await county.send(QINGSHAN_OFFICIAL, "/cancel")
    assert "已退出" in cancelled.text
    assert await status_of(county, first) == "new"


async def test_a_decline_begun_before_the_flow_engine_is_finished_under_it(
    county: BotHarness,
) -> None:
    """Nobody stranded by the deploy: the reason asked for before it is taken after it."""
    nid = await nominate(county, CANDIDATE, "张三", ID_1, "13812345678")
    old = {"nomination_id": nid, "name": "张三"}
    await store_old_drafts(county, {QINGSHAN_OFFICIAL: ("review_decline", old, 0)})
    error, again = await county.send(QINGSHAN_OFFICIAL, "差")
    assert "2–500" in error.text and "张三" in again.text and "理由" in again.text
    done = await county.send(QINGSHAN_OFFICIAL, "本人长期在外，不符合驻村要求")
    assert "不予推荐" in last(to(done, QINGSHAN_OFFICIAL)).text
    assert "未被推荐" in to(done, CANDIDATE)[0].text
    assert await status_of(county, nid) == "declined"


async def test_vetting_notes_begun_before_the_flow_engine_are_finished_under_it(
    county: BotHarness,
) -> None:
    nid, reviews = await in_vetting(county)
    approve = {"review_id": reviews["police"], "decision": "approve", "name": "张三"}
    await store_old_drafts(county, {POLICE: ("vetting_note", approve, 0)})
    # The approval's "no comment" button, shown before the deploy, still answers.
    recorded = await county.press(POLICE, f"vt:n:{reviews['police']}")
    assert "等待其他部门" in last(recorded).text
    reject = {"review_id": reviews["judicial"], "decision": "reject", "name": "张三"}
    await store_old_drafts(county, {JUDICIAL: ("vetting_note", reject, 0)})
    sticker, again = await county.send_sticker(JUDICIAL)
    assert "文字" in sticker.text and "理由" in again.text and again.buttons == []
    done = await county.send(JUDICIAL, "有未结案件")
    assert "未通过资格联审" in last(to(done, JUDICIAL)).text
    assert await status_of(county, nid) == "rejected"


async def test_a_decision_whose_draft_is_gone_ends_as_expired(county: BotHarness) -> None:
    """The position survived, its draft did not (erased, or unreadable): nothing to decide."""
    await store_old_drafts(county, {POLICE: ("vetting_note", {}, 0)})
    (stale,) = await county.send(POLICE, "未发现问题")
    assert "已失效" in stale.text
    (idle,) = await county.send(POLICE, "还有一句")
    assert "没有理解" in idle.text
