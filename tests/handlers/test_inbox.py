"""The inbox: an update_id is handled once, in one transaction with its state (issue 11: 1, 2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from telegram import Update
from telegram.error import NetworkError

from bot.inbox import InboxQueue
from bot.scheduler import INBOX_KEEP, prune_inbox
from storage import geo, inbox, people
from storage.db import Database
from storage.models import ConversationState, InboundUpdate, Person, TelegramAccount, UserData
from tests.handlers.test_nomination import ID_NUMBER, consent, last
from tests.support.harness import BotHarness

USER = 8101


def _payload(bot: BotHarness, user_id: int, text: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"text": text}
    if text.startswith("/"):
        fields["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return bot._message_payload(user_id, "zh-hans", **fields)


def _inbox(bot: BotHarness) -> InboxQueue:
    assert bot.app is not None
    queue = bot.app.update_queue
    assert isinstance(queue, InboxQueue)
    return queue


async def _rows(database: Database) -> list[InboundUpdate]:
    async with database.sessionmaker() as session:
        return list((await session.scalars(select(InboundUpdate))).all())


async def _count(database: Database, model: type) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_same_update_twice_gets_one_welcome(harness_any: BotHarness) -> None:
    bot = harness_any
    payload = _payload(bot, USER, "/start")
    first = await bot._process(payload)
    assert len(first) == 1 and "欢迎" in first[0].text
    again = await bot._process(payload)
    assert again == []
    assert await _count(bot.database, Person) == 1
    (row,) = await _rows(bot.database)
    assert row.update_id == payload["update_id"]
    assert row.handled_at is not None and row.payload is None


async def test_a_repeated_answer_does_not_fill_the_next_question(harness_any: BotHarness) -> None:
    bot = harness_any
    async with bot.database.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "第1村")])
    question = await consent(bot, USER)
    question = last(await bot.send(USER, "张三"))
    question = last(await bot.press(USER, question.button("男")))
    question = last(await bot.send(USER, ID_NUMBER))
    question = last(await bot.send(USER, "13812345678"))
    for choice in ["土家族", "中共党员", "大专", "青山镇", "第1村", "返乡大学毕业生"]:
        question = last(await bot.press(USER, question.button(choice)))
    # Two free-text questions in a row: a repeat of the first answer would fit the second.
    answer = _payload(bot, USER, "电商运营")
    (second,) = await bot._process(answer)
    # Telegram delivers the same update again (a webhook retry, a redelivery after a crash).
    assert await bot._process(answer) == []
    assert bot.app is not None
    answers = bot.app.user_data[USER]["nomination"]["answers"]
    assert "电商运营" in answers.values()
    assert list(answers.values()).count("电商运营") == 1
    # The person's real next answer lands on the question they were asked.
    third = last(await bot.send(USER, "在外务工五年"))
    assert third.text != second.text
    assert "在外务工五年" in bot.app.user_data[USER]["nomination"]["answers"].values()


async def test_the_queue_records_before_it_queues_and_skips_a_repeat(
    harness_any: BotHarness,
) -> None:
    bot = harness_any
    queue = _inbox(bot)
    payload = _payload(bot, USER, "我的身份证是 52022119900307123X")
    first = Update.de_json(payload, bot.app.bot)
    await queue.put(first)
    await queue.put(Update.de_json(payload, bot.app.bot))
    assert queue.qsize() == 1
    (row,) = await _rows(bot.database)
    # What a person typed is encrypted at rest until handled, then dropped.
    assert row.payload is not None and b"52022119900307123X" not in row.payload
    assert row.handled_at is None
    await bot.app.process_update(queue.get_nowait())
    (row,) = await _rows(bot.database)
    assert row.handled_at is not None and row.payload is None


async def test_updates_recorded_before_a_crash_are_handled_after_restart_in_order(
    harness_any: BotHarness,
) -> None:
    bot = harness_any
    queue = _inbox(bot)
    payloads = [_payload(bot, USER + n, "/start") for n in range(3)]
    # Fetched and confirmed to Telegram (recorded), then the process died before handling.
    for payload in reversed(payloads):
        await queue.put(Update.de_json(payload, bot.app.bot))
    await bot.restart()
    assert bot.app is not None
    replayed = []
    while not bot.app.update_queue.empty():
        item = bot.app.update_queue.get_nowait()
        assert isinstance(item, Update)
        replayed.append(item.update_id)
        await bot.app.process_update(item)
    assert replayed == sorted(p["update_id"] for p in payloads)
    assert len(bot.fake.texts()) == 3
    assert await _count(bot.database, TelegramAccount) == 3
    assert all(row.handled_at is not None for row in await _rows(bot.database))


async def test_a_failing_handler_is_rolled_back_and_not_handled_again(
    harness_any: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = harness_any
    original = people.open_account

    async def write_then_fail(*args: Any, **kwargs: Any) -> Any:
        await original(*args, **kwargs)
        raise RuntimeError("boom after a write")

    monkeypatch.setattr(people, "open_account", write_then_fail)
    payload = _payload(bot, USER, "/start")
    (apology,) = await bot._process(payload)
    assert "系统出了点问题" in apology.text
    # The handler's write is undone; the update is marked handled so it never loops.
    assert await _count(bot.database, TelegramAccount) == 0
    (row,) = await _rows(bot.database)
    assert row.handled_at is not None
    monkeypatch.setattr(people, "open_account", original)
    assert await bot._process(payload) == []
    (welcome,) = await bot.send(USER, "/start")
    assert "欢迎" in welcome.text


async def test_state_and_handled_mark_commit_with_the_handlers_writes(
    harness_any: BotHarness,
) -> None:
    bot = harness_any
    async with bot.database.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "青山村")])
    (notice,) = await bot.send(USER, "/nominate")
    assert "个人信息处理告知" in notice.text
    assert await _count(bot.database, ConversationState) == 1
    assert await _count(bot.database, UserData) == 1
    assert bot.app is not None
    handled = [row for row in await _rows(bot.database) if row.handled_at is not None]
    assert len(handled) == 1


async def test_tick_prunes_old_handled_updates_only(harness_any: BotHarness) -> None:
    bot = harness_any
    assert bot.app is not None
    await bot.send(USER, "/start")
    queue = bot.app.update_queue
    assert isinstance(queue, InboxQueue)
    await queue.put(Update.de_json(_payload(bot, USER, "/help"), bot.app.bot))
    now = datetime.now(UTC)
    async with bot.database.sessionmaker.begin() as session:
        await session.execute(
            update(InboundUpdate).values(received_at=now - INBOX_KEEP - timedelta(hours=1))
        )
        await session.execute(
            update(InboundUpdate)
            .where(InboundUpdate.handled_at.is_not(None))
            .values(handled_at=now - INBOX_KEEP - timedelta(minutes=1))
        )
    async with bot.database.sessionmaker.begin() as session:
        await prune_inbox(session, None, now)  # type: ignore[arg-type]
    (left,) = await _rows(bot.database)
    assert left.handled_at is None  # still to handle: never pruned
    async with bot.database.sessionmaker() as session:
        assert await inbox.unhandled(session) == [(left.update_id, left.payload)]


async def test_a_database_error_while_recording_lets_polling_retry(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PTB's polling loop survives only TelegramErrors: the queue turns a database error into
    one, so the loop backs off and fetches the same updates again (the offset stayed)."""
    bot = harness
    assert bot.app is not None
    queue = bot.app.update_queue
    assert isinstance(queue, InboxQueue)

    async def down(*args: Any, **kwargs: Any) -> bool:
        raise OperationalError("INSERT", {}, OSError("disk I/O error"))

    monkeypatch.setattr(InboxQueue, "_record", down)
    payload = _payload(bot, USER, "/start")
    with pytest.raises(NetworkError):
        await queue.put(Update.de_json(payload, bot.app.bot))
    assert queue.empty()
    monkeypatch.undo()
    await queue.put(Update.de_json(payload, bot.app.bot))
    assert queue.qsize() == 1


async def test_a_commit_that_fails_puts_memory_back_and_asks_again(
    harness_any: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: the handler moved the form on, the commit failed, and the person's
    next answer filled the wrong question (then a restart replayed the lost one on top)."""
    bot = harness_any
    async with bot.database.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "第1村")])
    await consent(bot, USER)
    real = inbox.mark_handled_with_commit
    failing = {"left": 1}

    async def once_failing(*args: Any, **kwargs: Any) -> None:
        if failing["left"]:
            failing["left"] -= 1
            raise OperationalError("COMMIT", {}, Exception("database is locked"))
        await real(*args, **kwargs)

    monkeypatch.setattr(inbox, "mark_handled_with_commit", once_failing)
    replies = await bot.send(USER, "张三")
    assert "没有保存成功" in replies[-1].text
    assert bot.app is not None
    # Memory is what the database holds: still at the name question, nothing answered.
    assert bot.app.user_data[USER]["nomination"]["answers"].get("full_name") is None
    question = last(await bot.send(USER, "李四"))
    assert "性别" in question.text
    assert bot.app.user_data[USER]["nomination"]["answers"]["full_name"] == "李四"
    # Settled: a restart does not replay the lost answer on top of the later ones.
    await bot.restart()
    assert bot.app is not None
    assert bot.app.user_data[USER]["nomination"]["answers"]["full_name"] == "李四"
    question = last(await bot.press(USER, question.button("男")))
    assert "身份证" in question.text
