"""The flow engine's promises, checked on /nominate and /recommend (issue 15's defects).

Each of these was found by trying the bot as a person would, and each lived in per-flow
plumbing before the engine: now the engine does it once for every flow.
"""

from __future__ import annotations

import json

from sqlalchemy import insert, select

from storage import geo
from storage.crypto import DataCipher
from storage.models import ConversationState, Nomination, UserData
from tests.handlers.test_nomination import ID_NUMBER, consent, last
from tests.support.harness import BotHarness

USER = 8301


async def _county(bot: BotHarness) -> None:
    async with bot.database.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "第1村"), ("青山镇", "第2村")])


async def _at_gender(bot: BotHarness) -> None:
    await _county(bot)
    question = await consent(bot, USER)
    question = last(await bot.send(USER, "张三"))
    assert "性别" in question.text and question.button("男")


async def test_text_at_a_button_question_says_so_and_shows_the_buttons_again(
    harness: BotHarness,
) -> None:
    await _at_gender(harness)
    for send in (lambda: harness.send(USER, "男"), lambda: harness.send_sticker(USER)):
        said, again = await send()
        assert "请点击下方按钮" in said.text and "文字回复" not in said.text
        assert "性别" in again.text and again.button("男") and again.button("女")
    # And the buttons still answer it.
    question = last(await harness.press(USER, again.button("女")))
    assert "身份证" in question.text


async def test_a_menu_command_mid_flow_answers_then_asks_the_open_question_again(
    harness: BotHarness,
) -> None:
    """/start, /help and /lang used to show their screen while the form silently stayed
    open, so the next text was taken as an answer the person did not know they gave."""
    await _at_gender(harness)
    for command, shows in (("/help", "帮助"), ("/start", "/nominate"), ("/lang", "语言")):
        replies = await harness.send(USER, command)
        assert shows in replies[0].text, command
        assert "请继续回答" in replies[-2].text, command
        assert "性别" in replies[-1].text and replies[-1].button("男"), command
    # The form is where it was: the gender question takes its button.
    question = last(await harness.press(USER, "nom:c:gender:male"))
    assert "身份证" in question.text


async def test_the_message_with_an_id_number_is_deleted_after_it_is_read(
    harness: BotHarness,
) -> None:
    await _at_gender(harness)
    question = last(await harness.press(USER, "nom:c:gender:male"))
    harness.fake.calls.clear()
    replies = await harness.send(USER, ID_NUMBER)
    deletes = [c for c in harness.fake.calls if c.method == "deleteMessage"]
    assert len(deletes) == 1 and int(deletes[0].params["chat_id"]) == USER
    # The person is told why their message vanished, in the same reply as the next question.
    assert "已从对话中删除" in replies[0].text and "手机号" in replies[-1].text
    assert ID_NUMBER not in " ".join(r.text for r in replies)
    # A wrong number is deleted too: it may still be most of a real one.
    await harness.send(USER, "/cancel")
    await _again_at_id(harness)
    harness.fake.calls.clear()
    replies = await harness.send(USER, ID_NUMBER[:-1] + "0" if ID_NUMBER[-1] != "0" else "1")
    assert [c.method for c in harness.fake.calls].count("deleteMessage") == 1
    assert "校验位" in replies[0].text and "已从对话中删除" in replies[0].text
    assert question is not None


async def _again_at_id(bot: BotHarness) -> None:
    question = await consent(bot, USER)
    question = last(await bot.send(USER, "张三"))
    question = last(await bot.press(USER, question.button("男")))
    assert "身份证" in question.text


async def test_a_draft_written_before_the_flow_engine_is_finished_under_it(
    harness_any: BotHarness,
) -> None:
    """Nobody is stranded by the deploy: a nomination draft and form position as the form
    engine before the flow engine wrote them (its "at" a step index, its consents a flag)
    resume at the same question with what was entered, and the file is submitted."""
    bot = harness_any
    await _county(bot)
    async with bot.database.sessionmaker() as session:
        township = (await geo.list_townships(session))[0]
        villages, _ = await geo.list_villages(session, township.id, offset=0, limit=8)
    await bot.stop()
    old_draft = {
        "nomination": {
            "answers": {
                "full_name": "王五",
                "gender": "m",
                "id_number": ID_NUMBER,
                "birth_date": "1990-03-07",
            },
            "editing": False,
            "at": 3,  # the phone step of the old form's 13 steps
            "consent": True,
        }
    }
    cipher = DataCipher(bot.settings.require_data_key())
    async with bot.database.sessionmaker.begin() as session:
        await session.execute(
            insert(UserData).values(user_id=USER, payload=cipher.encrypt(json.dumps(old_draft)))
        )
        await session.execute(
            insert(ConversationState).values(
                name="nomination", key=json.dumps([USER, USER]), state={"state": 3}
            )
        )
    await bot.start()
    question = last(await bot.send(USER, "13812345670"))
    assert "民族" in question.text  # the phone was the question they were on
    for label in ("汉族", "群众", "本科"):
        question = last(await bot.press(USER, question.button(label)))
    question = last(await bot.press(USER, question.button(township.name)))
    question = last(await bot.press(USER, question.button(villages[0].name)))
    question = last(await bot.press(USER, question.button("返乡大学毕业生")))
    for answer in ("种植", "务农十年", "服务乡亲"):
        question = last(await bot.send(USER, answer))
    assert "王五" in question.text  # the review shows what they entered before the deploy
    done = last(await bot.press(USER, question.button("确认提交")))
    assert "报名已提交" in done.text
    async with bot.database.sessionmaker() as session:
        row = (await session.execute(select(Nomination.consent_at))).one()
    assert row.consent_at is not None


async def test_text_without_a_number_at_the_id_question_is_not_deleted(
    harness: BotHarness,
) -> None:
    """Found from outside: a name typed at the ID question was deleted and called "your ID
    number"; only a message holding a number (six digits or more) is taken out of the chat."""
    await _county(harness)
    await _again_at_id(harness)
    harness.fake.calls.clear()
    replies = await harness.send(USER, "张三")
    assert [c.method for c in harness.fake.calls].count("deleteMessage") == 0
    assert "已从对话中删除" not in replies[0].text and "身份证" in replies[-1].text
    replies = await harness.send(USER, "5202 2119 9003")
    assert [c.method for c in harness.fake.calls].count("deleteMessage") == 1
    assert "已从对话中删除" in replies[0].text
