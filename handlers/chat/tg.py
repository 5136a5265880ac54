"""The Telegram side of the chat layer: button handlers matched by the codec, and the adapter
that runs flows (handlers/chat/flow.py) and shows screens (handlers/chat/screen.py) in a chat.

Everything above this module (the engine, the flow declarations) is free of `telegram`.
"""

from __future__ import annotations

import html
import logging
import operator
import warnings
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from functools import reduce
from typing import TYPE_CHECKING, Any

from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import (
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from handlers.chat.codec import AnyOf, Button, Pattern, Prefix
from handlers.chat.context import CadreContext
from handlers.chat.engine import Engine
from handlers.chat.flow import Entry, Flow, Turn
from handlers.chat.reply import (
    Markup,
    answer_query,
    attempt_of,
    inline,
    locale_of,
    plan_notice,
    reply,
    send,
    text,
)
from handlers.chat.screen import Attachment, Screen
from handlers.chat.screens import Menu, show
from storage import audit
from templates import labels_for, split_message

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger("cadrebot.chat")
PRIVATE = filters.ChatType.PRIVATE

Callback = Callable[[Any, Any], Coroutine[Any, Any, Any]]


def on(pattern: Pattern, callback: Callback) -> CallbackQueryHandler[Any, Any]:
    """The handler of one kind of button, matched only by data that decodes."""
    return CallbackQueryHandler(callback, pattern=pattern.match)


def pattern_of(handler: object) -> Pattern | None:
    """The codec pattern a CallbackQueryHandler was built with (tests walk these)."""
    match = getattr(handler, "pattern", None)
    owner = getattr(match, "__self__", None)
    return owner if isinstance(owner, Button | AnyOf | Prefix) else None


class TelegramChat:
    """A `Chat` (handlers/chat/port.py) over one Telegram update."""

    def __init__(self, update: Update, context: CadreContext) -> None:
        self.update = update
        self.context = context
        self.settings: Settings = context.settings
        self.jinja: Environment = context.jinja
        self.session: Callable[[], AbstractAsyncContextManager[AsyncSession]] = context.session
        self._dropped = False
        self._notes: list[str] = []

    @property
    def user_id(self) -> int:
        user = self.update.effective_user
        assert user is not None
        return user.id

    @property
    def language(self) -> str | None:
        user = self.update.effective_user
        return user.language_code if user else None

    @property
    def user_data(self) -> dict[str, Any]:
        assert self.context.user_data is not None
        return self.context.user_data

    @property
    def locale(self) -> str:
        return locale_of(self.update, self.context)

    def service(self, name: str) -> Any:
        return self.context.bot_data[name]

    def label(self, key: str) -> str:
        return labels_for(self.jinja, self.locale).get(key, key)

    def text(self, name: str, **values: Any) -> str:
        # Button labels are plain text: the template's HTML escaping is undone.
        return html.unescape(text(self.update, self.context, name, **values))

    async def show(self, screen: Screen) -> None:
        markup: Markup | None = None
        if screen.rows:
            markup = inline(((b.label, b.data) for b in row) for row in screen.rows)
        elif screen.contact:
            markup = ReplyKeyboardMarkup(
                [[KeyboardButton(screen.contact, request_contact=True)]],
                one_time_keyboard=True,
                resize_keyboard=True,
            )
        elif screen.clear_keyboard:
            markup = ReplyKeyboardRemove()
        body = text(self.update, self.context, screen.template, **screen.values)
        if screen.attachment is not None:
            await self._send_file(screen.attachment, body, markup)
            return
        if self._notes:
            notes = [text(self.update, self.context, note).strip() for note in self._notes]
            body = "\n\n".join([*notes, body])
            self._notes.clear()
        query = self.update.callback_query
        if screen.edit and query is not None and not screen.contact:
            # Edited in place when it can be; else (the message gone, too long) sent anew.
            markup = markup if isinstance(markup, InlineKeyboardMarkup) else None
            parts = split_message(body)
            if query.message is not None and len(parts) == 1:
                try:
                    await query.edit_message_text(parts[0], reply_markup=markup)
                    return
                except BadRequest as exc:
                    if "not modified" in str(exc).lower():
                        return
        await send(self.update, self.context, body, markup=markup)

    def note(self, template: str) -> None:
        self._notes.append(template)

    async def _send_file(self, attachment: Attachment, body: str, markup: Markup | None) -> None:
        chat = self.update.effective_chat
        assert chat is not None
        # The update's transaction would otherwise hold SQLite's write lock over the upload.
        await self.context.checkpoint()
        bot = self.context.bot
        if attachment.kind == "photo":
            await bot.send_photo(chat.id, attachment.data, caption=body, reply_markup=markup)
        else:
            await bot.send_document(
                chat.id,
                attachment.data,
                filename=attachment.name or None,
                caption=body,
                reply_markup=markup,
            )

    async def deny(self, subject: tuple[str, int] | None = None) -> None:
        await self.audit_denial(subject)
        await reply(self.update, self.context, "common/forbidden")

    async def drop_buttons(self) -> None:
        query = self.update.callback_query
        if self._dropped or query is None or query.message is None:
            return
        self._dropped = True
        try:
            await query.edit_message_reply_markup(None)
        except BadRequest as exc:
            # Gone, older than 48 hours or already bare: the answer itself must still go
            # through (the draft guards against a second press).
            log.info("buttons left on a message Telegram will not edit: %s", exc.message)

    async def delete_input(self) -> bool:
        message = self.update.effective_message
        if message is None or self.update.callback_query is not None:
            return False
        try:
            return await message.delete()
        except TelegramError as exc:  # older than 48 hours, or already gone
            log.info("could not delete a message holding an ID number: %s", exc)
            return False

    async def download(self, turn: Turn) -> bytes:
        # The update's transaction would otherwise hold SQLite's write lock over the fetch.
        await self.context.checkpoint()
        handle = await self.context.bot.get_file(turn.file.file_id)
        return bytes(await handle.download_as_bytearray())

    async def audit_denial(self, subject: tuple[str, int] | None = None) -> None:
        user = self.update.effective_user
        if user is None:
            return
        action, kind, number = attempt_of(self.update)
        if subject is not None:
            kind, number = subject
        async with self.session() as session:
            await audit.denied(
                session, telegram_id=user.id, action=action, subject_type=kind, subject_id=number
            )

    async def notify(self, session: AsyncSession, *args: Any, **values: Any) -> int:
        """`Chat.notify`: reply.plan_notice in this update's settings and templates."""
        return await plan_notice(session, self.context, *args, **values)


def turn_of(update: Update) -> Turn:
    """What the person sent, as the engine reads it."""
    query = update.callback_query
    if query is not None:
        return Turn("button", data=query.data or "")
    message = update.effective_message
    if message is None:
        return Turn("other")
    if message.text is not None:
        return Turn("text", text=message.text)
    if message.contact is not None:
        user = update.effective_user
        own = user is not None and message.contact.user_id == user.id
        return Turn("contact", phone=message.contact.phone_number, own_contact=own)
    document = message.document
    if document is not None:
        return Turn(
            "file",
            file=document,
            file_name=document.file_name or "",
            mime_type=document.mime_type or "",
            file_size=document.file_size or 0,
        )
    if message.voice is not None:
        return Turn("voice", file=message.voice.file_id)
    return Turn("other")


ENGINES: dict[str, Engine] = {}


def conversation_of(flow: Flow) -> ConversationHandler[CadreContext]:
    """The flow's ConversationHandler: its command (and entry buttons) start it; in every
    state, its buttons and any message go to the engine, which knows where the person is."""
    engine = Engine(flow)
    ENGINES[flow.name] = engine
    anything = ~filters.COMMAND & PRIVATE

    async def begin(update: Update, context: CadreContext) -> int:
        args = " ".join(context.args or [])
        return await engine.begin(TelegramChat(update, context), args)

    def entered(entry: Entry) -> Callback:
        async def enter(update: Update, context: CadreContext) -> int:
            await answer_query(update)
            return await engine.enter(
                TelegramChat(update, context), entry, entry.button.values(update)
            )

        return enter

    def in_state(state: int) -> Callback:
        async def handle(update: Update, context: CadreContext) -> int:
            await answer_query(update)
            return await engine.handle(TelegramChat(update, context), turn_of(update), state)

        handle.__name__ = f"{flow.name}_answer"
        return handle

    async def cancel(update: Update, context: CadreContext) -> int:
        return await engine.cancel(TelegramChat(update, context))

    async def busy(update: Update, context: CadreContext) -> int:
        return await engine.busy(TelegramChat(update, context))

    begin.__name__ = f"{flow.name}_begin"
    states: dict[object, list[BaseHandler[Update, CadreContext, Any]]] = {
        state: [
            # Its own shapes first (the codec decodes them), then anything else under its
            # prefix: a forged or outdated button of this flow, answered "expired".
            on(AnyOf(*flow.buttons(), Prefix(flow.prefix)), in_state(state)),
            MessageHandler(anything, in_state(state)),
        ]
        for state in flow.states()
    }
    entries: list[BaseHandler[Update, CadreContext, Any]] = []
    if flow.by_command:
        entries.append(CommandHandler(flow.command.name, begin, filters=PRIVATE))
    entries += [on(entry.button, entered(entry)) for entry in flow.entries]
    # Persisted under the flow's name, one per person: per_message=False is deliberate (one
    # draft per person, whichever message its buttons sit on); PTB warns about
    # CallbackQueryHandlers in that mode, so the warning is silenced here, once.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBUserWarning)
        return ConversationHandler(
            entry_points=entries,
            states=states,
            # /cancel leaves the flow, any other command mid-flow is answered "busy".
            fallbacks=[
                CommandHandler("cancel", cancel, filters=PRIVATE),
                MessageHandler(filters.COMMAND & PRIVATE, busy),
            ],
            name=flow.name,
            persistent=True,
        )


def handlers_of(menu: Menu) -> list[BaseHandler[Update, CadreContext, Any]]:
    """A screen's command, button and upload handlers."""

    def named(callback: Callback) -> Callback:
        # The update's log line names the screen's module, not this adapter.
        callback.__name__ = menu.name
        callback.__module__ = menu.fn.__module__
        return callback

    found: list[BaseHandler[Update, CadreContext, Any]] = []
    if menu.command is not None:

        async def by_command(update: Update, context: CadreContext) -> None:
            args = " ".join(context.args or [])
            await show(menu, TelegramChat(update, context), args=args)

        found.append(CommandHandler(menu.command.name, named(by_command), filters=PRIVATE))
    pattern = menu.button
    if pattern is not None:

        async def by_button(update: Update, context: CadreContext) -> None:
            await answer_query(update)
            button, values = pattern.which(update)
            await show(menu, TelegramChat(update, context), values=values, button=button)

        found.append(on(pattern, named(by_button)))
    upload = menu.upload
    if upload is not None:

        async def by_file(update: Update, context: CadreContext) -> None:
            await show(menu, TelegramChat(update, context), turn=turn_of(update))

        kinds: list[filters.BaseFilter] = [
            *(filters.Document.FileExtension(e) for e in upload.extensions),
            *(filters.Document.MimeType(m) for m in upload.mime_types),
        ]
        found.append(MessageHandler(reduce(operator.or_, kinds) & PRIVATE, named(by_file)))
    return found


def ahead_of_flows(menus: tuple[Menu, ...]) -> list[BaseHandler[Update, CadreContext, Any]]:
    """The handlers of screens heard even in the middle of a form (/withdraw ends it),
    registered before the flows: the update stops there, so the form does not also answer
    that it is busy."""
    found = [handler for menu in menus for handler in handlers_of(menu)]
    for handler in found:
        handler.callback = _stopping(handler.callback)
    return found


def _stopping(callback: Callback) -> Any:
    async def stop(update: Update, context: CadreContext) -> None:
        await callback(update, context)
        raise ApplicationHandlerStop

    # The update's log line names the screen, not this wrapper.
    stop.__name__, stop.__module__ = callback.__name__, callback.__module__
    return stop
