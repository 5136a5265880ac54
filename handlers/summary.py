"""/summary (the pipeline in numbers, with a chart) and /schedule (when it is pushed).

/summary: a township official gets their township's figures for this week so far (Monday
00:00 county time until now), a county official or admin the county's for this month so far;
the text first, then the chart as a photo. Changes are shown against the last scheduled
summary. /schedule edits the person's own push schedule with buttons; every press carries
the whole choice so far (`sch:w:3:510`), so there is no conversation state to lose.
"""

from __future__ import annotations

import asyncio
from datetime import time
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.summaries import (
    PERIOD_NAMES,
    render_caption,
    render_chart,
    render_summary,
    summary_of,
)
from handlers.chat import codec as cb
from handlers.chat.commands import Command, command
from handlers.chat.context import CadreContext
from handlers.chat.reply import deny, edit_or_reply, inline_rows, label, locale_of, now
from storage import people, summary
from storage.models import Role
from storage.people import Actor
from storage.summary import Schedule
from templates import split_message

PRIVATE = filters.ChatType.PRIVATE
OFFICIALS = (Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.ADMIN)
CADENCE_CODES = {"w": summary.WEEKLY, "m": summary.MONTHLY}
CODES = {cadence: code for code, cadence in CADENCE_CODES.items()}


def _is_official(actor: Actor | None) -> bool:
    return actor is not None and actor.has(*OFFICIALS)


def _scopes(actor: Actor) -> tuple[int | None, ...]:
    if actor.has(Role.COUNTY_OFFICIAL, Role.ADMIN):
        return (None,)
    return tuple(sorted(actor.township_ids(Role.TOWNSHIP_OFFICIAL)))


# -- /summary ---------------------------------------------------------------------------------


async def show_summary(update: Update, context: CadreContext) -> None:
    """Send the summary of the official's scope for this period so far, then its chart."""
    settings = context.settings
    tz = settings.tz
    moment = now()
    locale = locale_of(update, context)
    results = []
    cadence = summary.WEEKLY
    async with context.session() as session:
        user = update.effective_user
        assert user is not None
        actor = await people.load_actor(session, user.id)
        scopes = _scopes(actor) if actor is not None and _is_official(actor) else ()
        if actor is not None and scopes:
            schedule = await summary.load_schedule(session, actor.person_id)
            cadence = summary.MONTHLY if scopes == (None,) else summary.WEEKLY
            since, until = summary.current_period(cadence, moment, tz)
        for township_id in scopes:
            figures = await summary_of(
                session, settings, township_id, since=since, until=until, now=moment
            )
            previous = summary.previous_figures(schedule, summary.scope_key(township_id))
            change = summary.changes(summary.key_figures(figures), previous)
            results.append((figures, change))
    if not scopes:
        await deny(update, context)
        return
    chat = update.effective_chat
    assert chat is not None
    for figures, change in results:
        body = render_summary(
            context.jinja,
            locale,
            figures,
            tz=tz,
            period=PERIOD_NAMES[cadence],
            soon_days=settings.talk_soon_days,
            change=change,
        )
        # Committed before the chart is drawn and sent: no lock is held across either.
        await context.checkpoint()
        for part in split_message(body):
            await context.bot.send_message(chat.id, part)
        # Drawing takes a fraction of a second of CPU: off the event loop.
        picture = await asyncio.to_thread(render_chart, figures, locale, context.jinja)
        caption = render_caption(context.jinja, locale, figures, tz)
        await context.bot.send_photo(chat.id, picture, caption=caption)


# -- /schedule --------------------------------------------------------------------------------


def _menu(update: Update, context: CadreContext) -> InlineKeyboardMarkup:
    rows = inline_rows(
        [
            (label(update, context, "schedule.weekly"), "sch:w"),
            (label(update, context, "schedule.monthly"), "sch:m"),
            (label(update, context, "schedule.off"), "sch:off"),
        ]
    )
    return InlineKeyboardMarkup(rows)


def _back(update: Update, context: CadreContext) -> list[InlineKeyboardButton]:
    return [
        InlineKeyboardButton(label(update, context, "schedule.back"), callback_data="sch:menu")
    ]


def _effective(actor: Actor, schedule: Schedule | None) -> Schedule:
    if schedule is not None:
        return schedule
    default = summary.default_schedule(
        county_official=actor.has(Role.COUNTY_OFFICIAL),
        township_official=bool(actor.township_ids(Role.TOWNSHIP_OFFICIAL)),
    )
    return default or Schedule(summary.OFF, 0, summary.DEFAULT_AT, is_default=True)


async def _show_schedule(
    update: Update, context: CadreContext, schedule: Schedule, *, saved: bool
) -> None:
    tz = context.settings.tz
    moment = now()
    upcoming = summary.next_moment(schedule, moment, tz)
    await edit_or_reply(
        update,
        context,
        "summary/schedule",
        markup=_menu(update, context),
        cadence=schedule.cadence,
        day=schedule.day,
        at=time(schedule.at_minute // 60, schedule.at_minute % 60),
        next_at=upcoming.astimezone(tz) if upcoming is not None else None,
        due_now=summary.due_period(schedule, moment, tz) is not None,
        is_default=schedule.is_default,
        saved=saved,
    )


async def show_schedule(update: Update, context: CadreContext) -> None:
    """Show the official's push schedule with buttons to change it."""
    if update.callback_query is not None:
        await update.callback_query.answer()
    await _schedule_menu(update, context)


async def _schedule_menu(update: Update, context: CadreContext) -> None:
    async with context.session() as session:
        user = update.effective_user
        assert user is not None
        actor = await people.load_actor(session, user.id)
        if actor is None or not _is_official(actor):
            await deny(update, context, session=session, edit=True)
            return
        schedule = _effective(actor, await summary.load_schedule(session, actor.person_id))
    await _show_schedule(update, context, schedule, saved=False)


async def choose_schedule(update: Update, context: CadreContext) -> None:
    """Walk cadence → day → time with buttons; save on the last press (or on "off")."""
    query = update.callback_query
    assert query is not None and query.data is not None
    await query.answer()
    button, values = SCHEDULE_PRESS.which(update)
    parts: list[Any] = ["off"] if button is SCHEDULE_OFF else list(values)
    async with context.session() as session:
        user = update.effective_user
        assert user is not None
        actor = await people.load_actor(session, user.id)
        if actor is None or not _is_official(actor):
            await deny(update, context, session=session, edit=True)
            return
        stored: Schedule | None = None
        choice: Schedule | None = None
        if parts == ["off"]:
            choice = Schedule(summary.OFF, 0, summary.DEFAULT_AT)
        elif len(parts) == 3:
            choice = Schedule(CADENCE_CODES[parts[0]], parts[1], parts[2])
        # Only the offered times; anything else is a forged button and shows the menu again.
        if choice is not None and (
            choice.cadence == summary.OFF or choice.at_minute in summary.TIMES
        ):
            try:
                await summary.save_schedule(session, actor.person_id, choice)
            except ValueError:
                pass
            else:
                stored = await summary.load_schedule(session, actor.person_id)
    if stored is not None:
        await _show_schedule(update, context, stored, saved=True)
        return
    cadence = CADENCE_CODES.get(parts[0]) if parts else None
    if choice is not None or cadence is None:
        await _schedule_menu(update, context)
        return
    code = CODES[cadence]
    if len(parts) == 1:
        if cadence == summary.WEEKLY:
            days = [
                (label(update, context, f"schedule.weekday.{d}"), f"sch:{code}:{d}")
                for d in range(7)
            ]
            per_row = 4
        else:
            days = [(str(d), f"sch:{code}:{d}") for d in range(1, summary.MONTH_DAYS + 1)]
            per_row = 7
        rows = [
            [
                InlineKeyboardButton(name, callback_data=data)
                for name, data in days[i : i + per_row]
            ]
            for i in range(0, len(days), per_row)
        ]
        await edit_or_reply(
            update,
            context,
            "summary/schedule_pick_day",
            markup=InlineKeyboardMarkup([*rows, _back(update, context)]),
            cadence=cadence,
        )
        return
    day = int(parts[1])
    times = [
        InlineKeyboardButton(f"{m // 60:02d}:{m % 60:02d}", callback_data=f"sch:{code}:{day}:{m}")
        for m in summary.TIMES
    ]
    await edit_or_reply(
        update,
        context,
        "summary/schedule_pick_time",
        markup=InlineKeyboardMarkup([times, _back(update, context)]),
        cadence=cadence,
        day=day,
    )


_CADENCE = cb.choice(*CADENCE_CODES)
_DAY = cb.Number(0, 99)
SCHEDULE_OFF = cb.Button("sch", "off")
# off, then cadence → day → minute of the day, one press at a time.
SCHEDULE_PRESS = cb.AnyOf(
    SCHEDULE_OFF,
    cb.Button("sch", _CADENCE),
    cb.Button("sch", _CADENCE, _DAY),
    cb.Button("sch", _CADENCE, _DAY, cb.Number(0, 9999)),
)


COMMANDS: tuple[Command, ...] = (
    command("summary", *OFFICIALS),
    command("schedule", *OFFICIALS),
)


def build_handlers() -> list[BaseHandler[Update, CadreContext, Any]]:
    return [
        CommandHandler("summary", show_summary, filters=PRIVATE),
        CommandHandler("schedule", show_schedule, filters=PRIVATE),
        cb.on(cb.Button("sch", "menu"), show_schedule),
        cb.on(SCHEDULE_PRESS, choose_schedule),
    ]
