"""split_message: parts fit, stay valid Telegram HTML, and lose nothing but cut-point newlines.

"Loses nothing" is defined precisely: the plain text of the original (as Telegram shows it)
must equal the plain texts of the parts joined in order, where at each cut point only
whitespace that `split_message` stripped may be missing. `assert_same_text` checks this
with a regular expression `\\s*` between (and around) the escaped part texts.
"""

from __future__ import annotations

import functools
import random
import re

import pytest

from templates import MESSAGE_LIMIT, split_message
from tests.support.telegram_html import check

SEED = 20240501
EMOJI = ["😀", "👩‍🌾", "🇨🇳", "𝄞", "中", "é"]
ENTITIES = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#128512;"]


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def assert_valid_parts(parts: list[str], limit: int) -> list[str]:
    """Every part fits and passes Telegram's checks; returns their plain texts."""
    plains = []
    for index, part in enumerate(parts):
        assert units(part) <= limit, f"part {index} has {units(part)} units > {limit}"
        assert not _has_lone_surrogate(part)
        plains.append(check(part))
    return plains


def assert_same_text(original_html: str, plains: list[str]) -> None:
    """Original plain text == parts' plain texts joined, modulo whitespace at cut points."""
    original = check_unbounded(original_html)
    pattern = r"\s*" + r"\s*".join(re.escape(p) for p in plains) + r"\s*"
    assert re.fullmatch(pattern, original, flags=re.DOTALL), "text changed by the split"
    # Whitespace may vanish only at cut points: everything else is character for character.
    assert re.sub(r"\s", "", "".join(plains)) == re.sub(r"\s", "", original)


def check_unbounded(html: str) -> str:
    """check() without the length rule, for the (too long) original."""
    from html.parser import HTMLParser

    chunks: list[str] = []

    class Text(HTMLParser):
        def handle_data(self, data: str) -> None:
            chunks.append(data)

    parser = Text(convert_charrefs=True)
    parser.feed(html)
    parser.close()
    return "".join(chunks)


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-16-le")
    except UnicodeEncodeError:
        return True
    return False


# --- examples -------------------------------------------------------------------------------


def test_short_text_is_unchanged() -> None:
    html = "<b>你好</b> &amp; welcome\n第二行"
    assert split_message(html) == [html]


def test_text_of_exactly_the_limit_is_one_part() -> None:
    html = "a" * MESSAGE_LIMIT
    assert split_message(html) == [html]
    emoji = "😀" * (MESSAGE_LIMIT // 2)
    assert split_message(emoji) == [emoji]
    assert len(split_message(emoji + "a")) == 2


def test_long_multiline_text_is_cut_on_line_boundaries() -> None:
    lines = [f"第{i}行 line {i} " + "x" * (i % 70) for i in range(600)]
    html = "\n".join(lines)
    parts = split_message(html)
    assert len(parts) > 1
    plains = assert_valid_parts(parts, MESSAGE_LIMIT)
    assert_same_text(html, plains)
    for part in parts:
        assert set(part.split("\n")) <= set(lines), "a part starts or ends mid-line"
    assert [line for p in parts for line in p.split("\n")] == lines


def test_lines_with_inline_markup_are_cut_on_line_boundaries() -> None:
    """Bold names in a list: the cut still belongs between lines, not inside one."""
    lines = [f"{i}. <b>姓名{i}</b> 村 <i>{'x' * (i % 50)}</i> 备注" for i in range(400)]
    html = "\n".join(lines)
    parts = split_message(html)
    assert len(parts) > 1
    assert_same_text(html, assert_valid_parts(parts, MESSAGE_LIMIT))
    for part in parts:
        assert set(part.split("\n")) <= set(lines), "a part starts or ends mid-line"


def test_one_very_long_line_is_cut_into_parts_that_fit() -> None:
    html = "长" * 3000 + "a" * 7000
    parts = split_message(html)
    assert len(parts) == 3
    assert "".join(parts) == html
    assert_valid_parts(parts, MESSAGE_LIMIT)


@pytest.mark.parametrize(
    ("html", "closing", "reopening"),
    [
        pytest.param("intro\n<b>" + "粗体 bold " * 1500 + "</b>\noutro", "</b>", "<b>", id="bold"),
        pytest.param(
            "<b>bold <i>" + "斜体 " * 3000 + "</i> tail</b>", "</i></b>", "<b><i>", id="nested"
        ),
    ],
)
def test_tags_spanning_a_cut_are_closed_in_order_and_reopened(
    html: str, closing: str, reopening: str
) -> None:
    parts = split_message(html)
    assert len(parts) >= 2
    assert_same_text(html, assert_valid_parts(parts, MESSAGE_LIMIT))
    assert parts[0].endswith(closing)
    assert parts[1].startswith(reopening)


def test_entities_are_never_cut() -> None:
    for offset in range(12):
        html = "a" * (MESSAGE_LIMIT - 5 + offset) + "&amp;" * 20 + "&#128512;" * 20
        parts = split_message(html)
        plains = assert_valid_parts(parts, MESSAGE_LIMIT)
        assert_same_text(html, plains)


def test_emoji_count_two_units_and_are_never_split() -> None:
    html = "a" + "😀" * 3000
    parts = split_message(html)
    assert len(parts) == 2
    assert units(parts[0]) == 4095  # "a" + 2047 emoji; one more would be 4097
    assert "".join(parts) == html
    assert_valid_parts(parts, MESSAGE_LIMIT)


def test_link_is_reopened_with_its_attributes() -> None:
    tag = '<a href="https://t.me/cadre_bot?start=ABC&amp;x=1">'
    html = "see " + tag + "链接 " * 3000 + "</a> done"
    parts = split_message(html)
    assert len(parts) >= 2
    assert_same_text(html, assert_valid_parts(parts, MESSAGE_LIMIT))
    for part in parts[1:]:
        assert part.startswith(tag)


def test_markup_just_fits_before_a_closing_tag_at_the_end() -> None:
    """The text fills a part right up to the final `</b>`: no empty `<b></b>` part."""
    html = "<b>" + "a" * 26 + "</b>"
    parts = split_message(html, limit=20)
    assert_same_text(html, assert_valid_parts(parts, 20))


# --- properties over random inputs ----------------------------------------------------------


def _random_text(rng: random.Random, size: int) -> str:
    out = []
    for _ in range(size):
        roll = rng.random()
        if roll < 0.06:
            out.append("\n")
        elif roll < 0.12:
            out.append(rng.choice(ENTITIES))
        elif roll < 0.2:
            out.append(rng.choice(EMOJI))
        elif roll < 0.3:
            out.append(" ")
        else:
            out.append(rng.choice("abcxyz中文村干部0123"))
    return "".join(out)


def _random_html(rng: random.Random, depth: int = 0) -> str:
    pieces = []
    for _ in range(rng.randint(1, 6)):
        roll = rng.random()
        if depth < 3 and roll < 0.35:
            name = rng.choice(["b", "i", "u", "s", "code", "a", "tg-spoiler", "blockquote"])
            attrs = ' href="https://example.org/?q=1&amp;r=2"' if name == "a" else ""
            if name == "a" and depth:  # Telegram does not nest links; keep inputs valid
                name, attrs = "u", ""
            pieces.append(f"<{name}{attrs}>{_random_html(rng, depth + 1)}</{name}>")
        else:
            pieces.append(_random_text(rng, rng.randint(1, 120)))
    return "".join(pieces)


@functools.cache
def _inputs(count: int) -> list[tuple[str, int]]:
    rng = random.Random(SEED)
    cases = []
    for _ in range(count):
        html = "".join(_random_html(rng) for _ in range(rng.randint(1, 12)))
        if not check_unbounded(html).strip():
            html += "x"
        # Room for the deepest nesting (about 110 units of tags) plus some text.
        limit = rng.choice([150, 200, 300, 500, 1000])
        cases.append((html, limit))
    return cases


@pytest.mark.parametrize("chunk", range(8))
def test_random_html_splits_into_valid_parts_with_the_same_text(chunk: int) -> None:
    for index, (html, limit) in enumerate(_inputs(400)[chunk * 50 : (chunk + 1) * 50]):
        try:
            parts = split_message(html, limit=limit)
            plains = assert_valid_parts(parts, limit)
            assert_same_text(html, plains)
        except Exception as exc:
            raise AssertionError(
                f"case {chunk * 50 + index}: limit={limit} html={html!r}: {exc}"
            ) from exc


def test_random_plain_lines_are_cut_only_between_lines() -> None:
    rng = random.Random(SEED)
    for _ in range(200):
        lines = [
            "".join(rng.choice("ab中😀 ") for _ in range(rng.randint(1, 15)))
            for _ in range(rng.randint(1, 80))
        ]
        lines = [line.strip() or "x" for line in lines]
        html = "\n".join(lines)
        limit = rng.choice([40, 80, 160])  # a line is at most 30 units: it always fits
        parts = split_message(html, limit=limit)
        assert_same_text(html, assert_valid_parts(parts, limit))
        for part in parts:
            assert set(part.split("\n")) <= set(lines), (limit, html, parts)


def test_random_real_size_messages() -> None:
    rng = random.Random(SEED + 1)
    for _ in range(10):
        html = "\n".join(_random_html(rng) for _ in range(rng.randint(20, 120)))
        parts = split_message(html)
        assert_same_text(html, assert_valid_parts(parts, MESSAGE_LIMIT))
