"""What the cultivate screens and flows share: a page of a list, and the answers to a subject
that is not the person's (storage's NotAllowed) or no longer there (storage.mentoring.Stale)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handlers.chat.codec import Button
from handlers.chat.flow import Enter, Finish, InChat, ReviewScreen, Run
from handlers.chat.screen import Pager, Rows, Screen
from storage.mentoring import Stale
from storage.nominations import NotAllowed
from storage.people import Actor

STALE_BUTTON = Screen("common/stale_button")


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
        shown = {**values, "page": page + 1, "pages": self.pager.pages(total), "total": total}
        return Screen(
            self.template, shown, (*buttons, *((nav,) if nav else ()), *after), edit=edit
        )


def review(template: str, labels: str, **more: Any) -> ReviewScreen:
    """A review screen whose buttons read `<labels>.save` and `<labels>.edit.<question>`."""
    edit = f"{labels}.edit."
    return ReviewScreen(
        template, submit_label=f"{labels}.save", edit_label=lambda key: edit + key, **more
    )


async def acting(run: Run) -> Actor:
    """The person acting; NotAllowed when there is none (an account erased meanwhile)."""
    actor = await run.actor()
    if actor is None:
        raise NotAllowed
    return actor


async def ended(run: Run, error: NotAllowed | Stale) -> Finish:
    """The end of a flow whose subject is not the person's (denied and audited) or is gone
    (resolved, ended: "this button has expired")."""
    if isinstance(error, NotAllowed):
        await run.chat.deny()
        return Finish()
    return Finish((STALE_BUTTON,))


def checked(enter: Enter) -> Enter:
    """An entry from a button whose subject is read in SQL: one that is not the person's, or
    is gone, is answered as `ended` says, and the flow does not open."""

    async def start(run: Run, values: tuple[Any, ...]) -> dict[str, Any] | None:
        try:
            return await enter(run, values)
        except (NotAllowed, Stale) as error:
            for screen in (await ended(run, error)).screens:
                await run.chat.show(screen)
            return None

    return start
