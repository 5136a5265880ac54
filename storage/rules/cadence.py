"""Talk rules: the cadence of mentor talks, the talk-date window, the four must-talk topics.

Plain functions, no SQL and no Telegram. "Today" is always the county's date (`tz`), never
the server's: at 00:30 Beijing time it is already the next day, although UTC still shows the
previous one, and a talk logged then belongs to the new day.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from storage.rules.identity import RuleError

SHANGHAI = ZoneInfo("Asia/Shanghai")
EVERY_DAYS = 30
SOON_DAYS = 7
# A talk may be logged late, but not so late that the record is a guess.
BACK_DAYS = 30

TALK_MODES = ("face", "phone", "home")
# 四个必谈, in the order a mentor is asked them.
TALK_TOPICS = ("thought", "work", "life", "problems")
TOPIC_MIN_LEN, TOPIC_MAX_LEN = 2, 1000
# Difficulty.description and Difficulty.resolution are VARCHAR(500).
DIFFICULTY_MIN_LEN, DIFFICULTY_MAX_LEN = 2, 500
RESOLUTION_MIN_LEN, RESOLUTION_MAX_LEN = 2, 500
MAX_DIFFICULTIES = 20


class CadenceState(StrEnum):
    OK = "ok"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


@dataclass(frozen=True, slots=True)
class CadenceStatus:
    """When a pairing's next talk is due and how urgent it is today."""

    due_date: date
    state: CadenceState
    # Days from today to the due date: 0 on the due date itself, negative once overdue.
    days_left: int


def local_date(moment: datetime, tz: ZoneInfo) -> date:
    """The calendar date of an aware moment in the county's time zone."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one (UTC or local)")
    return moment.astimezone(tz).date()


def _check_cadence(every_days: int, soon_days: int) -> None:
    if every_days < 1 or soon_days < 0:
        raise ValueError("need every_days >= 1 and soon_days >= 0")


def due_date(last_talk: date | None, paired_on: date, *, every_days: int = EVERY_DAYS) -> date:
    """The last talk (or, before any talk, the pairing date) plus `every_days`."""
    return (last_talk if last_talk is not None else paired_on) + timedelta(days=every_days)


def talk_status(
    last_talk: date | None,
    paired_on: date,
    now: datetime,
    *,
    every_days: int = EVERY_DAYS,
    soon_days: int = SOON_DAYS,
    tz: ZoneInfo,
) -> CadenceStatus:
    """The cadence of one pairing as of `now`.

    Overdue once today is past the due date; due soon from `soon_days` before it up to and
    including the due date itself; ok before that.
    """
    _check_cadence(every_days, soon_days)
    due = due_date(last_talk, paired_on, every_days=every_days)
    days_left = (due - local_date(now, tz)).days
    if days_left < 0:
        state = CadenceState.OVERDUE
    elif days_left <= soon_days:
        state = CadenceState.DUE_SOON
    else:
        state = CadenceState.OK
    return CadenceStatus(due, state, days_left)


def due_threshold(
    today: date, *, every_days: int = EVERY_DAYS, soon_days: int = SOON_DAYS
) -> date:
    """The latest base date (last talk or pairing date) that is due soon or overdue today.

    A database query selects `base <= due_threshold(...)` to find exactly the pairings that
    `talk_status` calls due_soon or overdue, without loading the others.
    """
    _check_cadence(every_days, soon_days)
    return today + timedelta(days=soon_days - every_days)


def overdue_threshold(today: date, *, every_days: int = EVERY_DAYS) -> date:
    """The latest base date that is overdue today (its due date, base + every_days, is past)."""
    _check_cadence(every_days, 0)
    return today - timedelta(days=every_days + 1)


# ---------------------------------------------------------------------------------------------
# The date of a talk, typed by a mentor: 2026-03-02, 2026/3/2, 2026年3月2日, 3-2, 3/2, 3月2日.

_FULL_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_MONTH_DAY = re.compile(r"^(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")


def parse_talk_date(raw: str, *, today: date) -> date:
    """A typed date, or RuleError "talk_date.format" / "talk_date.invalid".

    Without a year the date is read in whichever year (last, this or next) puts it nearest to
    today: on 5 January "12-31" is last year's New Year's Eve, on 2 March "3-5" is three days
    ahead (and refused later as a future date, which is the mistake the person made).
    """
    text = unicodedata.normalize("NFKC", raw).strip()
    full = _FULL_DATE.match(text)
    if full:
        year, month, day = (int(g) for g in full.groups())
        try:
            return date(year, month, day)
        except ValueError:
            raise RuleError("talk_date.invalid") from None
    short = _MONTH_DAY.match(text)
    if not short:
        raise RuleError("talk_date.format")
    month, day = (int(g) for g in short.groups())
    candidates = []
    for year in (today.year - 1, today.year, today.year + 1):
        try:
            candidates.append(date(year, month, day))
        except ValueError:
            continue  # 2-29 outside a leap year
    if not candidates:
        raise RuleError("talk_date.invalid")
    return min(candidates, key=lambda d: abs((d - today).days))


def check_talk_date(
    value: date, *, today: date, back_days: int | None = BACK_DAYS, not_before: date | None = None
) -> date:
    """`value` if a talk may be logged for it today, else RuleError. `back_days` None: no
    limit back (an official recording an older talk on a mentor's behalf).

    Codes: "talk_date.future"; "talk_date.too_old" (params: days); "talk_date.before_pairing"
    (params: date, ISO) for a day before the mentor was paired with the cadre.
    """
    if value > today:
        raise RuleError("talk_date.future")
    if back_days is not None and (today - value).days > back_days:
        raise RuleError("talk_date.too_old", {"days": back_days})
    if not_before is not None and value < not_before:
        raise RuleError("talk_date.before_pairing", {"date": not_before.isoformat()})
    return value
