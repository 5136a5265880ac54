"""/summary: the pipeline in numbers for this period so far, then its chart.

A township official gets their township's figures for this week so far (Monday 00:00 county
time until now), a county official or admin the county's for this month so far. Changes are
shown against the last scheduled summary. The figures and the text are also the scheduled
summary's (bot/summaries.py) and `cadrebot summary`'s.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.charts import caption_values, render_chart
from handlers.chat.commands import command
from handlers.chat.screen import Attachment, Screen
from handlers.chat.screens import Act, screen
from storage import summary
from storage.models import OFFICIAL_ROLES, Role
from storage.people import Actor
from storage.summary import Summary
from templates import render

if TYPE_CHECKING:
    from bot.settings import Settings

COMMAND = command("summary", *OFFICIAL_ROLES)
PERIOD_NAMES = {summary.WEEKLY: "week", summary.MONTHLY: "month"}


def scopes_of(actor: Actor) -> tuple[int | None, ...]:
    """None (the county) for county officials and admins, else their townships."""
    if actor.has(Role.COUNTY_OFFICIAL, Role.ADMIN):
        return (None,)
    return tuple(sorted(actor.township_ids(Role.TOWNSHIP_OFFICIAL)))


async def summary_of(
    session: AsyncSession,
    settings: Settings,
    township_id: int | None,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
) -> Summary:
    """build_summary with the deployment's time zone and talk cadence."""
    return await summary.build_summary(
        session,
        township_id=township_id,
        since=since,
        until=until,
        now=now,
        tz=settings.tz,
        talk_every_days=settings.talk_every_days,
        talk_soon_days=settings.talk_soon_days,
    )


def summary_values(
    figures: Summary,
    *,
    tz: ZoneInfo,
    period: str,
    soon_days: int,
    change: dict[str, int] | None = None,
    scheduled: bool = False,
) -> dict[str, Any]:
    """What summary/summary.html.j2 shows."""
    return {
        "s": figures,
        "change": change or {},
        "period": period,
        "first_day": figures.since.astimezone(tz).date(),
        "last_day": (figures.until - timedelta(microseconds=1)).astimezone(tz).date(),
        "as_of": figures.now.astimezone(tz),
        "soon_days": soon_days,
        "scheduled": scheduled,
    }


def render_summary(env: Environment, locale: str, figures: Summary, **how: Any) -> str:
    """The summary message (Telegram HTML, not yet split); `how` as for `summary_values`."""
    return render(env, locale, "summary/summary", **summary_values(figures, **how))


@screen(command=COMMAND)
async def show_summary(act: Act) -> list[Screen]:
    """The summary of the official's scope for this period so far, then its chart."""
    settings = act.settings
    tz = settings.tz
    moment = datetime.now(UTC)
    scopes = scopes_of(act.actor)
    cadence = summary.MONTHLY if scopes == (None,) else summary.WEEKLY
    since, until = summary.current_period(cadence, moment, tz)
    shown: list[Screen] = []
    async with act.session() as session:
        schedule = await summary.load_schedule(session, act.actor.person_id)
        for township_id in scopes:
            figures = await summary_of(
                session, settings, township_id, since=since, until=until, now=moment
            )
            previous = summary.previous_figures(schedule, summary.scope_key(township_id))
            change = summary.changes(summary.key_figures(figures), previous)
            values = summary_values(
                figures,
                tz=tz,
                period=PERIOD_NAMES[cadence],
                soon_days=settings.talk_soon_days,
                change=change,
            )
            shown.append(Screen("summary/summary", values))
            # Drawing takes a fraction of a second of CPU: off the event loop.
            picture = await asyncio.to_thread(
                render_chart, figures, act.chat.locale, act.chat.jinja
            )
            caption = caption_values(figures, tz)
            shown.append(
                Screen("summary/chart_caption", caption, attachment=Attachment("photo", picture))
            )
    return shown


MENUS = (show_summary,)
