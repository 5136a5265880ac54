"""A conversation declared as data: its questions, its review screen, its submit.

The common kinds of question are in handlers/chat/kinds.py; handlers/chat/engine.py runs
every flow the same way. Questions and submits talk to a `Chat` and read `Turn`s
(handlers/chat/port.py). Nothing here imports `telegram`.

Where a person stands is kept in the draft (user_data[flow.name], persisted and encrypted):
``{"v": version, "answers": {...}, "at": question key | "review", "editing": bool}``. The
conversation state PTB persists mirrors it; a draft written by an older version of a flow is
brought over by the flow's `upgrade` before anything else, so a deploy strands nobody.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.codec import CODE, Button
from handlers.chat.commands import Command
from handlers.chat.port import Chat as Chat
from handlers.chat.port import Turn as Turn
from handlers.chat.screen import Screen
from storage import people
from storage.models import Role
from storage.people import Actor

if TYPE_CHECKING:
    from bot.settings import Settings

END = -1
REVIEW = 100
AT_REVIEW = "review"


# -- what a question answers ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """Store `value` under the question's key, then go on."""

    value: Any


@dataclass(frozen=True, slots=True)
class Reask:
    """Say `say` (a template; none: nothing), then ask the same question again.

    `page`: show that page of a paged question; `edit`: in place of the pressed message."""

    say: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    page: int = 0
    edit: bool = False


@dataclass(frozen=True, slots=True)
class Goto:
    """Say `say`, then ask the question `key` (a submit that found an answer wrong)."""

    key: str
    say: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Finish:
    """End the flow (its draft is forgotten), showing `screens`."""

    screens: tuple[Screen, ...] = ()


@dataclass(frozen=True, slots=True)
class Review:
    """Show the review screen again, after saying `say` if given."""

    say: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)


Outcome = Answer | Reask | Goto | Finish | Review
STALE = Reask(say="common/stale_button")


class Question:
    """One question of a flow. Subclasses decide how it is asked and what it accepts.

    `optional`: may be skipped; `editable`: offered on the review screen; `secret`: the
    person's message is deleted once read (an ID number must not stay in the chat history);
    `when`: asked only when it returns True for the answers so far.
    """

    key: str  # set by every subclass; no default here, or dataclass fields after it break
    optional: bool = False
    editable: bool = True
    secret: bool = False
    when: Callable[[Run], bool] | None = None

    def shapes(self, prefix: str) -> Sequence[Button]:
        """The buttons this question answers (their data is decoded before on_button)."""
        return ()

    async def ask(self, run: Run, page: int) -> Screen:
        raise NotImplementedError

    async def on_text(self, run: Run, text: str) -> Outcome:
        return Reask(say=run.flow.texts.use_buttons)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        return STALE

    async def on_contact(self, run: Run, turn: Turn) -> Outcome:
        return Reask(say=run.flow.texts.wrong_input)

    async def on_file(self, run: Run, turn: Turn) -> Outcome:
        # Like a sticker: a question answered by buttons says so, rather than "text, please".
        return self.on_other(run)

    async def on_voice(self, run: Run, turn: Turn) -> Outcome:
        """A voice message: most questions take none (a talk's topics do)."""
        return self.on_other(run)

    def on_other(self, run: Run) -> Outcome:
        """A sticker, a photo, a voice…: a question answered by buttons says so (and shows
        them again); one answered by typing asks for text."""
        wants = run.flow.texts.use_buttons if self.buttons_only else run.flow.texts.wrong_input
        return Reask(say=wants)

    @property
    def buttons_only(self) -> bool:
        """Answered by pressing a button, never by typing (the default on_text says so)."""
        return type(self).on_text is Question.on_text

    def shown(self, run: Run) -> str | None:
        """The answer as the review screen shows it; None when there is none."""
        value = run.answers.get(self.key)
        return None if value is None else str(value)


# -- a flow --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Texts:
    """The templates the engine says things with; a flow may name its own."""

    busy: str = "form/busy"
    use_buttons: str = "form/use_buttons"
    wrong_input: str = "common/wrong_input"
    cancelled: str = "common/cancelled"
    secret_deleted: str = "flow/secret_deleted"


@dataclass(frozen=True, slots=True)
class ReviewScreen:
    """The review screen: `template`, an edit button per editable question, submit."""

    template: str
    edit: Callable[[str], Button] = field(default=lambda prefix: Button(prefix, "e", CODE))
    submit_tag: str = "go"  # the submit button: ``<prefix>:<submit_tag>``
    submit_label: str = "submit"
    edit_label: Callable[[str], str] = field(default=lambda key: f"edit.{key}")
    per_row: int = 2
    # More values for the template, read when the screen is shown (names looked up again).
    values: Callable[[Run], Awaitable[Mapping[str, Any]]] | None = None

    def submit(self, prefix: str) -> Button:
        return Button(prefix, self.submit_tag)

    @classmethod
    def labelled(cls, template: str, labels: str, **more: Any) -> ReviewScreen:
        """A review screen whose buttons read `<labels>.save` and `<labels>.edit.<question>`."""
        edit = f"{labels}.edit."
        return cls(
            template, submit_label=f"{labels}.save", edit_label=lambda key: edit + key, **more
        )


Start = Callable[["Run", str], Awaitable[dict[str, Any] | None]]
Enter = Callable[["Run", tuple[Any, ...]], Awaitable[dict[str, Any] | None]]
Submit = Callable[["Run", dict[str, Any]], Awaitable[Outcome]]
Upgrade = Callable[[dict[str, Any], int | None], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Entry:
    """Start the flow from a button (e.g. "talk with this mentee" under a list)."""

    button: Button
    start: Enter


@dataclass(frozen=True, slots=True)
class Flow:
    """A conversation as data. `name` is its persisted conversation name and draft key,
    `prefix` its callback data prefix (short: the 64-byte limit)."""

    name: str
    command: Command
    prefix: str
    questions: tuple[Question, ...]
    submit: Submit
    review: ReviewScreen | None = None
    # Runs before the first question with the command's arguments: returns the answers to
    # start with, or None to refuse (it has shown why).
    start: Start | None = None
    entries: tuple[Entry, ...] = ()
    texts: Texts = Texts()
    version: int = 1
    # A draft of an older version (no "v", or a lower one) and the stored state → this one.
    upgrade: Upgrade | None = None
    # States an older version persisted, so that a person mid-flow at deploy is still in it.
    legacy_states: tuple[int, ...] = ()
    # False: only its entries open it (a decision asked from a list's button); the command
    # is then only the roles it needs, and typing it opens the command's own screen.
    by_command: bool = True

    @staticmethod
    def old_position(
        draft: dict[str, Any], state: int | None, at: Mapping[int, str]
    ) -> str | None:
        """Where a draft from before the flow engine stood: its "at" (else the stored state),
        a conversation state number, as the question it became (`at`: state → question)."""
        number = draft.get("at", state)
        return at.get(number) if isinstance(number, int) else None

    def index(self, key: str) -> int:
        return next(i for i, q in enumerate(self.questions) if q.key == key)

    def question(self, key: str) -> Question | None:
        return next((q for q in self.questions if q.key == key), None)

    def buttons(self) -> list[Button]:
        """Every button shape of the flow: its questions', its review's, its entries'."""
        shapes: list[Button] = []
        for question in self.questions:
            shapes.extend(s for s in question.shapes(self.prefix) if s not in shapes)
        if self.review is not None:
            shapes += [self.review.edit(self.prefix), self.review.submit(self.prefix)]
        return shapes

    def states(self) -> list[int]:
        return sorted({*range(len(self.questions)), REVIEW, *self.legacy_states})


# -- one turn of a flow --------------------------------------------------------------------


async def actor_of(chat: Chat) -> Actor | None:
    """The person acting with their roles, read on every update (never cached longer: a role
    revoked a minute ago counts now)."""
    async with chat.session() as session:
        return await people.load_actor(session, chat.user_id)


async def admitted(chat: Chat, needs: frozenset[Role], actor: Actor | None) -> bool:
    """Whether `actor` holds one of `needs` (none: anyone); deny by default, and a refusal is
    audited and said."""
    if not needs or (actor is not None and actor.has(*needs)):
        return True
    await chat.deny()
    return False


class InChat:
    """What a turn of a flow and a screen's press share: the chat, its settings, its
    transaction, its labels and the county's date."""

    chat: Chat

    @property
    def settings(self) -> Settings:
        return self.chat.settings

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        return self.chat.session()

    def label(self, key: str) -> str:
        return self.chat.label(key)

    def today(self) -> date:
        """Today in the county's time zone, not the server's."""
        return datetime.now(self.settings.tz).date()


class Run(InChat):
    """A flow and a person's draft during one turn: what questions and submits work with."""

    def __init__(self, flow: Flow, chat: Chat) -> None:
        self.flow = flow
        self.chat = chat
        self._actor: Actor | None = None
        self._actor_loaded = False

    async def actor(self) -> Actor | None:
        """The person acting with their roles, read once per update (`actor_of`)."""
        if not self._actor_loaded:
            self._actor = await actor_of(self.chat)
            self._actor_loaded = True
        return self._actor

    async def allowed(self) -> bool:
        """Whether the flow's command's roles include one of the person's (`admitted`)."""
        needs = self.flow.command.needs
        return not needs or await admitted(self.chat, needs, await self.actor())

    @property
    def draft(self) -> dict[str, Any]:
        stored: dict[str, Any] = self.chat.user_data.setdefault(
            self.flow.name, {"v": self.flow.version, "answers": {}}
        )
        return stored

    @property
    def answers(self) -> dict[str, Any]:
        answers = self.draft.get("answers")
        if not isinstance(answers, dict):
            answers = self.draft["answers"] = {}
        return answers

    @property
    def prefix(self) -> str:
        return self.flow.prefix

    def forget(self) -> None:
        self.chat.user_data.pop(self.flow.name, None)

    def values(self) -> dict[str, Any]:
        """What every screen of the flow may show: the flow, the answers as shown."""
        shown = {q.key: v for q in self.flow.questions if (v := q.shown(self)) is not None}
        return {"flow": self.flow.name, "answers": shown}
