"""What every training screen shows of a session, and the one pager of the training lists."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from handlers.chat.screen import Pager
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
