"""Validators for what a person types about themselves: name, resident ID, phone, free text.

Every failure is a `RuleError` with a machine code; the code and its params never contain the
input itself, so an error that ends up in a log leaks no personal data.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal


class RuleError(ValueError):
    """Input breaks a rule. `code` picks the template; `params` fill it in (never user input)."""

    def __init__(self, code: str, params: Mapping[str, object] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.params: dict[str, object] = dict(params or {})

    def __repr__(self) -> str:
        return f"RuleError({self.code!r}, {self.params!r})"


# Characters a phone or a PC IME in Chinese mode produces: the full-width ASCII block
# (U+FF01–U+FF5E sits exactly 0xFEE0 above ASCII) and the ideographic space.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")

# Bidi embeddings, overrides and isolates can make a reviewer read text in a different order
# than it is stored, so free text carrying them is refused rather than silently kept.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# ---------------------------------------------------------------------------------------------
# Names

NAME_MIN = 2
NAME_MAX = 20
MIDDLE_DOT = "\u00b7"

# What people type instead of "·" (U+00B7) in names such as 阿依古丽·买买提: the bullet, the
# katakana middle dot (and its half-width form), the full-width and ASCII full stops, and a few
# math dots. They become "·" only between two name characters; anywhere else they stay as typed
# and the name is refused, because a stray symbol at the edge is more likely a typo than a dot.
# (U+0387 GREEK ANO TELEIA needs no entry: NFC already turns it into U+00B7.)
_DOT_LOOKALIKES = frozenset("\u2022\u30fb\uff65\uff0e.\u2027\u2219\u22c5")

_NAME_SPACES = re.compile("[ \u00a0]+")

# CJK unified ideographs: the basic block, Extension A, and Extensions B–I, because rare
# characters (生僻字) do occur in registered names.
_CJK_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2EE5F),
    (0x30000, 0x323AF),
)


def _is_cjk(char: str) -> bool:
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _is_latin(char: str) -> bool:
    return char.isalpha() and unicodedata.name(char, "").startswith("LATIN ")


def _is_name_letter(char: str) -> bool:
    return _is_cjk(char) or _is_latin(char)


def normalize_name(raw: str) -> str:
    """A person's name as it should be stored, or RuleError.

    Normalization: full-width letters and spaces to ASCII, NFC, strip; runs of spaces collapse
    and a space survives only between two Latin letters ("Zhang  San" → "Zhang San",
    "张 三" → "张三", "阿依古丽 · 买买提" → "阿依古丽·买买提"); dot look-alikes between two
    name characters become "·".

    Codes: "name.chars" (anything but CJK ideographs, Latin letters, "·" and those spaces —
    control and zero-width characters included), "name.dots" (a "·" at either end or two in a
    row), "name.length" (params min, max; counted in characters after normalization).
    """
    text = unicodedata.normalize("NFC", raw.translate(_FULLWIDTH)).strip()
    if any(c in ZERO_WIDTH for c in text):
        raise RuleError("name.chars")
    text = _NAME_SPACES.sub(" ", text)
    # `text` is stripped and its spaces collapsed, so every space has two non-space neighbours.
    squeezed = "".join(
        c
        for i, c in enumerate(text)
        if c != " " or (_is_latin(text[i - 1]) and _is_latin(text[i + 1]))
    )
    kept = [
        MIDDLE_DOT
        if c in _DOT_LOOKALIKES
        and 0 < i < len(squeezed) - 1
        and _is_name_letter(squeezed[i - 1])
        and _is_name_letter(squeezed[i + 1])
        else c
        for i, c in enumerate(squeezed)
    ]
    name = "".join(kept)
    if not all(_is_name_letter(c) or c in (MIDDLE_DOT, " ") for c in name):
        raise RuleError("name.chars")
    if name.startswith(MIDDLE_DOT) or name.endswith(MIDDLE_DOT) or MIDDLE_DOT * 2 in name:
        raise RuleError("name.dots")
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise RuleError("name.length", {"min": NAME_MIN, "max": NAME_MAX})
    return name


# ---------------------------------------------------------------------------------------------
# Resident identity card numbers (GB 11643-1999)

Gender = Literal["male", "female"]

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"[1-9][0-9]{16}[0-9X]")
_FIRST17_RE = re.compile(r"[0-9]{17}")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class IdInfo:
    number: str
    birth_date: date
    gender: Gender
    region: str


def check_digit(first17: str) -> str:
    """The 18th character for the first 17 digits: "0"–"9" or "X". RuleError "id.format"."""
    if not _FIRST17_RE.fullmatch(first17):
        raise RuleError("id.format")
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def age_on(birth: date, today: date) -> int:
    """Completed years at `today`.

    Someone born on 29 February gains a year on 1 March in common years (the tuple comparison
    puts 28 Feb before and 1 Mar after 29 Feb), as Chinese practice counts it.
    """
    had_birthday = (today.month, today.day) >= (birth.month, birth.day)
    return today.year - birth.year - (0 if had_birthday else 1)


def parse_id_number(raw: str, *, today: date, min_age: int = 18, max_age: int = 60) -> IdInfo:
    """Check an 18-character resident ID and read birth date, gender and region from it.

    Spaces anywhere, full-width digits and letters, and a lowercase "x" are accepted. Checks
    run in this order, and the first failure is raised: "id.format" (not 17 digits + digit/X,
    or a leading 0), "id.checksum", "id.birthdate" (no such calendar day), "id.future",
    "id.age" (params min, max; both ends inclusive).
    """
    if min_age > max_age:
        raise ValueError("min_age is greater than max_age")
    number = _WHITESPACE.sub("", raw.translate(_FULLWIDTH)).replace("x", "X")
    if not _ID_RE.fullmatch(number):
        raise RuleError("id.format")
    if check_digit(number[:17]) != number[17]:
        raise RuleError("id.checksum")
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise RuleError("id.birthdate") from None
    if birth > today:
        raise RuleError("id.future")
    if not min_age <= age_on(birth, today) <= max_age:
        raise RuleError("id.age", {"min": min_age, "max": max_age})
    gender: Gender = "male" if int(number[16]) % 2 else "female"
    return IdInfo(number=number, birth_date=birth, gender=gender, region=number[:6])


def make_id_number(region: str, birth: date, seq: int, male: bool) -> str:
    """A valid ID number, for tests and demo data.

    The three-digit order code is `2 * seq + male`, so `seq` in 0–499 covers every code
    exactly once and its parity always matches `male`.
    """
    if not re.fullmatch(r"[1-9][0-9]{5}", region):
        raise ValueError("region must be six digits, not starting with 0")
    if not 0 <= seq <= 499:
        raise ValueError("seq must be in 0..499")
    if birth.year < 1000:
        raise ValueError("birth year must have four digits")
    first17 = f"{region}{birth:%Y%m%d}{2 * seq + int(male):03d}"
    return first17 + check_digit(first17)


def cross_check(info: IdInfo, *, gender: str | None, birth_date: date | None) -> None:
    """Compare a person's own answers with their ID; None means "not asked".

    Codes: "id.gender_mismatch", "id.birth_mismatch" (gender is checked first).
    """
    if gender is not None:
        if gender not in ("male", "female"):
            raise ValueError(f"gender must be 'male' or 'female', not {gender!r}")
        if gender != info.gender:
            raise RuleError("id.gender_mismatch")
    if birth_date is not None and birth_date != info.birth_date:
        raise RuleError("id.birth_mismatch")


# ---------------------------------------------------------------------------------------------
# Phone numbers (mainland mobile)

_PHONE_SEPARATORS = re.compile(r"[\s\-().]+")
_MOBILE_RE = re.compile(r"1[3-9][0-9]{9}")


def normalize_phone(raw: str) -> str:
    """The 11 digits of a mainland mobile number, or RuleError "phone.format".

    Accepted around the digits: full-width characters, spaces, dashes, parentheses, dots, and a
    country prefix "+86", "0086", "(+86)" or a bare "86" (only in front of 11 more digits).
    """
    # Numbers pasted from a contact card often carry invisible direction marks (category Cf).
    text = "".join(c for c in raw.translate(_FULLWIDTH) if unicodedata.category(c) != "Cf")
    digits = _PHONE_SEPARATORS.sub("", text)
    if digits.startswith("+"):
        # Any other country code is refused outright: "+1 415 555 0100" without its "+"
        # would otherwise pass as the mainland-looking 14155550100.
        if not digits.startswith("+86"):
            raise RuleError("phone.format")
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not _MOBILE_RE.fullmatch(digits):
        raise RuleError("phone.format")
    return digits


# ---------------------------------------------------------------------------------------------
# Free text (motivation, experience, remarks)

_LINE_BREAKS = re.compile("\r\n|[\r\u2028\u2029]")
_TRAILING_SPACE = re.compile(r"[ \t\u3000]+$", re.MULTILINE)
_BLANK_RUN = re.compile(r"\n{3,}")


def clean_text(raw: str, *, max_len: int, min_len: int = 1) -> str:
    """Free text tidied for storage, or RuleError.

    Line endings become "\\n", tabs become spaces, zero-width characters are removed, trailing
    spaces on each line go, and three or more line breaks in a row become two (at most one blank
    line between paragraphs). Codes: "text.chars" (any other control character, or a bidi
    override/isolate), "text.length" (params min, max; counted after cleaning).
    """
    if not 0 <= min_len <= max_len:
        raise ValueError("need 0 <= min_len <= max_len")
    text = _LINE_BREAKS.sub("\n", raw).replace("\t", " ")
    text = "".join(c for c in text if c not in ZERO_WIDTH)
    if any((unicodedata.category(c) == "Cc" and c != "\n") or c in _BIDI_CONTROLS for c in text):
        raise RuleError("text.chars")
    text = _BLANK_RUN.sub("\n\n", _TRAILING_SPACE.sub("", text)).strip()
    if not min_len <= len(text) <= max_len:
        raise RuleError("text.length", {"min": min_len, "max": max_len})
    return text


# ---------------------------------------------------------------------------------------------
# Masking for screens and messages


def mask_id(number: str) -> str:
    """First and last four kept, e.g. 5201**********123X: enough to recognise, no more."""
    return _mask(number, keep_head=4, keep_tail=4)


def mask_phone(number: str) -> str:
    """First three and last four kept, e.g. 138****5678."""
    return _mask(number, keep_head=3, keep_tail=4)


def _mask(value: str, *, keep_head: int, keep_tail: int) -> str:
    if len(value) <= keep_head + keep_tail:
        # Too short to show anything without showing (nearly) all of it.
        return "*" * len(value)
    return value[:keep_head] + "*" * (len(value) - keep_head - keep_tail) + value[-keep_tail:]
