"""Jobs: the scheduler only ticks; the database says what is due; sends go via the outbox.

Two repeating jobs run in PTB's JobQueue (APScheduler):
- ``outbox-drain`` every DRAIN_SECONDS: the dispatcher sends what is due;
- ``tick`` every TICK_SECONDS: planners ask the database what has become due (reminders,
  summaries) and write outbox rows under idempotency keys. Which planners, in which order,
  is one list in bot/jobs.py, handed to `install`.
Nothing per-reminder lives in the scheduler, so a restart loses nothing; `coalesce` and
`max_instances=1` turn a downtime's missed runs into one catch-up run, not a burst.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from telegram.ext import Application

from bot.delivery import Dispatcher, Limits
from bot.settings import Settings
from handlers.chat.context import CadreContext
from handlers.chat.reply import plan_notice
from storage import inbox
from storage.db import Database
from storage.models import QuarantinedState

log = logging.getLogger("cadrebot.scheduler")

JOB_KWARGS: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}

# A planner looks at the database at `now` and queues what has become due; returns the count.
Planner = Callable[[AsyncSession, CadreContext, datetime], Awaitable[int]]
# Where `install` keeps the app's planners (name, planner), in the order every tick runs them.
PLANNERS_KEY = "planners"

# Telegram redelivers an unconfirmed update for at most 24 hours; a handled update_id is kept
# twice that long so a late redelivery is still recognised, then forgotten.
INBOX_KEEP = timedelta(hours=48)


async def drain_outbox(context: CadreContext) -> None:
    """Send what is due, for at most a few seconds, so jobs never pile up."""
    dispatcher: Dispatcher = context.bot_data["dispatcher"]
    await dispatcher.drain(deadline=time.monotonic() + context.settings.drain_seconds * 5)


async def tick(context: CadreContext) -> None:
    """Run every planner in its own transaction; one failing planner does not stop the rest."""
    now = datetime.now(UTC)
    planners: Sequence[tuple[str, Planner]] = context.bot_data.get(PLANNERS_KEY, ())
    for name, function in planners:
        try:
            async with context.session() as session:
                planned = await function(session, context, now)
            if planned:
                log.info("tick: %s planned %d", name, planned)
        except Exception:
            log.exception("tick: planner %s failed", name)


def install(
    app: Application[Any, Any, Any, Any, Any, Any],
    settings: Settings,
    planners: Sequence[tuple[str, Planner]],
) -> None:
    """Create the dispatcher and schedule the jobs; each tick runs `planners` in order."""
    app.bot_data[PLANNERS_KEY] = tuple(planners)
    database: Database = app.bot_data["database"]
    app.bot_data["dispatcher"] = Dispatcher(
        database, app.bot, limits=Limits(per_second=settings.send_rate)
    )
    if app.job_queue is None:
        return
    # (job, seconds between runs, seconds before the first, name): the drain starts first.
    jobs = (
        (drain_outbox, settings.drain_seconds, 1, "outbox-drain"),
        (tick, settings.tick_seconds, 3, "tick"),
    )
    for job, interval, first, name in jobs:
        app.job_queue.run_repeating(
            job, interval=interval, first=first, name=name, job_kwargs=JOB_KWARGS
        )


async def prune_inbox(session: AsyncSession, context: CadreContext, now: datetime) -> int:
    """Forget handled updates (their payload went when they were handled)."""
    pruned = await inbox.prune(session, before=now - INBOX_KEEP)
    if pruned:
        log.info("tick: inbox pruned %d handled update(s)", pruned)
    return 0


async def plan_restore_notices(session: AsyncSession, context: CadreContext, now: datetime) -> int:
    """Tell each person whose stored form could not be read back, once, that it is gone."""
    rows = (
        await session.execute(
            select(QuarantinedState.id, QuarantinedState.user_id).where(
                QuarantinedState.notified_at.is_(None)
            )
        )
    ).all()
    planned = 0
    told: set[int] = set()
    for row_id, user_id in rows:
        if user_id is not None and user_id > 0 and user_id not in told:
            told.add(user_id)
            # Private chats have the person's id; their language was in the lost draft.
            planned += await plan_notice(
                session,
                context,
                [(user_id, None)],
                "common/restore_failed",
                key=f"restore:{row_id}",
            )
    if rows:
        await session.execute(
            update(QuarantinedState)
            .where(QuarantinedState.id.in_([row_id for row_id, _ in rows]))
            .values(notified_at=now)
        )
    return planned
