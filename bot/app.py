"""The application factory: every handler registered here, in one ordered list."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from functools import partial
from typing import Any

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseHandler,
    ContextTypes,
    ConversationHandler,
    Defaults,
    TypeHandler,
)
from telegram.request import BaseRequest

from bot import jobs
from bot.errors import on_error
from bot.flows import FlowGuard
from bot.inbox import InboxQueue
from bot.menu import install as install_menus
from bot.persistence import DatabasePersistence
from bot.scheduler import JOB_KWARGS
from bot.settings import Settings
from bot.standby import PostgresLock
from handlers import (
    mydata,
    start,
    status,
    withdraw,
)
from handlers.chat import forget
from handlers.chat.commands import Command
from handlers.chat.context import (
    CadreContext,
    UpdateTransaction,
    current_transaction,
    reset_transaction,
    set_transaction,
)
from handlers.chat.menu import COMMANDS_KEY
from handlers.chat.passing import passing_text
from handlers.chat.reply import LOCALE_KEY
from handlers.chat.screens import Menu
from handlers.chat.tg import ahead_of_flows, conversation_of, handlers_of
from handlers.cultivate import attendance, checkin, difficulties, invites, mentees, pairing, scores
from handlers.cultivate import trainings as training_menus
from handlers.cultivate.talk import TALK
from handlers.cultivate.talk_behalf import TALK_BEHALF
from handlers.cultivate.training_new import TRAINING
from handlers.manage import dossier, grade, results_csv
from handlers.manage import pool as pool_menus
from handlers.manage.pool import POOL
from handlers.manage.post import POST
from handlers.manage.readmit import READMIT_FLOW
from handlers.manage.results import RESULTS
from handlers.oversight import export, invite, schedule, staff, summary
from handlers.select import reveal, review, vetting
from handlers.select.nominate import NOMINATE
from handlers.select.recommend import RECOMMEND
from handlers.select.rounds import ROUND
from handlers.use import projects
from handlers.use.outcome import OUTCOME
from handlers.use.project import PROJECT
from handlers.use.report import REPORT
from storage import inbox
from storage.crypto import DataCipher, DecryptError
from storage.db import Database
from storage.rekey import load_cipher, seal_plaintext
from storage.rules.ladder import load_policy
from templates import build_environment, normalize_locale, render

log = logging.getLogger("cadrebot.updates")
_current_handler: ContextVar[str] = ContextVar("cadrebot_handler", default="-")


class CadreApp(Application):  # type: ignore[type-arg]
    """One transaction per update, its state flushed into it; logs one line per update."""

    async def initialize(self) -> None:
        """Become the active process first (bot/standby.py), then load state from the
        database: a standby that takes over reads what the dead process last committed."""
        lock = self.bot_data.get("active_lock")
        if isinstance(lock, PostgresLock) and not self._initialized:
            await lock.acquire()
        if not self._initialized:
            # Before the persistence loads the drafts: a DATA_KEY that opens nothing in this
            # database is the operator's mistake (DataKeyError, one line and exit 2 from the
            # CLI), not a reason to set every draft aside as unreadable.
            database: Database = self.bot_data["database"]
            settings: Settings = self.bot_data["settings"]
            async with database.sessionmaker.begin() as session:
                self.bot_data["cipher"] = await load_cipher(session, settings.require_data_key())
        await super().initialize()
        await self._end_unknown_states()

    async def _end_unknown_states(self) -> None:
        """A stored state its flow does not have would leave the person in a conversation
        that answers nothing: end it (quarantined with its reason) so they start clean."""
        persistence = self.persistence
        if not isinstance(persistence, DatabasePersistence):
            return
        for handlers in self.handlers.values():
            for handler in handlers:
                if not isinstance(handler, ConversationHandler) or not handler.persistent:
                    continue
                conversations = handler._conversations  # PTB has no public accessor
                for key, state in list(conversations.items()):
                    if state in handler.states:
                        continue
                    conversations.data.pop(key, None)  # type: ignore[attr-defined]
                    await persistence.quarantine_state(
                        str(handler.name), key, state, "state unknown to the flow"
                    )

    async def process_update(self, update: object) -> None:
        if not isinstance(update, Update):
            await super().process_update(update)
            return
        started = time.perf_counter()
        token = _current_handler.set("-")
        database: Database = self.bot_data["database"]
        transaction = UpdateTransaction(database.sessionmaker(), update.update_id)
        tx_token = set_transaction(transaction)
        try:
            await self._handle_once(update, transaction)
        except Exception:
            # The fetcher loop must survive. Memory ran ahead of the database (the handler
            # moved the person's form on, the commit did not): bring it back, or their next
            # answer would fill the wrong question and a replay would apply this one out of
            # order.
            log.exception("update %s: could not commit its transaction", update.update_id)
            await transaction.session.close()  # its lock goes with it (SQLite)
            await self._after_failed_commit(update)
        finally:
            reset_transaction(tx_token)
            await transaction.session.close()
            log.info(
                "update %s handler=%s ms=%.1f",
                update.update_id,
                _current_handler.get(),
                (time.perf_counter() - started) * 1000,
            )
            _current_handler.reset(token)

    async def _handle_once(self, update: Update, transaction: UpdateTransaction) -> None:
        session = transaction.session
        queue = self.update_queue
        fresh = isinstance(queue, InboxQueue) and update.update_id in queue.fresh
        if not fresh and await inbox.is_handled(session, update.update_id):
            log.info("update %s was handled before: ignored", update.update_id)
            return
        before = forget.generation(self)
        await super().process_update(update)
        user = update.effective_user
        if user is not None and forget.forgotten_since(self, user.id, before):
            # Erased while this update was in hand (another process's erasure, polled): the
            # state PTB set when the callback returned must not be written back.
            forget.forget_users(self, [user.id])
        # Flush right away, into this transaction: a crash must not lose the answer a
        # person just gave, nor keep the answer without its effects.
        if self.persistence is not None:
            await self.update_persistence()
        for write in transaction.writes:
            await write(session)
        await inbox.mark_handled_with_commit(session, update.update_id, now=inbox.utcnow())
        await session.commit()
        if isinstance(queue, InboxQueue):
            queue.fresh.discard(update.update_id)
        for done in transaction.after_commit:
            done()

    async def _after_failed_commit(self, update: Update) -> None:
        """Reload the person's draft and form position from the database, then settle the
        update: marked handled (it will not be replayed after later ones) and the person asked
        to send it again. If the database is still out of reach, it stays unhandled and is
        handled first after a restart, onto the state it was meant for."""
        user = update.effective_user
        persistence = self.persistence
        try:
            if user is not None and isinstance(persistence, DatabasePersistence):
                data, states = await persistence.stored_state(user.id)
                self._user_ids_to_be_updated_in_persistence.discard(user.id)
                if data:
                    self._user_data[user.id] = data
                else:
                    self._user_data.pop(user.id, None)
                for name, conversations in self._conversation_handler_conversations.items():
                    for key in [k for k in conversations if k and k[-1] == user.id]:
                        conversations.data.pop(key, None)
                    for (state_name, key_text), state in states.items():
                        if state_name == name and state is not None:
                            key = tuple(json.loads(key_text))
                            conversations.data[key] = state
            database: Database = self.bot_data["database"]
            async with database.sessionmaker.begin() as session:
                await inbox.mark_handled(session, update.update_id, now=inbox.utcnow())
        except Exception:
            log.exception("update %s: left for the next start", update.update_id)
            return
        if update.effective_chat is not None:
            try:
                await self.bot.send_message(
                    update.effective_chat.id,
                    render(self.bot_data["jinja"], self._locale_of(update), "common/not_saved"),
                )
            except TelegramError:
                log.warning("could not ask for update %s again", update.update_id)

    def _locale_of(self, update: Update) -> str:
        user = update.effective_user
        chosen = self._user_data.get(user.id, {}).get(LOCALE_KEY) if user else None
        settings: Settings = self.bot_data["settings"]
        return (
            str(chosen)
            if chosen
            else normalize_locale(user.language_code if user else None, settings.locale)
        )

    async def process_error(
        self,
        update: object | None,
        error: Exception,
        job: Any = None,
        coroutine: Any = None,
    ) -> bool:
        """A handler failed: undo its writes, then let the error handler run.

        The update is still marked handled (with the state flush and whatever the error
        handler writes): handling it again would fail again, and a person must never be
        stuck behind an update that loops. What they typed is lost; they were told to retry.
        """
        transaction = current_transaction()
        if (
            transaction is not None
            and isinstance(update, Update)
            and update.update_id == transaction.update_id
        ):
            transaction.failed = True
            await transaction.session.rollback()
        return await super().process_error(update, error, job, coroutine)

    async def replay_inbox(self) -> int:
        """Queue what was recorded and not handled (a crash), oldest first; returns how many.

        Called before the Updater starts, so these come before anything newly fetched."""
        database: Database = self.bot_data["database"]
        cipher: DataCipher = self.bot_data["cipher"]
        async with database.sessionmaker() as session:
            pending = await inbox.unhandled(session)
        queued = 0
        for update_id, payload in pending:
            update = None
            if payload is not None:
                try:
                    update = Update.de_json(json.loads(cipher.decrypt(payload)), self.bot)
                except (DecryptError, ValueError, TypeError, KeyError):
                    update = None
            if update is None:
                log.warning("update %s in the inbox cannot be read: skipped", update_id)
                async with database.sessionmaker.begin() as session:
                    await inbox.mark_handled(session, update_id, now=inbox.utcnow())
                continue
            if isinstance(self.update_queue, InboxQueue):
                self.update_queue.fresh.add(update_id)
            self.update_queue.put_nowait(update)
            queued += 1
        if queued:
            log.info("inbox: %d update(s) received before a stop are handled first", queued)
        return queued


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
    if isinstance(handler, TypeHandler):
        return  # the guards around every update (flows, groups) name no handler
    callback = getattr(handler, "callback", None)
    if callback is not None and not hasattr(callback, "__wrapped__"):
        handler.callback = _timed(callback)


def menus(*groups: tuple[Menu, ...]) -> list[BaseHandler[Update, CadreContext, Any]]:
    """The handlers of every screen in `groups`, in order."""
    return [handler for group in groups for menu in group for handler in handlers_of(menu)]


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
        (-1, ahead_of_flows(withdraw.MENUS)),
        (
            0,
            [
                *start.build_handlers(),
                # Before the flows, like /help: it reads, so it may be asked mid-form.
                *menus(mydata.MENUS, status.MENUS),
                conversation_of(NOMINATE),
                conversation_of(RECOMMEND),
                conversation_of(ROUND),
                # The decisions asked from the queues' buttons, then the queues themselves.
                conversation_of(review.DECLINE),
                *menus(review.MENUS),
                conversation_of(vetting.DECIDE),
                *menus(vetting.MENUS),
                # /pool and the pool's conversation first: its buttons end an open search or
                # adjustment before the list's and the file's own handlers see them.
                conversation_of(POOL),
                conversation_of(READMIT_FLOW),
                *menus(pool_menus.MENUS, dossier.MENUS),
                # A file's full phone, tapped on the file or the review card.
                *menus(reveal.MENUS),
                # 2+1 mentoring: the two conversations first (their fallbacks see commands
                # before the plain ones), then /pair, /mentees and a page of /difficulties.
                conversation_of(TALK),
                conversation_of(TALK_BEHALF),
                conversation_of(difficulties.RESOLVE),
                *menus(pairing.MENUS, mentees.MENUS, difficulties.MENUS),
                conversation_of(TRAINING),
                *menus(training_menus.MENUS, attendance.MENUS, scores.MENUS, invites.MENUS),
                # The optional check-in code: after the conversations, so theirs come first.
                passing_text(checkin.SHAPE, checkin.check_in),
                # The two flows first (their busy answer covers /grade mid-flow), then /grade,
                # then a CSV file sent outside any flow.
                conversation_of(RESULTS),
                conversation_of(POST),
                *menus(grade.MENUS, results_csv.MENUS),
                # The two conversations first (their busy answer covers /projects mid-flow).
                conversation_of(PROJECT),
                conversation_of(REPORT),
                *menus(projects.MENUS),
                conversation_of(OUTCOME),
                *menus(export.MENUS, summary.MENUS, schedule.MENUS),
                # /invite, then the name correction (only /staff's button opens it), then
                # /staff's list and its buttons.
                conversation_of(invite.INVITE),
                conversation_of(staff.RENAME_FLOW),
                *menus(staff.MENUS),
                *start.fallback_handlers(),
            ],
        ),
    ]


# Every command the bot answers, as its flow declares it (word, one line, roles), in the
# order of the "/" menu: the menu (bot/menu.py), /help and the tests read this one list.
COMMANDS: tuple[Command, ...] = (
    *start.COMMANDS,
    NOMINATE.command,
    RECOMMEND.command,
    ROUND.command,
    review.COMMAND,
    vetting.COMMAND,
    POOL.command,
    dossier.COMMAND,
    mentees.COMMAND,
    TALK.command,
    TALK_BEHALF.command,
    difficulties.COMMAND,
    pairing.COMMAND,
    training_menus.COMMAND,
    TRAINING.command,
    grade.COMMAND,
    RESULTS.command,
    POST.command,
    REPORT.command,
    projects.COMMAND,
    PROJECT.command,
    OUTCOME.command,
    summary.COMMAND,
    schedule.COMMAND,
    export.COMMAND,
    invite.COMMAND,
    staff.COMMAND,
    status.COMMAND,
    mydata.COMMAND,
    withdraw.COMMAND,
)


def build_application(
    settings: Settings,
    *,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    database: Database | None = None,
) -> CadreApp:
    """Assemble the bot. `request` replaces the HTTP transport in tests and `cadrebot shell`."""
    database = database or Database(settings.database_url)
    cipher = DataCipher(settings.require_data_key())
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
        # Flushed after every update in its transaction (CadreApp); PTB's own periodic flush
        # would write a half-handled update's state outside it, so it is all but off.
        .persistence(
            DatabasePersistence(database, settings.require_data_key(), update_interval=86_400)
        )
        .update_queue(InboxQueue(database, cipher))
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
    app.bot_data[COMMANDS_KEY] = COMMANDS
    app.bot_data[withdraw.FORGET] = partial(forget.forget_users, app)
    groups = handler_groups()
    conversations = [
        h for _, handlers in groups for h in handlers if isinstance(h, ConversationHandler)
    ]
    guard = FlowGuard(conversations)
    groups.append((-1, [guard.handler()]))
    groups.append((1, [guard.reminder()]))
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
    cipher: DataCipher = app.bot_data["cipher"]  # loaded by CadreApp.initialize
    # Free texts written in plain before migration 0011 (talks, difficulties, vetting notes,
    # status reasons) are encrypted here, once; later starts find none.
    for sealed in await seal_plaintext(database, cipher):
        if sealed.sealed:
            logging.getLogger(__name__).info("encrypted %d plain %s", sealed.sealed, sealed.label)
    app.bot_data["grade_policy"] = load_policy()
    # /invite's links name the bot: BOT_USERNAME if set, else what getMe answered.
    app.bot_data[invite.USERNAME_KEY] = settings.bot_username or app.bot.username
    await jobs.install(app, settings)
    await install_menus(app)
    if isinstance(app, CadreApp):
        await app.replay_inbox()
    lock = app.bot_data.get("active_lock")
    if isinstance(lock, PostgresLock) and app.job_queue is not None:
        app.job_queue.run_repeating(
            _check_active_lock, interval=5, first=5, name="active-lock", job_kwargs=JOB_KWARGS
        )


async def _check_active_lock(context: CadreContext) -> None:
    """Stop if the lock's connection is gone: a standby may already have taken over, and two
    active processes would lose each other's answers. The supervisor restarts this one, and
    it waits as the standby."""
    lock: PostgresLock = context.bot_data["active_lock"]
    if not await lock.still_held():
        log.critical("lost the active process's lock on PostgreSQL: stopping")
        context.application.stop_running()


async def _post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
    if isinstance(app.update_queue, InboxQueue):
        await app.update_queue.aclose()
    database: Database = app.bot_data["database"]
    await database.close()
    lock = app.bot_data.get("active_lock")
    if isinstance(lock, PostgresLock):
        await lock.release()  # the standby takes over at once, not when the process exits
