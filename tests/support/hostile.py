"""Hostile template values: render any template with nasty input, knowing nothing about it.

`HostileValue` prints as markup-like text with entities, quotes and multi-code-point emoji,
and quacks like every kind of value a template might use: a string (filters, `join`), a
record (`.field`, `["key"]`, method calls), a collection (`in` is always true, so every
`{% if "x" in roles %}` branch renders; iteration yields two hostile values, so that
`for key, value in answers.items()` unpacks), and a number (`int`, `float`, `%d`,
`+ - * /`, `<`/`>` against numbers).

`==` is the one thing a template branches on that a single value cannot satisfy both ways:
with `equal=False` it compares by text (so `code == "x"` is false and `{% else %}` renders),
with `equal=True` it equals everything (so the first `{% if code == "x" %}` branch renders).

It deliberately has no `__html__`: autoescaping must treat it as untrusted text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jinja2
import jinja2.meta

# Tags (one stray closing), a bare and an escaped '&', quotes, a script, a ZWJ emoji, a flag.
HOSTILE = '<b>x</i> & &amp; "q" \'a\' <script>alert(1)</script> 👩‍🌾 🇨🇳 <a href="x">'
ESCAPED_MARKER = "&lt;script&gt;"
NUMBER = 2  # what numeric conversions return; also the length of iterations

# Names that Jinja or MarkupSafe probe with hasattr(); a hostile value must not fake them.
_PROBED = frozenset(
    {"jinja_pass_arg", "contextfunction", "evalcontextfunction", "environmentfunction"}
)


def long_hostile(length: int = 5000) -> str:
    """HOSTILE repeated to exactly `length` characters (code points)."""
    text = HOSTILE * (length // len(HOSTILE) + 1)
    return text[:length]


class HostileValue:
    """A value whose text is hostile and that supports whatever a template does with it."""

    __slots__ = ("equal", "text")

    def __init__(self, text: str = HOSTILE, *, equal: bool = False) -> None:
        self.text = text
        self.equal = equal

    def _child(self) -> HostileValue:
        return HostileValue(self.text, equal=self.equal)

    # Text.
    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"HostileValue({len(self.text)} chars)"

    def __format__(self, spec: str) -> str:
        if spec and spec[-1] in "bdoxXneEfFgG%":
            return format(int(self) if spec[-1] in "bdoxX" else float(self), spec)
        return format(self.text, spec)

    def join(self, items: Any) -> str:
        return self.text.join(str(item) for item in items)

    # Record: any public attribute or item is hostile too, and so is calling it.
    def __getattr__(self, name: str) -> HostileValue:
        if name.startswith("_") or name in _PROBED:
            raise AttributeError(name)
        return self._child()

    def __getitem__(self, key: object) -> HostileValue:
        return self._child()

    def __call__(self, *args: object, **kwargs: object) -> HostileValue:
        return self._child()

    # Collection.
    def __iter__(self) -> Iterator[HostileValue]:
        return iter([self._child() for _ in range(NUMBER)])

    def __len__(self) -> int:
        return NUMBER

    def __bool__(self) -> bool:
        return True

    def __contains__(self, item: object) -> bool:
        return True

    # Number.
    def __int__(self) -> int:
        return NUMBER

    __index__ = __int__

    def __float__(self) -> float:
        return float(NUMBER)

    def __round__(self, ndigits: int | None = None) -> int:
        return NUMBER

    def _num(self, other: object) -> float:
        return float(other) if isinstance(other, int | float | HostileValue) else 1.0

    def __add__(self, other: object) -> float:
        return NUMBER + self._num(other)

    __radd__ = __add__

    def __sub__(self, other: object) -> float:
        return NUMBER - self._num(other)

    def __rsub__(self, other: object) -> float:
        return self._num(other) - NUMBER

    def __mul__(self, other: object) -> float:
        return NUMBER * self._num(other)

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> float:
        return NUMBER / (self._num(other) or 1.0)

    def __rtruediv__(self, other: object) -> float:
        return self._num(other) / NUMBER

    __floordiv__ = __truediv__
    __rfloordiv__ = __rtruediv__

    def __neg__(self) -> int:
        return -NUMBER

    # Comparisons: numerically against numbers, by text against anything else.
    def _key(self, other: object) -> tuple[Any, Any]:
        if isinstance(other, int | float):
            return float(NUMBER), other
        return self.text, str(other)

    def __eq__(self, other: object) -> bool:
        if self.equal:
            return True
        mine, theirs = self._key(other)
        return bool(mine == theirs)

    def __hash__(self) -> int:
        return hash(self.text)

    def __lt__(self, other: object) -> bool:
        mine, theirs = self._key(other)
        return bool(mine < theirs)

    def __le__(self, other: object) -> bool:
        mine, theirs = self._key(other)
        return bool(mine <= theirs)

    def __gt__(self, other: object) -> bool:
        mine, theirs = self._key(other)
        return bool(mine > theirs)

    def __ge__(self, other: object) -> bool:
        mine, theirs = self._key(other)
        return bool(mine >= theirs)


def template_variables(env: jinja2.Environment, source: str) -> set[str]:
    """Variables a template reads from its context, except `locale` (render() passes it)."""
    return jinja2.meta.find_undeclared_variables(env.parse(source)) - {"locale"}


def hostile_values(
    env: jinja2.Environment, source: str, text: str = HOSTILE, *, equal: bool = False
) -> dict[str, HostileValue]:
    """Every variable the template reads, bound to a hostile value with `text`."""
    return {name: HostileValue(text, equal=equal) for name in template_variables(env, source)}


_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def has_cjk(text: str) -> bool:
    return _CJK_RE.search(text) is not None
