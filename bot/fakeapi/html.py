"""Telegram's HTML, as its servers read it: what they reject, and the text a person sees.

One parser serves the fake Bot API (it refuses what Telegram refuses), `cadrebot shell` (it
prints the message as terminal text, bold as ANSI bold) and the tests (`check`).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

ALLOWED_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a"}
    | {"code", "pre", "blockquote", "tg-emoji", "tg-time"}
)
# Telegram counts UTF-16 code units after entity parsing.
LIMIT = 4096
CAPTION_LIMIT = 1024
_STYLES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strike",
    "strike": "strike",
    "del": "strike",
}
_ANSI = {
    "bold": ("1", "22"),
    "italic": ("3", "23"),
    "underline": ("4", "24"),
    "strike": ("9", "29"),
}
_BARE_AMP = re.compile(r"&(?!(?:lt|gt|amp|quot|#\d{1,7}|#x[0-9a-fA-F]{1,6});)")


class TelegramHTMLError(ValueError):
    """Telegram would answer 400 Bad Request with this description."""


class _Parser(HTMLParser):
    def __init__(self, color: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.color = color
        self.out: list[str] = []
        self.plain: list[str] = []
        self.stack: list[tuple[str, dict[str, str | None], int]] = []
        self.depth: dict[str, int] = {}
        self.errors: list[str] = []

    def _style(self, name: str, on: bool) -> None:
        count = self.depth.get(name, 0) + (1 if on else -1)
        self.depth[name] = count
        if self.color and ((on and count == 1) or (not on and count == 0)):
            self.out.append(f"\x1b[{_ANSI[name][0 if on else 1]}m")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag not in ALLOWED_TAGS:
            self.errors.append(f"unsupported start tag {tag!r}")
        elif tag == "span" and values.get("class") != "tg-spoiler":
            self.errors.append("a span needs class tg-spoiler")
        if tag in _STYLES:
            self._style(_STYLES[tag], True)
        self.stack.append((tag, values, len(self.out)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"unmatched end tag {tag!r}")
            return
        _tag, values, start = self.stack.pop()
        if tag in _STYLES:
            self._style(_STYLES[tag], False)
        elif tag == "a":
            href = values.get("href") or ""
            shown = "".join(self.out[start:])
            if href and href not in shown:
                self.out.append(f" ({href})")
        elif tag == "blockquote":
            quoted = "".join(self.out[start:]).strip("\n")
            self.out[start:] = ["\n".join(f"│ {line}" for line in quoted.split("\n"))]

    def handle_data(self, data: str) -> None:
        self.out.append(data)
        self.plain.append(data)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse(html: str, *, color: bool = False, limit: int = LIMIT) -> tuple[str, str, list[str]]:
    """(terminal text, plain text, what Telegram would reject: empty when it is fine)."""
    parser = _Parser(color)
    parser.feed(html)
    parser.close()
    errors = list(parser.errors)
    if parser.stack:
        errors.append(f"unclosed tags {[tag for tag, _v, _s in parser.stack]}")
    if _BARE_AMP.search(html):
        errors.append("an unescaped '&'")
    plain = "".join(parser.plain)
    if not plain.strip():
        errors.append("message text is empty")
    elif utf16_len(plain) > limit:
        errors.append("message is too long" if limit == LIMIT else "message caption is too long")
    return "".join(parser.out), plain, errors


def convert_html(html: str, *, color: bool = False) -> tuple[str, list[str]]:
    """Telegram HTML as terminal text, and what Telegram would reject in it (empty: fine)."""
    text, _plain, errors = parse(html, color=color)
    return text, errors


def html_to_text(html: str, *, color: bool = False) -> str:
    """Strip Telegram's tags and unescape entities; bold/italic/… as ANSI when `color`."""
    return parse(html, color=color)[0]


def description(error: str) -> str:
    """Telegram's wording of a rejected text, as PTB's BadRequest will carry it."""
    if error.startswith("message"):
        return error[0].upper() + error[1:]
    return f"Can't parse entities: {error}"


def check(html: str, *, limit: int = LIMIT) -> str:
    """Raise like Telegram would on bad HTML or an over-long text; return the plain text."""
    _text, plain, errors = parse(html, limit=limit)
    if errors:
        raise TelegramHTMLError(description(errors[0]))
    return plain
