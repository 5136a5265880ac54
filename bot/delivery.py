"""The dispatcher: sends outbox rows within Telegram's limits and ends each one.

Limits (https://core.telegram.org/bots/faq#broadcasting-to-users): about 30 messages per
second for the bot, one per second per private chat, 20 per minute per group. The pacer keeps
under all three *before* sending, so 429s are the exception; when one comes anyway, the whole
dispatcher waits `retry_after` (Telegram's flood control is per bot) and the row is retried.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from handlers.chat.charts import draw_photo
from storage import outbox
from storage.db import Database
from storage.outbox import Claimed

log = logging.getLogger("cadrebot.delivery")
# How often delivered rows are written as sent while a drain is under way.
MARK_SECONDS = 0.25
# The pacer forgets chats whose last send is past every gap once it knows this many.
CHAT_LAST_CAP = 10_000


@dataclass(frozen=True, slots=True)
class Limits:
    per_second: float = 30.0
    per_chat_seconds: float = 1.0
    per_group_minute: int = 20
    max_attempts: int = 6
    lease_seconds: float = 120.0
    # Network retries wait retry_base * 2**attempt seconds.
    retry_base_seconds: float = 2.0
    # Telegram measures arrival, not departure, and requests arrive with jitter: per-chat gaps
    # are kept this much wider, and a send that got no answer counts this much longer (see
    # Pacer for why answered sends need no such margin in the bot-wide window).
    jitter_seconds: float = 0.04


class Pacer:
    """Hands out send slots: at most `per_second` a second, and per-chat spacing.

    Each send reserves the earliest free slot on a grid of 1/per_second seconds that also
    respects its chat's next allowed time, so one busy chat never holds up the others. A
    guard then checks the real one-second window at the moment of sending, because timers
    wake late and two late sends must not make a burst.

    The guard counts a send from the moment its answer came back (`done`), or while it is in
    flight. Telegram counts a request when it arrives, which is after we start it and before
    we read its answer; so a send answered more than one second ago cannot share any
    one-second window with a send starting now, however the network delays either. That is
    why the bot-wide window needs no widening for jitter; only sends that ended without an
    answer (timeouts, dropped connections) may still arrive later, and they are counted
    `jitter_seconds` longer.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._epoch = time.monotonic()
        self._taken: set[int] = set()
        # Every slot below this one is taken or past: a search for a free slot starts here
        # instead of walking over the slots other sends already hold.
        self._frontier = 0
        self._chat_next: dict[int, float] = {}
        self._sent: deque[float] = deque()
        self._chat_last: dict[int, float] = {}
        self._chat_last_cap = CHAT_LAST_CAP
        self._longest_gap = (
            max(limits.per_chat_seconds, 60.0 / limits.per_group_minute) + limits.jitter_seconds
        )
        self._in_flight = 0
        self._paused_until = 0.0
        self._guard = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """Telegram asked us to wait (429): nothing goes out before then."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def _chat_gap(self, chat_id: int) -> float:
        # Negative ids are groups and channels: 20 per minute.
        if chat_id < 0:
            return 60.0 / self.limits.per_group_minute
        return self.limits.per_chat_seconds

    def _reserve(self, chat_id: int, now: float, deadline: float | None) -> float | None:
        """Take the earliest free grid slot this chat may use and return its time; None (and
        nothing taken) when that slot lies past `deadline`."""
        rate = self.limits.per_second
        common = max(now, self._paused_until)
        start = max(common, self._chat_next.get(chat_id, 0.0))
        slot = math.ceil((start - self._epoch) * rate)
        # Held back by its own chat's spacing, a send may leave earlier slots free for
        # others; otherwise every slot below the one it takes is taken or past.
        held_back = start > common
        if not held_back:
            slot = max(slot, self._frontier)
        while slot in self._taken:
            slot += 1
        at = self._epoch + slot / rate
        if deadline is not None and at > deadline:
            return None
        if not held_back:
            self._frontier = slot + 1
        self._taken.add(slot)
        self._chat_next[chat_id] = at + self._chat_gap(chat_id) + self.limits.jitter_seconds
        if len(self._taken) > 4 * rate + 1000:
            current = int((now - self._epoch) * rate)
            self._taken = {s for s in self._taken if s >= current}
            self._chat_next = {c: t for c, t in self._chat_next.items() if t > now}
        return at

    async def wait(self, chat_id: int, *, deadline: float | None = None) -> bool:
        """Sleep until a send to `chat_id` keeps every limit, then take the slot.

        With a (monotonic) `deadline`, gives up and returns False as soon as it is clear the
        send could not start before it; the caller then must not send nor call `done`.
        """
        # No await between reading and writing the reservations: no lock needed.
        at = self._reserve(chat_id, time.monotonic(), deadline)
        if at is None:
            return False
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        rate = self.limits.per_second
        async with self._guard:
            while True:
                now = time.monotonic()
                while self._sent and self._sent[0] <= now - 1.0:
                    self._sent.popleft()
                delay = self._paused_until - now
                # Sends still in flight may land at any moment: they hold a place too.
                if len(self._sent) + self._in_flight >= rate:
                    if self._sent:
                        delay = max(delay, self._sent[0] + 1.0 - now)
                    else:
                        delay = max(delay, 0.005)
                # A late wake-up of the previous send to this chat must not shorten the gap.
                last = self._chat_last.get(chat_id)
                if last is not None:
                    gap = self._chat_gap(chat_id) + self.limits.jitter_seconds
                    delay = max(delay, last + gap - now)
                if delay <= 0:
                    break
                if deadline is not None and now + delay > deadline:
                    return False
                await asyncio.sleep(delay)
            self._in_flight += 1
            self._chat_last[chat_id] = now
        return True

    def done(self, chat_id: int, *, answered: bool = True) -> None:
        """A send returned. It counts in the window from here: it reached Telegram before.

        `answered=False` (no answer: timed out, connection lost) keeps it counted
        `jitter_seconds` longer, since such a request may still be on its way.
        """
        now = time.monotonic()
        self._in_flight -= 1
        at = now if answered else now + self.limits.jitter_seconds
        # Kept in order: `wait` drops entries from the left as they leave the window.
        if self._sent and at < self._sent[-1]:
            bisect.insort(self._sent, at)
        else:
            self._sent.append(at)
        self._chat_last[chat_id] = at
        if len(self._chat_last) > self._chat_last_cap:
            # Only sends within the longest gap still hold a chat back. The cap then doubles
            # what is left, so that a fan-out to many chats (every entry still recent)
            # rebuilds the dict once per many sends, not on every send.
            horizon = now - self._longest_gap
            self._chat_last = {c: t for c, t in self._chat_last.items() if t > horizon}
            self._chat_last_cap = max(CHAT_LAST_CAP, 2 * len(self._chat_last))


@dataclass
class DispatchStats:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    possible_duplicates: int = 0


def _answered(exc: BaseException) -> bool:
    """Whether Telegram answered the request (so it arrived before now), going by the error.

    Timeouts, dropped connections and 5xx (all NetworkError, as is BadRequest, which is an
    answer) may leave a request still on its way; a cancelled send too.
    """
    if not isinstance(exc, TelegramError):
        return False
    return isinstance(exc, BadRequest) or not isinstance(exc, NetworkError)


@dataclass(eq=False)
class _Run:
    """The state of one drain: claimed rows waiting for a worker, and what became of them."""

    deadline: float | None
    rows: asyncio.Queue[Claimed | None] = field(default_factory=asyncio.Queue)
    # Set by workers when the feeder may have something to do: the queue ran low, or all
    # work in hand has ended.
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Claimed but never tried, because the deadline came first: handed back at the end.
    released: list[Claimed] = field(default_factory=list)
    busy: int = 0
    ended: int = 0

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def fits(self, per_second: float) -> float:
        """About how many sends can still start before the deadline."""
        if self.deadline is None:
            return math.inf
        return math.ceil(max(0.0, self.deadline - time.monotonic()) * per_second)

    async def nap(self) -> None:
        """Wait for a worker's signal, never past the deadline."""
        timeout = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout)


class Dispatcher:
    """Claims due rows ahead of need and sends them concurrently under the pacer.

    A feeder claims a batch whenever fewer than `low_water` claimed rows wait, and
    `concurrency` workers send from that queue, so sends never wait for a claim, and the
    delivered rows are written as sent every MARK_SECONDS by a task of their own: the
    database stays off the sending path and the pacer's slots are all used.
    """

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
        self.batch = max(1, batch)
        self.concurrency = max(1, concurrency)
        # Claim again when this few rows wait: at least one per worker, and half a batch,
        # which at 300/s leaves a claim about 0.3 s before the queue runs dry. The queue
        # never holds more than low_water + batch rows, so a claimed row waits seconds at
        # most, far inside its lease.
        self.low_water = max(self.concurrency, self.batch // 2)
        self._delivered: list[int] = []
        # Rows claimed here and not yet ended in the database. A claim also takes rows whose
        # lease has expired, which with a lease shorter than the queue's wait can be our own
        # rows still waiting or in flight: those must not be sent a second time.
        self._holding: set[int] = set()
        self.stats = DispatchStats()

    async def drain(self, *, deadline: float | None = None) -> int:
        """Send until nothing is due (or the monotonic deadline passes); returns rows ended.

        By the deadline no new row starts: rows claimed but not tried are handed back (due
        again at once), sends in flight are waited for, and so is the rest of a row whose
        first part went out. Every delivered row is written as sent before this returns.
        """
        run = _Run(deadline)
        stop = asyncio.Event()
        marker = asyncio.create_task(self._mark_sent_every(MARK_SECONDS, stop))
        tasks = [asyncio.create_task(self._work(run)) for _ in range(self.concurrency)]
        tasks.append(asyncio.create_task(self._feed(run)))
        try:
            # Returns when all end, or when one fails (a database error): then the rest are
            # cancelled below, like a crash. A send cut off mid-way may have reached Telegram:
            # its row stays "sending" and is re-sent once, flagged, after its lease.
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in tasks:
                error = task.exception() if task.done() and not task.cancelled() else None
                if error is not None:
                    raise error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # Never cancelled mid-write: a cancelled write would lose its marks.
            stop.set()
            await marker
            await self._mark_sent()
            while not run.rows.empty():
                if (row := run.rows.get_nowait()) is not None:
                    run.released.append(row)
            await self._release(run.released)
        return run.ended

    async def _feed(self, run: _Run) -> None:
        """Claim due rows ahead of the workers until none are due or the deadline passes."""
        try:
            caught_up = False
            while not run.expired():
                run.wake.clear()
                waiting = run.rows.qsize()
                outstanding = waiting + run.busy
                if caught_up:
                    # The last claim took all that was due. Claim once more when everything in
                    # hand has ended and been marked (as a drain always has), and stop if
                    # nothing new is due by then.
                    if outstanding:
                        await run.nap()
                        continue
                    await self._mark_sent()
                elif waiting > self.low_water:
                    await run.nap()
                    continue
                # Claim no more than can start before the deadline: the rest would only be
                # handed back.
                limit = min(self.batch, run.fits(self.limits.per_second) - outstanding)
                if limit <= 0:
                    await run.nap()
                    continue
                rows = await self._claim(int(limit))
                fresh = [row for row in rows if row.id not in self._holding]
                self._holding.update(row.id for row in fresh)
                for row in fresh:
                    run.rows.put_nowait(row)
                if caught_up and not fresh:
                    return
                caught_up = len(rows) < limit or not fresh
        finally:
            # Rows still queued go to workers first; past the deadline they hand them back.
            for _ in range(self.concurrency):
                run.rows.put_nowait(None)

    async def _work(self, run: _Run) -> None:
        while (row := await run.rows.get()) is not None:
            if run.rows.qsize() <= self.low_water:
                run.wake.set()
            run.busy += 1
            try:
                if not run.expired() and await self._deliver(row, deadline=run.deadline):
                    run.ended += 1
                else:
                    run.released.append(row)
            finally:
                run.busy -= 1
                if not run.busy and run.rows.empty():
                    run.wake.set()

    async def _claim(self, limit: int) -> list[Claimed]:
        async with self.database.sessionmaker.begin() as session:
            return await outbox.claim(
                session,
                worker=self.worker,
                now=datetime.now(UTC),
                limit=limit,
                lease=timedelta(seconds=self.limits.lease_seconds),
            )

    async def _release(self, rows: list[Claimed]) -> None:
        """Hand back rows claimed but never tried: pending and due again at once.

        The claim counted an attempt that did not happen; only network failures look at
        attempts, and a handed-back row is among the first claimed next time.
        """
        if not rows:
            return
        async with self.database.sessionmaker.begin() as session:
            for row in rows:
                # A row a dead dispatcher may have sent keeps its flag for the next claim.
                reason = "released unsent at the drain deadline"
                if row.reclaimed:
                    reason = f"{outbox.IN_FLIGHT}: {reason}"
                await outbox.retry_later(
                    session, row.id, not_before=datetime.now(UTC), reason=reason
                )
        self._holding.difference_update(row.id for row in rows)
        log.info("outbox: %d claimed rows handed back at the drain deadline", len(rows))

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
        self._holding.difference_update(ids)

    async def _deliver(self, row: Claimed, *, deadline: float | None = None) -> bool:
        """Send every part of one row and end it (sent, retry or failed).

        False, with nothing sent, when `deadline` comes before its first send may start.
        """
        markup = InlineKeyboardMarkup.de_json(row.markup, self.bot) if row.markup else None
        # Items are the text parts, then the photos; an earlier attempt may have sent some.
        done = row.done
        try:
            for index in range(row.done, row.items):
                photo = None
                if index >= len(row.parts):
                    # Drawn before taking a slot: a slot is a promise to send at once.
                    photo = await self._draw(row.photos[index - len(row.parts)])
                    if photo is None:
                        await self._fail(row, "photo: cannot be drawn", done=done)
                        return True
                if not await self._slot(row, first=index == row.done, deadline=deadline):
                    return False
                with self._sending(row.chat_id):
                    if photo is None:
                        await self.bot.send_message(
                            row.chat_id,
                            row.parts[index],
                            parse_mode=ParseMode.HTML,
                            reply_markup=markup if index == len(row.parts) - 1 else None,
                        )
                    else:
                        await self.bot.send_photo(
                            row.chat_id, photo[0], caption=photo[1], parse_mode=ParseMode.HTML
                        )
                done = index + 1
        except RetryAfter as exc:
            delay = exc.retry_after
            seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
            self.pacer.pause(seconds)
            await self._retry(row, f"retry-after {seconds:g}s", seconds, done=done)
            return True
        except Forbidden as exc:
            await self._fail(row, f"forbidden: {exc.message}", unreachable=True, done=done)
            return True
        except BadRequest as exc:
            if "chat not found" in exc.message.lower():
                await self._fail(row, f"bad-request: {exc.message}", unreachable=True, done=done)
            else:
                await self._fail(row, f"bad-request: {exc.message}", done=done)
            return True
        except (TimedOut, NetworkError) as exc:
            if row.attempts >= self.limits.max_attempts:
                await self._fail(
                    row, f"network: {type(exc).__name__} after {row.attempts}", done=done
                )
            else:
                backoff = self.limits.retry_base_seconds * 2.0**row.attempts
                reason = f"network: {type(exc).__name__}"
                if isinstance(exc, TimedOut):
                    # Telegram may have accepted it before the answer was lost: the retry
                    # is flagged (and logged) as a possible duplicate.
                    reason = f"{outbox.IN_FLIGHT}: {reason}"
                await self._retry(row, reason, backoff, done=done)
            return True
        self._delivered.append(row.id)
        self.stats.sent += 1
        return True

    async def _slot(self, row: Claimed, *, first: bool, deadline: float | None) -> bool:
        """Wait for the pacer before one send of `row`; False if the deadline came first.

        Only a row's first send gives up at the deadline: once a part is out the rest
        follow, since a row handed back half-sent would repeat its first parts.
        """
        if not first:
            return await self.pacer.wait(row.chat_id)
        if not await self.pacer.wait(row.chat_id, deadline=deadline):
            return False
        if row.reclaimed:
            # Its previous dispatcher died after claiming: it may have sent already.
            self.stats.possible_duplicates += 1
            log.warning("outbox %s re-claimed after an expired lease: may duplicate", row.id)
        return True

    @contextlib.contextmanager
    def _sending(self, chat_id: int) -> Iterator[None]:
        """Tell the pacer when a send ends, and whether Telegram answered it."""
        try:
            yield
        except BaseException as exc:
            self.pacer.done(chat_id, answered=_answered(exc))
            raise
        self.pacer.done(chat_id)

    async def _draw(self, photo: dict[str, Any]) -> tuple[bytes, str] | None:
        """The picture and caption of an outbox photo, or None when it cannot be drawn."""
        try:
            # A chart costs a fraction of a second of CPU: off the event loop.
            return await asyncio.to_thread(draw_photo, photo)
        except (KeyError, TypeError, ValueError):
            log.exception("outbox photo of kind %r cannot be drawn", photo.get("kind"))
            return None

    async def _retry(self, row: Claimed, reason: str, seconds: float, *, done: int) -> None:
        """Put the row back for later; items already delivered are not sent again."""
        self.stats.retried += 1
        log.info("outbox %s retry in %.1fs: %s", row.id, seconds, reason)
        async with self.database.sessionmaker.begin() as session:
            await outbox.retry_later(
                session,
                row.id,
                not_before=datetime.now(UTC) + timedelta(seconds=seconds),
                reason=reason,
                body=row.body(done=done) if done != row.done else None,
            )
        self._holding.discard(row.id)

    async def _fail(
        self, row: Claimed, reason: str, *, unreachable: bool = False, done: int = 0
    ) -> None:
        self.stats.failed += 1
        if done:
            reason = f"{reason} (after {done} of {row.items} items)"
        log.info("outbox %s failed: %s", row.id, reason.split(":")[0])
        async with self.database.sessionmaker.begin() as session:
            await outbox.mark_failed(session, row.id, reason=reason, now=datetime.now(UTC))
            if unreachable:
                await outbox.mark_unreachable(
                    session, row.chat_id, reason=reason, now=datetime.now(UTC)
                )
        self._holding.discard(row.id)
