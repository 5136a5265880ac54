"""/nominate and /recommend end to end through a real Application and the transport fake."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from storage import geo
from storage.models import Nomination, StatusChange, UserData
from storage.rules.identity import make_id_number
from tests.support.fake_telegram import Sent
from tests.support.harness import BotHarness

USER = 5001
# A real-looking Guizhou number for a man born 1990-03-07.
ID_NUMBER = make_id_number("520221", date(1990, 3, 7), 12, male=True)


@pytest.fixture
async def county(harness: BotHarness) -> BotHarness:
    villages = [("青山镇", f"第{i}村") for i in range(1, 12)] + [("木黄镇", "木黄村")]
    async with harness.database.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", villages)
    return harness


def last(replies: list[Sent]) -> Sent:
    assert replies, "the bot sent nothing"
    return replies[-1]


async def consent(bot: BotHarness, user: int = USER) -> Sent:
    (notice,) = await bot.send(user, "/nominate")
    assert "个人信息处理告知" in notice.text
    (sensitive,) = await bot.press(user, notice.button("同意"))
    assert "敏感个人信息" in sensitive.text
    return last(await bot.press(user, sensitive.button("同意")))


async def fill_until_review(
    bot: BotHarness, user: int = USER, *, id_number: str = ID_NUMBER, phone: str = "13812345678"
) -> Sent:
    question = await consent(bot, user)
    assert "姓名" in question.text
    question = last(await bot.send(user, "张三"))
    question = last(await bot.press(user, question.button("男")))
    assert "身份证" in question.text
    question = last(await bot.send(user, id_number))
    assert "手机号" in question.text
    question = last(await bot.send(user, phone))
    question = last(await bot.press(user, question.button("土家族")))
    question = last(await bot.press(user, question.button("中共党员")))
    question = last(await bot.press(user, question.button("大专")))
    question = last(await bot.press(user, question.button("青山镇")))
    assert "第 1/2 页" in question.text
    question = last(await bot.press(user, question.button("下一页")))
    question = last(await bot.press(user, question.button("第11村")))
    question = last(await bot.press(user, question.button("返乡大学毕业生")))
    question = last(await bot.send(user, "电商运营"))
    question = last(await bot.send(user, "在外务工五年"))
    return last(await bot.send(user, "建设家乡"))


async def count(bot: BotHarness, model: type) -> int:
    async with bot.database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_full_nomination_with_wrong_answers(county: BotHarness) -> None:
    bot = county
    await consent(bot)
    for bad, why in [("张", "2–20"), ("张3", "只能包含"), ("张\u200b三", "只能包含")]:
        error, again = await bot.send(USER, bad)
        assert why in error.text and "姓名" in again.text
    question = last(await bot.send(USER, "  张三  "))
    (sticker_reply, again) = await bot.send_sticker(USER)
    # A question answered by buttons says so, and shows its buttons again (it said "a text
    # reply is needed here" before the flow engine).
    assert "按钮" in sticker_reply.text and "性别" in again.text and again.button("男")
    question = last(await bot.press(USER, again.button("男")))
    bad_check = ID_NUMBER[:-1] + ("0" if ID_NUMBER[-1] != "0" else "1")
    error, again = await bot.send(USER, bad_check)
    assert "校验位" in error.text and "身份证" in again.text
    female = make_id_number("520221", date(1990, 3, 7), 12, male=False)
    error, again = await bot.send(USER, female)
    assert "重新选择性别" in error.text and "性别" in again.text
    again = last(await bot.press(USER, again.button("男")))  # then the ID is asked again
    assert "身份证" in again.text
    too_young = make_id_number("520221", date(2015, 1, 1), 3, male=True)
    error, again = await bot.send(USER, too_young)
    assert "18–60" in error.text
    question = last(await bot.send(USER, ID_NUMBER.lower()))
    error, again = await bot.send(USER, "12345")
    assert "11 位" in error.text
    ok, question = await bot.send(USER, "+86 138-1234-5678")
    assert "已记录" in ok.text and "民族" in question.text
    question = last(await bot.send(USER, "汉族"))  # typed where a button is expected
    assert "民族" in question.text
    for choice in ["土家族", "中共党员", "大专", "青山镇"]:
        question = last(await bot.press(USER, question.button(choice)))
    question = last(await bot.press(USER, question.button("第1村")))
    question = last(await bot.press(USER, question.button("退役军人")))
    question = last(await bot.send(USER, "种植"))
    question = last(await bot.send(USER, "务工"))
    review = last(await bot.send(USER, "服务群众"))
    assert "请核对" in review.text
    assert ID_NUMBER not in review.text and ID_NUMBER[:4] + "*" * 10 in review.text
    assert "138****5678" in review.text
    # Nothing is stored before submit.
    assert await count(bot, Nomination) == 0
    # Edit the name from the review screen, come back to review.
    question = last(await bot.press(USER, review.button("改姓名")))
    assert "姓名" in question.text
    review = last(await bot.send(USER, "李四"))
    assert "李四" in review.text and "请核对" in review.text
    done = last(await bot.press(USER, review.button("确认提交")))
    assert "报名已提交" in done.text
    async with bot.database.sessionmaker() as session:
        nomination = await session.scalar(select(Nomination))
        assert nomination is not None
        assert nomination.channel == "self" and nomination.status == "new"
        assert nomination.id_number_masked == ID_NUMBER[:4] + "*" * 10 + ID_NUMBER[-4:]
        assert ID_NUMBER.encode() not in (nomination.id_number_enc or b"")
        assert nomination.birth_date == date(1990, 3, 7)
        assert nomination.consent_at is not None and nomination.sensitive_consent_at is not None
        assert await session.scalar(select(func.count()).select_from(StatusChange)) == 1
    (again,) = await bot.send(USER, "/nominate")
    assert "已经报名" in again.text


async def test_a_button_on_a_message_telegram_will_not_edit_still_answers(
    county: BotHarness,
) -> None:
    """Pressed two days later (Telegram refuses to take the buttons off): the answer counts
    and the next question comes, instead of "something went wrong"."""
    county.fake.uneditable = True
    question = await consent(county)
    assert "姓名" in question.text
    question = last(await county.send(USER, "张三"))
    question = last(await county.press(USER, question.button("男")))
    assert "身份证" in question.text


async def test_declining_consent_stores_nothing(county: BotHarness) -> None:
    (notice,) = await county.send(USER, "/nominate")
    (declined,) = await county.press(USER, notice.button("不同意"))
    assert "没有保存" in declined.text
    (notice,) = await county.send(USER, "/nominate")
    (sensitive,) = await county.press(USER, notice.button("同意"))
    (declined,) = await county.press(USER, sensitive.button("不同意"))
    assert "没有保存" in declined.text
    assert await count(county, Nomination) == 0


async def test_restart_mid_flow_resumes(county: BotHarness) -> None:
    question = await consent(county)
    question = last(await county.send(USER, "王五"))
    question = last(await county.press(USER, question.button("男")))
    await county.restart()
    # The new process knows where the person was and what they had answered.
    question = last(await county.send(USER, ID_NUMBER))
    assert "手机号" in question.text
    await county.restart()
    question = last(await county.send(USER, "13912345678"))
    assert "民族" in question.text
    for choice in ["汉族", "群众", "本科", "木黄镇", "木黄村", "乡村医生教师"]:
        question = last(await county.press(USER, question.button(choice)))
    for answer in ["教学", "乡村教师十年", "为村民服务"]:
        question = last(await county.send(USER, answer))
    assert "王五" in question.text
    done = last(await county.press(USER, question.button("确认提交")))
    assert "报名已提交" in done.text


async def test_cancel_in_every_state_keeps_nothing(county: BotHarness) -> None:
    await consent(county)
    await county.send(USER, "赵六")
    (cancelled,) = await county.send(USER, "/cancel")
    assert "已退出" in cancelled.text
    assert await count(county, Nomination) == 0
    # A new /nominate starts from the beginning, not the old draft.
    (notice,) = await county.send(USER, "/nominate")
    assert "个人信息处理告知" in notice.text
    (cancelled,) = await county.send(USER, "/cancel")
    review = await fill_until_review(county)
    assert "请核对" in review.text
    (cancelled,) = await county.send(USER, "/cancel")
    assert "已退出" in cancelled.text
    assert await count(county, Nomination) == 0
    await county.app.update_persistence()  # type: ignore[union-attr]
    async with county.database.sessionmaker() as session:
        row = await session.get(UserData, USER)
    assert row is None or ID_NUMBER.encode() not in row.payload


async def test_second_person_with_same_id_or_phone_is_refused(county: BotHarness) -> None:
    review = await fill_until_review(county)
    await county.press(USER, review.button("确认提交"))
    other = USER + 1
    question = await consent(county, other)
    question = last(await county.send(other, "钱七"))
    question = last(await county.press(other, question.button("男")))
    refusal, _again = await county.send(other, ID_NUMBER)
    assert "已有报名或推荐记录" in refusal.text and "张三" not in refusal.text
    another_id = make_id_number("520221", date(1991, 5, 5), 40, male=True)
    await county.send(other, another_id)
    refusal, _again = await county.send(other, "13812345678")
    assert "该手机号" in refusal.text


async def test_recommendation_channels(county: BotHarness) -> None:
    recommender = 6001
    (question,) = await county.send(recommender, "/recommend")
    question = last(await county.send(recommender, "孙八"))
    question = last(await county.press(recommender, question.button("青山镇")))
    question = last(await county.press(recommender, question.button("第2村")))
    question = last(await county.press(recommender, question.button("跳过")))
    question = last(await county.press(recommender, question.button("致富能手")))
    review = last(await county.send(recommender, "带领村民种茶致富"))
    done = last(await county.press(recommender, review.button("确认提交")))
    assert "推荐已提交" in done.text
    async with county.database.sessionmaker() as session:
        nomination = await session.scalar(select(Nomination))
    assert nomination is not None and nomination.channel == "mass"
    assert nomination.phone_hash is None and nomination.reason == "带领村民种茶致富"


async def test_township_officials_are_told_of_a_new_nomination(county: BotHarness) -> None:
    from datetime import UTC, datetime

    from storage import people
    from storage.models import Role

    official = 6101
    async with county.database.sessionmaker.begin() as session:
        township = await geo.township_by_name(session, "青山镇")
        assert township is not None
        (code,) = await people.create_invites(
            session,
            role=Role.TOWNSHIP_OFFICIAL,
            now=datetime.now(UTC),
            days=7,
            township_id=township.id,
        )
    await county.send(official, f"/start {code}")
    review = await fill_until_review(county)
    await county.press(USER, review.button("确认提交"))
    notices = await county.drain()
    assert [(n.chat_id, "待审核" in n.text) for n in notices] == [(official, True)]
    assert "张三" not in notices[0].text  # a notice carries no personal data
    assert await county.drain() == []  # planned once, sent once


async def test_one_flow_at_a_time(county: BotHarness) -> None:
    question = await consent(county)
    question = last(await county.send(USER, "张三"))
    (busy,) = await county.send(USER, "/recommend")
    assert "没有完成" in busy.text and "/recommend" in busy.text
    # The open flow is intact: the gender question still takes its answer.
    question = last(await county.press(USER, question.button("男")))
    assert "身份证" in question.text
    await county.send(USER, "/cancel")
    (started,) = await county.send(USER, "/recommend")
    assert "姓名" in started.text


async def test_no_file_is_submitted_without_both_consents(county: BotHarness) -> None:
    """A form position restored without the consents in its draft (found by putting a
    conversation state back by hand) asks for them before anything is stored, then returns
    to the review with the answers kept."""
    review = await fill_until_review(county)
    assert county.app is not None
    answers = county.app.user_data[USER]["nomination"]["answers"]
    answers.pop("consent")
    answers.pop("consent_id")
    (notice,) = await county.press(USER, review.button("确认提交"))
    assert "个人信息处理告知" in notice.text
    async with county.database.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Nomination)) == 0
    (sensitive,) = await county.press(USER, notice.button("同意"))
    review = last(await county.press(USER, sensitive.button("同意")))
    assert "张三" in review.text
    done = last(await county.press(USER, review.button("确认提交")))
    assert "报名已提交" in done.text
    async with county.database.sessionmaker() as session:
        row = (await session.execute(select(Nomination.consent_at))).one()
    assert row.consent_at is not None


async def test_text_or_a_command_at_a_consent_shows_its_buttons_again(county: BotHarness) -> None:
    """Found from outside: text typed at the consent step got "a text reply is needed here"
    and no buttons; after a restart, /nominate there said "go on below" and showed nothing."""
    (notice,) = await county.send(USER, "/nominate")
    assert "个人信息处理告知" in notice.text
    replies = await county.send(USER, "李四")
    assert "请点击下方按钮" in replies[0].text
    assert "个人信息处理告知" in replies[-1].text and replies[-1].button("同意")
    (sensitive,) = await county.press(USER, replies[-1].button("同意"))
    assert "敏感个人信息" in sensitive.text
    await county.restart()
    replies = await county.send(USER, "/nominate")
    assert "请继续回答" in replies[0].text
    assert "敏感个人信息" in replies[-1].text
    question = last(await county.press(USER, replies[-1].button("同意")))
    assert "姓名" in question.text
