"""What every training screen shows of a session, and the one pager of the training lists."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from handlers.chat.flow import InChat
from handlers.chat.screen import Btn, Pager, Rows, Screen
from handlers.cultivate.common import Pages
from storage.models import Training
from storage.trainings import InviteePage

PAGER = Pager(8)


def local(moment: datetime, tz: tzinfo) -> datetime:
    """A stored UTC moment in the county's time zone (templates print it as it is)."""
    return moment.astimezone(tz)


def session_values(training: Training, tz: tzinfo) -> dict[str, Any]:
    """A session's head as the templates' `head` macro takes it."""
    return {
        "kind": training.kind,
        "topic": training.topic,
        "title": training.title,
        "place": training.place,
        "starts": local(training.starts_at, tz),
        "ends": local(training.ends_at, tz),
    }


def back_to(at: InChat, training: Training) -> tuple[Btn, ...]:
    """The row that goes back to the session's screen (trainings.py)."""
    return (Btn(at.label("training.session"), f"tr:v:{training.id}"),)


def invitee_page(
    at: InChat, pages: Pages, number: int, page: InviteePage, buttons: Rows, **values: Any
) -> Screen:
    """A page of a session's invitees (the check-in list, the scores): their buttons, the
    page turn (`pages` with the session and the page), back to the session."""
    training = page.training
    return pages.screen(
        at,
        buttons,
        number,
        page.total,
        fixed=training.id,
        after=(back_to(at, training),),
        **values,
        **session_values(training, at.settings.tz),
    )
