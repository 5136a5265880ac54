"""The question of the township's and the departments' decisions: a note typed after a button
(a decline's reason, a vetting note). Nothing here imports `telegram`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from handlers.chat.acting import EXPIRED
from handlers.chat.codec import Button
from handlers.chat.flow import STALE, Answer, Entry, Finish, Outcome, Question, Reask, Run
from handlers.chat.kinds import invalid
from handlers.chat.screen import Btn, Screen
from storage.rules.identity import RuleError, clean_text


@dataclass(slots=True)
class Note(Question):
    """Typed text of `low`–`high` characters kept with a decision on the item whose id the
    flow's entry stored under `item`.

    `switch`: the flow's entries. Pressed again mid-flow for another item, the flow moves to
    that one (the entry checks scope again) instead of answering "expired".
    `skip`: a button ``<...>:<item id>`` that answers "no note", offered and accepted only
    when `skippable` says so (an approval; a rejection always needs its reason).
    """

    key: str
    template: str
    invalid: str
    item: str
    switch: tuple[Entry, ...] = ()
    skip: Button | None = None
    skip_label: str = ""
    skippable: Callable[[Run], bool] | None = None
    values: Callable[[Run], dict[str, Any]] | None = None
    low: int = 2
    high: int = 500
    # "No note" is stored as None: optional, so that it counts as answered.
    optional: bool = True
    editable: bool = False

    def shapes(self, prefix: str) -> Sequence[Button]:
        shapes = [entry.button for entry in self.switch]
        if self.skip is not None:
            shapes.append(self.skip)
        return shapes

    def _may_skip(self, run: Run) -> bool:
        return self.skip is not None and self.skippable is not None and self.skippable(run)

    async def ask(self, run: Run, page: int) -> Screen:
        rows: tuple[tuple[Btn, ...], ...] = ()
        if self.skip is not None and self._may_skip(run):
            data = self.skip.data(run.answers[self.item])
            rows = ((Btn(run.label(self.skip_label), data),),)
        extra = self.values(run) if self.values else {}
        shown = {"full_name": run.answers.get("name", ""), "min": self.low, "max": self.high}
        return Screen(self.template, {**shown, **extra}, rows)

    def _gone(self, run: Run) -> bool:
        """The position outlived its draft (erased, or set aside unreadable)."""
        return self.item not in run.answers

    async def on_text(self, run: Run, text: str) -> Outcome:
        if self._gone(run):
            return EXPIRED
        try:
            note = clean_text(text, max_len=self.high, min_len=self.low)
        except RuleError as error:
            return invalid(self.invalid, error)
        return Answer(note)

    def on_other(self, run: Run) -> Outcome:
        return EXPIRED if self._gone(run) else Question.on_other(self, run)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        for entry in self.switch:
            if button == entry.button:
                initial = await entry.start(run, values)
                if initial is None:
                    # The entry had nothing to start (it said why): the decision in progress
                    # ends too. Refusals are raised and answered by the engine.
                    return Finish()
                run.answers.clear()
                run.answers.update(initial)
                return Reask()
        if self._gone(run):
            return EXPIRED
        if self._may_skip(run) and values == (run.answers.get(self.item),):
            return Answer(None)
        # An old "no comment" of another review, or on a rejection.
        return STALE
