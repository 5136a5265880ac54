"""Helpers every flow shares: the person's locale, rendering, replying, keyboards."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import takewhile
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)

from handlers.chat.codec import ID
from handlers.chat.context import CadreContext
from storage import outbox
from templates import labels_for, normalize_locale, render, split_message

LOCALE_KEY = "locale"

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


def locale_of(update: Update | None, context: CadreContext) -> str:
    """The person's language: their /lang choice, else their Telegram client's, else ours."""
    chosen = context.user_data.get(LOCALE_KEY) if context.user_data is not None else None
    if chosen:
        return str(chosen)
    user = update.effective_user if update else None
    return normalize_locale(user.language_code if user else None, context.settings.locale)


def text(update: Update | None, context: CadreContext, name: str, **values: Any) -> str:
    return render(context.jinja, locale_of(update, context), name, **values)


def now() -> datetime:
    return datetime.now(UTC)


async def reply(
    update: Update,
    context: CadreContext,
    name: str,
    *,
    markup: Markup | None = None,
    **values: Any,
) -> Message | None:
    """Render a template and `send` it."""
    return await send(update, context, text(update, context, name, **values), markup=markup)


async def send(
    update: Update, context: CadreContext, body: str, *, markup: Markup | None = None
) -> Message | None:
    """Send rendered text in parts of at most 4096 characters; a keyboard rides on the last
    part, where the person's eyes are."""
    parts = split_message(body)
    chat = update.effective_chat
    assert chat is not None
    sent: Message | None = None
    for index, part in enumerate(parts):
        sent = await context.bot.send_message(
            chat.id, part, reply_markup=markup if index == len(parts) - 1 else None
        )
    return sent


async def plan_notice(
    session: AsyncSession,
    context: CadreContext,
    recipients: list[tuple[int, str | None]],
    name: str,
    *,
    key: str,
    subject: int | None = None,
    buttons: Sequence[Sequence[tuple[str, str]]] = (),
    **values: Any,
) -> int:
    """Queue a notice for each recipient in the caller's transaction (the outbox).

    It is written with the change that caused it, so it is sent if and only if the change
    is committed; the dispatcher delivers it within Telegram's limits. `key` names the event
    (e.g. ``vetting-outcome:12``); the recipient is appended, so replanning is a no-op.
    `subject` is the nomination the notice names or is about, so that erasing that person
    cancels or blanks it. `buttons`: rows of (label key, data) under the notice, labelled in
    each recipient's language (an invitation's RSVP). Returns how many were newly queued.
    """
    planned = 0
    for chat_id, language in recipients:
        locale = normalize_locale(language, context.settings.locale)
        parts = split_message(render(context.jinja, locale, name, **values))
        markup = None
        if buttons:
            labels = labels_for(context.jinja, locale)
            markup = inline(((labels[k], d) for k, d in row) for row in buttons).to_dict()
        if await outbox.plan(
            session,
            key=f"{key}:{chat_id}",
            chat_id=chat_id,
            kind=name,
            parts=parts,
            subject=subject,
            markup=markup,
        ):
            planned += 1
    return planned


def attempt_of(update: Update) -> tuple[str, str, int | None]:
    """What was tried, as the audit keeps it: (action, subject type, subject id).

    A button is named by its data's literal parts (``button:pr:n``) and its first id; a
    command by its word alone (``command:/pool``), never its arguments, which may be a name.
    """
    query = update.callback_query
    if query is not None and query.data:
        parts = query.data.split(":")
        literals = list(takewhile(lambda part: not (part.isascii() and part.isdigit()), parts))
        subject = ":".join(literals)[:32]
        ids = (ID.parse(part) for part in parts[len(literals) :])
        return f"button:{subject}"[:48], subject, next((i for i in ids if i is not None), None)
    message = update.effective_message
    if message is not None and message.text and message.text.startswith("/"):
        command = message.text.split()[0].split("@")[0][:32]
        return f"command:{command}", "command", None
    return "message", "-", None


async def answer_query(update: Update) -> None:
    """Stop the button's spinner (a no-op for messages)."""
    query = update.callback_query
    if query is not None:
        await query.answer()


def inline(rows: Iterable[Iterable[tuple[str, str]]]) -> InlineKeyboardMarkup:
    """Rows of (label, callback data) as an inline keyboard; callback data stays short ids."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(lbl, callback_data=data) for lbl, data in row] for row in rows]
    )
