"""/export: the official's scope as an .xlsx workbook, sent as a document.

The workbook is built in one transaction (which also carries the audit row) into a spooled
temporary file: small scopes stay in memory, a whole county rolls over to disk. The adapter
commits before the upload, so no database lock is held across it.
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime
from functools import cache

from jinja2 import Environment

from handlers.chat.commands import command
from handlers.chat.screen import Attachment, Screen
from handlers.chat.screens import Act, Refused, screen
from storage import export
from storage.models import OFFICIAL_ROLES
from templates import labels_for

COMMAND = command("export", *OFFICIAL_ROLES)
# Kept in memory up to this size, then on disk.
SPOOL_BYTES = 8 * 1024 * 1024
# The Bot API's upload limit for documents.
TELEGRAM_MAX_BYTES = 50 * 1024 * 1024
# Characters that no file system or Telegram client takes in a file name.
UNSAFE_NAME_RE = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')
# `/export 手机号`: full phones, asked for explicitly, in either language's word.
PHONE_WORDS = frozenset({"手机号", "phones"})


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


@screen(command=COMMAND)
async def send_export(act: Act) -> Screen:
    """Build the workbook of the official's scope and send it as a document; `/export 手机号`
    (or `phones`) puts the roster's phones in full (audited per file), anything else typed
    after the command is shown how to ask."""
    today = datetime.now(UTC).astimezone(act.settings.tz)
    scope = export.scope_of(act.actor)
    if scope is None:
        raise Refused
    asked = act.args.strip().lower()
    if asked and asked not in PHONE_WORDS:
        return Screen("export/usage")
    phones = bool(asked)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as buffer:
        async with act.session() as session:
            names = await export.scope_names(session, scope)
            summary = await export.write_workbook(
                session,
                act.actor,
                buffer,
                locale_labels=workbook_labels(act.chat.jinja, act.chat.locale),
                tz=act.settings.tz,
                cipher=act.chat.service("cipher"),
                phones=phones,
            )
        size = buffer.tell()
        if size > TELEGRAM_MAX_BYTES:
            return Screen(
                "export/too_large",
                {
                    "size_mb": round(size / 1024 / 1024, 1),
                    "limit_mb": TELEGRAM_MAX_BYTES // 1024 // 1024,
                },
            )
        buffer.seek(0)
        data = buffer.read()
    values: dict[str, object] = {"scope": " ".join(names), "day": today.date().isoformat()}
    values |= {"rows": summary.rows, "phones": phones}
    document = Attachment("document", data, file_name(names, today))
    return Screen("export/caption", values, attachment=document)


MENUS = (send_export,)
