"""Erasure against the real `cadrebot run` (issue 11, finding 7): a person erased by the CLI in
another process is forgotten by the running bot, and /withdraw works in the middle of a form.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.e2e.chat import Inbox

if TYPE_CHECKING:
    from tests.e2e.conftest import BotProcess, Person

    MakePerson = Callable[..., Person]

pytestmark = pytest.mark.e2e

# The running bot polls erasure events every second (bot/forget.py).
FORGET_WAIT = 2.5


def _rows(bot: BotProcess, user_id: int) -> tuple[int, int]:
    """(user_data rows, conversation_state rows) of the person, read beside the live bot."""
    path = bot.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path, timeout=10) as db:
        drafts = db.execute("SELECT count(*) FROM user_data WHERE user_id = ?", (user_id,))
        states = db.execute(
            "SELECT count(*) FROM conversation_state WHERE key LIKE ?", (f"%{user_id}%",)
        )
        return int(drafts.fetchone()[0]), int(states.fetchone()[0])


def _mid_form(person: Person) -> Inbox:
    """/nominate, both consents, a name typed: the bot now holds a draft, asking the gender."""
    inbox = Inbox(person)
    inbox.ask("/start", "欢迎")
    notice = inbox.ask("/nominate", "个人信息处理告知")
    sensitive = inbox.press(notice, "nom:ok:1", "敏感个人信息")
    inbox.press(sensitive, "nom:id:1", "姓名")
    inbox.ask("欧阳娜娜", "性别")
    return inbox


def test_a_cli_erasure_is_forgotten_by_the_running_bot(
    bot: BotProcess, person: MakePerson
) -> None:
    someone = person()
    inbox = _mid_form(someone)
    assert _rows(bot, someone.user_id) == (1, 1)

    out = bot.cli("erase", "--telegram-id", str(someone.user_id), "--yes")
    assert "erased person" in out
    assert _rows(bot, someone.user_id) == (0, 0)
    time.sleep(FORGET_WAIT)

    # The next message is not taken as the gender answer, and no draft is written back.
    someone.send("女")
    (answer,) = someone.receive(1)
    assert "性别" not in answer.text and "请点击" not in answer.text, answer.text
    time.sleep(0.5)
    assert _rows(bot, someone.user_id) == (0, 0)
    assert not inbox.stash


def test_withdraw_in_the_middle_of_a_form(bot: BotProcess, person: MakePerson) -> None:
    someone = person()
    inbox = _mid_form(someone)
    ask = inbox.ask("/withdraw", "撤回报名并删除个人信息")
    assert "草稿（1 份）" in ask.text
    receipt = inbox.press(ask, ask.button("确认撤回并删除"), "回执编号")
    assert "草稿和正在填写的表单已删除" in receipt.text
    assert _rows(bot, someone.user_id) == (0, 0)
    someone.send("女")
    (answer,) = someone.receive(1)
    assert "性别" not in answer.text and "请点击" not in answer.text, answer.text
    assert _rows(bot, someone.user_id) == (0, 0)
