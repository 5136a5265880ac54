"""`cadrebot` command line: run the bot and the operator's chores. Errors: one line, non-zero."""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

from bot import cli_audit, cli_export, cli_summary, logs
from bot.cli_args import row_id, telegram_id
from bot.settings import Settings, SettingsError, load_settings
from bot.shell import command as shell
from storage import migrate
from storage.crypto import DataKeyError
from storage.db import Database
from storage.models import Role

EXIT_SETTINGS = 2
EXIT_FAILURE = 1
# The most INVITE_DAYS allows: a code is a key to someone's data, it should not live for years.
MAX_INVITE_DAYS = 365


class CommandError(Exception):
    """An operator mistake; the message is the one line we print."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cadrebot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the bot (polling by default)")
    run.add_argument("--poll-interval", type=float, default=None, help="seconds between polls")
    run.add_argument("--webhook-url", help="public HTTPS URL Telegram posts updates to")
    run.add_argument("--listen", default="127.0.0.1", help="address the webhook server binds")
    run.add_argument("--port", type=int, default=8443, help="port the webhook server binds")
    run.add_argument("--secret-token", help="secret Telegram sends with each webhook call")
    run.add_argument("--no-migrate", action="store_true", help="skip `db upgrade` at start")

    db = sub.add_parser("db", help="database chores")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply every migration")
    revision = db_sub.add_parser("revision", help="(developers) autogenerate a migration")
    revision.add_argument("-m", "--message", required=True)
    tallies = db_sub.add_parser(
        "tallies", help="check the trigger-kept summary counters against the facts"
    )
    tallies.add_argument(
        "--rebuild", action="store_true", help="rewrite them from the facts, then check"
    )

    invite = sub.add_parser("invite", help="print single-use invite codes")
    invite.add_argument("--role", required=True, choices=[r.value for r in Role])
    invite.add_argument("--township", help="township name (mentor, township_official)")
    invite.add_argument(
        "--department",
        help="vetting department (reviewer): one of VETTING_DEPARTMENTS, by default "
        "police, discipline, judicial",
    )
    invite.add_argument(
        "--slot",
        choices=["township", "village"],
        help="mentor kind: township cadre or village secretary",
    )
    invite.add_argument("--count", type=int, default=1)
    invite.add_argument(
        "--days",
        type=int,
        default=None,
        help=f"days until the codes expire, 1 to {MAX_INVITE_DAYS} (default INVITE_DAYS, 7); "
        "0 is refused: such a code would expire before anyone could redeem it",
    )

    geo = sub.add_parser("geo", help="geography")
    geo_sub = geo.add_subparsers(dest="geo_command", required=True)
    geo_import = geo_sub.add_parser("import", help="import a CSV of township,village")
    geo_import.add_argument("file", type=Path)
    geo_import.add_argument("--county", help="county name (needed for the first import)")

    seed = sub.add_parser("seed", help="demo data")
    seed.add_argument("--demo", action="store_true", required=True)
    seed.add_argument(
        "--scale",
        choices=["small", "article"],
        default="small",
        help="small: a few villages (default); article: the seed article's county, 2024",
    )
    seed.add_argument(
        "--staff-only",
        action="store_true",
        help="the county and its demo staff without the candidates' files that give them work "
        "(a clean county to walk a whole flow through); the files need DATA_KEY",
    )

    erase = sub.add_parser("erase", help="erase a person's personal data on request (PIPL)")
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--nomination", type=row_id, help="the nomination (dossier) number")
    who.add_argument("--telegram-id", type=telegram_id, help="the person's Telegram user id")
    erase.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    purge = sub.add_parser("purge", help="delete what is past its retention period now")
    purge.add_argument(
        "--dry-run", action="store_true", help="list what would be deleted (ids), change nothing"
    )

    sub.add_parser("keygen", help="print a new DATA_KEY for .env")
    rekey = sub.add_parser(
        "rekey", help="re-encrypt every stored value with the first (newest) key of DATA_KEY"
    )
    rekey.add_argument(
        "--batch-size", type=int, default=500, help="rows per transaction (default 500)"
    )
    shell.add_parser(sub)
    cli_export.add_parser(sub)
    cli_summary.add_parser(sub)
    cli_audit.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "keygen":
        print(Fernet.generate_key().decode())
        return 0
    try:
        settings = load_settings()
        logs.configure(settings.log_level)
        return _dispatch(args, settings)
    except SettingsError as exc:
        print(f"cadrebot: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    except DataKeyError as exc:
        # DATA_KEY is well formed but opens nothing in this database: a wrong setting too.
        print(f"cadrebot: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    except CommandError as exc:
        print(f"cadrebot: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # The traceback goes to the (redacted) log at DEBUG; the operator gets one line.
        logging.getLogger("cadrebot").debug("command failed", exc_info=exc)
        print(f"cadrebot: {args.command} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "shell":
        return shell.run(args, settings)
    if args.command == "db" and args.db_command == "revision":
        migrate.revision(settings.database_url, args.message)
        return 0
    if args.command == "run":
        settings.require_token()
        settings.require_data_key()
        _check_policy()
        if not args.no_migrate:
            _upgrade(settings)
        asyncio.run(_reach_bot_api(settings))
        # A DATA_KEY that opens nothing here stops start-up with one line, before polling.
        asyncio.run(_check_data_key(settings))
        return _run(args, settings)
    migrated = _upgrade(settings)
    if args.command == "export":
        return asyncio.run(cli_export.run(args, settings))
    if args.command == "summary":
        return cli_summary.run(args, settings)
    if args.command == "audit":
        return cli_audit.run(args, settings)
    if args.command == "db" and args.db_command == "tallies":
        return asyncio.run(_tallies(args, settings))
    if args.command == "rekey":
        return asyncio.run(_rekey(args, settings))
    if args.command == "db":
        before, after = migrated
        if before == after:
            print(f"database already at {after} (the latest); nothing to do")
        else:
            print(f"database migrated from {before or 'none (a new database)'} to {after}")
        return 0
    return asyncio.run(_chore(args, settings))


def _check_policy() -> None:
    """A broken grade policy file stops start-up here, not at the first annual result."""
    from storage.rules.ladder import PolicyError, load_policy

    try:
        load_policy()
    except PolicyError as exc:
        raise CommandError(f"grade policy: {exc}") from None


def _upgrade(settings: Settings) -> tuple[str | None, str | None]:
    """Migrate to the latest revision; the revisions before and after, for `db upgrade`."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        before = migrate.current(settings.database_url)
        migrate.upgrade(settings.database_url)
        return before, migrate.current(settings.database_url)
    except OSError as exc:
        raise CommandError(f"cannot reach the database: {exc}") from None
    except Exception as exc:
        if type(exc).__name__ in {
            "OperationalError",
            "InvalidCatalogNameError",
            "ConnectionError",
        }:
            raise CommandError(f"cannot reach the database: {type(exc).__name__}") from None
        raise


async def _reach_bot_api(settings: Settings) -> None:
    """Ask the Bot API who we are before starting: unreachable, exit 1 with one line.

    Exiting (rather than waiting in a retry loop) leaves the waiting to what runs the bot
    (systemd's Restart=on-failure, a container's restart policy), which backs off and shows
    the restarts, and an operator at a terminal sees a wrong TELEGRAM_API_URL or a blocked
    network at once. PTB's own bootstrap would log the same failure as a 100-line traceback.
    """
    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError

    bot = Bot(settings.require_token(), base_url=f"{settings.telegram_api_url}/bot")
    try:
        async with bot:
            pass
    except InvalidToken:
        raise SettingsError(
            f"BOT_TOKEN was refused by the Bot API at {settings.telegram_api_url}: copy the "
            "token from @BotFather again (or check TELEGRAM_API_URL)"
        ) from None
    except NetworkError as exc:  # TimedOut is a NetworkError
        reason = str(exc).replace(settings.require_token(), "<BOT_TOKEN>")
        raise CommandError(
            f"cannot reach the Bot API at {settings.telegram_api_url} ({reason}): "
            "check the network or TELEGRAM_API_URL, then start again"
        ) from None


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build_application
    from bot.standby import AlreadyRunning, PostgresLock, SqliteLock, sqlite_path

    # One active process per database (bot/standby.py): SQLite refuses a second one here,
    # PostgreSQL makes it a standby that waits in CadreApp.initialize.
    path = sqlite_path(settings.database_url)
    sqlite_lock = SqliteLock(path) if path is not None else None
    if sqlite_lock is not None:
        try:
            sqlite_lock.acquire()
        except AlreadyRunning as exc:
            raise CommandError(str(exc)) from None
    app = build_application(settings)
    if not settings.database_url.startswith("sqlite"):
        app.bot_data["active_lock"] = PostgresLock(settings.database_url)
    if args.webhook_url:
        app.run_webhook(
            listen=args.listen,
            port=args.port,
            # Listen where Telegram is told to post: a proxy passes the path through.
            url_path=urlsplit(args.webhook_url).path.strip("/")
            or settings.require_token().split(":")[0],
            webhook_url=args.webhook_url,
            secret_token=args.secret_token,
            allowed_updates=["message", "callback_query", "edited_message"],
        )
    else:
        interval = args.poll_interval if args.poll_interval is not None else settings.poll_interval
        app.run_polling(
            poll_interval=interval,
            allowed_updates=["message", "callback_query", "edited_message"],
        )
    return 0


async def _chore(args: argparse.Namespace, settings: Settings) -> int:
    database = Database(settings.database_url)
    try:
        if args.command == "invite":
            await _invite(args, settings, database)
        elif args.command == "geo":
            await _geo_import(args, database)
        elif args.command == "erase":
            await _erase(args, database)
        elif args.command == "purge":
            await _purge(args, settings, database)
        elif args.command == "seed":
            await _seed(settings, database, args.scale, files=not args.staff_only)
    finally:
        await database.close()
    return 0


async def _tallies(args: argparse.Namespace, settings: Settings) -> int:
    """storage.tally.verify (and rebuild): after a bulk load made with triggers off, or to
    make sure a hand-made fix left the summaries' counters right."""
    from storage import tally

    database = Database(settings.database_url)
    try:
        if args.rebuild:
            async with database.engine.begin() as connection:
                await tally.rebuild(connection)
        async with database.engine.connect() as connection:
            found = await tally.verify(connection)
    finally:
        await database.close()
    for mismatch in found[:50]:
        print(
            f"{mismatch.what} {mismatch.key}: stored {mismatch.stored}, counted {mismatch.counted}"
        )
    if found:
        print(f"{len(found)} disagreement(s); `cadrebot db tallies --rebuild` rewrites them")
        return EXIT_FAILURE
    print("tallies agree with the facts" + (" (rebuilt)" if args.rebuild else ""))
    return 0


async def _check_data_key(settings: Settings) -> None:
    from storage.rekey import load_cipher

    database = Database(settings.database_url)
    try:
        async with database.sessionmaker.begin() as session:
            await load_cipher(session, settings.require_data_key())
    finally:
        await database.close()


async def _rekey(args: argparse.Namespace, settings: Settings) -> int:
    """Encrypt what is still plain, then put every encrypted value under the newest key."""
    from storage.rekey import load_cipher, rekey

    if not 1 <= args.batch_size <= 100_000:
        raise CommandError("--batch-size must be between 1 and 100000")
    database = Database(settings.database_url)
    try:
        async with database.sessionmaker.begin() as session:
            cipher = await load_cipher(session, settings.require_data_key())
        report = await rekey(database, cipher, batch_size=args.batch_size)
    finally:
        await database.close()
    for sealed in report.sealed:
        print(f"{sealed.label}: {sealed.sealed} plain value(s) encrypted")
    for column in report.columns:
        print(
            f"{column.label}: {column.rotated} re-encrypted, {column.current} already current, "
            f"{column.unreadable} unreadable"
        )
    if report.unreadable:
        print(
            f"{report.unreadable} value(s) open with no key of DATA_KEY: keep the old keys "
            "until they are dealt with"
        )
        return EXIT_FAILURE
    if cipher.key_count > 1:
        print("every value is under the first key: the other keys can now be removed")
    return 0


# In printed links when the bot's username is unknown: the codes work all the same.
PLACEHOLDER_USERNAME = "<your_bot>"


async def _bot_username(settings: Settings) -> str:
    """BOT_USERNAME, else Telegram's answer, else a placeholder and one note on stderr: a
    fresh clone has neither, and its codes are as good as any."""
    if settings.bot_username:
        return settings.bot_username
    why = "BOT_USERNAME is not set"
    if settings.bot_token is not None:
        from telegram import Bot
        from telegram.error import TelegramError

        bot = Bot(settings.require_token(), base_url=f"{settings.telegram_api_url}/bot")
        try:
            async with bot:
                return bot.username
        except TelegramError as exc:
            why = f"the bot's name could not be asked from Telegram ({type(exc).__name__})"
    print(
        f"cadrebot: note: {why}, so the links show {PLACEHOLDER_USERNAME}: "
        "put BOT_USERNAME=<your bot's username> into .env to print real links",
        file=sys.stderr,
    )
    return PLACEHOLDER_USERNAME


async def _invite(args: argparse.Namespace, settings: Settings, database: Database) -> None:
    from storage import geo, people

    role = Role(args.role)
    if args.count < 1 or args.count > 500:
        raise CommandError("--count must be between 1 and 500")
    if args.days is not None and not 1 <= args.days <= MAX_INVITE_DAYS:
        raise CommandError(
            f"--days must be between 1 and {MAX_INVITE_DAYS} "
            "(a code valid for 0 days would be expired before anyone could redeem it)"
        )
    if args.department is not None and args.department not in settings.department_codes:
        raise CommandError(
            f"unknown department {args.department!r}: use one of {_departments(settings)}"
        )
    if role == Role.REVIEWER and args.department is None:
        raise CommandError(
            f"a reviewer invite needs --department: one of {_departments(settings)}"
        )
    username = await _bot_username(settings)
    async with database.sessionmaker.begin() as session:
        township_id = None
        if args.township:
            township = await geo.township_by_name(session, args.township)
            if township is None:
                raise CommandError(f"no township named {args.township!r}; import geography first")
            township_id = township.id
        try:
            codes = await people.create_invites(
                session,
                role=role,
                now=datetime.now(UTC),
                days=settings.invite_days if args.days is None else args.days,
                count=args.count,
                township_id=township_id,
                department=args.department,
                mentor_slot=args.slot,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    for code in codes:
        print(f"{code}  https://t.me/{username}?start={code}")


def _departments(settings: Settings) -> str:
    """The VETTING_DEPARTMENTS codes with their labels, for a refusal: an operator who typed
    the department's Chinese name sees which code to type instead."""
    from templates import build_environment, labels_for

    labels = labels_for(build_environment(), settings.locale)
    shown = [
        f"{code} ({labels[f'dept.{code}']})" if f"dept.{code}" in labels else code
        for code in settings.department_codes
    ]
    return ", ".join(shown) + " (VETTING_DEPARTMENTS)"


async def _geo_import(args: argparse.Namespace, database: Database) -> None:
    from storage import geo

    path: Path = args.file
    if not path.is_file():  # noqa: ASYNC240 - a CLI start-up check, nothing else is running
        raise CommandError(f"no such file: {path}")
    pairs: list[tuple[str, str]] = []
    lines: list[int] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            if number == 1 and [c.strip().lower() for c in row] == ["township", "village"]:
                continue
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                raise CommandError(f"{path}:{number}: expected two columns township,village")
            pairs.append((row[0].strip(), row[1].strip()))
            lines.append(number)
    async with database.sessionmaker.begin() as session:
        county = await geo.the_county(session)
        county_name = args.county or (county.name if county else None)
        if county_name is None:
            raise CommandError("no county yet: pass --county NAME with the first import")
        try:
            result = await geo.import_pairs(session, county_name, pairs)
        except geo.PlaceNameError as exc:
            where = f"{path}:{lines[exc.index]}" if exc.index is not None else "--county"
            raise CommandError(f"{where}: {exc}") from None
    print(f"imported {result.townships_added} townships and {result.villages_added} villages")


async def _erase(args: argparse.Namespace, database: Database) -> None:
    from storage import erasure

    if not args.yes:
        raise CommandError("erasure cannot be undone: add --yes to confirm")
    async with database.sessionmaker.begin() as session:
        if args.nomination is not None:
            person_id = await erasure.person_of_nomination(session, args.nomination)
        else:
            person_id = await erasure.person_of_telegram(session, args.telegram_id)
        if person_id is None:
            raise CommandError("no such person: nothing erased")
        erased = await erasure.erase_person(session, person_id, actor_person_id=None)
    print(
        f"erased person {erased.person_id}: {erased.nominations} nomination(s) anonymized, "
        f"{erased.cancelled} pending message(s) cancelled, {erased.blanked} sent message(s) "
        "blanked; a running bot forgets their drafts within seconds"
    )


async def _purge(args: argparse.Namespace, settings: Settings, database: Database) -> None:
    """The daily retention purge on demand; --dry-run lists it (ids and counts only)."""
    from datetime import UTC, datetime

    from bot.planners import local_day, retention_policy
    from storage import retention

    now = datetime.now(UTC)
    policy = retention_policy(settings)
    async with database.sessionmaker.begin() as session:
        if args.dry_run:
            due = await retention.plan(session, policy, now)
        else:
            due = await retention.purge(session, policy, now, day=local_day(now, settings))
    verb = "would delete" if args.dry_run else "deleted"
    for what, ids, rule in (
        ("files", due.files, f"{policy.file_years} years after leaving the pool"),
        ("declined or rejected files", due.rejected, f"after {policy.rejected_days} days"),
        ("drafts of Telegram users", due.drafts, f"after {policy.draft_days} days"),
        ("message texts", due.outbox, f"after {policy.outbox_days} days"),
        ("unreadable drafts set aside", due.quarantined, f"after {policy.draft_days} days"),
    ):
        shown = " ".join(str(i) for i in ids[:200]) + (" …" if len(ids) > 200 else "")
        print(f"{verb} {len(ids)} {what} ({rule})" + (f": {shown}" if ids else ""))


async def _seed(settings: Settings, database: Database, scale: str, *, files: bool) -> None:
    """The demo county, then one invite per demo role; with `files`, the candidates' files
    that give each of those roles work waiting."""
    from storage import seed
    from storage.rekey import load_cipher

    if files or scale == "article":
        # Files hold ID numbers and phones, encrypted like real ones: no key, nothing written.
        settings.require_data_key()
    username = await _bot_username(settings)
    now = datetime.now(UTC)
    if scale == "article":
        from storage.seed_article import seed_article

        try:
            async with database.sessionmaker.begin() as session:
                cipher = await load_cipher(session, settings.require_data_key())
                counts = await seed_article(session, cipher, now=now)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        print(
            f"county built: {counts.townships} townships, {counts.villages} villages, "
            f"{counts.nominations} nominations, {counts.reserve_cadres} reserve cadres, "
            f"{counts.talks} talks, {counts.trainings} trainings, {counts.projects} projects"
        )
    async with database.sessionmaker.begin() as session:
        invites = await seed.seed_small(session, now=now, days=settings.invite_days)
        if files:
            await seed.seed_files(
                session,
                await load_cipher(session, settings.require_data_key()),
                now=now,
                tz=settings.tz,
                departments=settings.department_codes,
            )
    for invite in invites:
        print(
            f"{invite.role.value:<18} {invite.code}  https://t.me/{username}?start={invite.code}"
        )


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
