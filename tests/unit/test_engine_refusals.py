"""A refusal storage raises while the engine draws a question ends the flow, answered once.

Answers and submits are guarded where they are handled; this is the other path: a question
whose screen needs the acting person (a picker's list) when that person is gone meanwhile
(an account erased in another process), reached by a command mid-flow or a fresh start.
"""

from __future__ import annotations

from typing import Any

from handlers.chat.commands import command
from handlers.chat.engine import END, Engine
from handlers.chat.flow import Finish, Flow, Question, Run
from handlers.chat.screen import Screen
from storage.scoped import NotAllowed, Stale


class _Chat:
    """Just what the engine touches on this path."""

    def __init__(self) -> None:
        self.user_data: dict[str, Any] = {}
        self.shown: list[str] = []
        self.denied = 0

    async def show(self, screen: Screen) -> None:
        self.shown.append(screen.template)

    async def deny(self, subject: tuple[str, int] | None = None) -> None:
        self.denied += 1


class _Refusing(Question):
    def __init__(self, error: Exception) -> None:
        self.key = "who"
        self.error = error

    async def ask(self, run: Run, page: int) -> Screen:
        raise self.error


async def _nothing(run: Run, answers: dict[str, Any]) -> Finish:
    return Finish(())


def _engine(error: Exception) -> Engine:
    flow = Flow(
        name="probe",
        command=command("probe"),
        prefix="pb",
        questions=(_Refusing(error),),
        submit=_nothing,
    )
    return Engine(flow)


async def test_a_command_mid_flow_whose_question_is_refused_ends_the_flow_denied() -> None:
    engine, chat = _engine(NotAllowed()), _Chat()
    chat.user_data["probe"] = {"v": 1, "answers": {}, "at": "who"}

    assert await engine.busy(chat) == END  # type: ignore[arg-type]

    assert chat.denied == 1
    assert "probe" not in chat.user_data  # the draft is dropped with the flow
    assert chat.shown == [engine.flow.texts.busy]  # said once, then denied, nothing more


async def test_a_fresh_start_whose_first_question_is_gone_says_the_button_expired() -> None:
    engine, chat = _engine(Stale()), _Chat()

    assert await engine.begin(chat) == END  # type: ignore[arg-type]

    assert chat.denied == 0
    assert chat.shown == ["common/stale_button"]
    assert "probe" not in chat.user_data
