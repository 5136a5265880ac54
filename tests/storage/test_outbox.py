"""The outbox on both databases: idempotent planning, leased claims, two dispatchers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from storage import outbox
from storage.db import Database
from storage.models import OutboxMessage

NOW = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
LEASE = timedelta(seconds=60)


async def _plan(db: Database, n: int, **extra: object) -> None:
    async with db.sessionmaker.begin() as session:
        for i in range(n):
            await outbox.plan(
                session, key=f"k:{i}", chat_id=1000 + i, kind="test", parts=[f"m{i}"], **extra
            )


async def test_planning_twice_is_a_no_op(db: Database) -> None:
    await _plan(db, 3)
    async with db.sessionmaker.begin() as session:
        again = await outbox.plan(session, key="k:1", chat_id=1, kind="test", parts=["x"])
    assert again is False
    async with db.sessionmaker() as session:
        rows = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert [r.key for r in rows] == ["k:0", "k:1", "k:2"]
    assert rows[1].parts == {"parts": ["m1"]} and rows[1].chat_id == 1001


async def test_claim_takes_due_rows_once_and_reclaims_expired_leases(db: Database) -> None:
    await _plan(db, 4, not_before=NOW)
    async with db.sessionmaker.begin() as session:
        await outbox.plan(
            session, key="later", chat_id=9, kind="t", parts=["x"], not_before=NOW + LEASE
        )
    async with db.sessionmaker.begin() as session:
        first = await outbox.claim(session, worker="a", now=NOW, limit=3, lease=LEASE)
    async with db.sessionmaker.begin() as session:
        second = await outbox.claim(session, worker="b", now=NOW, limit=10, lease=LEASE)
    assert [c.key for c in first] == ["k:0", "k:1", "k:2"]
    assert [c.key for c in second] == ["k:3"]
    assert not any(c.reclaimed for c in first + second)
    async with db.sessionmaker.begin() as session:
        await outbox.mark_sent(session, [first[0].id], now=NOW)
        await outbox.mark_failed(session, first[1].id, reason="forbidden: blocked", now=NOW)
    # Worker "a" died holding k:2; after the lease it is claimed again, flagged.
    async with db.sessionmaker.begin() as session:
        late = await outbox.claim(
            session, worker="c", now=NOW + LEASE + timedelta(seconds=1), limit=10, lease=LEASE
        )
    assert {c.key: c.reclaimed for c in late} == {"k:2": True, "k:3": True, "later": False}
    assert {c.key: c.attempts for c in late}["k:2"] == 2
    async with db.sessionmaker() as session:
        statuses = await outbox.counts(session)
    assert statuses == {"sent": 1, "failed": 1, "sending": 3}


async def test_retry_later_waits_until_not_before(db: Database) -> None:
    await _plan(db, 1, not_before=NOW)
    async with db.sessionmaker.begin() as session:
        (row,) = await outbox.claim(session, worker="a", now=NOW, limit=5, lease=LEASE)
        await outbox.retry_later(
            session, row.id, not_before=NOW + timedelta(seconds=30), reason="retry-after 30s"
        )
    async with db.sessionmaker.begin() as session:
        assert await outbox.claim(session, worker="a", now=NOW, limit=5, lease=LEASE) == []
        again = await outbox.claim(
            session, worker="a", now=NOW + timedelta(seconds=31), limit=5, lease=LEASE
        )
    assert [c.key for c in again] == ["k:0"] and not again[0].reclaimed


async def test_concurrent_claimers_never_share_a_row(db: Database) -> None:
    """Several claimers at once (SKIP LOCKED on PostgreSQL, IMMEDIATE on SQLite)."""
    await _plan(db, 120, not_before=NOW)
    other = Database(db.url, schema=db.schema)
    try:

        async def claimer(database: Database, worker: str) -> list[str]:
            keys: list[str] = []
            while True:
                async with database.sessionmaker.begin() as session:
                    rows = await outbox.claim(
                        session, worker=worker, now=NOW, limit=7, lease=LEASE
                    )
                if not rows:
                    return keys
                keys.extend(r.key for r in rows)
                await asyncio.sleep(0)

        results = await asyncio.gather(
            claimer(db, "a"), claimer(other, "b"), claimer(db, "c"), claimer(other, "d")
        )
    finally:
        await other.close()
    everything = [k for keys in results for k in keys]
    assert len(everything) == 120 and len(set(everything)) == 120


async def test_photos_and_delivered_items_survive_a_retry(db: Database) -> None:
    photo = {"kind": "summary-chart", "locale": "zh_CN", "caption": "图", "chart": {"n": 1}}
    async with db.sessionmaker.begin() as session:
        await outbox.plan(
            session,
            key="s:1",
            chat_id=5,
            kind="summary/summary",
            parts=["one", "two"],
            photos=[photo],
            not_before=NOW,
        )
    async with db.sessionmaker.begin() as session:
        (row,) = await outbox.claim(session, worker="a", now=NOW, limit=5, lease=LEASE)
        assert row.photos == (photo,) and row.done == 0 and row.items == 3
        # Both text parts went out before a 429: the retry must start at the photo.
        await outbox.retry_later(
            session,
            row.id,
            not_before=NOW,
            reason="retry-after 1s",
            body=row.body(done=2),
        )
    async with db.sessionmaker.begin() as session:
        (again,) = await outbox.claim(session, worker="a", now=NOW, limit=5, lease=LEASE)
    assert again.done == 2 and again.parts == ["one", "two"] and again.photos == (photo,)
    assert again.markup is None


async def test_existing_keys_finds_exactly_the_planned_ones(db: Database) -> None:
    await _plan(db, 1200)
    asked = [f"k:{i}" for i in range(0, 2400, 2)]  # half planned, across several chunks
    async with db.sessionmaker() as session:
        found = await outbox.existing_keys(session, asked)
        assert await outbox.existing_keys(session, []) == set()
        assert await outbox.existing_keys(session, ["k:1", "k:1", "nope"]) == {"k:1"}
    assert found == {f"k:{i}" for i in range(0, 1200, 2)}
