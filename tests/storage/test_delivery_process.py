"""Delivery across real processes: SIGKILL a planner or a dispatcher, race two dispatchers.

The Bot API is bot.fakeapi.server over real HTTP on 127.0.0.1, run in the test's loop; the
planners and dispatchers are `tests.support.dispatch_worker` child processes. Every wait has a
timeout and every child is killed in `finally`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.delivery import Dispatcher, Limits
from bot.fakeapi.server import FakeBotApiServer as FakeBotApi
from storage.db import Database
from storage.models import OutboxMessage
from tests.conftest import pg_schema
from tests.support import dispatch_worker as worker
from tests.support.harness import drain_round

ROOT = Path(__file__).resolve().parents[2]
STEP_S = 20.0  # the longest any single wait may take; the whole file runs in well under 30 s


@pytest.fixture(autouse=True)
def _timedelta_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB warns on every RetryAfter unless opted in; the warning would be an error here.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
def pg_database() -> Iterator[Database]:
    with pg_schema() as database:
        yield database


@asynccontextmanager
async def child(
    database: Database, *args: str, stdin: bool = False
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A worker process on the test's database; SIGKILLed on the way out if still alive."""
    env = dict(os.environ, DATABASE_URL=database.url, DATABASE_SCHEMA=database.schema or "")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.dispatch_worker",
        *args,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.communicate(), STEP_S)


async def expect_line(process: asyncio.subprocess.Process, prefix: str) -> str:
    """The child's next stdout line, which must start with `prefix`."""
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), STEP_S)).decode().strip()
    if not line.startswith(prefix):
        assert process.stderr is not None
        await asyncio.wait_for(process.wait(), STEP_S)
        errors = (await process.stderr.read()).decode()[-2000:]
        raise AssertionError(f"expected {prefix!r} from the worker, got {line!r}\n{errors}")
    return line


async def sigkill(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(process.wait(), STEP_S) == -signal.SIGKILL


async def statuses(database: Database) -> dict[str, str]:
    async with database.sessionmaker() as session:
        rows = await session.execute(select(OutboxMessage.key, OutboxMessage.status))
        return {key: status for key, status in rows.all()}


async def drain_all(dispatcher: Dispatcher) -> None:
    """drain() returns when nothing is due; rows waiting out a retry need another round."""
    async with asyncio.timeout(STEP_S):
        while True:
            if await drain_round(dispatcher) is None:
                return
            await asyncio.sleep(0.05)


@asynccontextmanager
async def bot_for(fake: FakeBotApi) -> AsyncIterator[Bot]:
    request = HTTPXRequest(connection_pool_size=32, read_timeout=5.0)
    async with Bot(worker.TOKEN, base_url=f"{fake.url}/bot", request=request) as bot:
        yield bot


def deliveries(fake: FakeBotApi) -> Counter[str]:
    return Counter(a.text for a in fake.accepted)


async def test_planner_killed_before_sending_loses_nothing_and_sends_once(
    db: Database,
) -> None:
    """Planned and committed, then SIGKILL mid-way through the next plan: after a restart
    that plans everything again, each reminder goes out exactly once."""
    committed, held = 40, 10
    async with FakeBotApi(rate=1000) as fake:
        async with child(db, "plan", "--count", str(committed), "--hold", str(held)) as planner:
            await expect_line(planner, "PLANNED")
            await expect_line(planner, "HOLDING")
            await sigkill(planner)
        before = await statuses(db)
        assert sorted(before) == sorted(worker.key(n) for n in range(committed))
        assert set(before.values()) == {"pending"}

        # The restarted tick plans the same things again: only the uncommitted ones are new.
        assert await worker.plan_rows(db, committed) == 0
        assert await worker.plan_rows(db, held, held=True) == held

        async with bot_for(fake) as bot:
            await drain_all(Dispatcher(db, bot, limits=Limits(per_second=200)))

    expected = [worker.text(n) for n in range(committed)]
    expected += [worker.text(n, held=True) for n in range(held)]
    assert deliveries(fake) == Counter(expected)
    assert set((await statuses(db)).values()) == {"sent"}
    assert fake.api.too_many == 0


async def test_dispatcher_killed_between_sending_and_marking_duplicates_once(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The fake records the last reminder, then holds its answer; the dispatcher is killed
    while that row is still 'sending'. A new dispatcher with a short lease sends it again —
    exactly one logged duplicate — and every other reminder exactly once."""
    count = 12
    victim = count - 1  # the highest id: the pacer sends it last
    await worker.plan_rows(db, count)
    async with FakeBotApi(rate=1000, delay={worker.chat(victim): 60.0}) as fake:
        drain_args = ["drain", "--api", fake.url, "--per-second", "100", "--read-timeout", "60"]
        async with child(db, *drain_args) as doomed:
            await expect_line(doomed, "READY")
            async with asyncio.timeout(STEP_S):
                while True:
                    now = await statuses(db)
                    marked = sum(1 for s in now.values() if s == "sent")
                    if marked == count - 1 and deliveries(fake)[worker.text(victim)] == 1:
                        break
                    await asyncio.sleep(0.02)
            assert now[worker.key(victim)] == "sending"
            await sigkill(doomed)
        fake.control({"undelay": [worker.chat(victim)]})

        async with bot_for(fake) as bot:
            survivor = Dispatcher(db, bot, limits=Limits(per_second=100, lease_seconds=0.2))
            with caplog.at_level(logging.WARNING, logger="cadrebot.delivery"):
                await drain_all(survivor)
            await survivor.drain()  # and never a third time

    sent = deliveries(fake)
    assert sent[worker.text(victim)] == 2
    assert all(sent[worker.text(n)] == 1 for n in range(count - 1))
    assert sum(sent.values()) == count + 1
    assert set((await statuses(db)).values()) == {"sent"}
    assert survivor.stats.possible_duplicates == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("may duplicate" in w for w in warnings), warnings


async def test_two_dispatcher_processes_on_postgresql_send_each_row_once(
    pg_database: Database,
) -> None:
    """Two processes drain the same 500 rows at once (FOR UPDATE SKIP LOCKED)."""
    count = 500
    try:
        await worker.plan_rows(pg_database, count)
        async with FakeBotApi(rate=2000) as fake:
            # Small batches and few sends in flight: the two processes interleave claims, and
            # the database pool (5 + 10 overflow) is not churned on a busy machine.
            args = ["drain", "--api", fake.url, "--per-second", "400", "--batch", "20"]
            args += ["--concurrency", "8"]
            async with (
                child(pg_database, *args, "--wait-go", stdin=True) as first,
                child(pg_database, *args, "--wait-go", stdin=True) as second,
            ):
                for process in (first, second):
                    await expect_line(process, "READY")
                for process in (first, second):
                    assert process.stdin is not None
                    process.stdin.write(b"GO\n")
                    await process.stdin.drain()
                done = [
                    json.loads((await expect_line(p, "DONE ")).removeprefix("DONE "))
                    for p in (first, second)
                ]
        sent = deliveries(fake)
        assert sent == Counter(worker.text(n) for n in range(count))
        assert [d["sent"] > 0 for d in done] == [True, True], done
        assert sum(d["sent"] for d in done) == count
        assert set((await statuses(pg_database)).values()) == {"sent"}
        async with pg_database.sessionmaker() as session:
            workers = await session.scalar(
                select(func.count(func.distinct(OutboxMessage.claimed_by)))
            )
        assert workers == 2
    finally:
        await pg_database.close()
