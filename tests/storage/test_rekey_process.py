"""`rekey` killed with SIGKILL half-way, then run again: every value ends under the new key,
readable and found as a duplicate with the old key removed. A real child process, on SQLite
and PostgreSQL; every wait is bounded and the child is killed in `finally`."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import select

from storage import geo, nominations
from storage.crypto import DataCipher
from storage.db import Database
from storage.models import Nomination
from storage.nominations import NominationForm
from storage.rekey import load_cipher, rekey
from storage.rules.identity import make_id_number
from storage.rules.vetting import Channel

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
PEOPLE = 400
STEP_S = 20.0
ROOT = Path(__file__).resolve().parents[2]

# The child: the same code `cadrebot rekey` runs, one row per transaction so that it is slow
# enough to be killed in the middle, on the test's database (and PostgreSQL schema).
CHILD = """
import asyncio, sys
from storage.db import Database
from storage.rekey import load_cipher, rekey

async def main() -> None:
    database = Database(sys.argv[1], schema=sys.argv[2] or None)
    async with database.sessionmaker.begin() as session:
        cipher = await load_cipher(session, sys.argv[3])
    await rekey(database, cipher, batch_size=1)

asyncio.run(main())
"""


async def _seed(db: Database) -> None:
    legacy = DataCipher(OLD)
    async with db.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "青山村")])
        township = await geo.township_by_name(session, "青山镇")
        assert township is not None
        for i in range(PEOPLE):
            await nominations.create_nomination(
                session,
                legacy,
                NominationForm(
                    full_name=f"候选人{i}",
                    township_id=township.id,
                    key_group="veteran",
                    id_number=make_id_number(
                        "520221", date(1960 + i % 40, 1 + i % 12, 1 + i % 28), i % 999, True
                    ),
                    phone=f"139{i:08d}",
                ),
                channel=Channel.ORGANIZATION,
                submitted_by=None,
                person_id=None,
                now=datetime(2026, 3, 2, tzinfo=UTC),
            )


async def _tokens(db: Database) -> list[bytes]:
    async with db.sessionmaker() as session:
        rows = (
            await session.execute(select(Nomination.id_number_enc, Nomination.phone_enc))
        ).all()
    return [token for row in rows for token in row if token is not None]


async def test_rekey_killed_half_way_then_run_again_finishes(db: Database) -> None:
    await _seed(db)
    async with db.sessionmaker.begin() as session:
        await load_cipher(session, OLD)  # the database's lookup key, as the running bot made it
    new_only = DataCipher(NEW)
    total = 2 * PEOPLE
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        db.url,
        db.schema or "",
        f"{NEW},{OLD}",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + STEP_S
        rotated = 0
        while rotated == 0:
            assert time.monotonic() < deadline, "rekey rotated nothing in time"
            assert process.returncode is None, "rekey finished before it could be killed"
            await asyncio.sleep(0.01)
            rotated = sum(new_only.is_current(t) for t in await _tokens(db))
        process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(process.wait(), STEP_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == -signal.SIGKILL
    tokens = await _tokens(db)
    half = sum(new_only.is_current(t) for t in tokens)
    assert 0 < half < total, half
    # Nothing was damaged: both keys together open every value.
    both = DataCipher(f"{NEW},{OLD}")
    assert all(both.decrypt(t) for t in tokens)

    async with db.sessionmaker.begin() as session:
        rotating = await load_cipher(session, f"{NEW},{OLD}")
    report = await rekey(db, rotating, batch_size=100)
    counts = {c.label: (c.rotated, c.current, c.unreadable) for c in report.columns}
    id_rotated, id_current, _ = counts["nomination.id_number_enc"]
    phone_rotated, phone_current, _ = counts["nomination.phone_enc"]
    assert id_rotated + id_current == phone_rotated + phone_current == PEOPLE
    assert id_rotated + phone_rotated == total - half  # only what the killed run left
    assert report.unreadable == 0

    # The old key removed: every value opens, every person is still a duplicate of themself.
    async with db.sessionmaker.begin() as session:
        after = await load_cipher(session, NEW)
    async with db.sessionmaker() as session:
        rows = (
            await session.execute(select(Nomination.id_number_enc, Nomination.phone_enc))
        ).all()
        for id_token, phone_token in rows[:: PEOPLE // 20]:
            assert id_token is not None and phone_token is not None
            id_number, phone = after.decrypt(id_token), after.decrypt(phone_token)
            assert await nominations.is_duplicate(session, after, id_number=id_number, phone=None)
            assert await nominations.is_duplicate(session, after, id_number=None, phone=phone)
    assert all(new_only.is_current(t) for t in await _tokens(db))
