"""Telegram's HTML rules, as its servers apply them: allowed tags only, balanced, escaped."""

from __future__ import annotations

from html.parser import HTMLParser

ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
    "a", "code", "pre", "blockquote", "tg-emoji", "tg-time",
}  # fmt: skip
LIMIT = 4096


class TelegramHTMLError(ValueError):
    pass


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            raise TelegramHTMLError(f"Unsupported start tag {tag!r}")
        if tag == "span" and dict(attrs).get("class") != "tg-spoiler":
            raise TelegramHTMLError("span needs class tg-spoiler")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            raise TelegramHTMLError(f"Unmatched end tag {tag!r}")
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check(html: str) -> str:
    """Raise like Telegram would on bad HTML or an over-long text; return the plain text."""
    # A bare '<' or '&' that is not an entity is an error for Telegram.
    i = 0
    while (i := html.find("&", i)) != -1:
        end = html.find(";", i)
        entity = html[i + 1 : end] if end != -1 else ""
        if (
            end == -1
            or end - i > 10
            or not (entity in {"lt", "gt", "amp", "quot"} or entity.startswith("#"))
        ):
            raise TelegramHTMLError(f"Unescaped '&' at {i}")
        i = end
    checker = _Checker()
    checker.feed(html)
    checker.close()
    if checker.stack:
        raise TelegramHTMLError(f"Unclosed tags {checker.stack}")
    if checker.rawdata if hasattr(checker, "rawdata") else "":
        raise TelegramHTMLError("Unfinished markup")
    plain = "".join(checker.text)
    if not plain.strip():
        raise TelegramHTMLError("Message text is empty")
    if len(plain.encode("utf-16-le")) // 2 > LIMIT:
        raise TelegramHTMLError("Message is too long")
    return plain
