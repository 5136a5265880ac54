"""Scheduled summaries: the planner that puts each official's summary in the outbox.

The row carries the rendered text and, for each scope, the chart's figures (not the picture:
a row stays a few hundred bytes); the dispatcher draws the chart (handlers/chat/charts.py)
when it sends the row, after the text. The text is the one /summary shows
(handlers/oversight/summary.py), for the calendar period before the one it is sent in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.charts import chart_photo, render_caption
from handlers.chat.context import CadreContext
from handlers.oversight.summary import render_summary, summary_of
from storage import outbox, summary
from storage.summary import Official, Schedule, Summary
from templates import normalize_locale, split_message

log = logging.getLogger("cadrebot.summaries")

REPORTED_NAMES = {summary.WEEKLY: "last_week", summary.MONTHLY: "last_month"}


# ---------------------------------------------------------------------------------------------
# Scheduled summaries.


@dataclass(frozen=True, slots=True)
class _Key:
    township_id: int | None
    since: datetime
    until: datetime


async def _plan_one(
    session: AsyncSession,
    context: CadreContext,
    official: Official,
    schedule: Schedule,
    period: str,
    now: datetime,
    built: dict[_Key, Summary],
) -> int:
    settings = context.settings
    tz = settings.tz
    if not await summary.claim_period(session, official.person_id, period, schedule):
        return 0  # another tick or process took this period
    since, until = summary.reported_period(schedule.cadence, now, tz)
    locale = normalize_locale(official.language, settings.locale)
    texts: list[str] = []
    photos: list[dict[str, Any]] = []
    key_figures: dict[str, dict[str, int]] = {}
    for township_id in official.scopes:
        key = _Key(township_id, since, until)
        if key not in built:
            built[key] = await summary_of(
                session, settings, township_id, since=since, until=until, now=now
            )
        figures = built[key]
        scope = summary.scope_key(township_id)
        key_figures[scope] = summary.key_figures(figures)
        previous = summary.previous_figures(official.schedule, scope)
        texts.append(
            render_summary(
                context.jinja,
                locale,
                figures,
                tz=tz,
                period=REPORTED_NAMES[schedule.cadence],
                soon_days=settings.talk_soon_days,
                change=summary.changes(key_figures[scope], previous),
                scheduled=True,
            )
        )
        caption = render_caption(context.jinja, locale, figures, tz)
        photos.append(chart_photo(figures, locale, caption))
    added = await outbox.plan(
        session,
        key=f"summary:{official.person_id}:{period}",
        chat_id=official.telegram_id,
        kind="summary/summary",
        parts=split_message("\n\n".join(texts)),
        photos=photos,
    )
    await summary.record_figures(session, official.person_id, key_figures)
    return int(added)


async def plan_summaries(session: AsyncSession, context: CadreContext, now: datetime) -> int:
    """Queue each official's summary once their scheduled moment of this period has passed.

    The summary sent in a period reports the calendar period before it. `claim_period` and
    the outbox key `summary:{person}:{period}` each make a second tick, a restart or a second
    process plan nothing more. One official's failure does not stop the others (savepoints).
    """
    built: dict[_Key, Summary] = {}
    planned = 0
    for official in await summary.officials(session):
        schedule = official.effective_schedule()
        if schedule is None:
            continue
        period = summary.due_period(schedule, now, context.settings.tz)
        if period is None:
            continue
        try:
            async with session.begin_nested():
                planned += await _plan_one(
                    session, context, official, schedule, period, now, built
                )
        except Exception:
            log.exception("summary for person %d (%s) failed", official.person_id, period)
    return planned
