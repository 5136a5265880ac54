"""Logging set-up with a filter that masks anything shaped like an ID number or a phone.

The bot accepts an ID number or a mobile typed with spaces (any Unicode space), full-width
digits and letters, a lower-case "x", and a phone with dashes, dots, parentheses, invisible
direction marks and a "+86", "0086", "(+86)" or "86" prefix (storage/rules/identity.py).
Whatever a person typed can reach a log line as it was typed, and PTB's own DEBUG lines carry
whole updates as a Python repr (where "\u3000" is written as the six characters ``\\u3000``)
or as JSON (where a full-width digit may be ``\\uff11``). So `redact` first reads the text as
units, one per character or escape sequence, classifies each unit (digit, "X", "+", separator,
dot, anything else), and looks for ID numbers and mobiles in that sequence of classes; a match
replaces the original characters it spans.
"""

from __future__ import annotations

import logging
import re
import sys
import unicodedata
from functools import lru_cache

ID_MASK = "[id-number]"
PHONE_MASK = "[phone]"

# One unit: an escape sequence as repr() or JSON writes it (one or more backslashes, for text
# escaped twice), or any single character.
_UNIT = re.compile(r"\\+(?:u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{2}|[tnr])|.", re.DOTALL)
_ESCAPED_CONTROLS = {"t": "\t", "n": "\n", "r": "\r"}

# Classes, one character each, matched by the patterns below.
_SEPARATOR = "_"  # spaces, dashes, parentheses, invisible marks
_DOT = "."  # a separator too, except right after a mobile's leading 1 (see _PHONE)
_OTHER = "#"

# 18 characters: 17 digits and a digit or X, the first not 0, separators anywhere between.
_ID = r"(?<![0-9])[1-9](?:[_.]*[0-9]){16}[_.]*[0-9X](?![0-9])"
# A mainland mobile with an optional country prefix. A dot may not split the leading "1" from
# the next digit, so that version strings such as "1.38.12345678" stay readable; nobody writes
# a phone that way.
_PHONE = (
    r"(?<![0-9])(?:(?:\+[_.]*8[_.]*6|0[_.]*0[_.]*8[_.]*6|8[_.]*6)[_.]*)?"
    r"1_*[3-9](?:[_.]*[0-9]){9}(?![0-9])"
)
_SECRET = re.compile(f"(?P<id>{_ID})|(?P<phone>{_PHONE})")
# Anything shorter than a mobile's 11 digits cannot hold a secret: skip the unit scan.
_DIGIT_LIKE = re.compile(r"[0-9\uff10-\uff19]|\\u[fF][fF]1[0-9]")
_MIN_DIGITS = 11


def _decode(unit: str) -> str:
    if len(unit) == 1:
        return unit
    escape = unit.lstrip("\\")
    if escape[0] in _ESCAPED_CONTROLS:
        return _ESCAPED_CONTROLS[escape[0]]
    return chr(int(escape[1:], 16))


@lru_cache(maxsize=4096)
def _classify(unit: str) -> str:
    char = _decode(unit)
    code = ord(char)
    # Full-width forms sit 0xFEE0 above ASCII; U+3000 is the ideographic space.
    if 0xFF01 <= code <= 0xFF5E:
        char = chr(code - 0xFEE0)
    if "0" <= char <= "9":
        return char
    if char in "Xx":
        return "X"
    if char == "+":
        return "+"
    if char == ".":
        return _DOT
    if char.isspace() or char in "-()" or unicodedata.category(char) == "Cf":
        return _SEPARATOR
    return _OTHER


def redact(text: str) -> str:
    """`text` with every ID number and mobile, in any form the bot accepts, masked."""
    if len(_DIGIT_LIKE.findall(text)) < _MIN_DIGITS:
        return text
    spans = [(m.start(), m.end()) for m in _UNIT.finditer(text)]
    classes = "".join(_classify(text[start:end]) for start, end in spans)
    pieces: list[str] = []
    position = 0
    for found in _SECRET.finditer(classes):
        start, end = spans[found.start()][0], spans[found.end() - 1][1]
        pieces.append(text[position:start])
        pieces.append(ID_MASK if found.lastgroup == "id" else PHONE_MASK)
        position = end
    if not pieces:
        return text
    pieces.append(text[position:])
    return "".join(pieces)


class RedactingFilter(logging.Filter):
    """Rewrite each record so neither its message nor its traceback carries personal data."""

    def __init__(self) -> None:
        super().__init__()
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # A record whose arguments do not fit its format: keep both, masked, rather than
            # let logging print the raw arguments in its own error report.
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def configure(level: str = "INFO") -> None:
    """One handler on the root logger, with the redacting filter: every record of every
    logger that propagates (PTB's DEBUG lines with whole updates among them) passes it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL, which holds the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
