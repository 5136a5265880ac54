"""Adjusting someone out of the pool: a reason, then a confirmation.

Destructive, so it is never done on one press: the file's "adjust" button (``pl:a:<id>``)
asks why, the reason is shown back with "confirm" (``pl:y:<id>``) and "keep" (``pl:n:<id>``),
and only the confirmation acts. Scope and status are checked at the start and again in the
storage call at the end (another official may have acted in between). The questions run in
the pool's conversation (handlers/manage/pool.py), which also holds the name search.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from handlers import notices
from handlers.chat.acting import acting, as_actor
from handlers.chat.codec import ID, Button
from handlers.chat.flow import STALE, Answer, Finish, Outcome, Question, Run
from handlers.chat.kinds import Text
from handlers.chat.screen import Btn, Screen
from storage import figures, nominations
from storage.notices import mentor_chats
from storage.rules.identity import clean_text
from storage.rules.vetting import IllegalTransition, Status

ADJUST = Button("pl", "a", ID)
CONFIRM = Button("pl", "y", ID)
KEEP = Button("pl", "n", ID)
REASON_MIN = 2
REASON_MAX = 500
MODE = "adjust"


def adjusting(run: Run) -> bool:
    return run.answers.get("mode") == MODE


async def start_adjust(run: Run, values: tuple[Any, ...]) -> dict[str, Any] | None:
    """Begin with the person the button names, if the official may still adjust them."""
    (nomination_id,) = values
    managed = await as_actor(run, partial(figures.managed_nomination, nomination_id=nomination_id))
    if managed is None:
        await run.chat.deny()
        return None
    if managed.status != Status.IN_POOL.value:
        await run.chat.show(Screen("dossier/not_in_pool", {"full_name": managed.full_name}))
        return None
    return {"mode": MODE, "adjust": managed.id, "adjust_name": managed.full_name}


def _reason(run: Run, raw: str) -> str:
    return clean_text(raw, min_len=REASON_MIN, max_len=REASON_MAX)


def _reason_values(run: Run) -> dict[str, Any]:
    name = run.answers.get("adjust_name", "")
    return {"full_name": name, "min_len": REASON_MIN, "max_len": REASON_MAX}


def reason_question(kind: type[Text] = Text) -> Text:
    """Why the person leaves the pool: kept, encrypted, in the file's status history."""
    return kind(
        "reason",
        _reason,
        template="dossier/ask_reason",
        when=adjusting,
        editable=False,
        values=_reason_values,
    )


class ConfirmAdjust(Question):
    """The reason shown back with "confirm" and "keep": nothing changes before "confirm"."""

    key = "confirm"
    editable = False

    def __init__(self) -> None:
        self.when = adjusting

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (CONFIRM, KEEP)

    async def ask(self, run: Run, page: int) -> Screen:
        target = run.answers.get("adjust")
        rows = (
            (Btn(run.label("dossier.confirm_adjust"), CONFIRM.data(target)),),
            (Btn(run.label("dossier.keep"), KEEP.data(target)),),
        )
        values = {
            "full_name": run.answers.get("adjust_name", ""),
            "reason": run.answers.get("reason", ""),
        }
        return Screen("dossier/confirm_adjust", values, rows)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        if values[0] != run.answers.get("adjust") or not run.answers.get("reason"):
            return STALE  # a confirmation of another (older) adjustment
        if button == KEEP:
            return Finish((Screen("dossier/kept"),))
        return Answer(True)

    def shown(self, run: Run) -> str | None:
        return None


async def adjust_out(run: Run, answers: dict[str, Any]) -> Outcome:
    """Take the person out of the pool with the reason given; the history keeps it."""
    name = answers.get("adjust_name", "")
    try:
        async with run.session() as session:
            nid = int(answers["adjust"])
            # Read first: adjusting out ends the pairings, and these mentors are to be told.
            mentors = await mentor_chats(session, nid)
            await nominations.adjust_out(
                session,
                await acting(run),
                nid,
                reason=str(answers["reason"]),
                now=datetime.now(UTC),
                cipher=run.chat.service("cipher"),
            )
            await notices.adjusted_out(run.chat, session, nid, mentors, name)
    except IllegalTransition:
        # Someone else adjusted (or elected) them first: nothing changes twice.
        return Finish((Screen("dossier/not_in_pool", {"full_name": name}),))
    return Finish((Screen("dossier/adjusted", {"full_name": name}),))
