"""Attendance, marked by the organizer: the check-in list of a session
(``tr:c:<training>:<page>``), one ✅/⬜ button per invitee (``tr:t:<invite>:<page>``).

This is how attendance is kept; the check-in code (checkin.py) is an optional shortcut for
invitees, never a condition.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.codec import ID, PAGE, Button
from handlers.chat.flow import InChat
from handlers.chat.paged import Pages
from handlers.chat.screen import Btn, Screen
from handlers.chat.screens import Act, screen
from handlers.cultivate.training_values import PAGER, invitee_page, unless_closed
from storage import trainings
from storage.people import Actor

CHECKIN_LIST = Button("tr", "c", ID, PAGE)
TICK = Button("tr", "t", ID, PAGE)
CHECKINS = Pages("trainings/checkin_list", PAGER, CHECKIN_LIST)


async def checkin_screen(
    session: AsyncSession, at: InChat, actor: Actor, training_id: int, number: int
) -> Screen:
    """One page of the invitees, each a button that ticks or unticks them."""
    page = await trainings.invitees(
        session, actor, training_id, offset=PAGER.offset(number), limit=PAGER.per_page
    )
    view = await trainings.training_view(session, actor, training_id)
    rows: list[tuple[Btn, ...]] = []
    for row in page.rows:
        mark = at.label("training.mark_on" if row.attended else "training.mark_off")
        text = f"{mark} {row.full_name} · {row.township}"
        rows.append((Btn(text, TICK.data(row.invite_id, number)),))
    shown = [
        {"name": r.full_name, "township": r.township, "rsvp": r.rsvp, "attended": r.attended}
        for r in page.rows
    ]
    return invitee_page(
        at,
        CHECKINS,
        number,
        page,
        tuple(rows),
        rows=shown,
        invited=view.invited,
        attended=view.attended,
    )


@screen(button=CHECKIN_LIST, actor=True)
async def show_checkin_list(act: Act) -> Screen:
    """The check-in list: one ✅/⬜ button per invitee, paged."""
    training_id, number = act.values
    async with act.session() as session:
        return await checkin_screen(session, act, act.actor, training_id, number)


@screen(button=TICK, actor=True)
@unless_closed("trainings/not_open")
async def toggle_attendance(act: Act) -> Screen:
    """Tick or untick one invitee on the check-in list (from when check-in opens)."""
    invite_id, number = act.values
    async with act.session() as session:
        training = await trainings.toggle_attendance(
            session, act.actor, invite_id, now=datetime.now(UTC)
        )
        return await checkin_screen(session, act, act.actor, training.id, number)


MENUS = (show_checkin_list, toggle_attendance)
