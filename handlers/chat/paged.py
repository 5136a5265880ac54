"""Paged lists to pick from: one item (`Paged`, the base of kinds.Pick and of the cadre and
mentee pickers) or several toggled on and off (`Toggled`). Page turns, the page kept, a page
that emptied meanwhile, the buttons and the re-check of a press live here once; a picker says
how its items are loaded, labelled and taken. A screen's list shown a page at a time
(`Pages`) and a page of what the actor may see (`page_in_scope`) are here too. Nothing here
imports `telegram`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.codec import ID, PAGE, Button
from handlers.chat.flow import STALE, InChat, Outcome, Question, Reask, Run
from handlers.chat.screen import Btn, Pager, Rows, Screen, rows_of
from storage.people import Actor

PER_PAGE = 8
Item = TypeVar("Item", covariant=True)


@dataclass(frozen=True, slots=True)
class Pages:
    """A list shown a page at a time with `template`, turned by `button` (its fields, then
    the page)."""

    template: str
    pager: Pager
    button: Button

    def screen(
        self,
        at: InChat,
        buttons: Rows,
        page: int,
        total: int,
        *,
        fixed: object = (),
        after: Rows = (),
        edit: bool = True,
        **values: Any,
    ) -> Screen:
        """Page `page` of `total`: its `buttons`, the previous/next row (the fields in `fixed`
        before the page), then `after`; the template gets `values`, the page (from 1), the
        pages and the total."""
        label = at.label
        nav = self.pager.nav(
            page, total, self.button, prev=label("prev"), next=label("next"), fixed=fixed
        )
        shown = {**values, **self.pager.values(page, total)}
        return Screen(
            self.template, shown, (*buttons, *((nav,) if nav else ()), *after), edit=edit
        )


class Lister(Protocol[Item]):
    """A storage query: a page of what the actor may see, and how many there are in all."""

    def __call__(
        self, session: AsyncSession, actor: Actor, *, offset: int, limit: int
    ) -> Awaitable[tuple[Sequence[Item], int]]: ...


async def page_in_scope(
    turn: InChat, actor: Actor | None, pager: Pager, page: int, lister: Lister[Item]
) -> tuple[int, Sequence[Item], int]:
    """Page `page` of what `lister` gives the actor, its number and the list's size (nothing
    for nobody); the first page when that one emptied since its button was drawn."""
    if actor is None:
        return page, [], 0
    async with turn.session() as session:
        items, total = await lister(
            session, actor, offset=pager.offset(page), limit=pager.per_page
        )
        if not items and page > 0:
            page = 0
            items, total = await lister(session, actor, offset=0, limit=pager.per_page)
    return page, items, total


class Paged(Question):
    """A list as buttons ``<prefix>:<tag>:<id>``, `per_page` a page turned with
    ``<prefix>:<page_tag>:<page>`` (no `page_tag`: one page of them all), and, with a
    `done_tag`, a last button ``<prefix>:<done_tag>`` labelled `done_label`.

    The page is kept under `page_key` in `kept(run)` (the draft unless a picker says
    otherwise), so going back to the list or a restart shows the page the person was on;
    without a `page_key` it is the engine's page. A page that emptied meanwhile shows the
    first. Nobody at all: `empty` is said instead of `template` (with the done button)."""

    template: str  # no default here, or dataclass fields after it break (Question.key)
    empty: str = ""
    tag: str = "p"
    page_tag: str = "pg"
    done_tag: str = ""
    done_label: str = "done"
    page_key: str = ""
    per_page: int = PER_PAGE
    per_row: int = 2
    # The name the page's items have in the template's values.
    items_as: str = "people"

    async def items(self, run: Run, offset: int, limit: int) -> tuple[Sequence[Any], int]:
        """A page of the items, and how many there are in all."""
        raise NotImplementedError

    def ident(self, item: Any) -> int:
        return int(item.nomination_id)

    def label(self, run: Run, item: Any) -> str:
        return str(item.full_name)

    async def choose(self, run: Run, ident: int) -> Outcome:
        """The item `ident` pressed (its button may be forged or outdated: check it again)."""
        raise NotImplementedError

    async def close(self, run: Run) -> Outcome:
        """The done button pressed."""
        return STALE

    async def offers_done(self, run: Run) -> bool:
        """Whether the done button is shown to this person (its press is checked in close)."""
        return True

    async def more(self, run: Run) -> dict[str, Any]:
        """What else the template shows."""
        return run.values()

    def kept(self, run: Run) -> dict[str, Any]:
        """Where the page is kept."""
        return run.draft

    def words(self) -> tuple[str, str, str]:
        """The callback data's words: an item's, a page's, done's ("": no such button)."""
        return self.tag, self.page_tag, self.done_tag

    def shapes(self, prefix: str) -> Sequence[Button]:
        tag, page_tag, done_tag = self.words()
        shapes = [Button(prefix, tag, ID)]
        if page_tag:
            shapes.append(Button(prefix, page_tag, PAGE))
        return [*shapes, Button(prefix, done_tag)] if done_tag else shapes

    async def ask(self, run: Run, page: int) -> Screen:
        return await self.listed(run, page, await self.more(run))

    async def listed(self, run: Run, page: int, values: dict[str, Any]) -> Screen:
        """The page's screen, with `values` for the template."""
        tag, page_tag, done_tag = self.words()
        pager = Pager(self.per_page if page_tag else 10_000)
        if self.page_key:
            page = int(self.kept(run).get(self.page_key) or 0)
        items, total = await self.items(run, pager.offset(page), pager.per_page)
        if not items and page > 0:
            page = 0
            items, total = await self.items(run, 0, pager.per_page)
        if self.page_key:
            self.kept(run)[self.page_key] = page
        p = run.prefix
        buttons = [Btn(self.label(run, i), f"{p}:{tag}:{self.ident(i)}") for i in items]
        rows = rows_of(buttons, self.per_row)
        turn = Button(p, page_tag, PAGE)
        nav = pager.nav(page, total, turn, prev=run.label("prev"), next=run.label("next"))
        if nav:
            rows = (*rows, nav)
        if done_tag and await self.offers_done(run):
            rows = (*rows, (Btn(run.label(self.done_label), f"{p}:{done_tag}"),))
        values = {**values, self.items_as: items, **pager.values(page, total)}
        template = self.empty if self.empty and not total else self.template
        return Screen(template or f"form/ask_{self.key}", values, rows)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        _, page_tag, done_tag = self.words()
        tag = button.parts[1]
        if tag == page_tag:
            if not self.page_key:
                return Reask(page=int(values[0]), edit=True)
            self.kept(run)[self.page_key] = int(values[0])
            return Reask(edit=True)
        if tag == done_tag:
            return await self.close(run)
        return await self.choose(run, int(values[0]))


class Toggled(Paged):
    """Several items of a paged list, one a row, each press turning one on or off (up to
    `most`, 0: any number): ``<prefix>:<tag>:<id>``, pages ``<prefix>:<tag>p:<page>``, done
    ``<prefix>:<tag>d``. The choice in progress is kept in the draft under `chosen_key`
    (before it, the answer, when changed from the review); whoever left the list since is
    dropped when it is shown. The template has them as `chosen` and their count as `picked`."""

    chosen_key: str = "chosen"
    most: int = 0
    per_row: int = 1

    async def still(self, run: Run, ids: Sequence[int]) -> Sequence[Any]:
        """Those of `ids` that may still be chosen (looked up again, never trusted)."""
        raise NotImplementedError

    async def refused(self, run: Run) -> Outcome:
        """A press for someone who may not be chosen (no longer, or a forged button)."""
        return STALE

    def words(self) -> tuple[str, str, str]:
        return self.tag, self.tag + "p", self.tag + "d"

    def chosen(self, run: Run) -> list[int]:
        ids = run.draft.get(self.chosen_key)
        if not isinstance(ids, list):
            ids = run.answers.get(self.key)
        return [int(i) for i in ids] if isinstance(ids, list) else []

    def on(self, run: Run, item: Any) -> bool:
        return self.ident(item) in self.chosen(run)

    async def more(self, run: Run) -> dict[str, Any]:
        return {}

    async def ask(self, run: Run, page: int) -> Screen:
        chosen = await self.still(run, self.chosen(run))
        run.draft[self.chosen_key] = [self.ident(c) for c in chosen]
        values = {**await self.more(run), "chosen": chosen, "picked": len(chosen)}
        return await self.listed(run, page, values)

    async def choose(self, run: Run, ident: int) -> Outcome:
        if not await self.still(run, [ident]):
            return await self.refused(run)
        chosen = self.chosen(run)
        if ident in chosen:
            chosen.remove(ident)
        elif not self.most or len(chosen) < self.most:
            chosen.append(ident)
        run.draft[self.chosen_key] = chosen
        return Reask(edit=True)
