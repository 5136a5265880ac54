"""One fake Bot API for the tests, `cadrebot shell` and the benches (issue 15).

`FakeBotApi` (core) answers like Telegram and records what the bot did; `FakeTransport`
plugs it into PTB in-process; `bot.fakeapi.server` serves it over real HTTP for the benches.
"""

from bot.fakeapi.core import BOT_ID, FakeBotApi
from bot.fakeapi.flood import Flood
from bot.fakeapi.html import TelegramHTMLError, check, convert_html, html_to_text
from bot.fakeapi.markup import Button, Markup, ReplyKey, parse_markup
from bot.fakeapi.records import Call, Event, Rejected, Sent, Upload
from bot.fakeapi.transport import FakeTransport

__all__ = [
    "BOT_ID",
    "Button",
    "Call",
    "Event",
    "FakeBotApi",
    "FakeTransport",
    "Flood",
    "Markup",
    "Rejected",
    "ReplyKey",
    "Sent",
    "TelegramHTMLError",
    "Upload",
    "check",
    "convert_html",
    "html_to_text",
    "parse_markup",
]
