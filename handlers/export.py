"""/export: the official's scope as an .xlsx workbook, sent as a document.

The workbook is built in one transaction (which also carries the audit row) into a spooled
temporary file: small scopes stay in memory, a whole county rolls over to disk. The document
is sent after the transaction has ended, so no database lock is held across the upload.
"""

from __future__ import annotations

import re
import tempfile
from datetime import datetime
from functools import cache

from jinja2 import Environment
from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, filters

from handlers.chat.commands import Command, command
from handlers.chat.context import CadreContext
from handlers.chat.reply import deny, labels_for, locale_of, now, reply, text
from storage import export, people
from storage.models import OFFICIAL_ROLES

PRIVATE = filters.ChatType.PRIVATE
# Kept in memory up to this size, then on disk.
SPOOL_BYTES = 8 * 1024 * 1024
# The Bot API's upload limit for documents.
TELEGRAM_MAX_BYTES = 50 * 1024 * 1024
# Characters that no file system or Telegram client takes in a file name.
UNSAFE_NAME_RE = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


@cache
def _titles(env: Environment, locale: str) -> dict[str, str]:
    module = env.get_template(f"{locale}/export/_titles.html.j2").module
    return dict(module.titles)  # type: ignore[attr-defined]


def workbook_labels(env: Environment, locale: str) -> dict[str, str]:
    """Every word the workbook uses in `locale`: the label table and the export titles."""
    return {**labels_for(env, locale), **_titles(env, locale)}


def file_name(names: list[str], at: datetime) -> str:
    """`cadrebot-<township>-2026-11-25.xlsx`; the scope's name is left out when unknown."""
    parts = ["cadrebot", *(UNSAFE_NAME_RE.sub("_", name).strip() for name in names)]
    return "-".join([*(p for p in parts if p), at.date().isoformat()]) + ".xlsx"


async def send_export(update: Update, context: CadreContext) -> None:
    """Build the workbook of the official's scope and send it as a document."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    locale = locale_of(update, context)
    today = now().astimezone(context.settings.tz)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as buffer:
        async with context.session() as session:
            actor = await people.load_actor(session, user.id)
            scope = export.scope_of(actor) if actor is not None else None
            if actor is None or scope is None:
                await deny(update, context, session=session)
                return
            names = await export.scope_names(session, scope)
            summary = await export.write_workbook(
                session,
                actor,
                buffer,
                locale_labels=workbook_labels(context.jinja, locale),
                tz=context.settings.tz,
                cipher=context.bot_data["cipher"],
            )
        # The update's transaction would otherwise hold SQLite's write lock over the upload.
        await context.checkpoint()
        size = buffer.tell()
        if size > TELEGRAM_MAX_BYTES:
            await reply(
                update,
                context,
                "export/too_large",
                size_mb=round(size / 1024 / 1024, 1),
                limit_mb=TELEGRAM_MAX_BYTES // 1024 // 1024,
            )
            return
        buffer.seek(0)
        # As bytes: PTB reads a file object whole anyway, and trips over a spooled file's
        # missing name.
        await context.bot.send_document(
            chat.id,
            document=buffer.read(),
            filename=file_name(names, today),
            caption=text(
                update,
                context,
                "export/caption",
                scope=" ".join(names),
                day=today.date().isoformat(),
                rows=summary.rows,
            ),
        )


COMMANDS: tuple[Command, ...] = (command("export", *OFFICIAL_ROLES),)


def build_handlers() -> list[BaseHandler[Update, CadreContext, None]]:
    return [CommandHandler("export", send_export, filters=PRIVATE)]
