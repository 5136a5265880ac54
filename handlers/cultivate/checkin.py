"""The optional check-in code: an invitee may send their session's code as a message, in its
check-in window, to be marked present. Nobody has to: the organizer marks attendance on the
check-in list (attendance.py), with or without codes.

The code is a plain text, so its handler sits next to the conversations and must not take
texts that are theirs, or anyone else's: `check_in` answers only a code of a session the
sender is invited to and returns False for any other text, which then goes on to the next
handler (handlers/chat/passing.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from handlers.chat.flow import Chat
from handlers.chat.screen import Screen
from handlers.cultivate.training_values import local, session_values
from storage import people, trainings

# What a code looks like (its alphabet and length), either case: only such texts are asked.
SHAPE = re.compile(trainings.CHECKIN_PATTERN, re.IGNORECASE)


async def check_in(chat: Chat, text: str) -> bool:
    """Record attendance for a session's check-in code; False lets the text pass on."""
    async with chat.session() as session:
        actor = await people.load_actor(session, chat.user_id)
        result = (
            None
            if actor is None
            else await trainings.check_in_by_code(session, actor, text, now=datetime.now(UTC))
        )
    if result is None:
        return False
    tz = chat.settings.tz
    values = {
        "outcome": result.outcome,
        "opens": local(result.opens_at, tz),
        "closes": local(result.closes_at, tz),
        **session_values(result.training, tz),
    }
    await chat.show(Screen("trainings/checkin", values))
    return True
