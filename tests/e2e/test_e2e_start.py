"""/start, invite codes, /lang and a restart: the real `cadrebot run` over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import BotProcess, Person

    MakePerson = Callable[..., Person]

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo_invites(bot: BotProcess) -> dict[str, str]:
    """`cadrebot seed --demo` run beside the live bot (SQLite WAL); role -> invite code."""
    codes: dict[str, str] = {}
    for line in bot.cli("seed", "--demo").splitlines():
        if not line.strip():
            continue
        role, code, link = line.split()
        assert link.endswith(f"?start={code}"), line
        codes[role] = code
    assert set(codes) == {"admin", "county_official", "township_official", "mentor", "reviewer"}
    return codes


def test_start_answers_in_chinese(person: MakePerson) -> None:
    (reply,) = person().ask("/start")
    assert "欢迎" in reply.text
    assert "/nominate" in reply.text
    assert "/review" not in reply.text  # no grant, no desk


def test_invite_code_grants_the_role_once(
    person: MakePerson, demo_invites: dict[str, str]
) -> None:
    code = demo_invites["township_official"]
    granted, menu = person().ask(f"/start {code}", count=2)
    assert "邀请码有效" in granted.text
    assert "青山镇" in granted.text
    assert "/review" in menu.text

    (again,) = person().ask(f"/start {code}")
    assert "已被使用" in again.text


def test_lang_button_switches_to_english(person: MakePerson) -> None:
    someone = person()
    (choose,) = someone.ask("/lang")
    english = choose.button("English")
    assert english == "lang:en"

    someone.press(choose, english)
    done = someone.edited(choose)
    assert "English" in done.text
    assert done.buttons == []  # the keyboard is gone once the choice is made

    (menu,) = someone.ask("/start")
    assert "Welcome" in menu.text


def test_state_survives_a_restart(
    bot: BotProcess, person: MakePerson, demo_invites: dict[str, str]
) -> None:
    english = person()
    (choose,) = english.ask("/lang")
    english.press(choose, choose.button("English"))
    english.edited(choose)

    mentor = person()
    (line,) = bot.cli(
        "invite", "--role", "mentor", "--township", "青山镇", "--slot", "township"
    ).splitlines()
    code = line.split()[0]
    granted, _menu = mentor.ask(f"/start {code}", count=2)
    assert "邀请码有效" in granted.text

    assert bot.restart() == 0, "cadrebot run did not stop cleanly on SIGTERM"

    (fresh,) = person().ask("/start")
    assert "欢迎" in fresh.text
    (menu,) = english.ask("/start")
    assert "Welcome" in menu.text
    (menu,) = mentor.ask("/start")
    assert "/mentees" in menu.text
    (again,) = person().ask(f"/start {code}")
    assert "已被使用" in again.text
    assert demo_invites  # the demo county is still there after the restart
