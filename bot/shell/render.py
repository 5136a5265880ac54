"""What the shell prints: the bot's messages as terminal text, numbered buttons, notices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from sqlalchemy import select

from bot.fakeapi.html import html_to_text
from bot.fakeapi.markup import Button, Markup, ReplyKey
from bot.fakeapi.records import Event
from storage.db import Database
from storage.models import Person, Role


@dataclass
class Keyboard:
    rows: list[list[ReplyKey]]
    one_time: bool


def number_buttons(rows: Sequence[Sequence[Button]]) -> tuple[list[str], list[Button]]:
    """Rows as `[1] Yes  [2] No` lines (numbering runs across rows) and the flat list."""
    lines: list[str] = []
    flat: list[Button] = []
    for row in rows:
        cells = []
        for button in row:
            flat.append(button)
            suffix = f" ↗ {button.url}" if button.url and not button.data else ""
            cells.append(f"[{len(flat)}] {button.label}{suffix}")
        if cells:
            lines.append("  ".join(cells))
    return lines, flat


class Screen:
    """The printing half of the shell: what one person sees of the events."""

    # Set by the shell: where to print, whom we speak for, what is shown.
    out: TextIO
    color: bool
    user_id: int
    database: Database
    buttons: list[Button]
    buttons_message_id: int
    keyboard: Keyboard | None

    def _say(self, text: str, *, style: str = "2") -> None:
        if self.color:
            text = f"\x1b[{style}m{text}\x1b[0m"
        print(text, file=self.out, flush=True)

    async def _labels(self, chat_ids: set[int]) -> dict[int, str]:
        from storage import people

        labels: dict[int, str] = {}
        async with self.database.sessionmaker() as session:
            for chat_id in chat_ids:
                actor = await people.load_actor(session, chat_id)
                if actor is None:
                    labels[chat_id] = f"user {chat_id}"
                    continue
                name = await session.scalar(
                    select(Person.full_name).where(Person.id == actor.person_id)
                )
                roles = [grant_label(g.role, g.township_name, g.department) for g in actor.grants]
                words = ", ".join(dict.fromkeys(roles)) or "user"
                labels[chat_id] = f"{words} {name or chat_id}"
        return labels

    async def _print(self, events: list[Event]) -> None:
        others = {e.chat_id for e in events if e.chat_id not in (self.user_id, 0)}
        labels = await self._labels(others) if others else {}
        for event in events:
            mine = event.chat_id in (self.user_id, 0)
            if event.kind == "toast":
                self._say(f"  ({event.note})")
            elif event.kind == "rejected":
                self._say(f"!! Telegram would reject {event.note}", style="31")
            elif event.kind == "other":
                self._say(f"(the bot called {event.note}; the shell does not simulate it)")
            elif event.kind == "delete":
                if mine and event.message_id == self.buttons_message_id:
                    self.buttons = []
                self._say("(the bot deleted a message)")
            elif event.kind == "markup":
                if mine:
                    self._track_buttons(event)
                    if event.markup.inline:
                        self._say("(buttons changed)")
                        self._emit_buttons(event.markup.inline, numbered=True)
            else:
                self._emit(event, mine, labels.get(event.chat_id, ""))

    def _emit(self, event: Event, mine: bool, label: str) -> None:
        prefix = ("< (notice) " if event.notice else "< ") if mine else f"→ to {label}: "
        if event.kind == "edit":
            prefix += "(edited) "
        body = html_to_text(event.html, color=self.color)
        if event.kind == "file":
            where = f"saved to {event.path}" if event.path else "not saved"
            body = f"[{event.note} {where}]" + (f"\n{body}" if body.strip() else "")
        lines = body.split("\n")
        print(prefix + lines[0], file=self.out)
        for line in lines[1:]:
            print(f"  {line}" if line else "", file=self.out)
        if mine:
            self._track_buttons(event)
            self._track_keyboard(event.markup)
        if event.markup.inline:
            self._emit_buttons(event.markup.inline, numbered=mine)
        if mine and event.markup.keyboard:
            keys = [
                f"[{key.label}]" + (" → !contact" if key.request_contact else "")
                for row in event.markup.keyboard
                for key in row
            ]
            self._say("  keyboard: " + "  ".join(keys))
        self.out.flush()

    def _emit_buttons(self, rows: list[list[Button]], *, numbered: bool) -> None:
        if numbered:
            lines, _flat = number_buttons(rows)
        else:
            lines = ["  ".join(f"[{b.label}]" for b in row) for row in rows]
        for line in lines:
            print(f"  {line}", file=self.out)

    def _track_buttons(self, event: Event) -> None:
        inline = event.markup.inline
        if inline:
            self.buttons = number_buttons(inline)[1]
            self.buttons_message_id = event.message_id
        elif event.kind in ("edit", "markup") and event.message_id == self.buttons_message_id:
            self.buttons = []

    def _track_keyboard(self, markup: Markup) -> None:
        if markup.keyboard is not None:
            self.keyboard = Keyboard(markup.keyboard, markup.one_time)
        elif markup.remove_keyboard:
            self.keyboard = None

    def _show_current_buttons(self) -> None:
        if not self.buttons:
            self._say("(no buttons are shown)")
            return
        for index, button in enumerate(self.buttons, start=1):
            self._say(f"  [{index}] {button.label}")


def grant_label(role: Role, township: str | None, department: str | None) -> str:
    """How a recipient is named in `→ to …` lines: `<township> official`, `police reviewer`."""
    if role == Role.TOWNSHIP_OFFICIAL:
        return f"{township or '?'} official"
    if role == Role.MENTOR:
        return f"{township or '?'} mentor"
    if role == Role.REVIEWER:
        return f"{department or '?'} reviewer"
    if role == Role.COUNTY_OFFICIAL:
        return "county official"
    return str(role.value)
