"""The dispatcher against a Bot API fake that answers 429, 403, 5xx and times out."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from telegram import Bot
from telegram.error import TimedOut
from telegram.request import RequestData

from bot.delivery import Dispatcher, Limits
from storage import outbox, people
from storage.db import Database
from storage.models import OutboxMessage, TelegramAccount
from tests.conftest import TOKEN
from tests.support.fake_telegram import Call, FakeTelegram
from tests.support.harness import drain_round
from tests.support.windows import max_in_window

FAST = Limits(per_second=30, per_chat_seconds=1.0, retry_base_seconds=0.05, max_attempts=4)


async def _plan(db: Database, chats: list[int], per_chat: int) -> list[str]:
    keys = []
    async with db.sessionmaker.begin() as session:
        for chat in chats:
            await people.ensure_account(session, chat, "zh")
            for n in range(per_chat):
                key = f"test:{chat}:{n}"
                await outbox.plan(
                    session, key=key, chat_id=chat, kind="test", parts=[f"<b>{key}</b>"]
                )
                keys.append(key)
    return keys


async def _drain_all(dispatcher: Dispatcher, rounds: int = 60) -> None:
    """Drain until every row has ended; retries become due after their backoff."""
    for _ in range(rounds):
        counts = await drain_round(dispatcher)
        if counts is None:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"outbox did not drain: {counts}")


async def test_every_message_ends_sent_once_or_failed_with_a_reason(
    wired: tuple[Database, FakeTelegram, Bot], caplog: pytest.LogCaptureFixture
) -> None:
    db, fake, bot = wired
    chats = list(range(7001, 7013))
    keys = await _plan(db, chats, per_chat=3)
    fake.blocked.add(7005)
    retry_after = (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        },
    )
    bad_gateway = (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})
    fake.faults = [retry_after, bad_gateway, TimedOut(), bad_gateway, TimedOut()]
    dispatcher = Dispatcher(db, bot, limits=FAST)
    with caplog.at_level(logging.INFO, logger="cadrebot.delivery"):
        await _drain_all(dispatcher)

    delivered = Counter(s.text.removeprefix("<b>").removesuffix("</b>") for s in fake.sent)
    async with db.sessionmaker() as session:
        rows = {r.key: r for r in await session.scalars(select(OutboxMessage))}
        blocked = await session.get(TelegramAccount, 7005)
    for key in keys:
        row = rows[key]
        if key.startswith("test:7005:"):
            assert row.status == "failed" and row.error and row.error.startswith("forbidden")
            assert delivered[key] == 0
        else:
            assert row.status == "sent", (key, row.status, row.error)
            assert delivered[key] == 1, key
    assert blocked is not None and blocked.unreachable_at is not None
    assert dispatcher.stats.retried == 5
    reasons = [r.getMessage() for r in caplog.records]
    assert any("retry-after" in m for m in reasons), reasons
    assert sum("network" in m for m in reasons) == 4, reasons
    # Nothing personal reaches the log, only ids and reasons.
    assert all("test:" not in r.getMessage() for r in caplog.records)


async def test_pace_never_exceeds_the_limits(wired: tuple[Database, FakeTelegram, Bot]) -> None:
    db, fake, bot = wired
    await _plan(db, list(range(8001, 8046)), per_chat=2)
    await Dispatcher(db, bot, limits=FAST).drain()
    times = [t for t, _ in fake.sent_at]
    assert len(times) == 90
    assert max_in_window(times, 1.0) <= 30
    per_chat: dict[int, list[float]] = {}
    for t, chat in fake.sent_at:
        per_chat.setdefault(chat, []).append(t)
    gaps = [b - a for ts in per_chat.values() for a, b in itertools.pairwise(ts)]
    assert gaps and min(gaps) >= 0.99


async def test_group_chats_get_twenty_a_minute(wired: tuple[Database, FakeTelegram, Bot]) -> None:
    db, fake, bot = wired
    limits = Limits(per_second=30, per_group_minute=600)  # 10/s: scaled down to stay quick
    async with db.sessionmaker.begin() as session:
        for n in range(12):
            await outbox.plan(session, key=f"g:{n}", chat_id=-100123, kind="t", parts=[f"g{n}"])
    await Dispatcher(db, bot, limits=limits).drain()
    times = [t for t, _ in fake.sent_at]
    assert len(times) == 12
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.099


async def test_a_dead_dispatcher_costs_at_most_one_duplicate(
    wired: tuple[Database, FakeTelegram, Bot], caplog: pytest.LogCaptureFixture
) -> None:
    """Claimed and sent, then the process died before marking: the row is sent again once."""
    db, fake, bot = wired
    await _plan(db, [9001], per_chat=1)
    async with db.sessionmaker.begin() as session:
        (row,) = await outbox.claim(
            session, worker="dead", now=datetime.now(UTC), limit=1, lease=timedelta(0)
        )
    await bot.send_message(row.chat_id, row.parts[0])  # sent; the process "dies" here
    limits = Limits(lease_seconds=0.0, retry_base_seconds=0.05)
    survivor = Dispatcher(db, bot, limits=limits)
    with caplog.at_level(logging.WARNING, logger="cadrebot.delivery"):
        await survivor.drain()
    assert [s.text for s in fake.sent].count("<b>test:9001:0</b>") == 2
    assert survivor.stats.possible_duplicates == 1
    assert any("may duplicate" in r.getMessage() for r in caplog.records)
    # And never a third time.
    await survivor.drain()
    assert [s.text for s in fake.sent].count("<b>test:9001:0</b>") == 2


async def test_a_timed_out_send_is_retried_as_a_possible_duplicate(
    wired: tuple[Database, FakeTelegram, Bot], caplog: pytest.LogCaptureFixture
) -> None:
    """A timeout may hide a delivery: the retry happens, flagged and logged."""
    db, fake, bot = wired
    await _plan(db, [9501], per_chat=1)
    fake.faults = [TimedOut()]
    dispatcher = Dispatcher(db, bot, limits=FAST)
    with caplog.at_level(logging.WARNING, logger="cadrebot.delivery"):
        await _drain_all(dispatcher)
    assert [s.chat_id for s in fake.sent] == [9501]
    assert dispatcher.stats.possible_duplicates == 1
    assert any("may duplicate" in r.getMessage() for r in caplog.records)


# -- rows with photos: drawn at send time, resumed after what was delivered ---------------------

CHART = {
    "kind": "summary-chart",
    "locale": "zh_CN",
    "caption": "📈 <b>木黄镇</b>",
    "chart": {"scope": "木黄镇", "funnel": [["nominated", 5]], "townships": [["木黄镇", 3, 1, 0]]},
}
UNPACED = Limits(per_second=30, per_chat_seconds=0.0, retry_base_seconds=0.05, max_attempts=4)


class PhotoFlood(FakeTelegram):
    """Answers the first sendPhoto with 429, as Telegram does past its limits."""

    def __init__(self) -> None:
        super().__init__()
        self.flooded = False

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None, **kw: Any
    ) -> tuple[int, bytes]:
        if url.endswith("/sendPhoto") and not self.flooded:
            self.flooded = True
            self.calls.append(Call("sendPhoto", {}))
            payload = {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1},
            }
            return 429, json.dumps(payload).encode()
        return await super().do_request(url, method, request_data, **kw)


async def _plan_with_photo(db: Database, chat: int, photo: dict[str, Any]) -> None:
    async with db.sessionmaker.begin() as session:
        await people.ensure_account(session, chat, "zh")
        await outbox.plan(
            session,
            key=f"summary:{chat}",
            chat_id=chat,
            kind="summary/summary",
            parts=["<b>one</b>", "two"],
            photos=[photo],
        )


async def test_a_429_on_the_photo_resends_only_the_photo(sqlite_database: Database) -> None:
    fake = PhotoFlood()
    bot = Bot(TOKEN, request=fake, get_updates_request=fake)
    await bot.initialize()
    try:
        await _plan_with_photo(sqlite_database, 7301, CHART)
        await _drain_all(Dispatcher(sqlite_database, bot, limits=UNPACED))
    finally:
        await bot.shutdown()
    assert fake.flooded
    assert [(s.kind, s.text) for s in fake.sent] == [
        ("text", "<b>one</b>"),
        ("text", "two"),
        ("photo", "📈 <b>木黄镇</b>"),
    ]
    photo_calls = [c for c in fake.calls if c.method == "sendPhoto"]
    assert len(photo_calls) == 2  # the 429, then the one that went through
    async with sqlite_database.sessionmaker() as session:
        row = await session.scalar(select(OutboxMessage))
    assert row is not None and row.status == "sent" and row.attempts == 2
    await sqlite_database.close()


async def test_a_photo_that_cannot_be_drawn_fails_the_row_with_what_was_sent(
    wired: tuple[Database, FakeTelegram, Bot],
) -> None:
    db, fake, bot = wired
    await _plan_with_photo(db, 7302, {**CHART, "chart": {"scope": "x"}})
    await _drain_all(Dispatcher(db, bot, limits=UNPACED))
    assert fake.texts(7302) == ["<b>one</b>", "two"]
    async with db.sessionmaker() as session:
        row = await session.scalar(select(OutboxMessage))
    assert row is not None and row.status == "failed"
    assert row.error == "photo: cannot be drawn (after 2 of 3 items)"
