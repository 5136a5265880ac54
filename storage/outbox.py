"""The outbox: planned proactive messages, claimed by dispatchers, ended sent or failed.

Claiming is safe with several dispatchers: on PostgreSQL rows are locked with
``FOR UPDATE SKIP LOCKED``; on SQLite every write transaction begins IMMEDIATE, so the claim
runs alone. A row stays "sending" while in flight; one whose claim is older than the lease
(its dispatcher died between sending and marking) is claimed again — at most one duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import upsert
from storage.models import OutboxMessage, TelegramAccount

# The mark of a message that may have reached Telegram without our knowing (see claim).
IN_FLIGHT = "in-flight"


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    key: str
    chat_id: int
    kind: str
    parts: list[str]
    # An inline keyboard (Bot API JSON) for the last part, e.g. RSVP buttons.
    markup: dict[str, Any] | None
    attempts: int
    # True when a previous claim expired: the message may already have been delivered.
    reclaimed: bool
    # Pictures sent after the text parts, each described well enough to draw it again at
    # send time (a summary's chart: its figures, locale and caption), so rows stay small.
    photos: tuple[dict[str, Any], ...] = ()
    # How many of the row's items (text parts, then photos) reached Telegram on an earlier
    # attempt: a retry resumes after them instead of sending them twice.
    done: int = 0

    @property
    def items(self) -> int:
        return len(self.parts) + len(self.photos)

    def body(self, *, done: int) -> dict[str, Any]:
        """The stored body with a new count of delivered items."""
        body: dict[str, Any] = {"parts": self.parts}
        if self.markup is not None:
            body["markup"] = self.markup
        if self.photos:
            body["photos"] = list(self.photos)
        if done:
            body["done"] = done
        return body


async def plan(
    session: AsyncSession,
    *,
    key: str,
    chat_id: int,
    kind: str,
    parts: list[str],
    not_before: datetime | None = None,
    markup: dict[str, Any] | None = None,
    photos: list[dict[str, Any]] | None = None,
    subject: int | None = None,
) -> bool:
    """Add a message unless one with the same key exists; True when it was added.

    `subject` is the nomination the message names or is about, if any: erasure and
    retention find it by that (storage/erasure.py)."""
    body: dict[str, Any] = {"parts": parts}
    if markup is not None:
        body["markup"] = markup
    if photos:
        body["photos"] = photos
    values: dict[str, object] = {
        "key": key,
        "chat_id": chat_id,
        "kind": kind,
        "parts": body,
        "status": "pending",
        "attempts": 0,
    }
    if not_before is not None:
        values["not_before"] = not_before
    if subject is not None:
        values["subject_nomination_id"] = subject
    insert = upsert(session)
    statement = (
        insert(OutboxMessage)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[OutboxMessage.key])
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def existing_keys(session: AsyncSession, keys: list[str]) -> set[str]:
    """Which of these keys are planned already: a tick skips them before rendering anything."""
    found: set[str] = set()
    if not keys:
        return found
    if _dialect(session) == "postgresql":
        # One array parameter joined as a table: PostgreSQL hashes it or probes the unique
        # index. An IN list of 500 parameters was matched row by row against a seq scan of
        # a freshly grown outbox (12 s for 20,000 keys at 1,000,000 pairings, bench/planning).
        wanted = (
            func.unnest(bindparam("wanted", keys, type_=ARRAY(String)))
            .table_valued("key")
            .render_derived(name="wanted")
        )
        found.update(
            await session.scalars(
                select(OutboxMessage.key).join(wanted, OutboxMessage.key == wanted.c.key)
            )
        )
        return found
    # SQLite answers an IN list from the unique index; 500 stays under its variable limit.
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found.update(
            await session.scalars(select(OutboxMessage.key).where(OutboxMessage.key.in_(chunk)))
        )
    return found


async def claim(
    session: AsyncSession, *, worker: str, now: datetime, limit: int, lease: timedelta
) -> list[Claimed]:
    """Take up to `limit` due messages for this worker, oldest first."""
    due = and_(
        # The same term as ix_outbox_message_open's WHERE, so both databases can use it.
        OutboxMessage.status.in_(("pending", "sending")),
        or_(
            and_(OutboxMessage.status == "pending", OutboxMessage.not_before <= now),
            and_(OutboxMessage.status == "sending", OutboxMessage.claimed_at < now - lease),
        ),
    )
    pick = select(OutboxMessage.id).where(due).order_by(OutboxMessage.id).limit(limit)
    if _dialect(session) == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    rows = (
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(pick.scalar_subquery()))
            .values(
                status="sending",
                claimed_at=now,
                claimed_by=worker,
                attempts=OutboxMessage.attempts + 1,
            )
            .returning(
                OutboxMessage.id,
                OutboxMessage.key,
                OutboxMessage.chat_id,
                OutboxMessage.kind,
                OutboxMessage.parts,
                OutboxMessage.attempts,
                OutboxMessage.sent_at,
                OutboxMessage.error,
            )
        )
    ).all()
    claimed = [
        Claimed(
            r.id,
            r.key,
            r.chat_id,
            r.kind,
            list(r.parts["parts"]),
            r.parts.get("markup"),
            r.attempts,
            reclaimed=(r.error or "").startswith(IN_FLIGHT),
            photos=tuple(r.parts.get("photos", ())),
            done=int(r.parts.get("done", 0)),
        )
        for r in rows
    ]
    claimed.sort(key=lambda c: c.id)
    if claimed:
        # Marks rows as possibly delivered until they end, so a re-claim knows.
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([c.id for c in claimed]))
            .values(error=IN_FLIGHT)
        )
    return claimed


async def mark_sent(session: AsyncSession, message_ids: list[int], *, now: datetime) -> None:
    """End delivered rows; many at once, so marking costs one write, not one per message."""
    if message_ids:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(message_ids))
            .values(status="sent", sent_at=now, error=None)
        )


async def mark_failed(
    session: AsyncSession, message_id: int, *, reason: str, now: datetime
) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(status="failed", error=reason[:300], sent_at=None, claimed_at=now)
    )


async def retry_later(
    session: AsyncSession,
    message_id: int,
    *,
    not_before: datetime,
    reason: str,
    body: dict[str, Any] | None = None,
) -> None:
    """Put a row back for later; `body` (see Claimed.body) records items already delivered."""
    values: dict[str, Any] = {
        "status": "pending",
        "not_before": not_before,
        "error": reason[:300],
        "claimed_by": None,
    }
    if body is not None:
        values["parts"] = body
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values)
    )


async def mark_unreachable(
    session: AsyncSession, chat_id: int, *, reason: str, now: datetime
) -> None:
    """Remember that this person blocked the bot (or is gone) so officials can be told."""
    await session.execute(
        update(TelegramAccount)
        .where(TelegramAccount.telegram_id == chat_id, TelegramAccount.unreachable_at.is_(None))
        .values(unreachable_at=now, unreachable_reason=reason[:200])
    )


async def mark_reachable(session: AsyncSession, telegram_id: int) -> None:
    await session.execute(
        update(TelegramAccount)
        .where(TelegramAccount.telegram_id == telegram_id)
        .values(unreachable_at=None, unreachable_reason=None)
    )


async def counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    )
    return {status: int(n) for status, n in rows.all()}
