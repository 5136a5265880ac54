"""/difficulties: the open practical difficulties in the person's scope, a page at a time, and
the resolution of one: press "resolve" under it, type how it was solved.

The resolution is a flow (persisted as "difficulty"): its draft holds the difficulty's id, and
nothing is written before the note is sent. Its command is /difficulties itself, whose start
shows the list and opens nothing; a "resolve" button under the list enters it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handlers import notices
from handlers.chat.acting import acting
from handlers.chat.codec import ID, PAGE, Button
from handlers.chat.commands import command
from handlers.chat.flow import (
    Entry,
    Finish,
    Flow,
    InChat,
    Outcome,
    Question,
    Reask,
    Run,
    Texts,
)
from handlers.chat.paged import Pages
from handlers.chat.screen import Btn, Pager, Screen, rows_of
from handlers.chat.screens import Act, screen
from handlers.cultivate.kinds import kind_wrong, rule_broken
from storage import mentoring
from storage.models import Role
from storage.people import Actor
from storage.rules.cadence import RESOLUTION_MAX_LEN, RESOLUTION_MIN_LEN
from storage.rules.identity import RuleError
from storage.scoped import NotAllowed, Stale

COMMAND = command(
    "difficulties", Role.MENTOR, Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.ADMIN
)
PAGER = Pager(5)
PAGE_BUTTON = Button("df", "pg", PAGE)
RESOLVE_BUTTON = Button("df", "r", ID)
LIST = Pages("mentoring/difficulties", PAGER, PAGE_BUTTON)
# Where a resolution open before the flow engine kept its difficulty: {"id": …}.
_OLD_KEY = "resolve"


async def listing(at: InChat, actor: Actor, page: int) -> Screen:
    """A page of the open difficulties, a "resolve" button under each."""
    async with at.session() as session:
        items, total = await mentoring.open_difficulties(
            session,
            actor,
            cipher=at.chat.service("cipher"),
            offset=PAGER.offset(page),
            limit=PAGER.per_page,
            tz=at.settings.tz,
        )
    if total == 0:
        return Screen("mentoring/no_difficulties", edit=True)
    first = PAGER.offset(page) + 1
    resolve = at.label("difficulty.resolve")
    rows = rows_of(
        [Btn(f"{resolve} {first + i}", RESOLVE_BUTTON.data(d.id)) for i, d in enumerate(items)],
        3,
    )
    return LIST.screen(at, rows, page, total, items=items, first=first)


async def list_difficulties(run: Run, args: str) -> dict[str, Any] | None:
    """/difficulties: the list; the resolution starts only from one of its buttons."""
    actor = await acting(run)  # the engine checked the role
    await run.chat.show(await listing(run, actor, 0))
    return None


@screen(button=PAGE_BUTTON, needs=COMMAND.needs)
async def page_difficulties(act: Act) -> Screen:
    """Turn a page of the list."""
    return await listing(act, act.actor, int(act.values[0]))


async def _item(run: Run, difficulty_id: int) -> mentoring.DifficultyItem:
    """The open difficulty, if the person may resolve it: NotAllowed, or Stale if resolved."""
    actor = await acting(run)
    async with run.session() as session:
        return await mentoring.difficulty_for_resolution(
            session, actor, difficulty_id, cipher=run.chat.service("cipher"), tz=run.settings.tz
        )


def _pending(run: Run) -> int | None:
    """The difficulty being resolved; one chosen before the flow engine is taken over."""
    old = run.chat.user_data.pop(_OLD_KEY, None)
    if isinstance(old, dict) and old.get("id"):
        run.answers["difficulty"] = int(old["id"])
    value = run.answers.get("difficulty")
    return int(value) if value else None


async def enter(run: Run, values: tuple[Any, ...]) -> dict[str, Any] | None:
    """A "resolve" button: ask for the note, if the difficulty is still open and theirs."""
    await _item(run, int(values[0]))
    return {"difficulty": int(values[0])}


@dataclass(slots=True)
class Note(Question):
    """How the difficulty was resolved (typed); sent, it is resolved at once. Another
    "resolve" button pressed meanwhile switches to that difficulty."""

    key: str = "note"

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (RESOLVE_BUTTON,)

    async def ask(self, run: Run, page: int) -> Screen:
        pending = _pending(run)
        try:
            if pending is None:
                raise Stale
            item = await _item(run, pending)
        except (NotAllowed, Stale):
            return Screen("common/stale_button")  # sending a note then ends the flow
        values = {"item": item, "min_len": RESOLUTION_MIN_LEN, "max_len": RESOLUTION_MAX_LEN}
        return Screen("mentoring/ask_resolution", values)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        await _item(run, int(values[0]))
        run.answers["difficulty"] = int(values[0])
        return Reask()

    async def on_text(self, run: Run, text: str) -> Outcome:
        pending = _pending(run)
        actor = await acting(run)
        if pending is None:
            raise Stale
        try:
            async with run.session() as session:
                item = await mentoring.resolve_difficulty(
                    session,
                    actor,
                    pending,
                    cipher=run.chat.service("cipher"),
                    note=text,
                    now=datetime.now(UTC),
                    tz=run.settings.tz,
                )
                await notices.difficulty_resolved(run.chat, session, item, actor.person_id)
        except RuleError as error:
            return rule_broken(error)
        return Finish((Screen("mentoring/resolved", {"item": item}),))

    def on_other(self, run: Run) -> Outcome:
        return kind_wrong("note.kind")


async def _never(run: Run, answers: dict[str, Any]) -> Outcome:
    """The note resolves the difficulty itself (Note.on_text); nothing is left to submit."""
    return Finish()


RESOLVE = Flow(
    name="difficulty",
    command=COMMAND,
    # Its own buttons only: a page of the list may still be turned while the note is awaited.
    prefix="df:r",
    questions=(Note(),),
    submit=_never,
    start=list_difficulties,
    entries=(Entry(RESOLVE_BUTTON, enter),),
    texts=Texts(busy="mentoring/resolve_busy"),
)

MENUS = (page_difficulties,)
