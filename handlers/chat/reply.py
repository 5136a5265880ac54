"""Helpers every flow shares: the person's locale, rendering, replying, keyboards."""

from __future__ import annotations

import contextlib
import html
import logging
import warnings
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
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
from telegram.error import BadRequest
from telegram.ext import (
    BaseHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from handlers.chat.codec import INT_MAX, Number
from handlers.chat.context import CadreContext
from storage import audit, outbox
from templates import labels_for, normalize_locale, render, split_message

LOCALE_KEY = "locale"
_ID = Number(1, INT_MAX)
log = logging.getLogger("cadrebot.handlers")

Handler = BaseHandler[Update, CadreContext, Any]
FlowStep = Callable[[Update, CadreContext], Coroutine[Any, Any, Any]]


def conversation(
    name: str,
    entry_points: Sequence[Handler],
    states: Mapping[object, Sequence[Handler]],
    *,
    cancel: FlowStep,
    busy: FlowStep,
    more_fallbacks: Sequence[Handler] = (),
    allow_reentry: bool = False,
) -> ConversationHandler[CadreContext]:
    """A flow as every flow here runs: persisted under `name`, one per person.

    /cancel leaves it (`cancel`), any other command mid-flow gets `busy`. per_message=False
    is deliberate: one draft per person, whichever message its buttons sit on; PTB warns
    about CallbackQueryHandlers in that mode, so the warning is silenced here, once.
    """
    private = filters.ChatType.PRIVATE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBUserWarning)
        return ConversationHandler(
            entry_points=list(entry_points),
            states={state: list(handlers) for state, handlers in states.items()},
            fallbacks=[
                CommandHandler("cancel", cancel, filters=private),
                MessageHandler(filters.COMMAND & private, busy),
                *more_fallbacks,
            ],
            name=name,
            persistent=True,
            allow_reentry=allow_reentry,
        )


def locale_of(update: Update | None, context: CadreContext) -> str:
    """The person's language: their /lang choice, else their Telegram client's, else ours."""
    chosen = context.user_data.get(LOCALE_KEY) if context.user_data is not None else None
    if chosen:
        return str(chosen)
    user = update.effective_user if update else None
    return normalize_locale(user.language_code if user else None, context.settings.locale)


def text(update: Update | None, context: CadreContext, name: str, **values: Any) -> str:
    return render(context.jinja, locale_of(update, context), name, **values)


def label(update: Update | None, context: CadreContext, key: str) -> str:
    """A short plain-text label (a button, a choice) from the locale's label table."""
    labels = labels_for(context.jinja, locale_of(update, context))
    return labels.get(key, key)


def now() -> datetime:
    return datetime.now(UTC)


async def reply(
    update: Update,
    context: CadreContext,
    name: str,
    *,
    markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None = None,
    **values: Any,
) -> Message | None:
    """Render a template and send it in parts of at most 4096 characters.

    A keyboard rides on the last part, where the person's eyes are.
    """
    return await send(update, context, text(update, context, name, **values), markup=markup)


async def send(
    update: Update,
    context: CadreContext,
    body: str,
    *,
    markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None = None,
) -> Message | None:
    """Send rendered text in parts of at most 4096 characters, the keyboard on the last."""
    parts = split_message(body)
    chat = update.effective_chat
    assert chat is not None
    sent: Message | None = None
    for index, part in enumerate(parts):
        sent = await context.bot.send_message(
            chat.id, part, reply_markup=markup if index == len(parts) - 1 else None
        )
    return sent


async def edit_or_reply(
    update: Update,
    context: CadreContext,
    name: str,
    *,
    markup: InlineKeyboardMarkup | None = None,
    **values: Any,
) -> None:
    """Answer a button press by editing its message in place; fall back to a new message."""
    await edit_or_send(update, context, text(update, context, name, **values), markup=markup)


async def edit_or_send(
    update: Update,
    context: CadreContext,
    body: str,
    *,
    markup: InlineKeyboardMarkup | None = None,
) -> None:
    """`edit_or_reply` for text already rendered."""
    query = update.callback_query
    parts = split_message(body)
    if query is not None and query.message is not None and len(parts) == 1:
        try:
            await query.edit_message_text(parts[0], reply_markup=markup)
            return
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return
    await send(update, context, body, markup=markup)


async def plan_notice(
    session: AsyncSession,
    context: CadreContext,
    recipients: list[tuple[int, str | None]],
    name: str,
    *,
    key: str,
    subject: int | None = None,
    **values: Any,
) -> int:
    """Queue a notice for each recipient in the caller's transaction (the outbox).

    It is written with the change that caused it, so it is sent if and only if the change
    is committed; the dispatcher delivers it within Telegram's limits. `key` names the event
    (e.g. ``vetting-outcome:12``); the recipient is appended, so replanning is a no-op.
    `subject` is the nomination the notice names or is about, so that erasing that person
    cancels or blanks it. Returns how many were newly queued.
    """
    return await plan_notice_with(
        session, context, recipients, name, key=key, subject=subject, values=values
    )


async def plan_notice_with(
    session: AsyncSession,
    context: CadreContext,
    recipients: list[tuple[int, str | None]],
    name: str,
    *,
    key: str,
    subject: int | None = None,
    buttons: Sequence[Sequence[tuple[str, str]]] = (),
    values: Mapping[str, Any],
) -> int:
    """`plan_notice`, with buttons under the notice: rows of (label key, data), labelled in
    each recipient's language (an invitation's RSVP)."""
    planned = 0
    for chat_id, language in recipients:
        locale = normalize_locale(language, context.settings.locale)
        parts = split_message(render(context.jinja, locale, name, **values))
        markup = None
        if buttons:
            labels = labels_for(context.jinja, locale)
            rows = [
                [InlineKeyboardButton(labels[k], callback_data=d) for k, d in row]
                for row in buttons
            ]
            markup = InlineKeyboardMarkup(rows).to_dict()
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
        literals: list[str] = []
        for part in parts:
            if part.isascii() and part.isdigit():
                break
            literals.append(part)
        subject = ":".join(literals)[:32]
        ids = (_ID.parse(part) for part in parts[len(literals) :])
        return f"button:{subject}"[:48], subject, next((i for i in ids if i is not None), None)
    message = update.effective_message
    if message is not None and message.text and message.text.startswith("/"):
        command = message.text.split()[0].split("@")[0][:32]
        return f"command:{command}", "command", None
    return "message", "-", None


async def record_denial(
    update: Update,
    context: CadreContext,
    *,
    session: AsyncSession | None = None,
    subject: tuple[str, int] | None = None,
) -> None:
    """Audit a refusal: who tried what on which subject (ids only).

    The row goes into `session` when the caller holds one open, else into the update's
    transaction. `subject` names what was asked for when the update alone does not (a typed
    file number). Flows that answer a refusal as "not found" or "expired" (so as not to tell
    whether the record exists) call this alone; `deny` also says "not allowed".
    """
    user = update.effective_user
    if user is None:
        return
    action, subject_type, subject_id = attempt_of(update)
    if subject is not None:
        subject_type, subject_id = subject
    async with contextlib.AsyncExitStack() as stack:
        into = (
            session if session is not None else await stack.enter_async_context(context.session())
        )
        await audit.denied(
            into,
            telegram_id=user.id,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
        )


async def deny(
    update: Update,
    context: CadreContext,
    *,
    session: AsyncSession | None = None,
    edit: bool = False,
    subject: tuple[str, int] | None = None,
) -> None:
    """Refuse an action: audit it (`record_denial`), then say "not allowed"."""
    await record_denial(update, context, session=session, subject=subject)
    if edit:
        await edit_or_reply(update, context, "common/forbidden")
    else:
        await reply(update, context, "common/forbidden")


def button_text(update: Update, context: CadreContext, name: str, **values: Any) -> str:
    """A button label from a template: labels are plain text, so the HTML escaping is undone."""
    return html.unescape(text(update, context, name, **values))


async def answer_query(update: Update) -> None:
    """Stop the button's spinner (a no-op for messages)."""
    query = update.callback_query
    if query is not None:
        await query.answer()


async def drop_buttons(update: Update) -> None:
    """Take the buttons off an answered question so that it cannot be answered twice.

    Telegram refuses to edit a message that is gone, older than 48 hours or already bare;
    the answer itself must still go through (the draft guards against a second press).
    """
    query = update.callback_query
    if query is not None and query.message is not None:
        try:
            await query.edit_message_reply_markup(None)
        except BadRequest as exc:
            log.info("buttons left on a message Telegram will not edit: %s", exc.message)


def inline_rows(
    buttons: Sequence[tuple[str, str]], per_row: int = 2
) -> list[list[InlineKeyboardButton]]:
    """(label, callback_data) pairs laid out in rows; callback data stays short ids only."""
    rows: list[list[InlineKeyboardButton]] = []
    for i in range(0, len(buttons), per_row):
        rows.append(
            [
                InlineKeyboardButton(lbl, callback_data=data)
                for lbl, data in buttons[i : i + per_row]
            ]
        )
    return rows


def keyboard(buttons: Sequence[tuple[str, str]], per_row: int = 2) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_rows(buttons, per_row))
