"""`cadrebot shell` on the command line: its arguments, settings, locks and the input loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot.settings import Settings, SettingsError
from bot.shell.personas import LANGUAGE_CODES, Persona, ShellError, resolve_persona
from bot.shell.repl import BOT_USERNAME, FAKE_TOKEN, Shell
from storage import migrate
from storage.crypto import DataKeyError, parse_keys

DEFAULT_KEY_FILE = Path("data/shell.key")
# With --own-database: the fake users stay out of the database the other commands use.
OWN_DATABASE_URL = "sqlite:///data/shell.sqlite3"
DEFAULT_OUT_DIR = Path("data/shell-out")

log = logging.getLogger("cadrebot.shell")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `shell` on the `cadrebot` sub-command parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "shell",
        help="chat with the real handlers in this terminal (no token, no network)",
        description=(
            "Chat with the bot's real handlers in the terminal. Lines starting with / are "
            "commands, a number presses that button, !help lists the rest."
        ),
    )
    parser.add_argument(
        "--as",
        dest="persona",
        default="candidate",
        metavar="ROLE_OR_NAME",
        help="admin, county_official, township_official, mentor, reviewer (or a demo "
        "person's name), candidate (default), or new for a fresh user",
    )
    parser.add_argument("--user-id", type=int, help="the fake Telegram user id to act as")
    parser.add_argument("--lang", choices=sorted(LANGUAGE_CODES), default="zh")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help=f"folder for photos and documents the bot sends (default {DEFAULT_OUT_DIR}/)",
    )
    parser.add_argument("--verbose", action="store_true", help="show the bot's INFO log lines")
    parser.add_argument(
        "--own-database",
        action="store_true",
        help=f"use {OWN_DATABASE_URL.removeprefix('sqlite:///')} instead of DATABASE_URL "
        "(the database `cadrebot invite` and the bot use)",
    )
    return parser


def load_or_create_key(path: Path) -> str:
    """The shell's own DATA_KEY, created once (mode 0600) so drafts outlive a session."""
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another shell made it first
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


def shell_settings(
    settings: Settings, key_file: Path = DEFAULT_KEY_FILE, *, own_database: bool = False
) -> Settings:
    """The operator's settings with a throwaway token, a DATA_KEY (theirs or the shell's),
    and their database (DATABASE_URL or its default) unless `own_database`."""
    if settings.data_key is not None:
        key = settings.data_key.get_secret_value()
    else:
        key = load_or_create_key(key_file)
    try:
        parse_keys(key)
    except DataKeyError:
        source = "DATA_KEY" if settings.data_key is not None else str(key_file)
        raise SettingsError(
            f"{source} is not a valid key: `cadrebot keygen` prints a new one"
        ) from None
    database_url = OWN_DATABASE_URL if own_database else settings.database_url
    return settings.model_copy(
        update={
            "database_url": database_url,
            "bot_token": SecretStr(FAKE_TOKEN),
            "bot_username": BOT_USERNAME,
            "data_key": SecretStr(key),
        }
    )


def _read_line(interactive: bool) -> str:
    if interactive:
        return input("› ")
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`cadrebot shell`: migrate, seed the demo if empty, then chat until !quit or EOF."""
    if not args.verbose:
        # One log line per update would bury the chat; warnings and errors still show.
        for name in ("cadrebot", "telegram", "apscheduler", "alembic", "httpx"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        persona = resolve_persona(args.persona, args.user_id)
        own_key = settings.data_key is None
        settings = shell_settings(settings, own_database=args.own_database)
        try:
            migrate.upgrade(settings.database_url)
        except OSError as exc:
            raise ShellError(f"cannot reach the database: {exc}") from None
        except Exception as exc:
            if type(exc).__name__ in {"OperationalError", "InvalidCatalogNameError"}:
                raise ShellError(f"cannot reach the database: {type(exc).__name__}") from None
            raise
    except ShellError as exc:
        print(f"cadrebot: {exc}", file=sys.stderr)
        return 1
    # The shell is an active process too: it delivers the outbox to its stand-in Telegram.
    # Beside a running bot it would take real people's messages, so it refuses, and while it
    # runs a `cadrebot run` waits (PostgreSQL) or refuses (SQLite) as it would for any other.
    from bot.standby import AlreadyRunning, PostgresLock, SqliteLock, sqlite_path

    path = sqlite_path(settings.database_url)
    file_lock = SqliteLock(path) if path is not None else None
    db_lock = PostgresLock(settings.database_url) if path is None else None
    busy = (
        "a cadrebot is already running on this database: the shell would deliver its "
        "messages; stop it, or use `cadrebot shell --own-database`"
    )
    try:
        if file_lock is not None:
            file_lock.acquire()
    except AlreadyRunning:
        print(f"cadrebot: {busy}", file=sys.stderr)
        return 1
    # PostgreSQL's lock lives on a connection of the shell's own event loop.
    with asyncio.Runner() as runner:
        try:
            if db_lock is not None and not runner.run(db_lock.try_acquire()):
                print(f"cadrebot: {busy}", file=sys.stderr)
                return 1
            return _run_shell(runner, args, settings, persona, own_key)
        finally:
            if file_lock is not None:
                file_lock.release()
            if db_lock is not None:
                runner.run(db_lock.release())


def _run_shell(
    runner: asyncio.Runner,
    args: argparse.Namespace,
    settings: Settings,
    persona: Persona,
    own_key: bool,
) -> int:
    interactive = sys.stdin.isatty()
    if interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 - line editing and history for input()
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    shell = Shell(
        settings,
        persona,
        language_code=LANGUAGE_CODES[args.lang],
        out_dir=args.out,
        out=sys.stdout,
        color=color,
        echo=not interactive,
    )
    if own_key and not args.own_database:
        # The bot shares this database and needs the same key to read what the shell stored.
        shell.key_note = (
            f"(DATA_KEY is not set: drafts here are encrypted with {DEFAULT_KEY_FILE}; "
            f"put DATA_KEY=<the key in {DEFAULT_KEY_FILE}> into .env so that `cadrebot run` "
            "reads them too)"
        )
    try:
        runner.run(shell.start())
        return _chat(runner, shell, interactive)
    except ShellError as exc:
        print(f"cadrebot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print()
        return 130
    finally:
        runner.run(shell.stop())


def _chat(runner: asyncio.Runner, shell: Shell, interactive: bool) -> int:
    """Read lines until !quit or end of input; 1 if the shell itself failed on one."""
    code = 0
    while True:
        try:
            line = _read_line(interactive)
        except EOFError:
            if interactive:
                print()
            return code
        try:
            if not runner.run(shell.handle(line)):
                return code
        except (ShellError, KeyboardInterrupt):
            raise
        except Exception as exc:
            # A fault of the shell, not of a handler (PTB's error handler gets those): say so
            # in one line, keep chatting, and end with status 1.
            log.info("input failed", exc_info=exc)
            print(f"cadrebot: shell failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            code = 1
