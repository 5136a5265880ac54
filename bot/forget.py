"""A running bot forgets an erased person: their draft and open conversations in memory.

Erasure deletes the person's user_data and conversation_state rows, but a running bot holds
both in memory and would write the draft back on the person's next message. Erasure (in this
process through /withdraw, or in another through `cadrebot erase`) adds an `erasure_event`
row; the job installed here reads new rows every second and drops what this process holds
for those Telegram users (handlers/chat/forget.py, which /withdraw also calls at once).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select
from telegram.ext import Application

from handlers.chat.forget import forget_users
from storage.db import Database
from storage.models import ErasureEvent

log = logging.getLogger("cadrebot.forget")

POLL_SECONDS = 1.0
_LAST = "forget_last_event"


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
