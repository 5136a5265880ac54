"""The flow engine: runs any `Flow` (handlers/chat/flow.py) for everybody, the same way.

Once for every flow: ask, validate, ask again with the buttons shown again, resume at the
question the person was on (a draft of an older version upgraded first), /cancel, the "a form is
open" answer to other commands, the review with edit-and-come-back, the role check on every
update, storage's refusals (not allowed, gone, moved on: handlers/chat/acting.py), deleting
a message that carried an ID number once it is read. Nothing here imports `telegram`: the
adapter (handlers/chat/tg.py) calls these with a fresh `Chat` per update.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from handlers.chat.acting import REFUSALS, STALE_BUTTON, refusal
from handlers.chat.flow import (
    AT_REVIEW,
    END,
    REVIEW,
    Answer,
    Chat,
    Entry,
    Finish,
    Flow,
    Goto,
    Outcome,
    Question,
    Reask,
    Review,
    Run,
    Turn,
)
from handlers.chat.screen import Btn, Rows, Screen, rows_of


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
            chat.user_data[self.flow.name] = {**(upgraded or {}), "v": self.flow.version}
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
        known = self.flow.question(at) if isinstance(at, str) else None
        question = known if known is not None else self._missing(run)
        if question is None and self.flow.review is None:
            return self.flow.questions[-1]
        return question

    # -- asking ----------------------------------------------------------------------------

    async def ask(self, run: Run, question: Question, page: int = 0, edit: bool = False) -> int:
        run.draft["at"] = question.key
        screen = await question.ask(run, page)
        # "(3/13)": the questions a person fills in, not the consents before them.
        numbered = [q.key for q in self.flow.questions if q.editable]
        progress = {"steps": len(numbered)}
        if question.key in numbered:
            progress["step"] = numbered.index(question.key) + 1
        values = {**progress, **screen.values}
        await run.chat.show(replace(screen, values=values, edit=edit or screen.edit))
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
        editing = run.draft.get("editing")
        # Editing: the first question an answer made invalid, if any. Else the next question
        # not answered yet, then any before it: a flow may start with answers (a mentee
        # chosen from a list), and a consent asked again goes back to where things stood.
        later = () if editing else self.flow.questions[self.flow.index(after.key) + 1 :]
        following = next((q for q in later if self._open(run, q)), None) or self._missing(run)
        if following is not None:
            return await self.ask(run, following)
        if editing:
            run.draft["editing"] = False
        if self.flow.review is not None:
            return await self.show_review(run)
        return await self._submit(run)

    async def _submit(self, run: Run) -> int:
        missing = self._missing(run)
        if missing is not None:
            return await self.ask(run, missing)
        return await self._apply(run, None, self.flow.submit(run, dict(run.answers)))

    async def _apply(
        self, run: Run, question: Question | None, answered: Awaitable[Outcome] | Outcome
    ) -> int:
        """Act on what a question or the submit answered; a refusal storage raised meanwhile
        ends the flow as `refusal` says."""
        outcome = await _guarded(run, answered) if isinstance(answered, Awaitable) else answered
        if isinstance(outcome, Answer):
            assert question is not None
            run.answers[question.key] = outcome.value
            return await self._next(run, question)
        if isinstance(outcome, Reask | Goto | Review) and outcome.say:
            await run.chat.show(Screen(outcome.say, outcome.values))
        if isinstance(outcome, Review):
            return await self.show_review(run)
        if isinstance(outcome, Goto):
            # Asking another question from its start, as a Reask asks the same one again.
            question = self.flow.question(outcome.key)
            outcome = Reask()
        if isinstance(outcome, Reask):
            if question is None:
                return await self.resume(run)
            return await self.ask(run, question, outcome.page, outcome.edit)
        run.forget()
        for screen in outcome.screens:
            await run.chat.show(screen)
        return END

    # -- entry points ----------------------------------------------------------------------

    async def begin(self, chat: Chat, args: str = "") -> int:
        """The flow's command: a fresh draft (an open one is resumed by the conversation)."""
        start = self.flow.start
        fresh = self._fresh(chat, None if start is None else lambda run: start(run, args))
        return await self._ended_if_refused(chat, fresh)

    async def enter(self, chat: Chat, entry: Entry, values: tuple[Any, ...]) -> int:
        """An entry button: a fresh draft, started with what the button carries."""
        fresh = self._fresh(chat, lambda run: entry.start(run, values))
        return await self._ended_if_refused(chat, fresh)

    async def _ended_if_refused(self, chat: Chat, work: Awaitable[int]) -> int:
        """`work`; a refusal storage raises outside an answer or the submit (which `_guarded`
        answers), as a start or while a question is drawn (the account erased in another
        process meanwhile), ends the flow, answered as `refusal`."""
        try:
            return await work
        except REFUSALS as error:
            run = Run(self.flow, chat)
            await refusal(run, error)
            run.forget()
            return END

    async def _fresh(
        self, chat: Chat, start: Callable[[Run], Awaitable[dict[str, Any] | None]] | None
    ) -> int:
        """A fresh draft, if the person may: `start` gives the answers to begin with, or
        None to refuse (it has shown why)."""
        chat.user_data.pop(self.flow.name, None)
        run = Run(self.flow, chat)
        if not await run.allowed():
            return END
        if start is not None:
            initial = await start(run)
            if initial is None:
                run.forget()
                return END
            run.answers.update(initial)
        return await self.resume(run)

    # -- one update inside the flow --------------------------------------------------------

    async def handle(self, chat: Chat, turn: Turn, state: int | None = None) -> int:
        return await self._ended_if_refused(chat, self._handle(chat, turn, state))

    async def _handle(self, chat: Chat, turn: Turn, state: int | None) -> int:
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
            if question.secret and _holds_a_number(turn.text) and await chat.delete_input():
                chat.note(self.flow.texts.secret_deleted)
            return await self._apply(run, question, question.on_text(run, turn.text))
        on = {"contact": question.on_contact, "file": question.on_file, "voice": question.on_voice}
        answered = on[turn.kind](run, turn) if turn.kind in on else question.on_other(run)
        return await self._apply(run, question, answered)

    async def _on_button(self, run: Run, question: Question, data: str) -> int:
        for shape in question.shapes(run.prefix):
            values = shape.parse(data)
            if values is not None:
                outcome = await _guarded(run, question.on_button(run, shape, values))
                if not isinstance(outcome, Reask):
                    # Answered: the question's buttons cannot be pressed a second time.
                    await run.chat.drop_buttons()
                return await self._apply(run, question, outcome)
        # Not one of this question's buttons (an old message's, or forged): say it expired,
        # and leave the question where it is, its own message and buttons still above.
        run.draft["at"] = question.key
        await run.chat.show(STALE_BUTTON)
        return self.flow.index(question.key)

    async def _on_review(self, run: Run, turn: Turn) -> int:
        review = self.flow.review
        assert review is not None
        if turn.kind != "button":
            # The review is answered by its buttons: say so, and show them again.
            return await self.resume(run, self.flow.texts.use_buttons)
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
        await run.chat.show(STALE_BUTTON)
        return REVIEW

    async def cancel(self, chat: Chat) -> int:
        """/cancel: leave the flow; the draft is dropped, nothing was stored."""
        run = Run(self.flow, chat)
        # Which question was open: a flow of several purposes says what was left (`at`).
        at = run.draft.get("at")
        run.forget()
        await chat.show(Screen(self.flow.texts.cancelled, {"at": at}, clear_keyboard=True))
        return END

    async def busy(self, chat: Chat, state: int | None = None) -> int:
        """Another command in the middle of the flow: say how to go on or leave, ask again."""
        run = self._run(chat, state)
        at = run.draft.get("at")
        again = self.resume(run, self.flow.texts.busy, flow=self.flow.name, at=at)
        return await self._ended_if_refused(chat, again)

    # A menu command (/start, /help, /lang) was answered mid-flow: the form is still open, so
    # say so and ask its question again, or the next text would be taken as an answer without
    # the person knowing.
    remind = busy


async def _guarded(run: Run, answered: Awaitable[Outcome]) -> Outcome:
    """What a question or the submit answered; a refusal raised by storage, as `refusal`."""
    try:
        return await answered
    except REFUSALS as error:
        await refusal(run, error)
        return Finish()


def _holds_a_number(text: str) -> bool:
    """Six digits or more in a row (spaces and dashes aside): an ID number, or enough of one
    to matter. A name typed at the wrong question is left alone."""
    return re.search(r"\d{6,}", re.sub(r"[\s\-]", "", text)) is not None
