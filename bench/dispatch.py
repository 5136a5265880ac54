"""Updates per second through the whole bot, beside a bare PTB echo bot.

    .venv/bin/python -m bench.dispatch [--updates N] [--db both|sqlite|postgresql]

Full stack: update JSON → Update.de_json → the update queue (for the bot, the inbox: the
update is recorded, encrypted, in its own transaction, as PTB's Updater does before it confirms
an update to Telegram) → CadreApp.process_update → /start handler → one transaction per update
(a new person and account, the state flush and the inbox's handled mark) → Jinja template →
fake Bot API transport. Every update comes from a new user. Bare echo: an Application with one
MessageHandler answering with the same text, behind the same fake transport and a plain
update queue, with no persistence and no database. Updates are processed one after the other,
as PTB does by default.

Form step: one answer in /nominate (the name question) from people who have just given their
consent, outside the timed loop: the draft is read from user_data, the answer validated and
stored, the draft (encrypted) and the conversation state persisted with the handled mark, and
the next question sent. Reported beside /start as a rate and its ratio to the bare echo.

With `--db both` (the default) the full stack and the form step run on SQLite and on
PostgreSQL in the same run, against one bare echo run. The target compares what the software
costs: the full stack runs with SEND_RATE raised to 1000/s (the AIORateLimiter stays in the
path, it just never holds a reply back). A second, shorter run at the production SEND_RATE of
30/s (on the first engine) shows that Telegram's broadcast ceiling, not the code, bounds a real
deployment. The run stops by itself within --time-limit seconds and prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sqlalchemy
import telegram
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ContextTypes,
    Defaults,
    MessageHandler,
    filters,
)
from telegram.request import RequestData

from bench.common import DEFAULT_PG_URL, argument_parser, fresh_database
from bot import app as app_module
from bot.fakeapi.transport import FakeTransport
from bot.settings import Settings
from storage.db import Database
from storage.models import TelegramAccount

TOKEN = "123456:BENCHTOKENabcdefghijklmnopqrstuvwxyz"
BOT_USERNAME = "cadre_bench_bot"
TARGET_PERCENT = 10.0
TEARDOWN_MARGIN_S = 5.0
BOT_USER: dict[str, Any] = {
    "id": 123456,
    "is_bot": True,
    "first_name": "Cadre",
    "username": BOT_USERNAME,
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}

DbKind = Literal["sqlite", "postgresql"]
AnyApp = Application[Any, Any, Any, Any, Any, Any]


class BenchTransport(FakeTransport):
    """The one fake Bot API (bot/fakeapi), the same fixed work for both bots.

    Lax while timed: Telegram's HTML and parameter rules are checked afterwards, outside the
    timed loop (`invalid_html`), because validation is the server's cost, not the bot's, and
    it would otherwise charge the long welcome text more than the echo. It keeps only what
    was sent, not every call.
    """

    def __init__(self) -> None:
        super().__init__(strict=False, username=BOT_USERNAME, log_calls=False)
        self.seconds = 0.0

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None, *_: Any, **__: Any
    ) -> tuple[int, bytes]:
        started = time.perf_counter()
        try:
            return await super().do_request(url, method, request_data)
        finally:
            self.seconds += time.perf_counter() - started

    def replies(self) -> int:
        return len(self.accepted)

    def invalid_html(self) -> int:
        """How many sent texts Telegram would reject (checked after the timed loop)."""
        return self.rejected_sends()

    def reset(self) -> None:
        self.sent.clear()
        self.seconds = 0.0
        self.requests = 0


class ErrorCounter(logging.Handler):
    """Counts ERROR records (the bot's error handler logs every failed update)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@dataclass
class Result:
    name: str
    planned: int
    warmed: int
    latencies: list[float]
    elapsed: float
    cpu_s: float
    transport_s: float
    replies: int
    invalid_html: int
    accounts: int | None
    errors: int
    limiter_rate: float | None
    counted: str = "accounts in db"

    @property
    def done(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def ms(self, q: float | None = None) -> float:
        """Mean latency (q=None) or the q-quantile by nearest rank, in milliseconds."""
        if not self.latencies:
            return math.nan
        if q is None:
            return statistics.fmean(self.latencies) * 1000
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000


class Clock:
    """The overall deadline, shared out between the bots in the order they run."""

    def __init__(self, limit_s: float) -> None:
        self.end = time.perf_counter() + limit_s

    def remaining(self) -> float:
        return max(0.0, self.end - time.perf_counter() - TEARDOWN_MARGIN_S)

    def share(self, fraction: float) -> float:
        """A deadline `fraction` of the remaining time away."""
        return time.perf_counter() + self.remaining() * fraction


_update_ids = iter(range(1, 10**9))


def payloads(first_user: int, count: int, text: str = "/start") -> list[bytes]:
    """`count` private-chat messages, each from a distinct user, as Telegram would send them."""
    now = int(time.time())
    out = []
    for user_id in range(first_user, first_user + count):
        message: dict[str, Any] = {
            "message_id": next(_update_ids),
            "date": now,
            "chat": {"id": user_id, "type": "private", "first_name": f"U{user_id}"},
            "from": {
                "id": user_id,
                "is_bot": False,
                "first_name": f"U{user_id}",
                "language_code": "zh-hans",
            },
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
        }
        out.append(json.dumps({"update_id": next(_update_ids), "message": message}).encode())
    return out


def texts(first_user: int, count: int, text: str) -> list[bytes]:
    """`count` plain-text answers (no command), one from each user."""
    out = []
    for raw in payloads(first_user, count, text):
        update = json.loads(raw)
        del update["message"]["entities"]
        out.append(json.dumps(update).encode())
    return out


def presses(first_user: int, count: int, data: str) -> list[bytes]:
    """`count` presses of an inline button carrying `data`, one by each user."""
    now = int(time.time())
    out = []
    for user_id in range(first_user, first_user + count):
        query = {
            "id": str(next(_update_ids)),
            "from": {"id": user_id, "is_bot": False, "first_name": f"U{user_id}"},
            "chat_instance": "bench",
            "data": data,
            "message": {
                "message_id": next(_update_ids),
                "date": now,
                "chat": {"id": user_id, "type": "private"},
                "from": {k: BOT_USER[k] for k in ("id", "is_bot", "first_name")},
                "text": "…",
            },
        }
        out.append(json.dumps({"update_id": next(_update_ids), "callback_query": query}).encode())
    return out


async def drive(
    app: AnyApp, raw_updates: list[bytes], deadline: float
) -> tuple[list[float], float, float]:
    """Feed updates one at a time until done or past `deadline`.

    Returns the per-update latencies, the wall time and the process CPU time (all threads,
    so the aiosqlite worker counts too), in seconds.
    """
    latencies: list[float] = []
    begun = time.perf_counter()
    cpu_begun = time.process_time()
    for raw in raw_updates:
        started = time.perf_counter()
        if started >= deadline:
            break
        update = Update.de_json(json.loads(raw), app.bot)
        # Through the update queue as the Updater hands it over: for the bot, the inbox.
        await app.update_queue.put(update)
        await app.process_update(app.update_queue.get_nowait())
        latencies.append(time.perf_counter() - started)
    return latencies, time.perf_counter() - begun, time.process_time() - cpu_begun


async def measure(
    name: str,
    app: AnyApp,
    fake: BenchTransport,
    errors: ErrorCounter,
    *,
    first_user: int,
    warmup: int,
    updates: int,
    deadline: float,
    count_accounts: Callable[[], Awaitable[int]] | None = None,
    limiter_rate: float | None = None,
) -> Result:
    """Warm up with `warmup` new users, then time `updates` more new users."""
    warm_deadline = time.perf_counter() + (deadline - time.perf_counter()) * 0.25
    warm = payloads(first_user, warmup)
    measured = payloads(first_user + warmup, updates)
    warmed, _, _ = await drive(app, warm, warm_deadline)

    async def accounts() -> int | None:
        return await count_accounts() if count_accounts is not None else None

    return await timed(
        name, app, fake, errors, measured, deadline, updates, len(warmed), accounts, limiter_rate
    )


async def timed(
    name: str,
    app: AnyApp,
    fake: BenchTransport,
    errors: ErrorCounter,
    measured: list[bytes],
    deadline: float,
    planned: int,
    warmed: int,
    count: Callable[[], Awaitable[int | None]],
    limiter_rate: float | None,
    *,
    counted: str = "accounts in db",
) -> Result:
    """Time `measured` from a clean fake and error count; `count` what they left behind."""
    fake.reset()
    errors_before = errors.count
    latencies, elapsed, cpu = await drive(app, measured, deadline)
    return Result(
        name=name,
        planned=planned,
        warmed=warmed,
        latencies=latencies,
        elapsed=elapsed,
        cpu_s=cpu,
        transport_s=fake.seconds,
        replies=fake.replies(),
        invalid_html=fake.invalid_html(),
        accounts=await count(),
        errors=errors.count - errors_before,
        limiter_rate=limiter_rate,
        counted=counted,
    )


async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    await message.reply_text(message.text)


async def run_bare(errors: ErrorCounter, *, warmup: int, updates: int, deadline: float) -> Result:
    fake = BenchTransport()
    echo: AnyApp = (
        ApplicationBuilder()
        .token(TOKEN)
        .request(fake)
        .get_updates_request(fake)
        # Same parse mode as the bot: the requests are alike and both get the HTML check.
        .defaults(Defaults(parse_mode=ParseMode.HTML))
        .build()
    )
    echo.add_handler(MessageHandler(filters.TEXT, _echo))
    await echo.initialize()
    try:
        return await measure(
            "bare PTB echo",
            echo,
            fake,
            errors,
            first_user=1_000_000,
            warmup=warmup,
            updates=updates,
            deadline=deadline,
        )
    finally:
        await echo.shutdown()


def overall_rate(app: AnyApp) -> float | None:
    """Messages/s that the application's AIORateLimiter lets through overall, if any."""
    limiter = app.bot.rate_limiter
    bucket = getattr(limiter, "_base_limiter", None)  # private; only for the report
    rate = getattr(bucket, "max_rate", None)
    period = getattr(bucket, "time_period", None)
    return float(rate) / float(period) if rate and period else None


async def run_full(
    errors: ErrorCounter,
    database: Database,
    *,
    name: str,
    throttled: bool,
    first_user: int,
    warmup: int,
    updates: int,
    deadline: float,
) -> Result:
    # SEND_RATE is Telegram's broadcast ceiling (30/s) in production; raised here, the
    # limiter stays in the path but the figure shows what the software itself costs.
    app, fake = await _start_bot(database, throttled=throttled)

    async def count_accounts() -> int:
        async with database.sessionmaker() as session:
            return int(
                await session.scalar(select(func.count()).select_from(TelegramAccount)) or 0
            )

    try:
        return await measure(
            name,
            app,
            fake,
            errors,
            first_user=first_user,
            warmup=warmup,
            updates=updates,
            deadline=deadline,
            count_accounts=count_accounts,
            limiter_rate=overall_rate(app),
        )
    finally:
        await _stop_bot(app)


async def run_form(
    errors: ErrorCounter,
    database: Database,
    *,
    name: str,
    first_user: int,
    warmup: int,
    updates: int,
    deadline: float,
) -> Result:
    """One answer in /nominate by people standing at its first question (see the docstring)."""
    app, fake = await _start_bot(database, throttled=False)
    try:
        total = warmup + updates
        # Untimed: each person opens the form and gives both consents.
        setup_deadline = time.perf_counter() + (deadline - time.perf_counter()) * 0.6
        for batch in (
            payloads(first_user, total, "/nominate"),
            presses(first_user, total, "nom:ok:1"),
            presses(first_user, total, "nom:id:1"),
        ):
            await drive(app, batch, setup_deadline)
        ready = sum(
            1
            for user_id in range(first_user, first_user + total)
            if app.user_data.get(user_id, {}).get("nomination", {}).get("at") == "full_name"
        )
        warm = texts(first_user, min(warmup, ready), "张三")
        measured = texts(first_user + warmup, max(0, min(updates, ready - warmup)), "张三")
        await drive(app, warm, deadline)

        async def answered() -> int:
            # Drafts holding the answer (checked against `done`).
            return sum(
                1
                for user_id in range(first_user + warmup, first_user + total)
                if app.user_data.get(user_id, {})
                .get("nomination", {})
                .get("answers", {})
                .get("full_name")
            )

        return await timed(
            name,
            app,
            fake,
            errors,
            measured,
            deadline,
            updates,
            len(warm),
            answered,
            overall_rate(app),
            counted="drafts holding the answer",
        )
    finally:
        await _stop_bot(app)


async def _start_bot(database: Database, *, throttled: bool) -> tuple[AnyApp, BenchTransport]:
    settings = Settings(
        bot_token=TOKEN,  # type: ignore[arg-type]
        data_key=Fernet.generate_key().decode(),  # type: ignore[arg-type]
        database_url=database.url,
        bot_username=BOT_USERNAME,
        send_rate=30.0 if throttled else 1000.0,
        _env_file=None,  # type: ignore[call-arg]
    )
    fake = BenchTransport()
    app = app_module.build_application(
        settings, request=fake, get_updates_request=fake, database=database
    )
    await app.initialize()
    assert app.post_init is not None
    await app.post_init(app)
    return app, fake


async def _stop_bot(app: AnyApp) -> None:
    assert app.post_shutdown is not None
    await app.update_persistence()
    await app.shutdown()
    await app.post_shutdown(app)


def _row(result: Result) -> str:
    return (
        f"{result.name:<34} {result.done:>7} {result.rate:>12.1f} "
        f"{result.ms():>8.2f} {result.ms(0.5):>8.2f} {result.ms(0.95):>8.2f} "
        f"{result.cpu_s * 1000 / max(1, result.done):>11.3f} "
        f"{result.transport_s * 1000 / max(1, result.done):>11.3f}"
    )


def _checks(result: Result, expected_accounts: int | None) -> str:
    parts = [
        f"{result.replies} replies",
        f"{result.invalid_html} with invalid HTML",
        f"{result.errors} errors",
    ]
    if result.accounts is not None:
        parts.append(f"{result.accounts} {result.counted} (expected {expected_accounts})")
    if result.done < result.planned:
        parts.append(f"stopped at its time budget after {result.done} of {result.planned}")
    if result.warmed:
        parts.append(f"after {result.warmed} warm-up updates")
    ok = result.replies == result.done and result.errors == 0 and result.invalid_html == 0
    if result.accounts is not None:
        ok = ok and result.accounts == expected_accounts
    return f"  {result.name}: {'ok' if ok else 'MISMATCH'} — {', '.join(parts)}"


def _rate_text(rate: float | None) -> str:
    return "off" if rate is None else f"{rate:.0f} messages/s"


def _percent(full: Result, bare: Result) -> float:
    return full.rate / bare.rate * 100 if bare.rate > 0 else math.nan


async def main_async(args: argparse.Namespace) -> int:
    clock = Clock(args.time_limit)
    errors = ErrorCounter()
    logging.getLogger().addHandler(errors)
    kinds: list[DbKind] = ["sqlite", "postgresql"] if args.db == "both" else [args.db]

    print("cadrebot dispatch benchmark: /start from new users vs a bare PTB echo bot")
    print(
        f"python {platform.python_version()}, python-telegram-bot {telegram.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}, {sys.platform}"
    )
    print(
        f"databases: {', '.join(kinds)} (a fresh migrated SQLite file / a throwaway PostgreSQL "
        "schema per run); the inbox is in the path (updates go through the update queue)"
    )
    print(
        f"per bot: {args.warmup} warm-up updates, then {args.updates} measured "
        f"({args.form_updates} for the form step), sequential process_update; "
        f"time limit {args.time_limit:.0f} s"
    )
    print(
        "note: logger cadrebot.updates set to WARNING for the run "
        "(its per-update INFO line is suppressed)"
    )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average before the run: {load} on {os.cpu_count()} CPUs (noise shows up here)")
    sys.stdout.flush()

    starts: dict[str, Result] = {}
    forms: dict[str, Result] = {}
    throttled: Result | None = None
    phases = 1 + 2 * len(kinds) + 1
    done_phases = 0

    def share() -> float:
        nonlocal done_phases
        done_phases += 1
        return clock.share(1 / (phases - done_phases + 1))

    with tempfile.TemporaryDirectory(prefix="cadrebot-bench-") as tmp:
        folder = Path(tmp)
        bare = await run_bare(errors, warmup=args.warmup, updates=args.updates, deadline=share())
        for index, kind in enumerate(kinds):
            async with fresh_database(kind, args.pg_url, f"start_{kind}", folder) as database:
                starts[kind] = await run_full(
                    errors,
                    database,
                    name=f"full stack /start, {kind}",
                    throttled=False,
                    first_user=2_000_000 + index * 100_000,
                    warmup=args.warmup,
                    updates=args.updates,
                    deadline=share(),
                )
            async with fresh_database(kind, args.pg_url, f"form_{kind}", folder) as database:
                forms[kind] = await run_form(
                    errors,
                    database,
                    name=f"form step /nominate, {kind}",
                    first_user=4_000_000 + index * 100_000,
                    warmup=min(args.warmup, 100),
                    updates=args.form_updates,
                    deadline=share(),
                )
        async with fresh_database(kinds[0], args.pg_url, "as_built", folder) as database:
            throttled = await run_full(
                errors,
                database,
                name=f"full stack /start, {kinds[0]}, SEND_RATE 30/s",
                throttled=True,
                first_user=3_000_000,
                warmup=min(args.warmup, 60),
                updates=min(args.updates, 300),
                deadline=share(),
            )

    print()
    header = (
        f"{'bot':<40} {'updates':>7} {'rate upd/s':>12} "
        f"{'mean ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'cpu ms/upd':>11} {'fake ms/upd':>11}"
    )
    print(header)
    print("-" * len(header))
    results = [bare, *[r for kind in kinds for r in (starts[kind], forms[kind])], throttled]
    for result in results:
        print(_row(result))
    print(
        "(cpu = process CPU time of all threads; fake = time inside the fake transport, "
        "the same code for all)"
    )
    print()
    print("checks (measured phase):")
    print(_checks(bare, None))
    for kind in kinds:
        start = starts[kind]
        print(_checks(start, start.warmed + start.done))
        form = forms[kind]
        print(_checks(form, form.done))
    print(_checks(throttled, throttled.warmed + throttled.done))
    print()
    verdicts = []
    for kind in kinds:
        start, form = starts[kind], forms[kind]
        ratio = _percent(start, bare)
        verdicts.append(ratio >= TARGET_PERCENT)
        print(
            f"{kind}: /start {start.rate:.1f}/s = {ratio:.1f}% of bare echo ({bare.rate:.1f}/s); "
            f"form step {form.rate:.1f}/s = {_percent(form, bare):.1f}%"
        )
    verdict = "PASS" if all(verdicts) else "FAIL"
    print(f"target: full stack ≥ 10% of bare echo on {' and '.join(kinds)}: {verdict}")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average after the run: {load}")
    print(
        f"at the production SEND_RATE the bot answers {throttled.rate:.1f} updates/s: "
        "Telegram's 30 messages/s ceiling, not the code, is the bound there"
    )
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser("python -m bench.dispatch", __doc__)
    parser.add_argument("--updates", type=int, default=2000, help="measured updates per bot")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up updates per bot")
    parser.add_argument("--db", choices=["both", "sqlite", "postgresql"], default="both")
    parser.add_argument(
        "--form-updates", type=int, default=500, help="measured answers in the form-step bench"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL for --db postgresql")
    parser.add_argument(
        "--time-limit", type=float, default=240.0, help="stop measuring after this many seconds"
    )
    args = parser.parse_args(argv)
    if args.updates < 1 or args.warmup < 0 or args.time_limit <= TEARDOWN_MARGIN_S:
        parser.error("need --updates ≥ 1, --warmup ≥ 0 and --time-limit > 5")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("cadrebot.updates").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        # A safety net above the per-phase budgets: nothing may keep the run going.
        return asyncio.run(asyncio.wait_for(main_async(args), timeout=args.time_limit + 15))
    except TimeoutError:
        print(f"aborted: the run exceeded {args.time_limit + 15:.0f} s", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
