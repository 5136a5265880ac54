"""One flow at a time: a command that starts a conversation waits until the open one ends.

Without this, /nominate sent in the middle of /talk would start a second conversation while
the first one still waits for its answer, and the person's next message would go to
whichever conversation PTB checks first.
"""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import ApplicationHandlerStop, CommandHandler, ConversationHandler, TypeHandler

from handlers.chat.context import CadreContext
from handlers.chat.reply import reply


class FlowGuard:
    """Knows every conversation of the application and which commands open them."""

    def __init__(self, conversations: list[ConversationHandler[Any]]) -> None:
        self.conversations = conversations
        self.entry_commands: dict[str, ConversationHandler[Any]] = {}
        for conversation in conversations:
            for entry in conversation.entry_points:
                if isinstance(entry, CommandHandler):
                    for command in entry.commands:
                        self.entry_commands[command] = conversation

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

    async def check(self, update: Update, context: CadreContext) -> None:
        """Stop a flow-opening command while another flow is open, and say why."""
        message = update.effective_message
        if message is None or not message.text or not message.text.startswith("/"):
            return
        command = message.text.split()[0][1:].split("@")[0].lower()
        target = self.entry_commands.get(command)
        if target is None:
            return
        current = self.open_flow(update)
        if current is None or current is target:
            return
        await reply(update, context, "common/flow_busy", command=command)
        raise ApplicationHandlerStop

    def handler(self) -> TypeHandler[Update, CadreContext, None]:
        return TypeHandler(Update, self.check)
