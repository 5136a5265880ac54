"""Edited messages never reach a flow as an answer (issue 11, finding 9)."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from storage import geo
from tests.handlers.test_mentoring import MENTOR_T, County, county  # noqa: F401 - fixture
from tests.handlers.test_nomination import ID_NUMBER, USER, consent, last
from tests.support.fake_telegram import Sent
from tests.support.harness import BotHarness

EDIT_NOTICE = "修改后的内容不会被读取"


async def edit(
    bot: BotHarness, user_id: int, message_id: int, text: str, *, language_code: str = "zh-hans"
) -> list[Sent]:
    """The person edits their earlier message `message_id` to read `text`."""
    payload: dict[str, Any] = bot._message_payload(user_id, language_code, text=text)
    message = payload.pop("message")
    message["message_id"] = message_id
    message["edit_date"] = int(time.time())
    payload["edited_message"] = message
    return await bot._process(payload)


def draft(bot: BotHarness, user_id: int) -> dict[str, Any]:
    assert bot.app is not None
    return copy.deepcopy(dict(bot.app.user_data[user_id]))


@pytest.fixture
async def villages(harness: BotHarness) -> BotHarness:
    async with harness.database.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "青山村")])
    return harness


async def test_edit_in_nominate_is_not_an_answer(villages: BotHarness) -> None:
    bot = villages
    await consent(bot)
    question = last(await bot.send(USER, "张三"))
    question = last(await bot.press(USER, question.button("男")))
    question = last(await bot.send(USER, ID_NUMBER))
    assert "手机号" in question.text
    before = draft(bot, USER)
    # The person edits the ID message into a phone number while the phone is being asked.
    (notice,) = await edit(bot, USER, 1, "13912345678")
    assert EDIT_NOTICE in notice.text and "重新发送" in notice.text
    assert draft(bot, USER) == before
    # The next real message answers the question that was open.
    question = last(await bot.send(USER, "13812345678"))
    assert "民族" in question.text
    after = draft(bot, USER)
    assert "13912345678" not in repr(after)


async def test_edit_is_told_in_english(villages: BotHarness) -> None:
    (notice,) = await edit(villages, USER, 1, "hello", language_code="en")
    assert "edits are not read" in notice.text and "send your answer again" in notice.text


async def test_edit_in_talk_is_not_an_answer(county: County) -> None:  # noqa: F811
    bot = county.bot
    await county.pair("张三", "township", MENTOR_T)
    (pick,) = await bot.send(MENTOR_T, "/talk")
    question = last(await bot.press(MENTOR_T, pick.button("张三")))
    question = last(await bot.press(MENTOR_T, question.button("其他日期")))
    assert "请输入谈话日期" in question.text
    before = draft(bot, MENTOR_T)
    (notice,) = await edit(bot, MENTOR_T, 1, "2020-01-01")
    assert EDIT_NOTICE in notice.text
    assert draft(bot, MENTOR_T) == before
    # Still at the date question: a wrong date is refused as a date, not taken elsewhere.
    error, question = await bot.send(MENTOR_T, "上周三")
    assert "没看懂" in error.text and "请输入谈话日期" in question.text


async def test_edit_outside_any_flow_changes_nothing(villages: BotHarness) -> None:
    (notice,) = await edit(villages, USER, 1, "/start")
    assert EDIT_NOTICE in notice.text
