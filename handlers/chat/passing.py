"""A text handler that may decline: for a text only the database can recognise (a check-in
code of one of the sender's sessions).

It sits in group 0 next to the conversations. PTB filters are synchronous and cannot ask
the database, and a handler in a later group would run in addition to (not instead of) a
group-0 conversation or the not-understood catch-all. So `PassingText` matches texts of the
right shape, asks its callback in `handle_update`, and when the callback declines hands the
update to the next handler of its group that wants it, exactly as if it had never matched.
Conversations registered before it have already had their turn.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import Application, MessageHandler, filters

from handlers.chat.context import CadreContext
from handlers.chat.flow import Chat
from handlers.chat.tg import TelegramChat

# Whether the text was taken (True) or is left to the handlers after this one (False).
Take = Callable[[Chat, str], Awaitable[bool]]


class PassingText(MessageHandler[CadreContext, object]):
    """Takes a text only when its callback says so (returns True); see the module's text."""

    async def handle_update(
        self,
        update: Update,
        application: Application[Any, CadreContext, Any, Any, Any, Any],
        check_result: Any,
        context: CadreContext,
    ) -> object:
        if await super().handle_update(update, application, check_result, context):
            return None
        context.matches = None  # our regex's match is no business of the next handler
        group = next((h for h in application.handlers.values() if self in h), [self])
        for handler in group[group.index(self) + 1 :]:
            check = handler.check_update(update)
            if check is not None and check is not False:
                return await handler.handle_update(update, application, check, context)
        return None


def passing_text(shape: re.Pattern[str], take: Take) -> PassingText:
    """A private, non-command text of `shape`, offered to `take` first."""

    async def callback(update: Update, context: CadreContext) -> bool:
        message = update.effective_message
        assert message is not None and message.text is not None
        return await take(TelegramChat(update, context), message.text)

    callback.__name__ = getattr(take, "__name__", "passing_text")
    private_text = filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE
    return PassingText(private_text & filters.Regex(shape), callback)
