"""What the officials' flows and screens (/post, /results, /project, /report, /outcome…) share:
a storage call re-checked against the person's scope, a paged list that falls back to its first
page, and where a draft from before the flow engine stood."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.codec import Button
from handlers.chat.flow import Finish, InChat, Run
from handlers.chat.screen import Pager, Screen
from storage.nominations import NotAllowed
from storage.people import Actor
from storage.rules.identity import RuleError

T = TypeVar("T")
Item = TypeVar("Item", covariant=True)

# The flow ends: what was chosen is no longer the person's to act on.
EXPIRED = Finish((Screen("common/stale_button"),))


def submit_button(prefix: str) -> Button:
    """The review's submit: ``<p>:ok``."""
    return Button(prefix, "ok")


async def scoped(run: Run, call: Callable[[AsyncSession, Actor], Awaitable[T]]) -> T | None:
    """`call` for the person acting, in the update's transaction; None when nobody acts or
    storage refuses it as out of their scope (a forged or outdated button: audited)."""
    actor = await run.actor()
    if actor is None:
        return None
    async with run.session() as session:
        try:
            return await call(session, actor)
        except NotAllowed:
            await run.chat.audit_denial()
            return None


def said(error: RuleError) -> dict[str, Any]:
    """What a refused rule says, as the "invalid" templates read it."""
    return {"code": error.code, "params": error.params or {}}


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


def page_values(pager: Pager, page: int, total: int) -> dict[str, int]:
    """What a paged list's template says about its pages (counted from 1)."""
    return {"total": total, "page": page + 1, "pages": pager.pages(total)}


def old_position(draft: dict[str, Any], state: int | None, at: Mapping[int, str]) -> str | None:
    """Where a draft from before the flow engine stood: its "at" (else the stored state), a
    conversation state number, as the question it became."""
    number = draft.get("at", state)
    return at.get(number) if isinstance(number, int) else None
