"""reply_markup as the Bot API receives it: inline buttons, a reply keyboard, or its removal."""

from __future__ import annotations

import json
from dataclasses import dataclass

CALLBACK_DATA_LIMIT = 64


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    data: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyKey:
    label: str
    request_contact: bool = False


@dataclass(frozen=True, slots=True)
class Markup:
    """What a reply_markup asked for: inline buttons, a reply keyboard, or removing it."""

    inline: list[list[Button]] | None = None
    keyboard: list[list[ReplyKey]] | None = None
    one_time: bool = False
    remove_keyboard: bool = False


def parse_markup(raw: object) -> Markup:
    """Read the reply_markup parameter as the Bot API receives it (JSON text or a dict)."""
    if isinstance(raw, str):
        raw = json.loads(raw)
    if not isinstance(raw, dict):
        return Markup()
    if "inline_keyboard" in raw:
        rows = [
            [
                Button(
                    str(b.get("text", "")),
                    data=b.get("callback_data"),
                    url=b.get("url") or b.get("login_url", {}).get("url"),
                )
                for b in row
            ]
            for row in raw["inline_keyboard"]
        ]
        return Markup(inline=rows)
    if "keyboard" in raw:
        keys = [
            [
                ReplyKey(k, False)
                if isinstance(k, str)
                else ReplyKey(str(k.get("text", "")), bool(k.get("request_contact")))
                for k in row
            ]
            for row in raw["keyboard"]
        ]
        return Markup(keyboard=keys, one_time=bool(raw.get("one_time_keyboard")))
    if raw.get("remove_keyboard"):
        return Markup(remove_keyboard=True)
    return Markup()


def invalid_button(markup: Markup) -> str | None:
    """Telegram's description when a button's callback_data is not 1–64 bytes, else None."""
    for row in markup.inline or []:
        for button in row:
            if (
                button.data is not None
                and not 0 < len(button.data.encode()) <= CALLBACK_DATA_LIMIT
            ):
                return "BUTTON_DATA_INVALID"
    return None
