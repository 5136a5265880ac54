"""What every training screen shows of a session, and the one pager of the training lists."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from functools import wraps
from typing import Any

from handlers.chat.flow import InChat
from handlers.chat.paged import Pages
from handlers.chat.screen import Btn, Pager, Rows, Screen
from handlers.chat.screens import Act, ScreenFn, Shown
from storage.models import Training
from storage.trainings import InviteePage, MyTraining, TrainingClosed

PAGER = Pager(8)


def local(moment: datetime, tz: tzinfo) -> datetime:
    """A stored UTC moment in the county's time zone (templates print it as it is)."""
    return moment.astimezone(tz)


def session_values(training: Training | MyTraining, tz: tzinfo) -> dict[str, Any]:
    """A session's head as the templates' `head` macro takes it."""
    return {
        "kind": training.kind,
        "topic": training.topic,
        "title": training.title,
        "place": training.place,
        "starts": local(training.starts_at, tz),
        "ends": local(training.ends_at, tz),
    }


def unless_closed(template: str) -> Callable[[ScreenFn], ScreenFn]:
    """A screen that changes an invite (an answer, a tick): once the session is closed to
    that change, `template` says so instead."""

    def wrap(fn: ScreenFn) -> ScreenFn:
        @wraps(fn)
        async def change(act: Act) -> Shown:
            try:
                return await fn(act)
            except TrainingClosed:
                return Screen(template)

        return change

    return wrap


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
