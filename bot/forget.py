"""A running bot forgets an erased person: their draft and open conversations in memory.

Erasure deletes the person's user_data and conversation_state rows, but a running bot holds
both in memory and would write the draft back on the person's next message. Erasure (in this
process through /withdraw, or in another through `cadrebot erase`) adds an `erasure_event`
row; the job installed here reads new rows every second and drops what this process holds
for those Telegram users.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from telegram.ext import Application, ConversationHandler

from storage.db import Database
from storage.models import ErasureEvent

log = logging.getLogger("cadrebot.forget")

POLL_SECONDS = 1.0
_LAST = "forget_last_event"
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
    found: list[Any] = []
    for handlers in app.handlers.values():
        found += [h for h in handlers if isinstance(h, ConversationHandler)]
    return found


def forget_users(app: Application[Any, Any, Any, Any, Any, Any], user_ids: Iterable[int]) -> int:
    """Drop the users' user_data and every conversation keyed by them; how many went.

    Each call is numbered (`FORGOTTEN`): an update of one of these users that was being
    handled meanwhile forgets them again before its state is flushed (CadreApp), or the
    conversation PTB sets when its callback returns would be written back.
    """
    dropped = 0
    users = set(user_ids)
    generation = int(app.bot_data.get(GENERATION, 0)) + 1
    app.bot_data[GENERATION] = generation
    forgotten: dict[int, int] = app.bot_data.setdefault(FORGOTTEN, {})
    for user_id in users:
        forgotten[user_id] = generation
    for user_id in users:
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


async def latest_event(database: Database) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.max(ErasureEvent.id))) or 0)


async def poll(app: Application[Any, Any, Any, Any, Any, Any]) -> int:
    """Forget the users of erasure events newer than the last one seen; how many events."""
    database: Database = app.bot_data["database"]
    last = int(app.bot_data.get(_LAST, 0))
    async with database.sessionmaker() as session:
        rows = (
            await session.execute(
                select(ErasureEvent.id, ErasureEvent.telegram_id)
                .where(ErasureEvent.id > last)
                .order_by(ErasureEvent.id)
            )
        ).all()
    if not rows:
        return 0
    forget_users(app, [int(telegram_id) for _, telegram_id in rows])
    app.bot_data[_LAST] = int(rows[-1][0])
    if app.persistence is not None:
        await app.update_persistence()
    log.info("forgot %d erased user(s)", len(rows))
    return len(rows)


async def _job(context: Any) -> None:
    try:
        await poll(context.application)
    except Exception:
        log.exception("erasure poll failed")


async def install(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Start from the events already there (what they erased is not in memory: it was
    loaded from the database after them), then poll every second."""
    app.bot_data[_LAST] = await latest_event(app.bot_data["database"])
    if app.job_queue is not None:
        app.job_queue.run_repeating(
            _job,
            interval=POLL_SECONDS,
            first=POLL_SECONDS,
            name="forget-erased",
            job_kwargs={"coalesce": True, "max_instances": 1},
        )
