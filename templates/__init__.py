"""Every word a person reads: Jinja2 templates per locale, rendered as Telegram HTML."""

from __future__ import annotations

import re
from functools import cache
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
# One atom of text: an entity such as &amp; (never cut inside) or one character.
_ATOM_RE = re.compile(r"&#?[A-Za-z0-9]{1,8};|.", re.DOTALL)


@cache
def labels_for(env: Environment, locale: str) -> dict[str, str]:
    """The locale's table of short plain-text labels (buttons, choices, workbook words)."""
    module = env.get_template(f"{locale}/_labels.html.j2").module
    return dict(module.labels)  # type: ignore[attr-defined]


def _utf16_len(text: str) -> int:
    # Telegram counts message length in UTF-16 code units: an emoji outside the BMP is two.
    return len(text.encode("utf-16-le")) // 2


def _atoms(html: str, limit: int) -> list[tuple[str, str, str]]:
    """(kind, token, tag name): kind is "open", "close" or "text" (one char or one entity).

    An opening tag too long to leave room for text in a part (a huge href) is dropped with
    its closing tag; its text stays.
    """
    atoms: list[tuple[str, str, str]] = []
    stack: list[tuple[str, bool]] = []  # (name, dropped?)
    pos = 0
    for match in _TAG_RE.finditer(html):
        atoms.extend(("text", a, "") for a in _ATOM_RE.findall(html[pos : match.start()]))
        pos = match.end()
        name = match.group(2).lower()
        if match.group(1) != "/":
            drop = _utf16_len(match.group(0)) + len(name) + 3 > limit // 4
            stack.append((name, drop))
            if not drop:
                atoms.append(("open", match.group(0), name))
            continue
        drop = False
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] == name:
                drop = stack[i][1]
                del stack[i]
                break
        if not drop:
            atoms.append(("close", match.group(0), name))
    atoms.extend(("text", a, "") for a in _ATOM_RE.findall(html[pos:]))
    return atoms


def split_message(html: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split rendered HTML into parts of at most `limit` UTF-16 units.

    Each part ends after the last line break that fits, or else after the last character or
    entity that fits; tags open at a cut are closed there and reopened in the next part.
    """
    if _utf16_len(html) <= limit:
        return [html]
    atoms = _atoms(html, limit)
    parts: list[str] = []
    stack: list[tuple[str, str]] = []  # (name, opening tag) open before atoms[i]
    i = 0
    while i < len(atoms):
        prefix = "".join(tag for _, tag in stack)
        run = list(stack)
        used = _utf16_len(prefix)
        closing = sum(len(name) + 3 for name, _ in run)
        line_cut = char_cut = None  # (index after the cut, open tags there)
        has_text = False
        j = i
        while j < len(atoms):
            kind, token, name = atoms[j]
            size = _utf16_len(token)
            if kind == "open":
                if used + size + closing + len(name) + 3 > limit:
                    break
                run.append((name, token))
                closing += len(name) + 3
            elif kind == "close":
                for k in range(len(run) - 1, -1, -1):
                    if run[k][0] == name:
                        del run[k]
                        break
                closing -= len(name) + 3  # its room was reserved: a close always fits
            elif used + size + closing > limit:
                break
            used += size
            j += 1
            if kind == "text":
                has_text = has_text or bool(token.strip())
                if has_text:
                    char_cut = (j, list(run))
                    if token == "\n":
                        line_cut = char_cut
            elif has_text:
                char_cut = (j, list(run))
                if line_cut is not None and line_cut[0] == j - 1:
                    line_cut = char_cut  # keep closing tags right after a line break
        if j == len(atoms):
            parts.append(prefix + "".join(a[1] for a in atoms[i:j]))
            break
        cut = line_cut or char_cut
        if cut is None:
            raise ValueError("open tags leave no room for text in a message part")
        j, run = cut
        closing_tags = "".join(f"</{name}>" for name, _ in reversed(run))
        parts.append(prefix + "".join(a[1] for a in atoms[i:j]) + closing_tags)
        i, stack = j, run
    return [p.strip("\n") for p in parts if _visible(p)]


def _visible(part: str) -> bool:
    return bool(_TAG_RE.sub("", part).strip())
