"""`cadrebot export --scope county|township:NAME --out FILE [--phones]`: the /export workbook
on the server; `--phones` puts the roster's full mobile numbers in it (audited per person).

For the operator (a scope too large to send through Telegram, or a scheduled copy). The file
is written next to FILE first and renamed into place, so a failed run leaves no half a file.
Errors: one line on stderr, exit 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bot.settings import Settings
from storage import export, geo
from storage.db import Database
from storage.export import ExportScope
from storage.rekey import load_cipher
from templates import build_environment

EXIT_FAILURE = 1
TOWNSHIP_PREFIX = "township:"


class ExportError(Exception):
    """An operator mistake; the message is the one line printed."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `export` on the `cadrebot` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "export", help="write the .xlsx workbook of the county or of one township"
    )
    parser.add_argument(
        "--scope", required=True, help="county, or township:NAME (e.g. township:NAME as imported)"
    )
    parser.add_argument("--out", required=True, type=Path, help="the .xlsx file to write")
    parser.add_argument(
        "--phones",
        action="store_true",
        help="full mobile numbers in the roster (default: masked); audited for each person",
    )
    return parser


async def _scope(session: Any, raw: str) -> ExportScope:
    if raw == "county":
        return ExportScope()
    if raw.startswith(TOWNSHIP_PREFIX) and raw.removeprefix(TOWNSHIP_PREFIX).strip():
        name = raw.removeprefix(TOWNSHIP_PREFIX).strip()
        township = await geo.township_by_name(session, name)
        if township is None:
            raise ExportError(f"no township named {name!r}")
        return ExportScope(frozenset({township.id}))
    raise ExportError(f"--scope must be county or township:NAME, not {raw!r}")


async def _export(args: argparse.Namespace, settings: Settings, database: Database) -> str:
    out: Path = args.out
    partial = out.with_name(f".{out.name}.part")
    try:
        # Fail on an unwritable place before any database work, with the system's reason.
        partial.open("wb").close()
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from None
    # Imported here: the label loader lives with the /export handler, which needs telegram.
    from handlers.oversight.export import workbook_labels

    labels = workbook_labels(build_environment(), settings.locale)
    try:
        async with database.sessionmaker.begin() as session:
            # Talks and difficulties are encrypted: the workbook needs DATA_KEY to show them.
            cipher = await load_cipher(session, settings.require_data_key())
            scope = await _scope(session, args.scope)
            summary = await export.write_workbook(
                session,
                scope,
                str(partial),
                locale_labels=labels,
                tz=settings.tz,
                cipher=cipher,
                # A Namespace built by a caller of `run` other than the parser may lack it.
                phones=getattr(args, "phones", False),
            )
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    rows = ", ".join(f"{sheet} {count}" for sheet, count in summary.rows.items())
    return f"wrote {out}: {rows}"


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run `cadrebot export`; returns the exit code. Other failures reach cli.main's one line."""
    database = Database(settings.database_url)
    try:
        print(await _export(args, settings, database))
    except ExportError as exc:
        print(f"cadrebot: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        await database.close()
    return 0
