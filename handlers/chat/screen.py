"""What the bot shows, as data: a template with its values, and rows of buttons.

A flow or a menu returns a `Screen`; the Telegram adapter (handlers/chat/tg.py) or
`cadrebot shell` renders it, and a web page could render the same one. Nothing here imports
`telegram`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from handlers.chat.codec import Button


@dataclass(frozen=True, slots=True)
class Btn:
    """One button: its label as the person reads it, and its callback data (≤ 64 bytes)."""

    label: str
    data: str


Rows = tuple[tuple[Btn, ...], ...]


def rows_of(buttons: Sequence[Btn], per_row: int = 2) -> Rows:
    """Buttons laid out `per_row` to a row, in order."""
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a screen (its text is the caption): a workbook, a chart, a CSV."""

    kind: Literal["document", "photo"]
    data: bytes
    name: str = ""


@dataclass(frozen=True, slots=True)
class Screen:
    """A message: `template` rendered in the person's locale with `values`, then buttons.

    `edit`: replace the message whose button was pressed (a page turn), when it can be.
    `contact`: the label of a one-time "share my phone number" keyboard button.
    `clear_keyboard`: take away such a keyboard shown before.
    `attachment`: a file sent with the text as its caption (≤ 1024 characters).
    """

    template: str
    values: Mapping[str, Any] = field(default_factory=dict)
    rows: Rows = ()
    edit: bool = False
    contact: str | None = None
    clear_keyboard: bool = False
    attachment: Attachment | None = None


@dataclass(frozen=True, slots=True)
class Pager:
    """The one page count: `per_page` items a page, pages counted from 0."""

    per_page: int

    def pages(self, total: int) -> int:
        return max(1, -(-total // self.per_page))

    def clamp(self, page: int, total: int) -> int:
        """A page that exists (a stale page button after the list shrank shows the last)."""
        return min(max(page, 0), self.pages(total) - 1)

    def offset(self, page: int) -> int:
        return page * self.per_page

    def values(self, page: int, total: int) -> dict[str, int]:
        """What a paged list's template says about its pages (counted from 1)."""
        return {"total": total, "page": page + 1, "pages": self.pages(total)}

    def nav(
        self, page: int, total: int, button: Button, *, prev: str, next: str, fixed: object = ()
    ) -> tuple[Btn, ...]:
        """The previous/next row for `page`: `button` encodes the fields in `fixed` (a tuple
        of values that come before the page number), then the page."""
        before = fixed if isinstance(fixed, tuple) else (fixed,)
        row: list[Btn] = []
        if page > 0:
            row.append(Btn(prev, button.data(*before, page - 1)))
        if (page + 1) * self.per_page < total:
            row.append(Btn(next, button.data(*before, page + 1)))
        return tuple(row)
