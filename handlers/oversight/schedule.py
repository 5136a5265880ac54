"""/schedule: when an official's summary is pushed, changed with buttons.

Every press carries the whole choice so far (`sch:w:3:510`: weekly, Thursday, 08:30), so
there is no conversation state to lose; the last press saves.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from handlers.chat import codec as cb
from handlers.chat.commands import command
from handlers.chat.screen import Btn, Rows, Screen, rows_of
from handlers.chat.screens import Act, screen
from storage import summary
from storage.models import OFFICIAL_ROLES, Role
from storage.people import Actor
from storage.summary import Schedule

COMMAND = command("schedule", *OFFICIAL_ROLES)
CADENCE_CODES = {"w": summary.WEEKLY, "m": summary.MONTHLY}

_CADENCE = cb.choice(*CADENCE_CODES)
_DAY = cb.Number(0, 99)
SCHEDULE_OFF = cb.Button("sch", "off")
MENU = cb.Button("sch", "menu")
# off, then cadence → day → minute of the day, one press at a time.
SCHEDULE_PRESS = cb.AnyOf(
    SCHEDULE_OFF,
    cb.Button("sch", _CADENCE),
    cb.Button("sch", _CADENCE, _DAY),
    cb.Button("sch", _CADENCE, _DAY, cb.Number(0, 9999)),
)


def _effective(actor: Actor, schedule: Schedule | None) -> Schedule:
    if schedule is not None:
        return schedule
    default = summary.default_schedule(
        county_official=actor.has(Role.COUNTY_OFFICIAL),
        township_official=bool(actor.township_ids(Role.TOWNSHIP_OFFICIAL)),
    )
    return default or Schedule(summary.OFF, 0, summary.DEFAULT_AT, is_default=True)


def _back(act: Act) -> tuple[Btn, ...]:
    return (Btn(act.label("schedule.back"), MENU.data()),)


def _shown(act: Act, schedule: Schedule, *, saved: bool) -> Screen:
    tz = act.settings.tz
    moment = datetime.now(UTC)
    upcoming = summary.next_moment(schedule, moment, tz)
    menu = rows_of(
        [
            Btn(act.label("schedule.weekly"), "sch:w"),
            Btn(act.label("schedule.monthly"), "sch:m"),
            Btn(act.label("schedule.off"), SCHEDULE_OFF.data()),
        ]
    )
    values = {
        "cadence": schedule.cadence,
        "day": schedule.day,
        "at": time(schedule.at_minute // 60, schedule.at_minute % 60),
        "next_at": upcoming.astimezone(tz) if upcoming is not None else None,
        "due_now": summary.due_period(schedule, moment, tz) is not None,
        "is_default": schedule.is_default,
        "saved": saved,
    }
    return Screen("summary/schedule", values, menu, edit=True)


async def _current(act: Act) -> Screen:
    async with act.session() as session:
        stored = await summary.load_schedule(session, act.actor.person_id)
    return _shown(act, _effective(act.actor, stored), saved=False)


@screen(command=COMMAND, button=MENU)
async def show_schedule(act: Act) -> Screen:
    """The official's push schedule with buttons to change it."""
    return await _current(act)


async def _save(act: Act, choice: Schedule) -> Screen:
    """Save `choice` and show it saved; one that storage refuses shows the menu again."""
    async with act.session() as session:
        try:
            await summary.save_schedule(session, act.actor.person_id, choice)
        except ValueError:
            stored = None
        else:
            stored = await summary.load_schedule(session, act.actor.person_id)
    return await _current(act) if stored is None else _shown(act, stored, saved=True)


@screen(button=SCHEDULE_PRESS, needs=COMMAND.needs)
async def choose_schedule(act: Act) -> Screen:
    """Walk cadence → day → time with buttons; save on the last press (or on "off")."""
    if act.button == SCHEDULE_OFF:
        return await _save(act, Schedule(summary.OFF, 0, summary.DEFAULT_AT))
    parts: list[Any] = list(act.values)
    code = parts[0]
    cadence = CADENCE_CODES[code]
    if len(parts) == 3:
        # Only the offered times; anything else is a forged button and shows the menu again.
        if parts[2] not in summary.TIMES:
            return await _current(act)
        return await _save(act, Schedule(cadence, parts[1], parts[2]))
    if len(parts) == 1:
        if cadence == summary.WEEKLY:
            days = [Btn(act.label(f"schedule.weekday.{d}"), f"sch:{code}:{d}") for d in range(7)]
            per_row = 4
        else:
            days = [Btn(str(d), f"sch:{code}:{d}") for d in range(1, summary.MONTH_DAYS + 1)]
            per_row = 7
        rows: Rows = (*rows_of(days, per_row), _back(act))
        return Screen("summary/schedule_pick_day", {"cadence": cadence}, rows, edit=True)
    day = int(parts[1])
    times = tuple(
        Btn(f"{m // 60:02d}:{m % 60:02d}", f"sch:{code}:{day}:{m}") for m in summary.TIMES
    )
    values = {"cadence": cadence, "day": day}
    return Screen("summary/schedule_pick_time", values, (times, _back(act)), edit=True)


MENUS = (show_schedule, choose_schedule)
