"""The planners every tick runs: each turns what the database says is due into outbox rows."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import CadreContext
from bot.scheduler import planner
from handlers.common import plan_notice
from storage import mentoring, people, reminders, trainings


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


@planner("talk-cadence")
async def plan_talk_cadence(session: AsyncSession, context: CadreContext, now: datetime) -> int:
    """Talks due soon remind the mentor; overdue ones also go to the township's officials.

    Keys carry the pairing and its due date: one reminder per due date, however many ticks
    (or processes) see it.
    """
    settings = context.settings
    planned = 0
    for due in await mentoring.due_pairings(
        session, now, settings.talk_every_days, settings.talk_soon_days, tz=settings.tz
    ):
        values = {
            "mentee": due.full_name,
            "due_date": due.cadence.due_date.isoformat(),
            "days_left": due.cadence.days_left,
            "township": due.township,
        }
        state = due.cadence.state
        if due.mentor_active and due.mentor_telegram_id is not None:
            mentor = await people.recipients(session, [due.mentor_telegram_id])
            planned += await plan_notice(
                session,
                context,
                mentor,
                "mentoring/reminder_due" if state == "due_soon" else "mentoring/reminder_overdue",
                key=f"talk-{state}:{due.pairing_id}:{due.cadence.due_date.isoformat()}",
                **values,
            )
        if state == "overdue":
            officials = await reminders.township_official_recipients(session, due.township_id)
            planned += await plan_notice(
                session,
                context,
                officials,
                "mentoring/escalation_overdue",
                key=f"talk-escalation:{due.pairing_id}:{due.cadence.due_date.isoformat()}",
                mentor=due.mentor_name or "",
                **values,
            )
    return planned


@planner("training-tomorrow")
async def plan_training_reminders(
    session: AsyncSession, context: CadreContext, now: datetime
) -> int:
    """The day before a session, remind every invitee who has not declined; once each."""
    planned = 0
    tz = context.settings.tz
    for training in await trainings.starting_between(session, now, now + timedelta(days=1)):
        values = {
            "kind": training.kind,
            "topic": training.topic,
            "title": training.title,
            "place": training.place,
            "starts": training.starts_at.astimezone(tz),
            "ends": training.ends_at.astimezone(tz),
        }
        for invitee in training.invitees:
            planned += await plan_notice(
                session,
                context,
                [(invitee.telegram_id, invitee.language)],
                "trainings/reminder",
                key=f"training-reminder:{invitee.invite_id}",
                **values,
            )
    return planned
