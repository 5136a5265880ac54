"""Forgetting a person in this process: their user_data and open conversations in memory.

Erasure deletes the rows, but a running bot holds both in memory and would write the draft
back on the person's next message. /withdraw forgets at once here; bot/forget.py polls the
erasure events of other processes (`cadrebot erase`) and forgets through the same call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from telegram.ext import Application, ConversationHandler

GENERATION = "forget_generation"
FORGOTTEN = "forgotten_in_generation"


def generation(app: Application[Any, Any, Any, Any, Any, Any]) -> int:
    return int(app.bot_data.get(GENERATION, 0))


def forgotten_since(
    app: Application[Any, Any, Any, Any, Any, Any], user_id: int, since: int
) -> bool:
    """Whether the user was forgotten after generation `since` (see forget_users)."""
    return int(app.bot_data.get(FORGOTTEN, {}).get(user_id, 0)) > since


def conversation_handlers(app: Application[Any, Any, Any, Any, Any, Any]) -> list[Any]:
    return [
        h for group in app.handlers.values() for h in group if isinstance(h, ConversationHandler)
    ]


def forget_users(app: Application[Any, Any, Any, Any, Any, Any], user_ids: Iterable[int]) -> int:
    """Drop the users' user_data and every conversation keyed by them; how many went.

    Each call is numbered (`FORGOTTEN`): an update of one of these users that was being
    handled meanwhile forgets them again before its state is flushed (CadreApp), or the
    conversation PTB sets when its callback returns would be written back.
    """
    dropped = 0
    users = set(user_ids)
    number = app.bot_data[GENERATION] = generation(app) + 1
    forgotten: dict[int, int] = app.bot_data.setdefault(FORGOTTEN, {})
    for user_id in users:
        forgotten[user_id] = number
        if user_id in app.user_data:
            dropped += 1
        # Also marks the row for deletion by the persistence (already gone: harmless).
        app.drop_user_data(user_id)
    for handler in conversation_handlers(app):
        # PTB offers no public way to end another user's conversation; popping the key from
        # its (tracking) dict also makes the persistence delete the stored state.
        conversations = handler._conversations
        for key in [k for k in conversations if users.intersection(k)]:
            conversations.pop(key, None)
            dropped += 1
    return dropped
