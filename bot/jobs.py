"""Every job a running bot schedules, and the planners its tick runs: one list, in order.

The planners used to register themselves when their module was imported, so the order a tick
ran them in (and whether it ran one at all) depended on who imported what first. Here they
are named once; each runs in its own transaction and one failing does not stop the next.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import Application

from bot import forget, planners, scheduler, summaries
from bot.scheduler import Planner
from bot.settings import Settings

PLANNERS: tuple[tuple[str, Planner], ...] = (
    ("inbox-prune", scheduler.prune_inbox),
    ("restore-notices", scheduler.plan_restore_notices),
    ("vetting-pending", planners.plan_vetting_pending),
    ("talk-cadence", planners.plan_talk_cadence),
    ("training-tomorrow", planners.plan_training_reminders),
    ("retention", planners.plan_retention),
    ("summaries", summaries.plan_summaries),
)


async def install(app: Application[Any, Any, Any, Any, Any, Any], settings: Settings) -> None:
    """The outbox drain and the tick (with PLANNERS), then the erasure poll (post_init)."""
    scheduler.install(app, settings, PLANNERS)
    await forget.install(app)
