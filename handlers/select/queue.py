"""The one queue page of /review and /vetting: a page of names as buttons, then the page row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.codec import Button
from handlers.chat.screen import Btn, Pager, Rows
from handlers.chat.screens import Act
from storage.people import Actor

PAGER = Pager(5)
T = TypeVar("T")
# A storage query of one page of a queue: (the items, how many there are in all).
Load = Callable[..., Awaitable[tuple[list[T], int]]]


async def load_page(
    session: AsyncSession, actor: Actor, load: Load[T], page: int
) -> tuple[int, list[T], int]:
    """Page `page` (from 0) of the actor's queue, their scope read afresh; a page past the end
    (the list shrank since it was shown) is its new last page."""
    items, total = await load(session, actor, offset=PAGER.offset(page), limit=PAGER.per_page)
    if not items and page > 0 and total:
        page = PAGER.clamp(page, total)
        items, total = await load(session, actor, offset=PAGER.offset(page), limit=PAGER.per_page)
    return page, items, total


def queue_rows(
    act: Act,
    names: Sequence[tuple[int, str]],
    page: int,
    total: int,
    *,
    opens: Button,
    turns: Button,
) -> Rows:
    """One button per item (``n. name`` opening it), then previous/next."""
    first = PAGER.offset(page) + 1
    rows: list[tuple[Btn, ...]] = [
        (Btn(f"{first + i}. {name}", opens.data(item_id)),)
        for i, (item_id, name) in enumerate(names)
    ]
    nav = PAGER.nav(page, total, turns, prev=act.label("prev"), next=act.label("next"))
    if nav:
        rows.append(nav)
    return tuple(rows)


def page_values(page: int, total: int) -> dict[str, Any]:
    """What a queue template shows about the page: its first number, which page of how many."""
    return {
        "total": total,
        "start": PAGER.offset(page) + 1,
        "page": page + 1,
        "pages": PAGER.pages(total),
    }
