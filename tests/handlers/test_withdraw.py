"""/withdraw, and a running bot forgetting a person erased elsewhere (issue 11, finding 7)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import forget
from handlers.chat.forget import forget_users
from storage import erasure, outbox
from storage.models import (
    AuditLog,
    ConversationState,
    Nomination,
    OutboxMessage,
    Person,
    UserData,
)
from tests.handlers.test_nomination import USER, consent, county, fill_until_review, last
from tests.support.harness import BotHarness

__all__ = ["county"]  # the fixture, shared with the nomination tests


async def _count(bot: BotHarness, model: type, *where: object) -> int:
    async with bot.database.sessionmaker() as session:
        query = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
        return int(await session.scalar(query) or 0)


async def _submit(bot: BotHarness) -> None:
    review = await fill_until_review(bot)
    done = last(await bot.press(USER, review.button("确认提交")))
    assert "报名已提交" in done.text


async def test_withdraw_shows_what_goes_then_erases_and_gives_a_receipt(
    county: BotHarness,
) -> None:
    bot = county
    await _submit(bot)
    (ask,) = await bot.send(USER, "/withdraw")
    assert "撤回报名并删除个人信息" in ask.text and "1 份报名档案" in ask.text
    assert "不能撤销" in ask.text
    (receipt,) = await bot.press(USER, ask.button("确认撤回并删除"))
    assert "回执编号" in receipt.text and "处理档案 1 份" in receipt.text
    number = int(receipt.text.split("回执编号 ")[1].split()[0])
    async with bot.database.sessionmaker() as session:
        row = (
            await session.execute(
                select(
                    Nomination.erased_at,
                    Nomination.id_number_hash,
                    Nomination.phone_enc,
                    Nomination.motivation,
                    Person.full_name,
                ).join(Person, Person.id == Nomination.person_id)
            )
        ).one()
        action = await session.scalar(select(AuditLog.action).where(AuditLog.id == number))
    assert row.erased_at is not None
    assert (row.id_number_hash, row.phone_enc, row.motivation, row.full_name) == (
        None,
        None,
        None,
        None,
    )
    assert action == "person.erase"
    assert await _count(bot, Person, Person.full_name == "张三") == 0
    # Asked again: nothing is held any more.
    (again,) = await bot.send(USER, "/withdraw")
    assert "无需撤回" in again.text


async def test_keeping_leaves_everything(county: BotHarness) -> None:
    bot = county
    await _submit(bot)
    (ask,) = await bot.send(USER, "/withdraw")
    (kept,) = await bot.press(USER, ask.button("保留"))
    assert "保持不变" in kept.text
    assert await _count(bot, Nomination, Nomination.erased_at.is_(None)) == 1
    assert await _count(bot, Person, Person.full_name == "张三") == 1


async def test_withdraw_in_english(county: BotHarness) -> None:
    bot = county
    await _submit(bot)
    (ask,) = await bot.send(USER, "/withdraw", language_code="en")
    assert "Withdraw and erase" in ask.text and "1 nomination file" in ask.text
    (receipt,) = await bot.press(USER, ask.button("Withdraw and erase"), language_code="en")
    assert "Receipt no." in receipt.text


async def test_withdraw_with_nothing_held(county: BotHarness) -> None:
    (answer,) = await county.send(USER + 1, "/withdraw")
    assert "无需撤回" in answer.text


async def test_withdraw_in_the_middle_of_a_form_drops_the_draft(county: BotHarness) -> None:
    bot = county
    await consent(bot)
    last(await bot.send(USER, "张三"))
    assert await _count(bot, UserData) == 1
    (ask,) = await bot.send(USER, "/withdraw")
    assert "草稿（1 份）" in ask.text
    (receipt,) = await bot.press(USER, ask.button("确认撤回并删除"))
    assert "回执" in receipt.text
    assert await _count(bot, UserData) == 0
    assert await _count(bot, ConversationState) == 0
    # The form is over: the next text is not taken as an answer, and nothing is written back.
    await bot.send(USER, "男")
    assert await _count(bot, UserData) == 0
    assert await _count(bot, ConversationState) == 0


async def test_a_running_bot_forgets_a_person_erased_by_another_process(
    county: BotHarness,
) -> None:
    """`cadrebot erase` runs elsewhere: the draft this bot holds in memory must not be written
    back on the person's next message (it used to be)."""
    bot = county
    await consent(bot)
    last(await bot.send(USER, "张三"))
    async with bot.database.sessionmaker.begin() as session:
        person = await erasure.person_of_telegram(session, USER)
        assert person is not None
        await erasure.erase_person(session, person, actor_person_id=None)
    assert await _count(bot, UserData) == 0
    assert bot.app is not None
    # The poll the bot runs every second (bot/forget.py).
    assert await forget.poll(bot.app) == 1
    assert await forget.poll(bot.app) == 0
    await bot.send(USER, "男")
    assert await _count(bot, UserData) == 0
    assert await _count(bot, ConversationState) == 0
    async with bot.database.sessionmaker() as session:
        keys = list(await session.scalars(select(ConversationState.key)))
    assert json.dumps([USER, USER]) not in keys


async def test_withdrawing_cancels_the_notices_about_the_person(county: BotHarness) -> None:
    """The township is told of a new nomination through the outbox; a withdrawal before it
    goes out cancels it."""
    bot = county
    await _submit(bot)
    async with bot.database.sessionmaker.begin() as session:
        # A queued notice about the nomination, as the township's officials would get it.
        nomination_id = await session.scalar(select(Nomination.id))
        await outbox.plan(
            session,
            key="nomination-new:x:1",
            chat_id=999,
            kind="review/notice_new_nomination",
            parts=["张三 报名"],
            subject=nomination_id,
        )
    (ask,) = await bot.send(USER, "/withdraw")
    assert "1 条相关通知" in ask.text
    await bot.press(USER, ask.button("确认撤回并删除"))
    async with bot.database.sessionmaker() as session:
        row = (
            await session.execute(
                select(OutboxMessage.status, OutboxMessage.parts).where(
                    OutboxMessage.key == "nomination-new:x:1"
                )
            )
        ).one()
    assert row == ("failed", {"parts": []})


async def test_a_confirmation_answers_its_own_preview_only(county: BotHarness) -> None:
    """Found from outside: an old or repeated 确认 erased what its preview never showed."""
    bot = county
    stale = "这个按钮已失效"
    # A press with no preview at all (forged, or from another device's old chat).
    (answer,) = await bot.press(USER, "wd:y:abcd1234")
    assert stale in answer.text
    # Preview while a form is open; then the file is submitted: the old 确认 shows the new
    # preview instead of erasing a file it never named.
    await consent(bot)
    (first,) = await bot.send(USER, "/withdraw")
    assert "0 份报名档案" in first.text
    await bot.send(USER, "/cancel")
    await _submit(bot)
    (again,) = await bot.press(USER, first.button("确认撤回并删除"))
    assert "重新确认" in again.text and "1 份报名档案" in again.text
    assert await _count(bot, Nomination, Nomination.erased_at.is_not(None)) == 0
    # Keep, then the same preview's 确认: expired, nothing erased.
    (kept,) = await bot.press(USER, again.button("保留"))
    assert "已取消" in kept.text
    (late,) = await bot.press(USER, again.button("确认撤回并删除"))
    assert stale in late.text
    assert await _count(bot, Nomination, Nomination.erased_at.is_not(None)) == 0
    # A fresh preview confirmed once gives one receipt; pressing it again is expired.
    (ask,) = await bot.send(USER, "/withdraw")
    (receipt,) = await bot.press(USER, ask.button("确认撤回并删除"))
    assert "回执编号" in receipt.text
    (twice,) = await bot.press(USER, ask.button("确认撤回并删除"))
    assert stale in twice.text
    assert await _count(bot, AuditLog, AuditLog.action == "person.erase") == 1


async def test_an_erasure_polled_while_their_update_is_in_hand_is_not_undone(
    county: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: the poll dropped the form while the handler awaited Telegram; PTB then
    set the state again when the callback returned, and the flush wrote it back."""
    bot = county
    question = await consent(bot)
    assert bot.app is not None
    app = bot.app
    answer = bot.fake._answer

    def answer_then_erase(method: str, params: dict[str, Any]) -> Any:
        if method == "sendMessage":  # the reply to the name: the callback is still running
            forget_users(app, [USER])
        return answer(method, params)

    monkeypatch.setattr(bot.fake, "_answer", answer_then_erase)
    await bot.send(USER, "张三")
    assert USER not in app.user_data or not app.user_data[USER]
    assert await _count(bot, ConversationState) == 0
    assert await _count(bot, UserData) == 0
    assert "姓名" in question.text
