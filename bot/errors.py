"""The one error handler: log with the traceback, apologise, tell the admins once an hour.

Admins hear about each kind of failure at most once an hour: the notice is planned in the
outbox under a key made of the failure's signature (the exception type and where in our code
it was raised) and the hour, so a crash loop, a flood of forged buttons or a restart in the
middle of either cannot send the same notice twice in that hour.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from datetime import datetime

from telegram import Update
from telegram.error import TelegramError

from handlers.chat.context import CadreContext
from handlers.chat.reply import now, plan_notice, text
from storage import people

log = logging.getLogger("cadrebot.errors")

# Frames from these packages name where a failure is ours; library frames below them do not.
OUR_PACKAGES = ("handlers", "storage", "bot")


def signature(error: BaseException | None) -> str:
    """The exception type and the innermost frame of our code: no message, no values."""
    if error is None:
        return "None"
    where = "-"
    for frame in traceback.extract_tb(error.__traceback__):
        parts = frame.filename.replace("\\", "/").split("/")
        if len(parts) >= 2 and parts[-2] in OUR_PACKAGES:
            where = f"{parts[-2]}/{parts[-1]}:{frame.name}"
    return f"{type(error).__name__}@{where}"


def notice_key(error: BaseException | None, at: datetime) -> str:
    digest = hashlib.sha256(signature(error).encode()).hexdigest()[:16]
    return f"admin-error:{digest}:{at.strftime('%Y%m%d%H')}"


async def on_error(update: object, context: CadreContext) -> None:
    """Log the failure (redacted by the log filter), tell the person, plan the admin notice."""
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
            await plan_notice(
                session,
                context,
                [(chat_id, None) for chat_id in admins],
                "common/admin_error",
                key=notice_key(error, now()),
                update_id=update.update_id,
                error=type(error).__name__,
            )
    except Exception:  # the database may be what failed; the log line above is enough then
        log.warning("could not plan the admin notice for update %s", update.update_id)
