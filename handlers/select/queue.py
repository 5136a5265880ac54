"""What /review and /vetting share: the queue page (a page of names as buttons, then the
page row), a decision's draft from before the flow engine, and telling the people concerned.
(A decision's storage work runs through handlers/chat/acting.py's `as_actor`.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.codec import ID, PAGE, Button
from handlers.chat.flow import Run, Upgrade
from handlers.chat.paged import Pages
from handlers.chat.screen import Btn, Pager, Screen
from handlers.chat.screens import Act
from storage import people
from storage.people import Actor

PAGER = Pager(5)
T = TypeVar("T")
# A storage query of one page of a queue: (the items, how many there are in all).
Load = Callable[..., Awaitable[tuple[list[T], int]]]


class Queue(Generic[T]):
    """One queue: `<prefix>:p:<page>` turns to a page, `<prefix>:o:<id>` opens an item.

    `load` is the storage query of a page in the actor's scope, `entry` an item's id and the
    name its button shows."""

    def __init__(
        self, prefix: str, template: str, load: Load[T], entry: Callable[[T], tuple[int, str]]
    ) -> None:
        self.turn = Button(prefix, "p", PAGE)
        self.open = Button(prefix, "o", ID)
        self.pages = Pages(template, PAGER, self.turn)
        self.load = load
        self.entry = entry

    async def page(
        self, act: Act, actor: Actor, shown: Callable[[T], Any] = lambda item: item
    ) -> Screen:
        """The pressed page (the first for the command), the actor's scope read afresh; a
        page past the end (the list shrank since it was shown) is its new last page. Each
        item is shown in the template as `shown` gives it, and has a button ``n. name``."""
        (page,) = act.values or (0,)
        async with act.session() as session:
            items, total = await self._load(session, actor, page)
            if not items and page > 0 and total:
                page = PAGER.clamp(page, total)
                items, total = await self._load(session, actor, page)
        first = PAGER.offset(page) + 1
        rows = tuple(
            (Btn(f"{first + i}. {name}", self.open.data(item_id)),)
            for i, (item_id, name) in enumerate(map(self.entry, items))
        )
        shown_items = [shown(item) for item in items]
        return self.pages.screen(act, rows, page, total, items=shown_items, start=first)

    async def _load(self, session: AsyncSession, actor: Actor, page: int) -> tuple[list[T], int]:
        return await self.load(session, actor, offset=PAGER.offset(page), limit=PAGER.per_page)


def old_draft(at: str, *required: str) -> Upgrade:
    """A decision's draft from before the flow engine: `required` and the name at its top
    level, and state 0 waiting for the typed text, which is the question `at` now."""

    def upgrade(stored: dict[str, Any], state: int | None) -> dict[str, Any]:
        if any(key not in stored for key in required):
            return {}
        answers = {key: stored[key] for key in required}
        return {"answers": {**answers, "name": stored.get("name", "")}, "at": at}

    return upgrade


async def tell(
    run: Act | Run,
    session: AsyncSession,
    chat_ids: list[int],
    template: str,
    *,
    key: str,
    subject: int,
    **values: Any,
) -> int:
    """Queue `template` for these Telegram chats, each in its own language (the outbox, in
    this transaction); how many were queued."""
    recipients = await people.recipients(session, chat_ids)
    return await run.chat.notify(session, recipients, template, key=key, subject=subject, **values)
