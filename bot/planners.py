"""The planners every tick runs: each turns what the database says is due into outbox rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import CadreContext
from bot.scheduler import planner
from handlers.common import plan_notice
from storage import reminders


@planner("vetting-pending")
async def plan_vetting_pending(session: AsyncSession, context: CadreContext, now: datetime) -> int:
    """Remind a department's reviewers of reviews waiting longer than VETTING_REMIND_DAYS.

    One reminder per review per period of that many days: the key carries the period.
    """
    every = context.settings.vetting_remind_days
    planned = 0
    for item in await reminders.vetting_pending_longer_than(session, now, every):
        recipients = await reminders.reviewer_recipients(session, item.department)
        planned += await plan_notice(
            session,
            context,
            recipients,
            "vetting/reminder_pending",
            key=f"vetting-pending:{item.review_id}:{item.days // every}",
            township=item.township,
            days=item.days,
        )
    return planned
