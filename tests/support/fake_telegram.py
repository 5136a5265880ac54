"""The tests' names for the one fake Bot API (bot/fakeapi), strict like Telegram.

Kept as names only, so that test modules need not change their imports; new code imports
`bot.fakeapi` directly.
"""

from bot.fakeapi import BOT_ID, Call, FakeTransport, Sent

BOT_USERNAME = "cadre_test_bot"
FakeTelegram = FakeTransport

__all__ = ["BOT_ID", "BOT_USERNAME", "Call", "FakeTelegram", "Sent"]
