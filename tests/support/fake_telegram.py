"""The tests' names for the one fake Bot API (bot/fakeapi), strict like Telegram.

Kept as names only, so that test modules need not change their imports; new code imports
`bot.fakeapi` directly.
"""

from bot.fakeapi.core import BOT_ID
from bot.fakeapi.records import Call, Sent
from bot.fakeapi.transport import FakeTransport

BOT_USERNAME = "cadre_test_bot"
FakeTelegram = FakeTransport

__all__ = ["BOT_ID", "BOT_USERNAME", "Call", "FakeTelegram", "Sent"]
