"""What every training screen shows of a session, and the one pager of the training lists."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from handlers.chat.codec import Button
from handlers.chat.screen import Btn, Pager, Screen
from storage.models import Training

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


def invitee_page(
    template: str,
    buttons: list[tuple[Btn, ...]],
    button: Button,
    number: int,
    count: int,
    training: Training,
    tz: tzinfo,
    label: Callable[[str], str],
    **values: Any,
) -> Screen:
    """A page of a session's invitees (the check-in list, the scores): their buttons, the
    page turn (`button` with the session and the page), back to the session."""
    nav = PAGER.nav(
        number, count, button, prev=label("prev"), next=label("next"), fixed=training.id
    )
    back = (Btn(label("training.session"), f"tr:v:{training.id}"),)
    shown = {
        **values,
        "page": number + 1,
        "pages": PAGER.pages(count),
        **session_values(training, tz),
    }
    return Screen(template, shown, (*buttons, *((nav,) if nav else ()), back), edit=True)
