"""The one error handler: log with the traceback, apologise, tell the admins."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError

from bot.context import CadreContext
from handlers.common import text
from storage import people

log = logging.getLogger("cadrebot.errors")


async def on_error(update: object, context: CadreContext) -> None:
    """Log the failure (redacted by the log filter) and tell the person and the admins."""
    error = context.error
    log.error(
        "update %s failed: %s",
        update.update_id if isinstance(update, Update) else "-",
        type(error).__name__,
        exc_info=error,
    )
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    try:
        await context.bot.send_message(
            update.effective_chat.id, text(update, context, "common/error")
        )
    except TelegramError:
        log.warning("could not tell the person about the failure")
    try:
        async with context.session() as session:
            admins = await people.admin_chat_ids(session)
    except Exception:  # the database may be what failed; the log line above is enough then
        log.warning("could not load admins to notify")
        return
    notice = text(
        None, context, "common/admin_error", update_id=update.update_id, error=type(error).__name__
    )
    for chat_id in admins:
        try:
            await context.bot.send_message(chat_id, notice)
        except TelegramError:
            log.warning("could not notify an admin about update %s", update.update_id)
