"""What /results and /post share: who may run them, and the paged list of cadres in scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.acting import acting, scoped
from handlers.chat.flow import STALE, Answer, Finish, Outcome, Run
from handlers.chat.paged import PER_PAGE as PER_PAGE
from handlers.chat.paged import Paged
from handlers.chat.screen import Screen
from storage.models import Role
from storage.people import Actor

OFFICIALS = (Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.ADMIN)


class Listed(Protocol):
    """A cadre as a list shows them (storage's Candidate, Assignee)."""

    @property
    def nomination_id(self) -> int: ...

    @property
    def full_name(self) -> str: ...


# A page of the cadres in the actor's scope, and how many there are in all.
Load = Callable[[Run, AsyncSession, Actor, int, int], Awaitable[tuple[Sequence[Listed], int]]]
# What picking a cadre stores beside their id; raises NotAllowed out of scope (re-checked).
Take = Callable[[Run, AsyncSession, Actor, int], Awaitable[dict[str, Any]]]


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
        async with run.session() as session:
            return await self.load(run, session, await acting(run), offset, limit)

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
        taken = await scoped(run, lambda session, actor: self.take(run, session, actor, ident))
        if taken is None:
            return STALE
        run.answers.update(taken)
        return Answer(ident)
