"""The active process's PostgreSQL lock: held, seen to be lost, and taken by the next."""

from __future__ import annotations

import uuid

import asyncpg

from bot.standby import PostgresLock
from tests.conftest import PG_URL


async def test_a_lost_lock_connection_reads_as_lost_and_another_can_take_it() -> None:
    schema = f"lock_{uuid.uuid4().hex[:8]}"  # the key only: no schema is created
    active = PostgresLock(PG_URL, schema)
    await active.acquire()
    try:
        assert await active.still_held()
        admin = await asyncpg.connect(PostgresLock(PG_URL).dsn)
        try:
            # The server ends the lock's session (a failover, an operator, a network cut).
            ended = await admin.fetchval(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted "
                "AND ((classid::bigint << 32) | objid::bigint) = $1::bigint) AS t",
                active.key,
            )
            assert ended == 1
        finally:
            await admin.close()
        # Reported as lost (False), never raised out of the job that checks it.
        assert not await active.still_held()
        standby = PostgresLock(PG_URL, schema)
        await standby.acquire()
        assert await standby.still_held()
        await standby.release()
    finally:
        await active.release()
