"""What /results and /post share: who may run them, and the paged list of cadres in scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.codec import ID, PAGE, Button
from handlers.chat.flow import STALE, Answer, Finish, Outcome, Question, Reask, Run
from handlers.chat.screen import Btn, Pager, Rows, Screen, rows_of
from storage.models import Role
from storage.nominations import NotAllowed
from storage.people import Actor

OFFICIALS = (Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.ADMIN)
PER_PAGE = 8


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


async def official(run: Run) -> Actor:
    """The acting official: the engine has checked the flow's roles on this very update."""
    actor = await run.actor()
    assert actor is not None
    return actor


@dataclass(slots=True)
class Cadres(Question):
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

    def shapes(self, prefix: str) -> Sequence[Button]:
        shapes = [Button(prefix, "p", ID), Button(prefix, "pg", PAGE)]
        return [*shapes, Button(prefix, "x")] if self.done is not None else shapes

    async def ask(self, run: Run, page: int) -> Screen:
        pager = Pager(PER_PAGE)
        page = int(run.answers.get("page") or 0)
        actor = await official(run)
        async with run.session() as session:
            items, total = await self.load(run, session, actor, pager.offset(page), PER_PAGE)
            if not items and page > 0:
                page = 0
                items, total = await self.load(run, session, actor, 0, PER_PAGE)
        run.answers["page"] = page
        buttons = [
            Btn(
                run.chat.text("grades/person_button", full_name=c.full_name, id=c.nomination_id),
                f"{run.prefix}:p:{c.nomination_id}",
            )
            for c in items
        ]
        rows: Rows = rows_of(buttons, 2)
        nav = pager.nav(
            page,
            total,
            Button(run.prefix, "pg", PAGE),
            prev=run.label("prev"),
            next=run.label("next"),
        )
        if nav:
            rows = (*rows, nav)
        if self.done is not None:
            rows = (*rows, (Btn(run.label(self.done_label), f"{run.prefix}:x"),))
        # After a result the list goes below what was said; otherwise it replaces the
        # message whose button was pressed (a page turn, a step back).
        edit = not run.draft.pop("below", False)
        values = {**self.values(run), "people": items, "total": total}
        values |= {"page": page + 1, "pages": pager.pages(total)}
        return Screen(self.template if total else self.empty, values, rows, edit=edit)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        tag = button.parts[1]
        if tag == "pg":
            run.answers["page"] = int(values[0])
            return Reask(edit=True)
        if tag == "x":
            return Finish((self.done,)) if self.done is not None else STALE
        nomination_id = int(values[0])
        actor = await official(run)
        try:
            async with run.session() as session:
                taken = await self.take(run, session, actor, nomination_id)
        except NotAllowed:
            # Another township's cadre (a forged or outdated button): said to have expired,
            # so as not to tell whether the file exists, and audited.
            await run.chat.audit_denial()
            return STALE
        run.answers.update(taken)
        return Answer(nomination_id)
