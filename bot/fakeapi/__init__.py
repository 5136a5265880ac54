"""One fake Bot API for the tests, `cadrebot shell` and the benches (issue 15).

`FakeBotApi` (core) answers like Telegram and records what the bot did; `FakeTransport`
plugs it into PTB in-process; `bot.fakeapi.server` serves it over real HTTP for the benches.
"""
