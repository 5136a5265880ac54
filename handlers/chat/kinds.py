"""The common kinds of question: typed text with a rule, a choice among codes, a pick from a
paged list, a yes/no, a list of items. A flow with a question of its own subclasses
`Question` next to its declaration. Nothing here imports `telegram`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from handlers.chat.acting import said
from handlers.chat.codec import CODE, INDEX, Button, choice
from handlers.chat.flow import (
    STALE,
    Answer,
    Finish,
    InChat,
    Outcome,
    Question,
    Reask,
    Run,
)
from handlers.chat.paged import Paged
from handlers.chat.screen import Btn, Rows, Screen, rows_of
from storage.rules.identity import RuleError

# A rule turns typed text into the value to keep, or raises RuleError (said with `invalid`).
Rule = Callable[[Run, str], Any]


def invalid(template: str, error: RuleError) -> Reask:
    """Say what was wrong with the answer (`error.code` chooses the sentence), ask again."""
    return Reask(say=template, values=said(error))


async def checked(rule: Rule, run: Run, raw: str, invalid_template: str) -> Answer | Reask:
    """`rule` applied to typed text: the value kept, or the question asked again (after the
    rule's error is said; a rule returning None has said why itself)."""
    try:
        value = rule(run, raw)
        if inspect.isawaitable(value):
            value = await value
    except RuleError as error:
        return invalid(invalid_template, error)
    return Reask() if value is None else Answer(value)


@dataclass(slots=True)
class Text(Question):
    """Typed text, kept as `rule` makes it (see `checked`; a RuleError is said with
    `invalid`). An optional question offers "skip"."""

    key: str
    rule: Rule
    template: str = ""
    optional: bool = False
    editable: bool = True
    secret: bool = False
    when: Callable[[Run], bool] | None = None
    invalid: str = "form/invalid"
    values: Callable[[Run], dict[str, Any]] | None = None

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "skip"),) if self.optional else ()

    async def ask(self, run: Run, page: int) -> Screen:
        rows = ((Btn(run.label("skip"), f"{run.prefix}:skip"),),) if self.optional else ()
        extra = self.values(run) if self.values else {}
        return Screen(self.template or f"form/ask_{self.key}", {**run.values(), **extra}, rows)

    async def on_text(self, run: Run, text: str) -> Outcome:
        return await checked(self.rule, run, text, self.invalid)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        return Answer(None) if self.optional else STALE


@dataclass(slots=True)
class Day(Question):
    """A day, typed (`rule` reads and checks it, a RuleError is said with `invalid`) or the
    one button ``<prefix>:<tag>`` labelled `label`, whose day `quick` gives (today; None: no
    day, for an optional one). Kept as an ISO date; the template is shown today's."""

    key: str
    template: str
    rule: Callable[[Run, str], date]
    tag: str = "today"
    label: str = "today"
    quick: Callable[[Run], date | None] = InChat.today
    values: Callable[[Run], dict[str, Any]] | None = None
    invalid: str = "form/invalid"
    optional: bool = False
    editable: bool = True
    when: Callable[[Run], bool] | None = None

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, self.tag),)

    async def ask(self, run: Run, page: int) -> Screen:
        rows = ((Btn(run.label(self.label), f"{run.prefix}:{self.tag}"),),)
        extra = self.values(run) if self.values else {}
        return Screen(self.template, {"today": run.today(), **extra}, rows)

    async def on_text(self, run: Run, text: str) -> Outcome:
        outcome = await checked(self.rule, run, text, self.invalid)
        return Answer(outcome.value.isoformat()) if isinstance(outcome, Answer) else outcome

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        day = self.quick(run)
        return Answer(day.isoformat() if day else None)


Codes = Sequence[str] | Callable[[Run], Sequence[str]]


@dataclass(slots=True)
class Choice(Question):
    """One of a few codes, as buttons ``<prefix>:c:<key>:<code>`` (with a `tag` of its own:
    ``<prefix>:<tag>:<code>``); labels ``<labels>.<code>``, by default ``<key>.<code>``.
    `edit`: shown in place of the message whose button was pressed.

    `check` may refuse a code in the light of other answers (returns an Outcome) or accept it
    (returns None)."""

    key: str
    codes: Codes
    template: str = ""
    per_row: int = 2
    optional: bool = False
    editable: bool = True
    when: Callable[[Run], bool] | None = None
    check: Callable[[Run, str], Awaitable[Outcome | None]] | None = None
    tag: str = ""
    labels: str = ""
    values: Callable[[Run], dict[str, Any]] | None = None
    edit: bool = False

    def options(self, run: Run) -> Sequence[str]:
        return self.codes(run) if callable(self.codes) else self.codes

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, self.tag, CODE) if self.tag else Button(prefix, "c", CODE, CODE),)

    def data(self, run: Run, code: str) -> str:
        if self.tag:
            return f"{run.prefix}:{self.tag}:{code}"
        return f"{run.prefix}:c:{self.key}:{code}"

    async def ask(self, run: Run, page: int) -> Screen:
        labels = self.labels or self.key
        buttons = [
            Btn(run.label(f"{labels}.{code}"), self.data(run, code)) for code in self.options(run)
        ]
        values = {**run.values(), **(self.values(run) if self.values else {})}
        rows = rows_of(buttons, self.per_row)
        return Screen(self.template or f"form/ask_{self.key}", values, rows, edit=self.edit)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        code = values[-1]
        if (not self.tag and values[0] != self.key) or code not in self.options(run):
            return STALE
        if self.check is not None:
            refused = await self.check(run, code)
            if refused is not None:
                return refused
        return Answer(code)

    def shown(self, run: Run) -> str | None:
        value = run.answers.get(self.key)
        return None if value is None else run.label(f"{self.labels or self.key}.{value}")


# A page of options: (id, label) pairs and how many there are in all.
Load = Callable[[Run, int, int], Awaitable[tuple[Sequence[tuple[int, str]], int]]]
# What picking `id` stores (merged into the answers), or None: no longer a valid pick.
Take = Callable[[Run, int], Awaitable[dict[str, Any] | None]]


@dataclass(slots=True)
class Pick(Paged):
    """One item of a list that comes from the database, paged: ``<prefix>:<tag>:<id>`` and
    ``<prefix>:<page_tag>:<page>``. `take` stores what a pick means (the id and the name to
    show, under `shows`)."""

    key: str
    load: Load
    take: Take
    tag: str
    page_tag: str = ""
    per_page: int = 8
    per_row: int = 2
    template: str = ""
    shows: str = ""
    optional: bool = False
    editable: bool = True
    when: Callable[[Run], bool] | None = None

    async def items(self, run: Run, offset: int, limit: int) -> tuple[Sequence[Any], int]:
        return await self.load(run, offset, limit)

    def ident(self, item: Any) -> int:
        return int(item[0])

    def label(self, run: Run, item: Any) -> str:
        return str(item[1])

    async def choose(self, run: Run, ident: int) -> Outcome:
        taken = await self.take(run, ident)
        if taken is None:
            return STALE
        value = taken.pop(self.key, ident)
        run.answers.update(taken)
        return Answer(value)

    def shown(self, run: Run) -> str | None:
        if self.key not in run.answers or run.answers.get(self.key) is None:
            return None
        value = run.answers.get(self.shows) if self.shows else run.answers.get(self.key)
        return None if value is None else str(value)


@dataclass(slots=True)
class Confirm(Question):
    """Yes or no as two buttons ``<prefix>:<tag>:1|0``; no ends the flow with `declined`."""

    key: str
    tag: str
    template: str
    declined: str
    yes: str = "consent.yes"
    no: str = "consent.no"
    editable: bool = False
    when: Callable[[Run], bool] | None = None
    values: Callable[[Run], dict[str, Any]] | None = None

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, self.tag, choice("0", "1")),)

    async def ask(self, run: Run, page: int) -> Screen:
        yes = Btn(run.label(self.yes), f"{run.prefix}:{self.tag}:1")
        no = Btn(run.label(self.no), f"{run.prefix}:{self.tag}:0")
        return Screen(self.template, self.values(run) if self.values else {}, ((yes, no),))

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        if values[0] != "1":
            return Finish((Screen(self.declined),))
        return Answer(True)

    def shown(self, run: Run) -> str | None:
        return None


@dataclass(slots=True)
class ListOf(Question):
    """Several typed items (up to `most`); "done" goes on. Buttons: ``<prefix>:<done_tag>``
    always first, where the thumb expects it, then ``<prefix>:<drop_tag>:<i>`` per item, each
    asking ``<prefix>:<drop_tag>y:<i>`` / ``<prefix>:<drop_tag>n`` before deleting."""

    key: str
    rule: Rule
    template: str
    most: int
    done_tag: str = "ok"
    drop_tag: str = "x"
    confirm_template: str = "flow/confirm_drop"
    full: str = "flow/list_full"
    invalid: str = "form/invalid"
    editable: bool = True
    when: Callable[[Run], bool] | None = None
    optional: bool = True
    items_per_row: int = 3
    drop_label: Callable[[Run, int], str] = field(
        default=lambda run, index: run.chat.text("flow/drop_label", number=index + 1)
    )

    def items(self, run: Run) -> list[Any]:
        value = run.answers.get(self.key)
        return list(value) if isinstance(value, list) else []

    def shapes(self, prefix: str) -> Sequence[Button]:
        p = prefix
        return (
            Button(p, self.done_tag),
            Button(p, self.drop_tag, INDEX),
            Button(p, self.drop_tag + "y", INDEX),
            Button(p, self.drop_tag + "n"),
        )

    async def ask(self, run: Run, page: int) -> Screen:
        p = run.prefix
        items = self.items(run)
        pending = run.draft.get("drop")
        if isinstance(pending, int) and 0 <= pending < len(items):
            yes = Btn(run.label("drop.yes"), f"{p}:{self.drop_tag}y:{pending}")
            no = Btn(run.label("drop.no"), f"{p}:{self.drop_tag}n")
            values = {"item": items[pending], "number": pending + 1}
            return Screen(self.confirm_template, values, ((yes, no),))
        done = (Btn(run.label("done"), f"{p}:{self.done_tag}"),)
        drops = [
            Btn(self.drop_label(run, i), f"{p}:{self.drop_tag}:{i}") for i in range(len(items))
        ]
        listed: Rows = (done, *rows_of(drops, self.items_per_row))
        values = {**run.values(), "items": items, "most": self.most}
        return Screen(self.template, values, listed)

    async def on_text(self, run: Run, text: str) -> Outcome:
        run.draft.pop("drop", None)
        items = self.items(run)
        if len(items) >= self.most:
            return Reask(say=self.full, values={"most": self.most})
        outcome = await checked(self.rule, run, text, self.invalid)
        if isinstance(outcome, Answer):
            run.answers[self.key] = [*items, outcome.value]
            return Reask()
        return outcome

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        items = self.items(run)
        tag = button.parts[1]
        if tag == self.done_tag:
            run.draft.pop("drop", None)
            return Answer(items)
        if tag == self.drop_tag + "n":
            run.draft.pop("drop", None)
            return Reask(edit=True)
        index = int(values[0])
        if index >= len(items):
            return STALE
        if tag == self.drop_tag:
            run.draft["drop"] = index
            return Reask(edit=True)
        if run.draft.get("drop") != index:
            return STALE
        run.draft.pop("drop", None)
        run.answers[self.key] = items[:index] + items[index + 1 :]
        return Reask(edit=True)

    def shown(self, run: Run) -> str | None:
        items = self.items(run)
        return "；".join(str(i) for i in items) if items else None
