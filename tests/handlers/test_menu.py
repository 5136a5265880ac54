"""The "/" menu, /help and what a person may run come from one list of declarations.

For each kind of person: the menu Telegram is given (default scope for the public, a chat
scope for staff) == the commands /help lists == the commands that answer without "not
allowed"; every other command is refused. The setMyCommands requests are checked against
the Bot API's rules by the fake (bot/fakeapi/commands.py).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update
from telegram.error import TimedOut
from telegram.ext import BaseHandler, CommandHandler, ConversationHandler

from bot import menu
from bot.app import COMMANDS, handler_groups
from bot.fakeapi import commands as bot_commands
from handlers.chat.menu import help_groups, menu_for
from storage import menus
from storage.models import Role, RoleGrant, TelegramAccount
from templates import LOCALES, build_environment, labels_for, render
from tests.support.county import role_invite
from tests.support.fake_telegram import Call
from tests.support.harness import BotHarness

ENV = build_environment()
FORBIDDEN = render(ENV, "zh_CN", "common/forbidden")
HELP_LINE = re.compile(r"^/([a-z0-9_]+) ", re.MULTILINE)

# Who: an invite for each role (scoped where the role needs it), or none for the public.
PEOPLE: dict[str, Role | None] = {
    "public": None,
    "mentor": Role.MENTOR,
    "township": Role.TOWNSHIP_OFFICIAL,
    "county": Role.COUNTY_OFFICIAL,
    "reviewer": Role.REVIEWER,
    "admin": Role.ADMIN,
}


def _commands_of(handler: BaseHandler[Any, Any, Any]) -> set[str]:
    """The commands a handler starts on: its own, or a conversation's entry points'."""
    if isinstance(handler, CommandHandler):
        return set(handler.commands)
    if isinstance(handler, ConversationHandler):
        return {c for entry in handler.entry_points for c in _commands_of(entry)}
    return set()


def _menu_calls(harness: BotHarness) -> list[Call]:
    return [c for c in harness.fake.calls if c.method in {"setMyCommands", "deleteMyCommands"}]


def _decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _scope(call: Call) -> dict[str, Any]:
    return dict(_decoded(call.params.get("scope")) or {"type": "default"})


def _entries(call: Call) -> list[tuple[str, str]]:
    return [(c["command"], c["description"]) for c in _decoded(call.params["commands"])]


def _chat_calls(harness: BotHarness, chat_id: int) -> list[Call]:
    return [c for c in _menu_calls(harness) if _scope(c).get("chat_id") == chat_id]


async def _publish(harness: BotHarness) -> int:
    """What the running bot's "menus" job does every few seconds."""
    assert harness.app is not None
    data = harness.app.bot_data
    return await menu.publish_pending(
        harness.app.bot,
        data["database"],
        COMMANDS,
        data["jinja"],
        harness.settings.locale,
        data.setdefault(menu.SKIP_KEY, set()),
    )


async def _pending(harness: BotHarness) -> dict[int, int]:
    async with harness.database.sessionmaker() as session:
        rows = await session.execute(
            select(TelegramAccount.telegram_id, TelegramAccount.menu_changes).where(
                TelegramAccount.menu_changes > 0
            )
        )
        return {int(t): int(n) for t, n in rows.all()}


def test_every_command_the_bot_answers_is_declared_once_with_its_one_line() -> None:
    answered = {c for _, handlers in handler_groups() for h in handlers for c in _commands_of(h)}
    names = [c.name for c in COMMANDS]
    assert len(names) == len(set(names))
    assert set(names) == answered
    for locale in LOCALES:
        labels = labels_for(ENV, locale)
        for command in COMMANDS:
            assert re.fullmatch(r"[a-z0-9_]{1,32}", command.name)
            assert 1 <= len(labels[command.summary_key]) <= 256, (locale, command.name)


def test_help_sections_follow_the_roles() -> None:
    official = dict(help_groups({Role.TOWNSHIP_OFFICIAL}, COMMANDS))
    assert "difficulties" in [c.name for c in official["officials"]]
    both = dict(help_groups({Role.TOWNSHIP_OFFICIAL, Role.MENTOR}, COMMANDS))
    assert "difficulties" in [c.name for c in both["mentor"]]
    assert "difficulties" not in [c.name for c in both["officials"]]
    assert [name for name, _ in help_groups((), COMMANDS)] == ["general"]


async def test_default_menus_are_published_at_start_in_each_language(
    harness: BotHarness,
) -> None:
    calls = _menu_calls(harness)
    assert [(c.method, _scope(c)["type"], c.params.get("language_code")) for c in calls] == [
        ("setMyCommands", "default", "zh"),
        ("setMyCommands", "default", "en"),
        ("setMyCommands", "default", None),
    ]
    public = [c.name for c in menu_for((), COMMANDS)]
    zh = labels_for(ENV, "zh_CN")
    en = labels_for(ENV, "en")
    assert _entries(calls[0]) == [(n, zh[f"cmd.{n}"]) for n in public]
    assert _entries(calls[1]) == [(n, en[f"cmd.{n}"]) for n in public]
    assert _entries(calls[2]) == _entries(calls[0])  # LOCALE is zh_CN
    assert {"nominate", "recommend", "help", "withdraw"} <= set(public)
    assert not {"review", "vetting", "pool", "mentees", "export"} & set(public)
    # The staff menus follow from the running bot's job, first a second after the start.
    assert harness.app is not None and harness.app.job_queue is not None
    assert harness.app.job_queue.get_jobs_by_name("menus")


def test_the_fake_refuses_what_telegram_refuses() -> None:
    good = {"commands": [{"command": "help", "description": "Help"}], "language_code": "en"}
    bot_commands.check("setMyCommands", good)
    bad: list[dict[str, Any]] = [
        {"commands": [{"command": "Help", "description": "Help"}]},
        {"commands": [{"command": "help", "description": ""}]},
        {"commands": [{"command": "help", "description": "x" * 257}]},
        {"commands": [{"command": "a" * 33, "description": "x"}]},
        {"commands": [{"command": f"c{i}", "description": "x"} for i in range(101)]},
        {"commands": [{"command": "help", "description": "x"}] * 2},
        {"commands": [], "language_code": "zh_CN"},
        {"commands": [], "scope": {"type": "chat"}},
        {"commands": [], "scope": {"type": "everyone"}},
    ]
    for params in bad:
        with pytest.raises(bot_commands.InvalidCommands):
            bot_commands.check("setMyCommands", params)
    with pytest.raises(bot_commands.InvalidCommands):
        bot_commands.check("deleteMyCommands", {"commands": []})


async def test_menu_help_and_access_agree_for_every_role(harness: BotHarness) -> None:
    everything = {c.name for c in COMMANDS}
    disagreements: dict[str, Any] = {}
    for number, (who, role) in enumerate(PEOPLE.items()):
        user = 5100 + number
        await harness.send(user, "/start")
        if role is not None:
            await harness.send(user, f"/start {await role_invite(harness, role)}")
        roles = frozenset({role}) if role else frozenset()
        expected = [c.name for c in menu_for(roles, COMMANDS)]

        # The menu Telegram shows this person.
        harness.fake.calls.clear()
        await _publish(harness)
        chat = _chat_calls(harness, user)
        if role is None:
            assert chat == []  # the default scope is theirs
        else:
            assert [c.method for c in chat] == ["setMyCommands"]
            shown = [name for name, _ in _entries(chat[0])]
            if shown != expected:
                disagreements[f"{who}: menu"] = (shown, expected)

        # /help lists the same commands.
        (help_text,) = await harness.send(user, "/help")
        listed = HELP_LINE.findall(help_text.text)
        if sorted(listed) != sorted(expected):
            disagreements[f"{who}: help"] = (listed, expected)

        # Each listed command answers without "not allowed"; every other one refuses.
        for name in sorted(everything):
            replies = await harness.send(user, f"/{name}")
            refused = any(FORBIDDEN in s.text for s in replies)
            if refused == (name in expected):
                disagreements[f"{who}: /{name}"] = "refused" if refused else "not refused"
            await harness.send(user, "/cancel")  # leave any flow the command opened
    assert disagreements == {}


async def test_invite_publishes_the_staff_menu_in_their_language(harness: BotHarness) -> None:
    code = await role_invite(harness, Role.REVIEWER)
    await harness.send(5201, f"/start {code}", language_code="en")
    assert await _pending(harness) == {5201: 1}  # written with the grant
    harness.fake.calls.clear()
    assert await _publish(harness) == 1
    (call,) = _chat_calls(harness, 5201)
    assert _scope(call) == {"type": "chat", "chat_id": 5201}
    assert "language_code" not in call.params  # the chat's own menu, whatever its language
    en = labels_for(ENV, "en")
    expected = menu_for({Role.REVIEWER}, COMMANDS)
    assert _entries(call) == [(c.name, en[c.summary_key]) for c in expected]
    assert "vetting" in [c.name for c in expected]
    assert await _pending(harness) == {}
    harness.fake.calls.clear()
    assert await _publish(harness) == 0
    assert _menu_calls(harness) == []


async def test_a_grant_not_yet_published_survives_a_restart(harness: BotHarness) -> None:
    """A crash after the grant's commit and before the publish: the next start sends it, and
    only it; a start after that sends no staff menu at all."""
    await harness.send(5301, f"/start {await role_invite(harness, Role.COUNTY_OFFICIAL)}")
    await harness.send(5302, f"/start {await role_invite(harness, Role.MENTOR)}")
    assert await _publish(harness) == 2
    await harness.send(5303, f"/start {await role_invite(harness, Role.ADMIN)}")
    await harness.restart()
    harness.fake.calls.clear()
    assert await _publish(harness) == 1
    assert [_scope(c).get("chat_id") for c in _menu_calls(harness)] == [5303]
    harness.fake.calls.clear()
    await harness.restart()
    assert [_scope(c)["type"] for c in _menu_calls(harness)] == ["default"] * 3
    harness.fake.calls.clear()
    assert await _publish(harness) == 0
    assert _menu_calls(harness) == []


async def test_telegram_errors_leave_the_menu_for_later(harness: BotHarness) -> None:
    await harness.send(5401, f"/start {await role_invite(harness, Role.ADMIN)}")
    await harness.send(5402, f"/start {await role_invite(harness, Role.ADMIN)}")
    # A dropped connection: nothing published, both still marked, the bot carries on.
    harness.fake.faults.append(TimedOut())
    assert await _publish(harness) == 0
    assert await _pending(harness) == {5401: 1, 5402: 1}
    # A chat Telegram refuses: skipped (still marked, for the next start), the other published.
    forbidden = {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked"}
    harness.fake.faults.append((403, forbidden))
    assert await _publish(harness) == 1
    assert await _pending(harness) == {5401: 1}
    harness.fake.calls.clear()
    assert await _publish(harness) == 0  # not asked again by this process
    assert _menu_calls(harness) == []
    await harness.restart()
    assert await _publish(harness) == 1
    assert await _pending(harness) == {}


async def test_default_menu_failure_does_not_stop_the_start(harness: BotHarness) -> None:
    await harness.stop()
    harness.fake.faults.append((500, {"ok": False, "error_code": 500, "description": "oops"}))
    await harness.start()
    (reply,) = await harness.send(5501, "/start")
    assert "欢迎" in reply.text


async def test_revoked_role_gives_the_default_menu_back(harness: BotHarness) -> None:
    await harness.send(5601, f"/start {await role_invite(harness, Role.TOWNSHIP_OFFICIAL)}")
    await _publish(harness)
    async with harness.database.sessionmaker.begin() as session:
        account = await session.get_one(TelegramAccount, 5601)
        # What a revocation must do (none exists yet in the CLI): end the grant, mark the menu.
        await session.execute(
            update(RoleGrant)
            .where(RoleGrant.person_id == account.person_id)
            .values(revoked_at=datetime.now(UTC))
        )
        await menus.mark_changed(session, account.person_id)
    harness.fake.calls.clear()
    assert await _publish(harness) == 1
    (call,) = _menu_calls(harness)
    assert (call.method, _scope(call)) == ("deleteMyCommands", {"type": "chat", "chat_id": 5601})
    (help_text,) = await harness.send(5601, "/help")
    assert sorted(HELP_LINE.findall(help_text.text)) == sorted(
        c.name for c in menu_for((), COMMANDS)
    )
    (refused,) = await harness.send(5601, "/review")
    assert FORBIDDEN in refused.text


async def test_lang_republishes_a_staff_menu_only(harness: BotHarness) -> None:
    await harness.send(5701, f"/start {await role_invite(harness, Role.MENTOR)}")
    await _publish(harness)
    for user in (5701, 5702):
        (choose,) = await harness.send(user, "/lang")
        await harness.press(user, choose.button("English"))
    assert await _pending(harness) == {5701: 1}
    harness.fake.calls.clear()
    await _publish(harness)
    (call,) = _chat_calls(harness, 5701)
    en = labels_for(ENV, "en")
    assert _entries(call)[0] == ("start", en["cmd.start"])
