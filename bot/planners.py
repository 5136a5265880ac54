"""Planners of reminders and retention: each turns what the database says is due into outbox
rows (or deletions). bot/jobs.py lists them, with the others, in the order every tick runs."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.settings import Settings
from handlers.chat.context import CadreContext
from handlers.chat.reply import plan_notice
from storage import mentoring, outbox, people, reminders, retention, trainings

log = logging.getLogger("cadrebot.planners")


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


async def plan_talk_cadence(session: AsyncSession, context: CadreContext, now: datetime) -> int:
    """Talks due soon remind the mentor; overdue ones also go to the township's officials.

    Keys carry the pairing and its due date: one reminder per due date, however many ticks
    (or processes) see it. The work is a handful of queries per tick: languages and
    officials are looked up once, and what is already planned is skipped unrendered.
    """
    settings = context.settings
    due_list = await mentoring.due_pairings(
        session, now, settings.talk_every_days, settings.talk_soon_days, tz=settings.tz
    )
    if not due_list:
        return 0
    mentor_ids = sorted(
        {d.mentor_telegram_id for d in due_list if d.mentor_telegram_id is not None}
    )
    languages = dict(await people.recipients(session, mentor_ids))
    officials: dict[int, list[tuple[int, str | None]]] = {}

    def keys(due: mentoring.DuePairing) -> tuple[str, str]:
        day = due.cadence.due_date.isoformat()
        return (
            f"talk-{due.cadence.state}:{due.pairing_id}:{day}",
            f"talk-escalation:{due.pairing_id}:{day}",
        )

    # Officials of the townships with overdue pairings, once per township per tick.
    for township_id in {d.township_id for d in due_list if d.cadence.state == "overdue"}:
        officials[township_id] = await reminders.township_official_recipients(session, township_id)
    candidates: list[str] = []
    for due in due_list:
        mentor_key, escalation_key = keys(due)
        candidates.append(f"{mentor_key}:{due.mentor_telegram_id}")
        candidates += [
            f"{escalation_key}:{chat}" for chat, _ in officials.get(due.township_id, [])
        ]
    planned_before = await outbox.existing_keys(session, candidates)
    planned = 0
    for due in due_list:
        mentor_key, escalation_key = keys(due)
        values: dict[str, Any] = {
            "mentee": due.full_name,
            "due_date": due.cadence.due_date.isoformat(),
            "days_left": due.cadence.days_left,
            "township": due.township,
        }
        state = due.cadence.state
        chat = due.mentor_telegram_id
        if (
            due.mentor_active
            and chat is not None
            and chat in languages
            and f"{mentor_key}:{chat}" not in planned_before
        ):
            planned += await plan_notice(
                session,
                context,
                [(chat, languages[chat])],
                "mentoring/reminder_due" if state == "due_soon" else "mentoring/reminder_overdue",
                key=mentor_key,
                subject=due.nomination_id,
                **values,
            )
        if state != "overdue":
            continue
        recipients = [
            r
            for r in officials[due.township_id]
            if f"{escalation_key}:{r[0]}" not in planned_before
        ]
        if recipients:
            planned += await plan_notice(
                session,
                context,
                recipients,
                "mentoring/escalation_overdue",
                key=escalation_key,
                subject=due.nomination_id,
                mentor=due.mentor_name or "",
                **values,
            )
    return planned


async def plan_training_reminders(
    session: AsyncSession, context: CadreContext, now: datetime
) -> int:
    """Within a day of a session's start, remind every invitee who has not declined; once
    each. A session already started is never reminded (the window begins at `now`)."""
    planned = 0
    tz = context.settings.tz
    today = now.astimezone(tz).date()
    for training in await trainings.starting_between(session, now, now + timedelta(days=1)):
        starts = training.starts_at.astimezone(tz)
        values: dict[str, Any] = {
            "kind": training.kind,
            "topic": training.topic,
            "title": training.title,
            "place": training.place,
            "starts": starts,
            "ends": training.ends_at.astimezone(tz),
            # A session created in the morning for the afternoon is reminded the same day:
            # the notice says "today" then, "tomorrow" otherwise (the county's calendar).
            "today": starts.date() == today,
        }
        for invitee in training.invitees:
            planned += await plan_notice(
                session,
                context,
                [(invitee.telegram_id, invitee.language)],
                "trainings/reminder",
                key=f"training-reminder:{invitee.invite_id}",
                subject=invitee.nomination_id,
                **values,
            )
    return planned


def retention_policy(settings: Settings) -> retention.Policy:
    """The retention periods the consent text promises (bot/settings.py)."""
    return retention.Policy(
        file_years=settings.retain_file_years,
        rejected_days=settings.retain_rejected_days,
        draft_days=settings.retain_draft_days,
        outbox_days=settings.retain_outbox_days,
    )


def local_day(now: datetime, settings: Settings) -> int:
    """The county's date as YYYYMMDD: the key of a day's purge."""
    return int(now.astimezone(settings.tz).strftime("%Y%m%d"))


async def plan_retention(session: AsyncSession, context: CadreContext, now: datetime) -> int:
    """Once a day, delete what the consent text says is past its time (storage/retention.py).

    The day's audit row is the mark: later ticks of the same day (or another process) skip."""
    settings = context.settings
    day = local_day(now, settings)
    if await retention.purged_on(session, day):
        return 0
    done = await retention.purge(session, retention_policy(settings), now, day=day)
    if done.total:
        log.info("retention purge: %s", done.counts())
    return done.total
