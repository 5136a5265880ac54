"""One flow at a time: a command that starts a conversation waits until the open one ends.

Without this, /nominate sent in the middle of /talk would start a second conversation while
the first one still waits for its answer, and the person's next message would go to
whichever conversation PTB checks first. The same holds for a button that starts a flow (a
"resolve" under /difficulties pressed in the middle of /talk): the guard knows every
conversation's entry buttons too, so no flow needs to check for another one itself.
"""

from __future__ import annotations

from typing import Any, Literal

from telegram import Update
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    TypeHandler,
)

from handlers.chat.context import CadreContext
from handlers.chat.reply import answer_query, reply
from handlers.chat.tg import ENGINES, TelegramChat

# Commands answered before the flows (group 0 lists them first): they read, so they may be
# asked mid-flow; afterwards the flow's question is asked again (`FlowGuard.remind`).
MENU_COMMANDS = frozenset({"start", "help", "lang", "mydata", "status"})


class FlowGuard:
    """Knows every conversation of the application and which commands open them."""

    def __init__(self, conversations: list[ConversationHandler[Any]]) -> None:
        self.conversations = conversations
        self.entry_commands: dict[str, ConversationHandler[Any]] = {}
        self.entry_buttons: list[tuple[CallbackQueryHandler[Any, Any], ConversationHandler[Any]]]
        self.entry_buttons = []
        for conversation in conversations:
            for entry in conversation.entry_points:
                if isinstance(entry, CommandHandler):
                    for command in entry.commands:
                        self.entry_commands[command] = conversation
                elif isinstance(entry, CallbackQueryHandler):
                    self.entry_buttons.append((entry, conversation))

    def open_flow(self, update: Update) -> ConversationHandler[Any] | None:
        for conversation in self.conversations:
            try:
                # PTB offers no public accessor for a chat's current state.
                key = conversation._get_key(update)
            except RuntimeError:
                continue
            if conversation._conversations.get(key) is not None:
                return conversation
        return None

    def _entered_by(self, update: Update) -> ConversationHandler[Any] | None:
        """The conversation a pressed button would start, if it is an entry button."""
        for handler, conversation in self.entry_buttons:
            if handler.check_update(update):
                return conversation
        return None

    async def _refuse_button(self, update: Update, context: CadreContext) -> None:
        """An entry button of one flow pressed while another is open: that one goes on."""
        target = self._entered_by(update)
        current = self.open_flow(update) if target is not None else None
        if current is None or current is target:
            return
        await answer_query(update)
        await _still_open(current, update, context, "busy")
        raise ApplicationHandlerStop

    async def check(self, update: Update, context: CadreContext) -> None:
        """Stop a flow-opening command or button while another flow is open, and say why."""
        if update.callback_query is not None:
            await self._refuse_button(update, context)
            return
        command = _command_of(update)
        if command is None:
            return
        target = self.entry_commands.get(command)
        if target is None:
            return
        current = self.open_flow(update)
        if current is None or current is target:
            return
        await reply(update, context, "common/flow_busy", command=command)
        raise ApplicationHandlerStop

    async def remind(self, update: Update, context: CadreContext) -> None:
        """After a menu command was answered mid-flow: the form is still open, so say so and
        ask its question again; else the next text would be an answer the person did not
        know they were giving."""
        command = _command_of(update)
        if command not in MENU_COMMANDS:
            return
        current = self.open_flow(update)
        if current is None:
            return
        await _still_open(current, update, context, "remind")

    def handler(self) -> TypeHandler[Update, CadreContext, None]:
        return TypeHandler(Update, self.check)

    def reminder(self) -> TypeHandler[Update, CadreContext, None]:
        return TypeHandler(Update, self.remind)


def _command_of(update: Update) -> str | None:
    message = update.effective_message
    if message is None or not message.text or not message.text.startswith("/"):
        return None
    return message.text.split()[0][1:].split("@")[0].lower()


async def _still_open(
    current: ConversationHandler[Any],
    update: Update,
    context: CadreContext,
    say: Literal["busy", "remind"],
) -> None:
    """Tell the person their open flow goes on: its engine's `busy` or `remind` at the state
    it is in, or the generic notice for a flow without an engine."""
    engine = ENGINES.get(str(current.name))
    if engine is None:
        await reply(update, context, "common/flow_open")
        return
    state = current._conversations.get(current._get_key(update))
    ask = engine.busy if say == "busy" else engine.remind
    await ask(TelegramChat(update, context), state if isinstance(state, int) else None)
