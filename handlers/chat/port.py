"""What a flow sees of a messenger: the `Turn` a person sent, and the `Chat` it may act in.

handlers/chat/tg.py implements `Chat` for Telegram; another messenger or a web page would
implement it again. Nothing here imports `telegram`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.screen import Screen

if TYPE_CHECKING:
    from bot.settings import Settings


@dataclass(frozen=True, slots=True)
class Turn:
    """One input, whatever the messenger: typed text, a button, a shared contact, a file, a
    voice message."""

    kind: Literal["text", "button", "contact", "file", "voice", "other"]
    text: str = ""
    data: str = ""
    phone: str = ""
    own_contact: bool = False
    # The renderer's handle of an uploaded file (Telegram: a Document; a voice message: its
    # file id); flows only keep it or pass it on to the renderer's download. Its name, type
    # and size as the sender's client declared them: enough to refuse a wrong or oversized
    # file before fetching it.
    file: Any = None
    file_name: str = ""
    mime_type: str = ""
    file_size: int = 0


class Chat(Protocol):
    """One person's conversation as a flow sees it (handlers/chat/tg.py: Telegram's)."""

    @property
    def user_id(self) -> int: ...

    @property
    def language(self) -> str | None:
        """The language their messenger reports, if any (kept with their account)."""

    @property
    def user_data(self) -> dict[str, Any]: ...

    @property
    def locale(self) -> str:
        """The language screens are rendered in (their /lang choice, else their client's)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def jinja(self) -> Environment:
        """The templates (a chart's or a workbook's labels are read from them)."""

    def session(self) -> AbstractAsyncContextManager[AsyncSession]: ...

    def service(self, name: str) -> Any:
        """A shared service the application holds (the cipher, the grade policy)."""

    def label(self, key: str) -> str:
        """A short label (a button, a choice) in the person's language."""

    def text(self, name: str, **values: Any) -> str:
        """A template rendered as plain text in the person's language (a button label)."""

    async def show(self, screen: Screen) -> None: ...

    def note(self, template: str) -> None:
        """Say `template` at the top of the next message shown (not a message of its own)."""

    async def deny(self, subject: tuple[str, int] | None = None) -> None:
        """Refuse: audit who tried what (ids only), then say "not allowed". `subject`: what
        was asked for when the input alone does not say (a typed file number)."""

    async def drop_buttons(self) -> None:
        """Take the buttons off the message whose button was just pressed."""

    async def delete_input(self) -> bool:
        """Delete the message the person just sent (it carried an ID number)."""

    async def download(self, turn: Turn) -> bytes:
        """The bytes of the file `turn` carries (an upload), fetched from the messenger."""

    async def audit_denial(self, subject: tuple[str, int] | None = None) -> None:
        """Audit a refusal answered as "not found" or "expired" (so as not to tell whether
        the record exists): who tried what, ids only. Nothing is said."""

    async def notify(
        self,
        session: AsyncSession,
        recipients: list[tuple[int, str | None]],
        template: str,
        *,
        key: str,
        subject: int | None = None,
        buttons: Sequence[Sequence[tuple[str, str]]] = (),
        **values: Any,
    ) -> int:
        """Queue a notice to other people in this transaction (the outbox, never a send).

        `buttons`: rows of (label key, data), labelled in each recipient's language."""
