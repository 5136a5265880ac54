"""The dispatcher's pipeline: claims ahead of the sends, deadlines, and the pacer's window."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot

from bot.delivery import Dispatcher, Limits, Pacer
from storage import outbox
from storage.db import Database
from storage.models import OutboxMessage
from storage.outbox import Claimed
from tests.support.fake_telegram import FakeTelegram
from tests.support.windows import max_in_window


async def _plan(db: Database, chats: range, *, parts: int = 1, tag: str = "p") -> None:
    async with db.sessionmaker.begin() as session:
        for chat in chats:
            texts = [f"{tag}:{chat}:{n}" for n in range(parts)]
            await outbox.plan(session, key=f"{tag}:{chat}", chat_id=chat, kind="t", parts=texts)


async def _statuses(db: Database) -> Counter[str]:
    async with db.sessionmaker() as session:
        return Counter(await session.scalars(select(OutboxMessage.status)))


async def test_claims_continue_while_sends_are_in_flight(
    wired: tuple[Database, FakeTelegram, Bot], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next batch is claimed before the previous one has gone out, so the pipe never
    runs dry at a batch boundary; every row still goes out once."""
    db, fake, bot = wired
    await _plan(db, range(1000, 1100))
    real_claim = outbox.claim
    # (messages sent, rows claimed so far) at the start of each claim
    seen: list[tuple[int, int]] = []
    claimed = 0

    async def claim(session: AsyncSession, **kwargs: Any) -> list[Claimed]:
        nonlocal claimed
        seen.append((len(fake.sent), claimed))
        rows = await real_claim(session, **kwargs)
        claimed += len(rows)
        return rows

    monkeypatch.setattr(outbox, "claim", claim)
    dispatcher = Dispatcher(db, bot, limits=Limits(per_second=100), batch=20, concurrency=8)
    await dispatcher.drain()

    assert Counter(s.chat_id for s in fake.sent) == Counter(range(1000, 1100))
    assert await _statuses(db) == Counter(sent=100)
    # Claimed ahead: some claim started while rows of earlier claims were still unsent.
    assert any(sent < before for sent, before in seen[1:]), seen


async def test_rows_planned_during_a_drain_go_out_within_the_limits(
    wired: tuple[Database, FakeTelegram, Bot],
) -> None:
    """A continuous stream (rows keep arriving while sending): never more than the ceiling in
    any one-second window, never two sends to one chat within its gap."""
    db, fake, bot = wired
    limits = Limits(per_second=40, per_chat_seconds=1.0)
    await _plan(db, range(2000, 2040), parts=2)

    async def keep_planning() -> None:
        for wave in range(4):
            await asyncio.sleep(0.3)
            await _plan(db, range(3000 + 20 * wave, 3020 + 20 * wave), tag=f"w{wave}")

    planner = asyncio.create_task(keep_planning())
    dispatcher = Dispatcher(db, bot, limits=limits, batch=15, concurrency=16)
    await dispatcher.drain()
    await planner
    await dispatcher.drain()  # whatever was planned after the first drain caught up

    times = [t for t, _ in fake.sent_at]
    assert len(times) == 40 * 2 + 80
    assert max_in_window(times, 1.0) <= 40
    per_chat: dict[int, list[float]] = {}
    for t, chat in fake.sent_at:
        per_chat.setdefault(chat, []).append(t)
    gaps = [b - a for ts in per_chat.values() for a, b in itertools.pairwise(ts)]
    assert len(gaps) == 40 and min(gaps) >= 0.99
    assert await _statuses(db) == Counter(sent=120)


async def test_a_short_lease_never_makes_the_dispatcher_resend_its_own_rows(
    wired: tuple[Database, FakeTelegram, Bot],
) -> None:
    """With the lease shorter than a row's wait in the queue, each claim also returns rows
    this dispatcher holds already: they are not sent a second time."""
    db, fake, bot = wired
    await _plan(db, range(4000, 4060))
    dispatcher = Dispatcher(
        db, bot, limits=Limits(per_second=60, lease_seconds=0.0), batch=10, concurrency=4
    )
    await dispatcher.drain()
    assert Counter(s.chat_id for s in fake.sent) == Counter(range(4000, 4060))
    assert await _statuses(db) == Counter(sent=60)
    assert dispatcher.stats.possible_duplicates == 0


async def test_drain_stops_by_its_deadline_with_every_delivery_marked(
    wired: tuple[Database, FakeTelegram, Bot],
) -> None:
    """300 rows at 30/s take ten seconds; a one-second deadline sends about 30, writes each
    of them as sent before returning, and hands the claimed rest back as due."""
    db, fake, bot = wired
    await _plan(db, range(5000, 5300))
    dispatcher = Dispatcher(db, bot, limits=Limits(per_second=30))
    started = time.monotonic()
    ended = await dispatcher.drain(deadline=started + 1.0)
    took = time.monotonic() - started

    assert took < 1.8, took  # a send in flight may finish after the deadline, no more
    sent_chats = {s.chat_id for s in fake.sent}
    assert 10 <= len(fake.sent) <= 32 and len(sent_chats) == len(fake.sent)
    assert ended == len(fake.sent)
    async with db.sessionmaker() as session:
        rows = (await session.scalars(select(OutboxMessage))).all()
    assert {r.chat_id for r in rows if r.status == "sent"} == sent_chats
    assert Counter(r.status for r in rows) == Counter(sent=len(sent_chats), pending=300 - ended)

    # The rest is due at once and goes out once, none of it taken for a possible duplicate.
    fast = Dispatcher(db, bot, limits=Limits(per_second=2000))
    await fast.drain()
    assert Counter(s.chat_id for s in fake.sent) == Counter(range(5000, 5300))
    assert fast.stats.possible_duplicates == 0
    assert await _statuses(db) == Counter(sent=300)


async def test_a_row_begun_before_the_deadline_is_finished(
    wired: tuple[Database, FakeTelegram, Bot],
) -> None:
    """Two parts to one chat are a second apart: a deadline between them does not cut the
    row in half (handed back, its first part would be sent twice)."""
    db, fake, bot = wired
    await _plan(db, range(6000, 6001), parts=2)
    started = time.monotonic()
    await Dispatcher(db, bot, limits=Limits(per_second=30)).drain(deadline=started + 0.3)
    assert [s.text for s in fake.sent] == ["p:6000:0", "p:6000:1"]
    assert time.monotonic() - started >= 0.99
    assert await _statuses(db) == Counter(sent=1)


async def test_pacer_window_under_a_continuous_stream_with_jitter() -> None:
    """Many senders, requests that take random time to arrive and be answered: the arrivals
    never exceed the ceiling in any one-second window (as Telegram counts them)."""
    rate = 50
    pacer = Pacer(Limits(per_second=rate, per_chat_seconds=0.0))
    arrivals: list[float] = []
    chats = itertools.count(1)
    rng = random.Random(7)
    stop_at = time.monotonic() + 2.5

    async def sender() -> None:
        while time.monotonic() < stop_at:
            chat = next(chats)
            await pacer.wait(chat)
            await asyncio.sleep(rng.uniform(0.0, 0.03))  # on its way
            arrivals.append(time.monotonic())
            await asyncio.sleep(rng.uniform(0.0, 0.03))  # the answer on its way back
            pacer.done(chat)

    await asyncio.gather(*(sender() for _ in range(24)))
    assert len(arrivals) > rate
    assert max_in_window(arrivals, 1.0) <= rate


async def test_pacer_counts_an_unanswered_send_longer() -> None:
    """A send that timed out may still arrive: the window holds it jitter_seconds longer."""
    limits = Limits(per_second=1, per_chat_seconds=0.0, jitter_seconds=0.3)

    async def next_start(answered: bool) -> float:
        """Seconds from the first send's end to the second send's start."""
        pacer = Pacer(limits)
        await pacer.wait(1)
        pacer.done(1, answered=answered)
        ended = time.monotonic()
        await pacer.wait(2)
        return time.monotonic() - ended

    after_answer, after_timeout = await asyncio.gather(next_start(True), next_start(False))
    assert 0.95 <= after_answer < 1.2 and after_timeout >= 1.25, (after_answer, after_timeout)


async def test_pacer_gives_up_at_the_deadline_without_taking_the_slot() -> None:
    pacer = Pacer(Limits(per_second=1, per_chat_seconds=0.0))
    assert await pacer.wait(1)
    pacer.done(1)
    started = time.monotonic()
    assert not await pacer.wait(2, deadline=started + 0.2)
    assert time.monotonic() - started < 0.15
    # The slot it gave up is still free: the next send takes it, a second after the first.
    assert await pacer.wait(3)
    assert time.monotonic() - started < 1.2
