"""Stored state that cannot be read back: the bot starts, nobody stays stuck (issue 11, 3)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import insert, select, update

from bot import scheduler
from handlers.chat import forget
from handlers.chat.context import CadreContext
from storage import erasure, geo
from storage.crypto import DataCipher, DataKeyError
from storage.models import ConversationState, QuarantinedState, UserData
from tests.conftest import make_settings
from tests.handlers.test_nomination import ID_NUMBER, consent, last
from tests.support.harness import BotHarness

USER = 8201


async def _county(bot: BotHarness) -> None:
    async with bot.database.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "第1村")])


async def _open_form(bot: BotHarness) -> None:
    await _county(bot)
    question = await consent(bot, USER)
    question = last(await bot.send(USER, "张三"))
    question = last(await bot.press(USER, question.button("男")))
    assert "身份证" in question.text


async def _tick(bot: BotHarness) -> list[Any]:
    assert bot.app is not None
    await scheduler.tick(CadreContext(bot.app))
    return await bot.drain()


async def test_a_draft_no_key_opens_starts_clean_and_tells_the_person_once(
    harness_any: BotHarness,
) -> None:
    bot = harness_any
    await _open_form(bot)
    await bot.stop()
    # The draft was written under a key DATA_KEY no longer holds (dropped before a rekey
    # finished, or a stray process with another key): it cannot be opened.
    stray = DataCipher(Fernet.generate_key().decode())
    async with bot.database.sessionmaker.begin() as session:
        await session.execute(update(UserData).values(payload=stray.encrypt(json.dumps({}))))
    await bot.start()
    assert bot.app is not None
    assert USER not in bot.app.user_data
    notices = await _tick(bot)
    assert [n.chat_id for n in notices] == [USER]
    assert "无法恢复" in notices[0].text
    assert await _tick(bot) == []  # told once
    await bot.restart()
    assert await _tick(bot) == []
    # They start the form again from the beginning and nothing old is in their way.
    (notice,) = await bot.send(USER, "/nominate")
    assert "个人信息处理告知" in notice.text


async def test_a_data_key_that_opens_nothing_here_is_refused_not_quarantined(
    harness_any: BotHarness,
) -> None:
    """A wholly different DATA_KEY is the operator's mistake, not a bad row: start-up stops
    with one line (exit 2 from the CLI) instead of setting every draft aside."""
    bot = harness_any
    await _open_form(bot)
    await bot.stop()
    bot.settings = make_settings(bot.database, data_key=Fernet.generate_key().decode())
    with pytest.raises(DataKeyError, match="DATA_KEY"):
        await bot.start()
    async with bot.database.sessionmaker() as session:
        assert (await session.scalars(select(QuarantinedState))).all() == []
        assert len((await session.scalars(select(UserData))).all()) == 1


async def test_a_step_index_beyond_the_form_is_clamped(harness_any: BotHarness) -> None:
    bot = harness_any
    await _open_form(bot)
    await bot.stop()
    cipher = DataCipher(bot.settings.require_data_key())
    async with bot.database.sessionmaker.begin() as session:
        payload = (await session.scalars(select(UserData.payload))).one()
        draft = json.loads(cipher.decrypt(payload))
        draft["nomination"]["at"] = 57  # e.g. written by a longer version of the form
        await session.execute(update(UserData).values(payload=cipher.encrypt(json.dumps(draft))))
    await bot.start()
    # The first unanswered question (the ID number) is asked, never "try again later".
    question = last(await bot.send(USER, "随便"))
    assert "系统出了点问题" not in question.text
    assert "身份证" in question.text
    question = last(await bot.send(USER, ID_NUMBER))
    assert "手机号" in question.text


async def test_a_state_the_flow_does_not_have_is_ended(harness_any: BotHarness) -> None:
    bot = harness_any
    await _county(bot)
    await bot.stop()
    async with bot.database.sessionmaker.begin() as session:
        await session.execute(
            insert(ConversationState).values(
                name="nomination", key=json.dumps([USER, USER]), state={"state": 57}
            )
        )
    await bot.start()
    async with bot.database.sessionmaker() as session:
        (row,) = (await session.scalars(select(QuarantinedState))).all()
        assert row.reason == "state unknown to the flow" and row.user_id == USER
        assert (await session.scalars(select(ConversationState))).all() == []
    (notice,) = await bot.send(USER, "/nominate")
    assert "个人信息处理告知" in notice.text
    notices = await _tick(bot)
    assert [n.chat_id for n in notices] == [USER]


async def test_forget_user_drops_memory_and_rows_and_nothing_is_written_back(
    harness_any: BotHarness,
) -> None:
    """For erasure: a running bot forgets a person's draft and open form for good."""
    bot = harness_any
    await _open_form(bot)
    await bot.send(USER + 1, "/nominate")  # someone else, kept
    assert bot.app is not None
    # What an erasure does: its rows (storage) and this process's memory
    # (handlers/chat/forget.py).
    async with bot.database.sessionmaker.begin() as session:
        await erasure.forget_sessions(session, [USER])
    forget.forget_users(bot.app, [USER])
    await bot.app.update_persistence()
    assert USER not in bot.app.user_data
    async with bot.database.sessionmaker() as session:
        users = set((await session.scalars(select(UserData.user_id))).all())
        keys = set((await session.scalars(select(ConversationState.key))).all())
    assert users == {USER + 1}
    assert keys == {json.dumps([USER + 1, USER + 1])}
    # Their next message starts nothing half-filled, and writes nothing back.
    reply = last(await bot.send(USER, ID_NUMBER))
    assert "手机号" not in reply.text
    await bot.restart()
    assert bot.app is not None
    assert USER not in bot.app.user_data or not bot.app.user_data[USER]
