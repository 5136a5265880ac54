"""Every word a person reads: Jinja2 templates per locale, rendered as Telegram HTML."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

TEMPLATES_DIR = Path(__file__).parent
LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
MESSAGE_LIMIT = 4096


def build_environment() -> Environment:
    """One environment for the process; autoescape is forced on for every file name."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        # A bool, not select_autoescape(): that helper keys on extensions and skips `.j2`.
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        enable_async=False,
    )
    return env


def template_names(locale: str) -> list[str]:
    """Flow-relative names (`start/welcome`) of every template of a locale."""
    base = TEMPLATES_DIR / locale
    return sorted(
        str(p.relative_to(base)).removesuffix(".html.j2")
        for p in base.rglob("*.html.j2")
        if not p.name.startswith("_")
    )


def normalize_locale(language_code: str | None, default: str = DEFAULT_LOCALE) -> str:
    """Map a Telegram `language_code` (e.g. `en-US`, `zh-hans`) to one of our locales."""
    if not language_code:
        return default
    code = language_code.lower()
    if code.startswith("zh"):
        return "zh_CN"
    if code.startswith("en"):
        return "en"
    return default


def render(env: Environment, locale: str, name: str, **values: Any) -> str:
    """Render `templates/{locale}/{name}.html.j2`, falling back to the default locale."""
    try:
        template = env.get_template(f"{locale}/{name}.html.j2")
    except TemplateNotFound:
        template = env.get_template(f"{DEFAULT_LOCALE}/{name}.html.j2")
    return template.render(locale=locale, **values).strip()


_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)([^>]*)>")


def _utf16_len(text: str) -> int:
    # Telegram counts message length in UTF-16 code units: an emoji outside the BMP is two.
    return len(text.encode("utf-16-le")) // 2


def split_message(html: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split rendered HTML into parts of at most `limit` UTF-16 units.

    Cuts fall on line boundaries where possible, otherwise between characters but never
    inside a tag or an entity. Tags open at a cut are closed at the end of the part and
    reopened at the start of the next, so every part is valid on its own.
    """
    if _utf16_len(html) <= limit:
        return [html]
    tokens = _tokenize(html)
    parts: list[str] = []
    current: list[str] = []
    current_len = 0
    open_tags: list[tuple[str, str]] = []  # (name, full opening tag)
    reopen_prefix = ""

    def closing() -> str:
        return "".join(f"</{name}>" for name, _ in reversed(open_tags))

    def flush() -> None:
        nonlocal current, current_len, reopen_prefix
        text = "".join(current) + closing()
        if text.strip():
            parts.append(text.strip("\n") if not open_tags else text)
        reopen_prefix = "".join(tag for _, tag in open_tags)
        current = [reopen_prefix] if reopen_prefix else []
        current_len = _utf16_len(reopen_prefix)

    # Reserve room for the closing tags of whatever is open when a cut happens.
    for kind, token in tokens:
        token_len = _utf16_len(token)
        budget = limit - _utf16_len(closing())
        if kind == "text":
            while current_len + _utf16_len(token) > budget:
                room = budget - current_len
                cut = _cut_point(token, room)
                if cut == 0:
                    if current_len <= _utf16_len(reopen_prefix):
                        raise ValueError("open tags leave no room for text in a message part")
                    flush()
                    budget = limit - _utf16_len(closing())
                    continue
                current.append(token[:cut])
                token = token[cut:]
                flush()
                budget = limit - _utf16_len(closing())
            current.append(token)
            current_len += _utf16_len(token)
            continue
        # A tag: opening tags need room for their own closing tag too.
        match = _TAG_RE.fullmatch(token)
        assert match is not None
        is_close, name = match.group(1) == "/", match.group(2).lower()
        extra = 0 if is_close else len(name) + 3
        if current_len + token_len + extra > budget:
            flush()
        current.append(token)
        current_len += token_len
        if is_close:
            for i in range(len(open_tags) - 1, -1, -1):
                if open_tags[i][0] == name:
                    del open_tags[i]
                    break
        else:
            open_tags.append((name, token))
    if current and "".join(current) != reopen_prefix:
        parts.append("".join(current).strip("\n"))
    return [p for p in parts if p.strip()]


def _tokenize(html: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    for match in _TAG_RE.finditer(html):
        if match.start() > pos:
            tokens.append(("text", html[pos : match.start()]))
        tokens.append(("tag", match.group(0)))
        pos = match.end()
    if pos < len(html):
        tokens.append(("text", html[pos:]))
    return tokens


def _cut_point(text: str, room: int) -> int:
    """Index to cut `text` at so that text[:i] fits `room`: last newline, else any safe char."""
    if room <= 0:
        return 0
    fit = 0
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > room:
            break
        fit = i + 1
    if fit >= len(text):
        return fit
    newline = text.rfind("\n", 0, fit)
    if newline > 0:
        return newline + 1
    # Never cut inside an entity such as &amp;.
    amp = text.rfind("&", max(0, fit - 10), fit)
    if amp != -1 and ";" not in text[amp:fit]:
        fit = amp
    return fit
