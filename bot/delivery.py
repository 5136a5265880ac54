"""The dispatcher: sends outbox rows within Telegram's limits and ends each one.

Limits (https://core.telegram.org/bots/faq#broadcasting-to-users): about 30 messages per
second for the bot, one per second per private chat, 20 per minute per group. The pacer keeps
under all three *before* sending, so 429s are the exception; when one comes anyway, the whole
dispatcher waits `retry_after` (Telegram's flood control is per bot) and the row is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from storage import outbox
from storage.db import Database
from storage.outbox import Claimed

log = logging.getLogger("cadrebot.delivery")
# How often delivered rows are written as sent while a batch is under way.
MARK_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class Limits:
    per_second: float = 30.0
    per_chat_seconds: float = 1.0
    per_group_minute: int = 20
    max_attempts: int = 6
    lease_seconds: float = 120.0
    # Network retries wait retry_base * 2**attempt seconds.
    retry_base_seconds: float = 2.0
    # Telegram measures arrival, not departure: requests leave paced but arrive with jitter,
    # so the one-second window is kept this much wider (costs ~4% of the ceiling).
    jitter_seconds: float = 0.04


class Pacer:
    """Hands out send slots: at most `per_second` a second, and per-chat spacing.

    Each send reserves the earliest free slot on a grid of 1/per_second seconds that also
    respects its chat's next allowed time, so one busy chat never holds up the others. A
    guard then checks the real one-second window at the moment of sending, because timers
    wake late and two late sends must not make a burst.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._epoch = time.monotonic()
        self._taken: set[int] = set()
        self._chat_next: dict[int, float] = {}
        self._sent: deque[float] = deque()
        self._chat_last: dict[int, float] = {}
        self._in_flight = 0
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self._guard = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """Telegram asked us to wait (429): nothing goes out before then."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def _chat_gap(self, chat_id: int) -> float:
        # Negative ids are groups and channels: 20 per minute.
        if chat_id < 0:
            return 60.0 / self.limits.per_group_minute
        return self.limits.per_chat_seconds

    async def wait(self, chat_id: int) -> None:
        """Sleep until a send to `chat_id` keeps every limit, then take the slot."""
        rate = self.limits.per_second
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._paused_until, self._chat_next.get(chat_id, 0.0))
            slot = math.ceil((start - self._epoch) * rate)
            while slot in self._taken:
                slot += 1
            self._taken.add(slot)
            at = self._epoch + slot / rate
            self._chat_next[chat_id] = at + self._chat_gap(chat_id) + self.limits.jitter_seconds
            if len(self._taken) > 4 * rate + 1000:
                current = int((now - self._epoch) * rate)
                self._taken = {s for s in self._taken if s >= current}
                self._chat_next = {c: t for c, t in self._chat_next.items() if t > now}
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        async with self._guard:
            while True:
                now = time.monotonic()
                window = 1.0 + self.limits.jitter_seconds
                while self._sent and self._sent[0] <= now - window:
                    self._sent.popleft()
                delay = self._paused_until - now
                # Sends still in flight may land at any moment: they hold a place too.
                if len(self._sent) + self._in_flight >= rate:
                    if self._sent:
                        delay = max(delay, self._sent[0] + window - now)
                    else:
                        delay = max(delay, 0.005)
                # A late wake-up of the previous send to this chat must not shorten the gap.
                last = self._chat_last.get(chat_id)
                if last is not None:
                    gap = self._chat_gap(chat_id) + self.limits.jitter_seconds
                    delay = max(delay, last + gap - now)
                if delay <= 0:
                    break
                await asyncio.sleep(delay)
            self._in_flight += 1
            self._chat_last[chat_id] = now

    def done(self, chat_id: int) -> None:
        """A send returned. It counts in the window from here: it reached Telegram before."""
        now = time.monotonic()
        self._in_flight -= 1
        self._sent.append(now)
        self._chat_last[chat_id] = now
        if len(self._chat_last) > 10_000:
            horizon = now - 60.0
            self._chat_last = {c: t for c, t in self._chat_last.items() if t > horizon}


@dataclass
class DispatchStats:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    possible_duplicates: int = 0


class Dispatcher:
    """Claims due rows in batches and sends them concurrently under the pacer."""

    def __init__(
        self,
        database: Database,
        bot: Bot,
        *,
        limits: Limits | None = None,
        worker: str | None = None,
        concurrency: int = 32,
        batch: int = 200,
    ) -> None:
        self.database = database
        self.bot = bot
        self.limits = limits or Limits()
        self.pacer = Pacer(self.limits)
        self.worker = worker or f"w-{uuid.uuid4().hex[:8]}"
        self.batch = batch
        self._semaphore = asyncio.Semaphore(concurrency)
        self._delivered: list[int] = []
        self.stats = DispatchStats()

    async def drain(self, *, deadline: float | None = None) -> int:
        """Send until nothing is due (or the monotonic deadline passes); returns rows ended."""
        ended = 0
        while deadline is None or time.monotonic() < deadline:
            async with self.database.sessionmaker.begin() as session:
                rows = await outbox.claim(
                    session,
                    worker=self.worker,
                    now=datetime.now(UTC),
                    limit=self.batch,
                    lease=timedelta(seconds=self.limits.lease_seconds),
                )
            if not rows:
                break
            stop = asyncio.Event()
            marker = asyncio.create_task(self._mark_sent_every(MARK_SECONDS, stop))
            try:
                await asyncio.gather(*(self._deliver_limited(row) for row in rows))
            finally:
                # Never cancelled mid-write: a cancelled write would lose its marks.
                stop.set()
                await marker
                await self._mark_sent()
            ended += len(rows)
        return ended

    async def _mark_sent_every(self, seconds: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=seconds)
            await self._mark_sent()

    async def _mark_sent(self) -> None:
        """Write the delivered rows as sent, in one transaction.

        Until then a row stays "sending" (in flight): a crash in between re-sends it once,
        flagged, after the lease — the same promise as a crash between send and mark.
        """
        if not self._delivered:
            return
        ids, self._delivered = self._delivered, []
        async with self.database.sessionmaker.begin() as session:
            await outbox.mark_sent(session, ids, now=datetime.now(UTC))

    async def _deliver_limited(self, row: Claimed) -> None:
        async with self._semaphore:
            await self._deliver(row)

    async def _deliver(self, row: Claimed) -> None:
        if row.reclaimed:
            # Its previous dispatcher died after claiming: it may have sent already.
            self.stats.possible_duplicates += 1
            log.warning("outbox %s re-claimed after an expired lease: may duplicate", row.id)
        markup = InlineKeyboardMarkup.de_json(row.markup, self.bot) if row.markup else None
        try:
            for index, part in enumerate(row.parts):
                await self.pacer.wait(row.chat_id)
                try:
                    await self.bot.send_message(
                        row.chat_id,
                        part,
                        parse_mode=ParseMode.HTML,
                        reply_markup=markup if index == len(row.parts) - 1 else None,
                    )
                finally:
                    self.pacer.done(row.chat_id)
        except RetryAfter as exc:
            delay = exc.retry_after
            seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
            self.pacer.pause(seconds)
            await self._retry(row, f"retry-after {seconds:g}s", seconds)
            return
        except Forbidden as exc:
            await self._fail(row, f"forbidden: {exc.message}", unreachable=True)
            return
        except BadRequest as exc:
            if "chat not found" in exc.message.lower():
                await self._fail(row, f"bad-request: {exc.message}", unreachable=True)
            else:
                await self._fail(row, f"bad-request: {exc.message}")
            return
        except (TimedOut, NetworkError) as exc:
            if row.attempts >= self.limits.max_attempts:
                await self._fail(row, f"network: {type(exc).__name__} after {row.attempts}")
            else:
                backoff = self.limits.retry_base_seconds * 2.0**row.attempts
                reason = f"network: {type(exc).__name__}"
                if isinstance(exc, TimedOut):
                    # Telegram may have accepted it before the answer was lost: the retry
                    # is flagged (and logged) as a possible duplicate.
                    reason = f"{outbox.IN_FLIGHT}: {reason}"
                await self._retry(row, reason, backoff)
            return
        self._delivered.append(row.id)
        self.stats.sent += 1

    async def _retry(self, row: Claimed, reason: str, seconds: float) -> None:
        self.stats.retried += 1
        log.info("outbox %s retry in %.1fs: %s", row.id, seconds, reason)
        async with self.database.sessionmaker.begin() as session:
            await outbox.retry_later(
                session,
                row.id,
                not_before=datetime.now(UTC) + timedelta(seconds=seconds),
                reason=reason,
            )

    async def _fail(self, row: Claimed, reason: str, *, unreachable: bool = False) -> None:
        self.stats.failed += 1
        log.info("outbox %s failed: %s", row.id, reason.split(":")[0])
        async with self.database.sessionmaker.begin() as session:
            await outbox.mark_failed(session, row.id, reason=reason, now=datetime.now(UTC))
            if unreachable:
                await outbox.mark_unreachable(
                    session, row.chat_id, reason=reason, now=datetime.now(UTC)
                )
