"""/mydata: what the county holds about you, what you consented to, and who read your file.

Anyone may ask, about themselves only: the files held on them (ID and phone masked), forms
they have started but not sent, their roles, the consents they gave with dates, and each
read or export of their file with its time and the reader's role (never the reader's name).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from handlers.chat.commands import command
from handlers.chat.screen import Screen
from handlers.chat.screens import Act, screen
from storage import audit, mydata
from storage.models import Person

COMMAND = command("mydata")
# The flows whose unsent drafts hold the person's own answers (user_data keys).
DRAFT_FLOWS = ("nomination", "recommendation")


def _when(tz: ZoneInfo, at: datetime | None) -> str | None:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at else None


def _answered(draft: dict[str, Any]) -> int:
    answers = draft.get("answers")
    if not isinstance(answers, dict):
        return 0
    # Questions answered; the consents (True) are shown with the files, not here.
    return sum(1 for v in answers.values() if v not in (None, "") and v is not True)


@screen(command=COMMAND, actor=True)
async def show_mydata(act: Act) -> Screen:
    """Show the person what is held about them, their consents and who read their file."""
    actor = act.maybe_actor
    tz = act.settings.tz
    async with act.session() as session:
        if actor is None:
            name, files, reads = None, [], []
        else:
            person = await session.get(Person, actor.person_id)
            name = person.full_name if person is not None else None
            files = await mydata.files_of(session, actor.person_id)
            reads = await mydata.reads_of(session, actor.person_id, [f.id for f in files])
            # Looking is itself recorded: the person asked what is held, and was shown it.
            await audit.record(session, actor.person_id, "mydata.show", "person", actor.person_id)
    values = dict(
        full_name=name,
        # Every time a file carries (made, consents) as the county's clock reads it.
        files=[
            {k: _when(tz, v) if isinstance(v, datetime) else v for k, v in asdict(f).items()}
            for f in files
        ],
        drafts=[
            {"flow": flow, "answers": _answered(draft)}
            for flow in DRAFT_FLOWS
            if isinstance(draft := act.chat.user_data.get(flow), dict)
        ],
        roles=[
            {"role": g.role.value, "township": g.township_name, "department": g.department}
            for g in (actor.grants if actor is not None else ())
        ],
        reads=[
            {**asdict(r), "at": _when(tz, r.at), "export": r.action.startswith("export.")}
            for r in reads
        ],
    )
    return Screen("mydata/show", values)


MENUS = (show_mydata,)
