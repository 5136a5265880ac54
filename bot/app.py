"""The application factory: every handler registered here, in one ordered list."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Any

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseHandler,
    ContextTypes,
    ConversationHandler,
    Defaults,
)
from telegram.request import BaseRequest

from bot import forget, planners, scheduler, summaries  # noqa: F401 - both register tick planners
from bot.context import CadreContext
from bot.errors import on_error
from bot.flows import FlowGuard
from bot.persistence import DatabasePersistence
from bot.settings import Settings
from handlers import (
    export,
    grades,
    mentoring,
    mydata,
    nomination,
    outcomes,
    pool,
    projects,
    review,
    start,
    summary,
    trainings,
    vetting,
    withdraw,
)
from storage.db import Database
from storage.rekey import load_cipher, seal_plaintext
from storage.rules.ladder import load_policy
from templates import build_environment

log = logging.getLogger("cadrebot.updates")
_current_handler: ContextVar[str] = ContextVar("cadrebot_handler", default="-")


class CadreApp(Application):  # type: ignore[type-arg]
    """Logs one line per update and makes its conversation state durable before the next."""

    async def process_update(self, update: object) -> None:
        started = time.perf_counter()
        token = _current_handler.set("-")
        try:
            await super().process_update(update)
        finally:
            # Flush right away instead of every update_interval: a crash or restart must not
            # lose the answer a person just gave.
            if self.persistence is not None:
                await self.update_persistence()
            log.info(
                "update %s handler=%s ms=%.1f",
                update.update_id if isinstance(update, Update) else "-",
                _current_handler.get(),
                (time.perf_counter() - started) * 1000,
            )
            _current_handler.reset(token)


Callback = Callable[..., Coroutine[Any, Any, Any]]


def _timed(callback: Callback) -> Callback:
    name = f"{callback.__module__.removeprefix('handlers.')}.{callback.__name__}"

    async def wrapper(update: Any, context: Any) -> Any:
        _current_handler.set(name)
        return await callback(update, context)

    wrapper.__name__ = callback.__name__
    wrapper.__wrapped__ = callback  # type: ignore[attr-defined]
    return wrapper


def _instrument(handler: BaseHandler[Any, Any, Any]) -> None:
    """Wrap callbacks (inside conversations too) so the log line names the handler that ran."""
    if isinstance(handler, ConversationHandler):
        for inner in handler.entry_points + handler.fallbacks:
            _instrument(inner)
        for state_handlers in handler.states.values():
            for inner in state_handlers:
                _instrument(inner)
        return
    callback = getattr(handler, "callback", None)
    if callback is not None and not hasattr(callback, "__wrapped__"):
        handler.callback = _timed(callback)


def handler_groups() -> list[tuple[int, list[BaseHandler[Update, CadreContext, None]]]]:
    """Every handler, in the order that decides who sees an update first.

    Group -2: the guard that keeps group chats out. Group -1 (added by build_application): the
    one-flow-at-a-time guard over every conversation below. Group 0, in order: the commands of
    /start, then each flow's conversation, then the catch-alls, which must come last so that
    they never shadow a conversation's state handlers.
    """
    return [
        (-2, start.guard_handlers()),
        # /withdraw answers even in the middle of a form (it ends the form): before the flows.
        (-1, withdraw.build_handlers()),
        (
            0,
            [
                *start.build_handlers(),
                # Before the flows, like /help: it reads, so it may be asked mid-form.
                *mydata.build_handlers(),
                *nomination.build_handlers(),
                *review.build_handlers(),
                *vetting.build_handlers(),
                *pool.build_handlers(),
                *mentoring.build_handlers(),
                *trainings.build_handlers(),
                *grades.build_handlers(),
                *projects.build_handlers(),
                *outcomes.build_handlers(),
                *export.build_handlers(),
                *summary.build_handlers(),
                *start.fallback_handlers(),
            ],
        ),
    ]


def build_application(
    settings: Settings,
    *,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    database: Database | None = None,
) -> CadreApp:
    """Assemble the bot. `request` replaces the HTTP transport in tests and `cadrebot shell`."""
    database = database or Database(settings.database_url)
    builder = (
        ApplicationBuilder()
        .application_class(CadreApp)
        .token(settings.require_token())
        .base_url(f"{settings.telegram_api_url}/bot")
        .base_file_url(f"{settings.telegram_api_url}/file/bot")
        .defaults(Defaults(parse_mode=ParseMode.HTML, tzinfo=settings.tz))
        .context_types(ContextTypes(context=CadreContext))
        # Second guard behind the outbox pacer: replies to people count against 30/s too.
        .rate_limiter(AIORateLimiter(overall_max_rate=settings.send_rate, max_retries=3))
        .persistence(DatabasePersistence(database, settings.require_data_key()))
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
    )
    if request is not None:
        builder = builder.request(request)
    if get_updates_request is not None:
        builder = builder.get_updates_request(get_updates_request)
    app: CadreApp = builder.build()  # type: ignore[assignment]
    app.bot_data["settings"] = settings
    app.bot_data["database"] = database
    groups = handler_groups()
    conversations = [
        h for _, handlers in groups for h in handlers if isinstance(h, ConversationHandler)
    ]
    groups.append((-1, [FlowGuard(conversations).handler()]))
    for group, handlers in groups:
        for handler in handlers:
            _instrument(handler)
            app.add_handler(handler, group=group)
    app.add_error_handler(on_error)
    return app


async def _post_init(app: Application) -> None:  # type: ignore[type-arg]
    """Open the shared services; handlers reach them through CadreContext."""
    database: Database = app.bot_data["database"]
    database.open()
    app.bot_data["jinja"] = build_environment()
    settings: Settings = app.bot_data["settings"]
    async with database.sessionmaker.begin() as session:
        cipher = await load_cipher(session, settings.require_data_key())
    app.bot_data["cipher"] = cipher
    # Free texts written in plain before migration 0011 (talks, difficulties, vetting notes,
    # status reasons) are encrypted here, once; later starts find none.
    for sealed in await seal_plaintext(database, cipher):
        if sealed.sealed:
            logging.getLogger(__name__).info("encrypted %d plain %s", sealed.sealed, sealed.label)
    app.bot_data["grade_policy"] = load_policy()
    scheduler.install(app, settings)
    await forget.install(app)


async def _post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
    database: Database = app.bot_data["database"]
    await database.close()
