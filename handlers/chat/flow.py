"""The flow engine: a conversation declared as data, run the same way for every flow.

A `Flow` is its questions (handlers/chat/kinds.py has the common kinds), an optional review
screen with edit-and-come-back, and its submit. The engine does, once for every flow: ask,
validate, ask again with the buttons shown again, resume after a restart at the question the
person was on, /cancel, the "a form is open" answer to other commands, confirmation before a
destructive step, and deleting a message that carried an ID number once it is read.

The engine talks to a `Chat` (what a person may see and do) and reads `Turn`s (what they sent);
handlers/chat/tg.py implements both for Telegram, `cadrebot shell` renders through it, and a web
page could implement them again. Nothing here imports `telegram`.

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
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.codec import CODE, Button
from handlers.chat.commands import Command
from handlers.chat.screen import Btn, Rows, Screen, rows_of
from storage import people
from storage.people import Actor

if TYPE_CHECKING:
    from bot.settings import Settings

END = -1
REVIEW = 100
AT_REVIEW = "review"


# -- what the person sent, what they may see -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Turn:
    """One input, whatever the messenger: typed text, a button, a shared contact, a file."""

    kind: Literal["text", "button", "contact", "file", "other"]
    text: str = ""
    data: str = ""
    phone: str = ""
    own_contact: bool = False
    # The renderer's handle of an uploaded file (Telegram: a Document); flows only pass it on
    # to the renderer's download.
    file: Any = None


class Chat(Protocol):
    """One person's conversation as a flow sees it (handlers/chat/tg.py: Telegram's)."""

    @property
    def user_id(self) -> int: ...

    @property
    def language(self) -> str | None:
        """The language their messenger reports, if any (kept with their account)."""

    @property
    def user_data(self) -> dict[str, Any]: ...

    @property
    def locale(self) -> str:
        """The language screens are rendered in (their /lang choice, else their client's)."""

    @property
    def settings(self) -> Settings: ...

    def session(self) -> AbstractAsyncContextManager[AsyncSession]: ...

    def service(self, name: str) -> Any:
        """A shared service the application holds (the cipher, the grade policy)."""

    def label(self, key: str) -> str:
        """A short label (a button, a choice) in the person's language."""

    def text(self, name: str, **values: Any) -> str:
        """A template rendered as plain text in the person's language (a button label)."""

    async def show(self, screen: Screen) -> None: ...

    def note(self, template: str) -> None:
        """Say `template` at the top of the next message shown (not a message of its own)."""

    async def deny(self) -> None:
        """Refuse: audit who tried what (ids only), then say "not allowed"."""

    async def drop_buttons(self) -> None:
        """Take the buttons off the message whose button was just pressed."""

    async def delete_input(self) -> bool:
        """Delete the message the person just sent (it carried an ID number)."""

    async def notify(
        self,
        session: AsyncSession,
        recipients: list[tuple[int, str | None]],
        template: str,
        *,
        key: str,
        subject: int | None = None,
        buttons: Sequence[Sequence[tuple[str, str]]] = (),
        **values: Any,
    ) -> int:
        """Queue a notice to other people in this transaction (the outbox, never a send).

        `buttons`: rows of (label key, data), labelled in each recipient's language."""


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
        return Reask(say=run.flow.texts.wrong_input)

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
    submit: Callable[[str], Button] = field(default=lambda prefix: Button(prefix, "go"))
    submit_label: str = "submit"
    edit_label: Callable[[str], str] = field(default=lambda key: f"edit.{key}")
    per_row: int = 2
    # More values for the template, read when the screen is shown (names looked up again).
    values: Callable[[Run], Awaitable[Mapping[str, Any]]] | None = None


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
        known = {*range(len(self.questions)), REVIEW, *self.legacy_states}
        return sorted(known)


# -- one turn of a flow --------------------------------------------------------------------


class Run:
    """A flow and a person's draft during one turn: what questions and submits work with."""

    def __init__(self, flow: Flow, chat: Chat) -> None:
        self.flow = flow
        self.chat = chat
        self._actor: Actor | None = None
        self._actor_loaded = False

    async def actor(self) -> Actor | None:
        """The person acting with their roles, read once per update (never cached longer:
        a role revoked a minute ago counts now)."""
        if not self._actor_loaded:
            async with self.session() as session:
                self._actor = await people.load_actor(session, self.chat.user_id)
            self._actor_loaded = True
        return self._actor

    async def allowed(self) -> bool:
        """Whether the flow's command's roles include one of the person's (deny by default);
        refused: audited and said."""
        needs = self.flow.command.needs
        if not needs:
            return True
        actor = await self.actor()
        if actor is not None and actor.has(*needs):
            return True
        await self.chat.deny()
        return False

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

    def forget(self) -> None:
        self.chat.user_data.pop(self.flow.name, None)

    def values(self) -> dict[str, Any]:
        """What every screen of the flow may show: the flow, the answers as shown."""
        shown = {}
        for question in self.flow.questions:
            value = question.shown(self)
            if value is not None:
                shown[question.key] = value
        return {"flow": self.flow.name, "answers": shown}


class Engine:
    """Runs one flow for everybody; the adapter calls these with a fresh `Chat` per update."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow

    # -- where the person is ---------------------------------------------------------------

    def _run(self, chat: Chat, state: int | None) -> Run:
        run = Run(self.flow, chat)
        stored = chat.user_data.get(self.flow.name)
        if isinstance(stored, dict) and stored.get("v") != self.flow.version:
            upgraded = self.flow.upgrade(stored, state) if self.flow.upgrade else None
            chat.user_data[self.flow.name] = (
                {**upgraded, "v": self.flow.version} if upgraded else {"v": self.flow.version}
            )
        elif stored is not None and not isinstance(stored, dict):
            chat.user_data.pop(self.flow.name, None)
        return run

    def _open(self, run: Run, question: Question) -> bool:
        """Still to be answered (a skipped optional question counts as answered)."""
        if question.when is not None and not question.when(run):
            return False
        if question.optional and question.key in run.answers:
            return False
        return run.answers.get(question.key) in (None, "")

    def _missing(self, run: Run) -> Question | None:
        """The first question still to answer."""
        return next((q for q in self.flow.questions if self._open(run, q)), None)

    def _current(self, run: Run) -> Question | None:
        """The question the person is at; a position the flow does not know (a damaged or
        older draft) is clamped to the first unanswered question. None: the review screen."""
        at = run.draft.get("at")
        if at == AT_REVIEW and self.flow.review is not None:
            return None
        question = self.flow.question(at) if isinstance(at, str) else None
        if question is not None:
            return question
        missing = self._missing(run)
        if missing is None:
            return None if self.flow.review is not None else self.flow.questions[-1]
        return missing

    # -- asking ----------------------------------------------------------------------------

    async def ask(self, run: Run, question: Question, page: int = 0, edit: bool = False) -> int:
        run.draft["at"] = question.key
        screen = await question.ask(run, page)
        # "(3/13)": the questions a person fills in, not the consents before them.
        numbered = [q.key for q in self.flow.questions if q.editable]
        progress = {"steps": len(numbered)}
        if question.key in numbered:
            progress["step"] = numbered.index(question.key) + 1
        await run.chat.show(
            Screen(
                screen.template,
                {**progress, **screen.values},
                screen.rows,
                edit=edit or screen.edit,
                contact=screen.contact,
                clear_keyboard=screen.clear_keyboard,
            )
        )
        return self.flow.index(question.key)

    async def show_review(self, run: Run) -> int:
        review = self.flow.review
        assert review is not None
        edit = review.edit(self.flow.prefix)
        buttons = [
            Btn(run.label(review.edit_label(q.key)), edit.data(q.key))
            for q in self.flow.questions
            if q.editable and (q.when is None or q.when(run))
        ]
        submit = Btn(run.label(review.submit_label), review.submit(self.flow.prefix).data())
        rows: Rows = (*rows_of(buttons, review.per_row), (submit,))
        run.draft["at"] = AT_REVIEW
        extra = await review.values(run) if review.values is not None else {}
        await run.chat.show(Screen(review.template, {**run.values(), **extra}, rows))
        return REVIEW

    async def resume(self, run: Run, say: str | None = None, **values: Any) -> int:
        """Say `say`, then show where the person is, with its buttons."""
        if say:
            await run.chat.show(Screen(say, values))
        current = self._current(run)
        if current is None:
            return await self.show_review(run)
        return await self.ask(run, current)

    async def _next(self, run: Run, after: Question) -> int:
        """After `after` was answered: the next question, or back to review when editing."""
        if run.draft.get("editing"):
            missing = self._missing(run)  # an answer that made another one invalid
            if missing is not None:
                return await self.ask(run, missing)
            run.draft["editing"] = False
            return await self._after_last(run)
        # The next question not answered yet: a flow may start with answers (a mentee
        # chosen from a list), and a consent asked again goes back to where things stood.
        index = self.flow.index(after.key)
        for question in self.flow.questions[index + 1 :]:
            if self._open(run, question):
                return await self.ask(run, question)
        missing = self._missing(run)
        if missing is not None:
            return await self.ask(run, missing)
        return await self._after_last(run)

    async def _after_last(self, run: Run) -> int:
        if self.flow.review is not None:
            return await self.show_review(run)
        return await self._submit(run)

    async def _submit(self, run: Run) -> int:
        missing = self._missing(run)
        if missing is not None:
            return await self.ask(run, missing)
        outcome = await self.flow.submit(run, dict(run.answers))
        return await self._apply(run, None, outcome)

    async def _apply(self, run: Run, question: Question | None, outcome: Outcome) -> int:
        if isinstance(outcome, Answer):
            assert question is not None
            run.answers[question.key] = outcome.value
            return await self._next(run, question)
        if isinstance(outcome, Reask):
            if outcome.say:
                await run.chat.show(Screen(outcome.say, outcome.values))
            if question is None:
                return await self.resume(run)
            return await self.ask(run, question, outcome.page, outcome.edit)
        if isinstance(outcome, Goto):
            if outcome.say:
                await run.chat.show(Screen(outcome.say, outcome.values))
            target = self.flow.question(outcome.key)
            if target is None:
                return await self.resume(run)
            return await self.ask(run, target)
        if isinstance(outcome, Review):
            if outcome.say:
                await run.chat.show(Screen(outcome.say, outcome.values))
            return await self.show_review(run)
        run.forget()
        for screen in outcome.screens:
            await run.chat.show(screen)
        return END

    # -- entry points ----------------------------------------------------------------------

    async def begin(self, chat: Chat, args: str = "") -> int:
        """The flow's command: a fresh draft (an open one is resumed by the conversation)."""
        chat.user_data.pop(self.flow.name, None)
        run = Run(self.flow, chat)
        if not await run.allowed():
            return END
        if self.flow.start is not None:
            initial = await self.flow.start(run, args)
            if initial is None:
                run.forget()
                return END
            run.answers.update(initial)
        return await self.resume(run)

    async def enter(self, chat: Chat, entry: Entry, values: tuple[Any, ...]) -> int:
        chat.user_data.pop(self.flow.name, None)
        run = Run(self.flow, chat)
        if not await run.allowed():
            return END
        initial = await entry.start(run, values)
        if initial is None:
            run.forget()
            return END
        run.answers.update(initial)
        return await self.resume(run)

    # -- one update inside the flow --------------------------------------------------------

    async def handle(self, chat: Chat, turn: Turn, state: int | None = None) -> int:
        run = self._run(chat, state)
        if not await run.allowed():
            # Roles are read again on every update: one revoked mid-flow ends the flow.
            run.forget()
            return END
        if self.flow.name not in chat.user_data or not run.draft.get("answers"):
            # The position survived without its draft (set aside as unreadable, or erased):
            # start over at the first question rather than answer about nothing.
            run.draft.setdefault("answers", {})
        question = self._current(run)
        if question is None:
            return await self._on_review(run, turn)
        if turn.kind == "button":
            return await self._on_button(run, question, turn.data)
        if turn.kind == "text":
            # Read, then gone from the chat: the number must not sit in their history (or on a
            # lost phone). Said at the top of the answer, so the reply count stays the same.
            if question.secret and await chat.delete_input():
                chat.note(self.flow.texts.secret_deleted)
            return await self._apply(run, question, await question.on_text(run, turn.text))
        if turn.kind == "contact":
            return await self._apply(run, question, await question.on_contact(run, turn))
        if turn.kind == "file":
            return await self._apply(run, question, await question.on_file(run, turn))
        return await self._apply(run, question, question.on_other(run))

    async def _on_button(self, run: Run, question: Question, data: str) -> int:
        for shape in question.shapes(run.prefix):
            values = shape.parse(data)
            if values is not None:
                outcome = await question.on_button(run, shape, values)
                if not isinstance(outcome, Reask):
                    # Answered: the question's buttons cannot be pressed a second time.
                    await run.chat.drop_buttons()
                return await self._apply(run, question, outcome)
        # Not one of this question's buttons (an old message's, or forged): say it expired,
        # and leave the question where it is, its own message and buttons still above.
        run.draft["at"] = question.key
        await run.chat.show(Screen("common/stale_button"))
        return self.flow.index(question.key)

    async def _on_review(self, run: Run, turn: Turn) -> int:
        review = self.flow.review
        assert review is not None
        if turn.kind != "button":
            return await self.resume(run, self.flow.texts.wrong_input)
        edit = review.edit(self.flow.prefix).parse(turn.data)
        if edit is not None:
            question = self.flow.question(str(edit[0]))
            if question is not None and question.editable:
                run.draft["editing"] = True
                return await self.ask(run, question)
            return await self.resume(run, "common/stale_button")
        if review.submit(self.flow.prefix).parse(turn.data) is not None:
            await run.chat.drop_buttons()
            return await self._submit(run)
        await run.chat.show(Screen("common/stale_button"))
        return REVIEW

    async def cancel(self, chat: Chat) -> int:
        """/cancel: leave the flow; the draft is dropped, nothing was stored."""
        Run(self.flow, chat).forget()
        await chat.show(Screen(self.flow.texts.cancelled, clear_keyboard=True))
        return END

    async def busy(self, chat: Chat, state: int | None = None) -> int:
        """Another command in the middle of the flow: say how to go on or leave, ask again."""
        run = self._run(chat, state)
        # `at`: a flow with more than one way through says which one is open.
        at = run.draft.get("at")
        return await self.resume(run, self.flow.texts.busy, flow=self.flow.name, at=at)

    async def remind(self, chat: Chat, state: int | None = None) -> None:
        """A menu command (/start, /help, /lang) was answered mid-flow: the form is still
        open, so say so and ask its question again, or the next text would be taken as an
        answer without the person knowing."""
        await self.busy(chat, state)
