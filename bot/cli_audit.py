"""`cadrebot audit`: print the audit log, oldest first, one row a line.

    cadrebot audit [--person N] [--actor TELEGRAM_ID] [--since YYYY-MM-DD] [--limit N]

--person: rows by person N, about them, or about their files. --actor: rows by the account
with that Telegram id (its person's rows, and refusals recorded before it had a person).
--since: from that county day (TIMEZONE) on. Columns, tab-separated: id, time (county
clock), actor person, actor account, action, subject, detail. The log holds ids and action
names only, so nothing personal is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import date, datetime, time
from typing import Any

from bot.cli_args import row_id, telegram_id
from bot.settings import Settings
from storage import audit
from storage.db import Database


def add_parser(sub: Any) -> None:
    """Add `audit` to the `cadrebot` subcommands."""
    parser = sub.add_parser("audit", help="print the audit log (reads, changes, refusals)")
    parser.add_argument("--person", type=row_id, help="rows by, about or on the files of person N")
    parser.add_argument(
        "--actor", type=telegram_id, help="rows by the account with this Telegram id"
    )
    parser.add_argument("--since", type=date.fromisoformat, help="first county day, YYYY-MM-DD")
    parser.add_argument("--limit", type=int, default=1000, help="at most this many rows")


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    since = datetime.combine(args.since, time(), settings.tz) if args.since else None
    database = Database(settings.database_url)
    try:
        async with database.sessionmaker() as session:
            rows = await audit.entries(
                session,
                person_id=args.person,
                actor_telegram_id=args.actor,
                since=since,
                limit=args.limit,
            )
    finally:
        await database.close()
    for row in rows:
        subject = row.subject_type + (f":{row.subject_id}" if row.subject_id is not None else "")
        print(
            "\t".join(
                (
                    str(row.id),
                    row.at.astimezone(settings.tz).isoformat(timespec="seconds"),
                    _or_dash(row.actor_person_id),
                    _or_dash(row.actor_telegram_id),
                    row.action,
                    subject,
                    json.dumps(row.detail, ensure_ascii=False, sort_keys=True),
                )
            )
        )
    return 0


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)
