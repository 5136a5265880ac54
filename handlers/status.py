"""/status: where a candidate's file is, with the date of each step.

Anyone may ask, about themselves only (the files whose person is the asker's). Each step is
the status a file reached and when, from its status history; who moved it and why stay with
the officials. A cadre in the pool also sees their mentors' names. No ID number or phone is
shown: the person knows their own, and /mydata shows what is held.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from zoneinfo import ZoneInfo

from handlers.chat.commands import command
from handlers.chat.screen import Screen
from handlers.chat.screens import Act, screen
from storage import notices

COMMAND = command("status")


def _day(tz: ZoneInfo, at: datetime) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d")


@screen(command=COMMAND, actor=True)
async def show_status(act: Act) -> Screen:
    """Show the asker's files, each with its steps and dates."""
    actor = act.maybe_actor
    tz = act.settings.tz
    files: list[notices.OwnFile] = []
    if actor is not None:
        async with act.session() as session:
            files = await notices.own_files(session, actor.person_id)
    shown = [
        {**asdict(f), "steps": [{**asdict(s), "on": _day(tz, s.at)} for s in f.steps]}
        for f in files
    ]
    return Screen("status/show", {"files": shown})


MENUS = (show_status,)
