"""Every template, every locale: hostile input renders to valid, escaped Telegram HTML."""

from __future__ import annotations

import jinja2
import pytest
from jinja2 import DictLoader, Environment, nodes

import templates
from bot.app import COMMANDS
from handlers.chat.menu import help_groups
from storage.models import Role
from templates import (
    DEFAULT_LOCALE,
    LOCALES,
    build_environment,
    normalize_locale,
    render,
    split_message,
    template_names,
)
from tests.support.hostile import (
    ESCAPED_MARKER,
    HOSTILE,
    HostileValue,
    has_cjk,
    hostile_values,
    long_hostile,
)
from tests.support.telegram_html import LIMIT, check

ENV = build_environment()
CASES = [
    pytest.param(locale, name, id=f"{locale}/{name}")
    for locale in LOCALES
    for name in template_names(locale)
]
TEXTS = [pytest.param(HOSTILE, id="short"), pytest.param(long_hostile(5000), id="5000-chars")]
EQUALITY = [pytest.param(False, id="ne"), pytest.param(True, id="eq")]


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def source_of(locale: str, name: str) -> str:
    assert ENV.loader is not None
    source, _, _ = ENV.loader.get_source(ENV, f"{locale}/{name}.html.j2")
    return source


def labels(locale: str) -> dict[str, str]:
    module = ENV.get_template(f"{locale}/_labels.html.j2").module
    found: dict[str, str] = module.labels  # type: ignore[attr-defined]
    return found


def test_there_are_templates() -> None:
    assert len(CASES) >= 2 * 10


@pytest.mark.parametrize("equal", EQUALITY)
@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize(("locale", "name"), CASES)
def test_hostile_values_render_to_valid_escaped_html(
    locale: str, name: str, text: str, equal: bool
) -> None:
    source = source_of(locale, name)
    html = render(ENV, locale, name, **hostile_values(ENV, source, text, equal=equal))
    # The same branches with empty text: any difference is hostile text the template printed.
    blank = render(ENV, locale, name, **hostile_values(ENV, source, "", equal=equal))

    parts = split_message(html)

    assert parts, "rendering produced no message"
    plain = []
    for part in parts:
        assert utf16_len(part) <= LIMIT
        plain.append(check(part))
    joined = "".join(parts)
    assert "<script" not in joined
    assert "</i>" not in joined
    if html != blank:  # printed, as text or in an attribute: escaped, never a tag
        assert ESCAPED_MARKER in html
        assert "&lt;b&gt;" in html
    text_shown = "".join(plain)
    if text_shown != "".join(check(part) for part in split_message(blank)):
        # Printed as text: it reaches the reader verbatim, quotes and emoji intact.
        assert "<script>alert(1)</script>" in text_shown
        assert "\"q\" 'a'" in text_shown
        assert "👩‍🌾" in text_shown


def test_hostile_value_survives_common_template_idioms() -> None:
    source = (
        "{{ v }}|{{ v.name }}|{{ v['k'] }}|{{ v.get('x') }}|{% for a in v %}[{{ a }}]{% endfor %}"
        "|{% for k, w in v.items() %}{{ k }}={{ w }}{% endfor %}|{{ v | length }}"
        "|{{ v | join(', ') }}|{{ '%d%%' % v }}|{{ v + 1 }}|{{ v * 2 }}|{{ v / 2 }}"
        "|{{ '{:>3}'.format(v) }}|{{ 'x' in v }}|{{ v > 1 }}|{{ v | upper | truncate(9) }}"
        "|{{ v | int }}|{{ v | round }}|{{ v | sort | first }}"
    )
    out = ENV.from_string(source).render(v=HostileValue("<i>"))
    assert "<i>" not in out
    assert out.startswith("&lt;i&gt;|&lt;i&gt;|&lt;i&gt;|&lt;i&gt;|[&lt;i&gt;][&lt;i&gt;]|")
    assert "|2%|3.0|4.0|1.0|" in out
    assert (
        ENV.from_string("{% if v == 'a' %}A{% else %}B{% endif %}").render(v=HostileValue()) == "B"
    )
    assert (
        ENV.from_string("{% if v == 'a' %}A{% else %}B{% endif %}").render(
            v=HostileValue(equal=True)
        )
        == "A"
    )


def test_every_locale_has_the_same_templates() -> None:
    names = {locale: set(template_names(locale)) for locale in LOCALES}
    default = names[DEFAULT_LOCALE]
    for locale, found in names.items():
        assert found - default == set(), f"only in {locale}"
        assert default - found == set(), f"missing from {locale}"


def test_template_names_are_flow_relative_and_skip_partials() -> None:
    names = template_names("en")
    assert "start/welcome" in names
    assert all(not n.endswith(".j2") and not n.split("/")[-1].startswith("_") for n in names)


def test_labels_have_the_same_keys_in_every_locale() -> None:
    keys = {locale: set(labels(locale)) for locale in LOCALES}
    for locale in LOCALES:
        assert keys[locale] == keys[DEFAULT_LOCALE], locale
        assert all(isinstance(v, str) and v.strip() for v in labels(locale).values())


def test_every_role_has_a_label() -> None:
    for locale in LOCALES:
        for role in Role:
            assert f"role.{role.value}" in labels(locale), (locale, role)


def test_autoescape_is_on_for_j2_templates() -> None:
    env = build_environment()
    autoescape = env.autoescape
    assert (autoescape("x.html.j2") if callable(autoescape) else autoescape) is True
    assert env.from_string("{{ v }}").render(v="<b>&") == "&lt;b&gt;&amp;"


def test_strict_undefined_raises_on_a_missing_variable() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render(ENV, "en", "start/invite_throttled")
    with pytest.raises(jinja2.UndefinedError):
        ENV.from_string("{{ nope }}").render()


def test_render_falls_back_to_the_default_locale() -> None:
    env = Environment(
        loader=DictLoader({"zh_CN/only.html.j2": "仅中文 {{ locale }}"}),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    assert render(env, "en", "only") == "仅中文 en"


def _help_groups(roles: set[Role]) -> list[tuple[str, list[dict[str, str]]]]:
    return [
        (group, [{"name": c.name, "summary": c.summary_key} for c in commands])
        for group, commands in help_groups(roles, COMMANDS)
    ]


def test_render_strips_surrounding_whitespace() -> None:
    html = render(ENV, "en", "start/help", groups=_help_groups(set()))
    assert html == html.strip()
    assert "/vetting" not in html  # branches follow real values too
    assert "/vetting" in render(ENV, "en", "start/help", groups=_help_groups({Role.REVIEWER}))


def test_default_locale_is_chinese() -> None:
    assert DEFAULT_LOCALE == "zh_CN"
    assert templates.LOCALES[0] == "zh_CN"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("en-US", "en"),
        ("en", "en"),
        ("EN-gb", "en"),
        ("zh-hans", "zh_CN"),
        ("zh-CN", "zh_CN"),
        ("zh-hant", "zh_CN"),
        ("fr", DEFAULT_LOCALE),
        ("", DEFAULT_LOCALE),
        (None, DEFAULT_LOCALE),
    ],
)
def test_normalize_locale(code: str | None, expected: str) -> None:
    assert normalize_locale(code) == expected


def test_normalize_locale_honours_a_given_default() -> None:
    assert normalize_locale("fr", default="en") == "en"
    assert normalize_locale(None, default="en") == "en"


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in template_names(DEFAULT_LOCALE)])
def test_default_locale_templates_are_in_chinese(name: str) -> None:
    """Each zh_CN template's own text has a Chinese character, unless it only prints a value."""
    tree = ENV.parse(source_of(DEFAULT_LOCALE, name))
    literal = "".join(node.data for node in tree.find_all(nodes.TemplateData))
    if any(ch.isalpha() for ch in literal):
        assert has_cjk(literal), literal
