"""What the fake Bot API records of the bot's calls, and the shapes it keeps them in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from bot.fakeapi.markup import Markup


class Rejected(Exception):
    """Telegram would answer with this status (400 unless said) and description."""

    def __init__(self, description: str, status: int = 400, **parameters: Any) -> None:
        super().__init__(description)
        self.status = status
        self.parameters = parameters


class Part(NamedTuple):
    """An uploaded file, one part of a multipart request."""

    name: str
    content: bytes


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    # Uploaded files (a photo, a document) by field name: their bytes.
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Sent:
    """A message the bot sent or edited, as a person would see it."""

    chat_id: int
    text: str
    message_id: int
    buttons: list[list[tuple[str, str]]] = field(default_factory=list)
    kind: str = "text"
    edited: bool = False
    at: float = 0.0  # time.monotonic() when the fake accepted it
    parse_mode: str | None = None

    def button(self, label_part: str) -> str:
        """callback_data of the first button whose label contains `label_part`."""
        for row in self.buttons:
            for label, data in row:
                if label_part in label:
                    return data
        raise AssertionError(f"no button {label_part!r} in {self.buttons}")

    @property
    def labels(self) -> list[str]:
        return [label for row in self.buttons for label, _ in row]


@dataclass
class Event:
    """Something the bot did that a person would see (what the shell prints)."""

    kind: str  # message, edit, markup, delete, file, toast, rejected, other
    chat_id: int
    message_id: int = 0
    html: str = ""
    markup: Markup = field(default_factory=Markup)
    path: Path | None = None
    notice: bool = False
    note: str = ""


@dataclass
class Stored:
    html: str
    inline: list[list[Any]]
    kind: str = "text"


@dataclass
class Upload:
    file_id: str
    name: str
    content: bytes


def pairs(inline: list[list[Any]]) -> list[list[tuple[str, str]]]:
    return [
        [(b.label, b.data if b.data is not None else b.url or "") for b in row] for row in inline
    ]


def as_int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
