"""The Telegram side of the chat layer: button handlers matched by the codec, and the adapter
that runs flows (handlers/chat/flow.py) and shows screens (handlers/chat/screen.py) in a chat.

Everything above this module (the engine, the flow declarations) is free of `telegram`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import CallbackQueryHandler

from handlers.chat.codec import AnyOf, Button, Pattern, Prefix

Callback = Callable[[Any, Any], Coroutine[Any, Any, Any]]


def on(pattern: Pattern, callback: Callback) -> CallbackQueryHandler[Any, Any]:
    """The handler of one kind of button, matched only by data that decodes."""
    handler: CallbackQueryHandler[Any, Any] = CallbackQueryHandler(callback, pattern=pattern.match)
    return handler


def pattern_of(handler: object) -> Pattern | None:
    """The codec pattern a CallbackQueryHandler was built with (tests walk these)."""
    match = getattr(handler, "pattern", None)
    owner = getattr(match, "__self__", None)
    return owner if isinstance(owner, Button | AnyOf | Prefix) else None
