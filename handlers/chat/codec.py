"""The one codec for callback data: ``prefix:field:…`` with typed fields.

A button's data comes back from the person's client, so it is input like any other: it may be
old (a button from last month's message) or forged (any string of up to 64 bytes). Every
CallbackQueryHandler matches with a `Button` (or a `Prefix` for a flow's catch-all), so data
that does not decode — an id beyond its column's range on either engine, a word where a
number belongs, a part missing or one too many — reaches no handler body. It falls through to
the flow's stale-button handler or the last catch-all, which answer "this button has expired",
and never to the error handler (which would notify every admin).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import takewhile
from typing import Any, Protocol

# The largest value of the columns ids land in: INTEGER on both engines (SQLite's is 64-bit,
# but PostgreSQL's is not, and an id must mean the same on both), BIGINT for BigId columns.
INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1


class _Query(Protocol):
    @property
    def data(self) -> str | None: ...


class Press(Protocol):
    """What a button press carries for decoding (a Telegram Update, or any renderer's)."""

    @property
    def callback_query(self) -> _Query | None: ...


class Field(Protocol):
    def parse(self, raw: str) -> object | None:
        """The typed value of one part, or None when the part is not one of these."""


@dataclass(frozen=True, slots=True)
class Number:
    """A non-negative integer in [low, high], ASCII digits only, no sign, no leading zero."""

    low: int
    high: int

    def parse(self, raw: str) -> int | None:
        if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(self.high)):
            return None
        if len(raw) > 1 and raw.startswith("0"):
            return None
        value = int(raw)
        return value if self.low <= value <= self.high else None


@dataclass(frozen=True, slots=True)
class Choice:
    """One of a fixed set of words."""

    options: frozenset[str]

    def parse(self, raw: str) -> str | None:
        return raw if raw in self.options else None


@dataclass(frozen=True, slots=True)
class Code:
    """A short code checked later against a table or a label list (a status, a kind)."""

    shape: re.Pattern[str]

    def parse(self, raw: str) -> str | None:
        return raw if self.shape.fullmatch(raw) else None


def choice(*options: str) -> Choice:
    return Choice(frozenset(options))


ID = Number(1, INT_MAX)
BIG_ID = Number(1, BIGINT_MAX)
PAGE = Number(0, 9999)
YEAR = Number(1, 9999)
INDEX = Number(0, 999)
CODE = Code(re.compile(r"[0-9a-z_*]{1,24}"))


@dataclass(init=False, repr=False, unsafe_hash=True)
class Button:
    """The shape of one kind of callback data: literal parts and typed fields, in order.

    ``Button("tk", "s", ID)`` is ``tk:s:<id>``; `match` is the handler's pattern, `values`
    the typed fields of the data that matched.
    """

    parts: tuple[str | Field, ...]

    def __init__(self, *parts: str | Field) -> None:
        self.parts = parts

    def parse(self, data: str) -> tuple[Any, ...] | None:
        raw = data.split(":")
        if len(raw) != len(self.parts):
            return None
        values: list[Any] = []
        for part, given in zip(self.parts, raw, strict=True):
            if isinstance(part, str):
                if given != part:
                    return None
                continue
            value = part.parse(given)
            if value is None:
                return None
            values.append(value)
        return tuple(values)

    def match(self, data: object) -> bool:
        return isinstance(data, str) and self.parse(data) is not None

    def which(self, update: Press) -> tuple[Button, tuple[Any, ...]]:
        """This button and the typed fields of a press its pattern matched (as `AnyOf`'s)."""
        return AnyOf(self).which(update)

    def values(self, update: Press) -> tuple[Any, ...]:
        """The typed fields of a press this button's pattern matched."""
        return self.which(update)[1]

    def data(self, *values: object) -> str:
        """Encode: literals as they are, fields from `values` in order."""
        given = iter(values)
        return ":".join(part if isinstance(part, str) else str(next(given)) for part in self.parts)

    @property
    def prefix(self) -> str:
        """The literal parts before the first field (what tests forge variants of)."""
        return ":".join(str(part) for part in takewhile(lambda p: isinstance(p, str), self.parts))

    def __repr__(self) -> str:
        return "Button(" + ":".join(p if isinstance(p, str) else "<>" for p in self.parts) + ")"


@dataclass(frozen=True, slots=True)
class Prefix:
    """Every data under a prefix: a flow's catch-all for its own stale buttons."""

    prefix: str

    def match(self, data: object) -> bool:
        if not isinstance(data, str):
            return False
        return data == self.prefix or data.startswith(self.prefix + ":")


class AnyOf:
    """Several shapes one handler takes (``tc:p:<id>``, ``tc:pp:<page>``, ``tc:pd``)."""

    def __init__(self, *shapes: Button | Prefix) -> None:
        self.shapes = shapes

    @property
    def buttons(self) -> tuple[Button, ...]:
        return tuple(shape for shape in self.shapes if isinstance(shape, Button))

    def match(self, data: object) -> bool:
        return any(shape.match(data) for shape in self.shapes)

    def which(self, update: Press) -> tuple[Button, tuple[Any, ...]]:
        """The button shape that matched, and its typed fields."""
        query = update.callback_query
        data = query.data if query is not None else None
        for button in self.buttons:
            parsed = button.parse(data) if data else None
            if parsed is not None:
                return button, parsed
        # Only reachable by calling a handler its pattern did not admit.
        raise ValueError("callback data does not match its handler's buttons")


Pattern = Button | AnyOf | Prefix
