"""/trainings: officials see the sessions they manage (``tr:l:<page>``) and open one
(``tr:v:<training>``); everyone else sees their own invitations (invites.py)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from handlers.chat.codec import ID, PAGE, Button
from handlers.chat.commands import command
from handlers.chat.paged import Pages
from handlers.chat.screen import Btn, Screen
from handlers.chat.screens import Act, screen
from handlers.cultivate.attendance import CHECKIN_LIST
from handlers.cultivate.invites import mine_screen
from handlers.cultivate.scores import RANKING, SCORES
from handlers.cultivate.training_values import PAGER, local, session_values
from storage import trainings

# Anyone: an official's list, or a reserve cadre's invitations.
COMMAND = command("trainings")
LIST = Button("tr", "l", PAGE)
VIEW = Button("tr", "v", ID)
SESSIONS = Pages("trainings/list", PAGER, LIST)


@screen(command=COMMAND, button=LIST, actor=True)
async def list_sessions(act: Act) -> Screen:
    """Officials: the sessions they manage. Everyone else: their own invitations."""
    number = int(act.values[0]) if act.pressed else 0
    actor, tz = act.maybe_actor, act.settings.tz
    async with act.session() as session:
        if actor is None or not trainings.can_organize(actor):
            mine = (
                []
                if actor is None
                else await trainings.my_trainings(session, actor, now=datetime.now(UTC))
            )
            return mine_screen(mine, tz, edit=act.pressed)
        items, total = await trainings.list_trainings(
            session, actor, offset=PAGER.offset(number), limit=PAGER.per_page
        )
    # Numbered like the lines of the message, so that equal titles stay apart.
    rows = tuple(
        (Btn(f"{n}. {item.title}", VIEW.data(item.id)),) for n, item in enumerate(items, start=1)
    )
    # The fields as they are, the start in the county's time zone.
    shown_items = [{**asdict(i), "starts": local(i.starts_at, tz)} for i in items]
    return SESSIONS.screen(act, rows, number, total, edit=act.pressed, items=shown_items)


@screen(button=VIEW, actor=True)
async def show_session(act: Act) -> Screen:
    """One session: when, where, code, RSVPs and attendance, and what can be done."""
    async with act.session() as session:
        view = await trainings.training_view(session, act.actor, act.values[0])
    training = view.training
    rows: list[tuple[Btn, ...]] = [
        (Btn(act.label("training.checkin_list"), CHECKIN_LIST.data(training.id, 0)),)
    ]
    if training.kind == "competition":
        rows.append(
            (
                Btn(act.label("training.scores"), SCORES.data(training.id, 0)),
                Btn(act.label("training.ranking"), RANKING.data(training.id)),
            )
        )
    rows.append((Btn(act.label("training.list"), LIST.data(0)),))
    values = {
        # Optional: invitees may send it to check themselves in; the organizer's list is
        # what counts (attendance.py).
        "code": training.checkin_code,
        "township": view.township,
        "invited": view.invited,
        "yes": view.yes,
        "no": view.no,
        "attended": view.attended,
        "scored": view.scored,
        **session_values(training, act.settings.tz),
    }
    return Screen("trainings/view", values, tuple(rows), edit=True)


MENUS = (list_sessions, show_session)
