"""What /results and /post share: who may run them, the paged list of cadres in scope, and
the last screen before anything is written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.acting import as_actor, scoped
from handlers.chat.codec import Button
from handlers.chat.flow import STALE, Answer, Finish, Outcome, Question, Run, Texts
from handlers.chat.paged import PER_PAGE as PER_PAGE
from handlers.chat.paged import Lister, Paged
from handlers.chat.screen import Btn, Screen
from storage.models import Role
from storage.people import Actor

OFFICIALS = (Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.ADMIN)
TEXTS = Texts(busy="grades/busy", use_buttons="grades/use_buttons")


# The page of cadres in the actor's scope this run lists (storage's Candidate, Assignee: a
# nomination_id, a full_name and a township each).
Load = Callable[[Run], Lister[Any]]
# The cadre a pressed button names; raises NotAllowed out of scope (re-checked).
Take = Callable[[AsyncSession, Actor, int], Awaitable[Any]]


def about(found: Any) -> dict[str, Any]:
    """What picking a cadre keeps of them to show: their name and township."""
    return {"name": found.full_name, "township": found.township}


@dataclass(slots=True)
class Cadres(Paged):
    """A cadre from a paged list of those in the official's scope: ``<p>:p:<id>``,
    ``<p>:pg:<page>``, and ``<p>:x`` when `done` is given (it ends the flow showing `done`).

    The page is kept with the answers, so going back to the list (or on to the next cadre
    after a result) shows the page the person was on; a page that emptied meanwhile shows
    the first. Nobody left: `empty` is said, with the done button if any."""

    key: str
    template: str
    load: Load
    take: Take
    empty: str
    keep: Callable[[Any], dict[str, Any]] = about
    # What the previous cadre brought along, forgotten when another is picked.
    forget: Sequence[str] = ()
    values: Callable[[Run], dict[str, Any]] = field(default=lambda run: {})
    done: Screen | None = None
    done_label: str = "grades.done"
    editable: bool = False
    page_key: str = "page"

    def __post_init__(self) -> None:
        self.done_tag = "x" if self.done is not None else ""

    def kept(self, run: Run) -> dict[str, Any]:
        return run.answers

    async def items(self, run: Run, offset: int, limit: int) -> tuple[Sequence[Any], int]:
        return await as_actor(run, partial(self.load(run), offset=offset, limit=limit))

    def label(self, run: Run, item: Any) -> str:
        return run.chat.text(
            "grades/person_button", full_name=item.full_name, id=item.nomination_id
        )

    async def more(self, run: Run) -> dict[str, Any]:
        return self.values(run)

    async def ask(self, run: Run, page: int) -> Screen:
        screen = await Paged.ask(self, run, page)
        # After a result the list goes below what was said; otherwise it replaces the
        # message whose button was pressed (a page turn, a step back).
        return replace(screen, edit=not run.draft.pop("below", False))

    async def close(self, run: Run) -> Outcome:
        return Finish((self.done,)) if self.done is not None else STALE

    async def choose(self, run: Run, ident: int) -> Outcome:
        # Another township's cadre (a forged or outdated button): said to have expired, so
        # as not to tell whether the file exists, and audited.
        found = await scoped(run, lambda session, actor: self.take(session, actor, ident))
        if found is None:
            return STALE
        for key in self.forget:
            run.answers.pop(key, None)
        run.answers.update(self.keep(found))
        return Answer(ident)


@dataclass(slots=True)
class Decide(Question):
    """What is about to be written, shown with `template`: submit (``<prefix>:ok``) or the
    other button ``<prefix>:<tag>`` labelled `label`, which `otherwise` answers."""

    key: str
    template: str
    values: Callable[[Run], dict[str, Any]]
    tag: str
    label: str
    otherwise: Callable[[Run], Outcome]
    edit: bool = False
    editable: bool = False

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "ok"), Button(prefix, self.tag))

    async def ask(self, run: Run, page: int) -> Screen:
        submit = Btn(run.label("submit"), f"{run.prefix}:ok")
        other = Btn(run.label(self.label), f"{run.prefix}:{self.tag}")
        return Screen(self.template, self.values(run), ((submit, other),), edit=self.edit)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        return Answer(True) if button.parts[1] == "ok" else self.otherwise(run)
