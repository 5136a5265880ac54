"""/mentees: a mentor's active mentees with when each next talk is due, and a button under
each that starts /talk with them (handlers/cultivate/talk.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.commands import command
from handlers.chat.screen import Btn, Screen, rows_of
from handlers.chat.screens import Act, screen
from storage import mentoring
from storage.models import Role
from storage.people import Actor

if TYPE_CHECKING:
    from bot.settings import Settings

COMMAND = command("mentees", Role.MENTOR)


def cadence(settings: Settings) -> dict[str, Any]:
    """How storage counts when each next talk is due (mentoring.list_mentees, own_mentee):
    from now, in the county's time zone, every so many days, "soon" so many days before."""
    return {
        "now": datetime.now(UTC),
        "tz": settings.tz,
        "every_days": settings.talk_every_days,
        "soon_days": settings.talk_soon_days,
    }


async def mentee_list(
    session: AsyncSession, actor: Actor, settings: Settings
) -> list[mentoring.Mentee]:
    """The mentor's active mentees, the most urgent talk first."""
    return await mentoring.list_mentees(session, actor, **cadence(settings))


@screen(command=COMMAND)
async def show_mentees(act: Act) -> Screen:
    """List the mentor's mentees; "log a talk" under each opens /talk with them."""
    async with act.session() as session:
        mentees = await mentee_list(session, act.actor, act.settings)
    if not mentees:
        return Screen("mentoring/no_mentees")
    log = act.label("talk.log")
    buttons = [Btn(f"{log} {m.full_name}", f"tk:s:{m.pairing_id}") for m in mentees]
    return Screen(
        "mentoring/mentees",
        {"mentees": mentees, "every_days": act.settings.talk_every_days},
        rows_of(buttons, 1),
    )


MENUS = (show_mentees,)
