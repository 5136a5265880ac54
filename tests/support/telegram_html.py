"""Telegram's HTML rules, as its servers apply them: they live in bot/fakeapi/html.py."""

from bot.fakeapi.html import LIMIT, TelegramHTMLError, check

__all__ = ["LIMIT", "TelegramHTMLError", "check"]
