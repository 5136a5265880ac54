"""Issue 11 with real processes: the inbox across `kill -9`, webhook mode over HTTP, one active
process per database (a PostgreSQL standby that takes over; SQLite refuses a second one).

Every process is started here with the e2e environment and killed in `finally`; every wait is
bounded.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from sqlalchemy import text

from storage.rules.identity import make_id_number
from tests.conftest import PG_URL, _pg_run
from tests.e2e.chat import Inbox, button
from tests.e2e.conftest import (
    BOT_START_TIMEOUT,
    BotProcess,
    Emulator,
    Person,
    _tail,
    _tokens,
    _user_ids,
    _wait_until,
)

BURST = 61


def _token() -> str:
    return f"{next(_tokens)}:E2ETOKEN{secrets.token_hex(12)}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _inbox(url: str) -> list[tuple[int, bool]]:
    """(update_id, handled) of every row of the inbox."""
    from storage.db import Database

    async def read() -> list[tuple[int, bool]]:
        database = Database(url)
        try:
            async with database.engine.connect() as connection:
                rows = await connection.execute(
                    text("SELECT update_id, handled_at IS NOT NULL FROM inbound_update")
                )
                return [(int(a), bool(b)) for a, b in rows.all()]
        finally:
            await database.close()

    return asyncio.run(read())


class Process(BotProcess):
    """`cadrebot run` with a chosen database, in polling or webhook mode, killable."""

    def __init__(
        self, emulator: Emulator, workdir: Path, token: str, *, database_url: str | None = None
    ) -> None:
        super().__init__(emulator, workdir, token)
        if database_url is not None:
            self.database_url = database_url
        self.popen: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    def spawn(self, *args: str, name: str = "cadrebot") -> subprocess.Popen[bytes]:
        self.log_path = self.workdir / f"{name}.log"
        self._out = self.log_path.open("ab")
        self.popen = self.run(self._out, *args)
        return self.popen

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)
        if self._out is not None:
            self._out.close()
            self._out = None

    def terminate(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        if self._out is not None:
            self._out.close()
            self._out = None


def _replies(emulator: Emulator, token: str, chat_id: int) -> list[dict[str, Any]]:
    return [
        item
        for item in emulator.history(token)
        if "message" in item
        and item["message"].get("chat_id") is not None
        and str(item["message"]["chat_id"]) == str(chat_id)
        and "from" not in item["message"]  # the bot's messages, not the person's
    ]


# -- the inbox across kill -9 ----------------------------------------------------------------


def test_kill_during_a_burst_loses_no_update(emulator: Emulator, tmp_path: Path) -> None:
    """61 messages from one person, `kill -9` mid-burst, restart: every one answered."""
    bot = Process(emulator, tmp_path, _token())
    person = Person(emulator, bot, next(_user_ids))
    try:
        bot.start()
        for n in range(BURST):
            person.send(f"消息 {n}")
        replies: list[Any] = []

        def some_answered() -> bool:
            replies.extend(person.receive(1, timeout=5))
            return len(replies) >= 12

        _wait_until(some_answered, 20, "the first replies of the burst", step=0)
        assert bot._process is not None
        bot._process.send_signal(signal.SIGKILL)
        bot._process.wait(timeout=10)
        bot.stop()  # already dead: closes its log
        answered_before = len(replies) + len(person._pending)
        assert answered_before < BURST, "the kill came too late to test anything"

        bot.start()
        deadline = time.monotonic() + 30
        while len(replies) < BURST and time.monotonic() < deadline:
            try:
                replies.extend(person.receive(1, timeout=2))
            except AssertionError:
                continue
        time.sleep(1.5)  # anything answered twice would arrive by now
        try:
            replies.extend(person.receive(10, timeout=0.5))
        except AssertionError:
            replies.extend(person._pending)
            person._pending.clear()
        assert all("没有理解" in r.text for r in replies)
        # Every update answered; the one being handled at the kill may have had its reply sent
        # just before its transaction committed (Telegram has no idempotent send), so at most
        # one is answered twice.
        assert BURST <= len(replies) <= BURST + 1, len(replies)
        rows = _inbox(bot.database_url)
        assert len(rows) == BURST and all(handled for _, handled in rows)
    finally:
        bot.stop()


# -- webhook mode from a clean install ------------------------------------------------------


def test_webhook_mode_answers_the_right_secret_only_and_ignores_a_replay(
    emulator: Emulator, tmp_path: Path
) -> None:
    token = _token()
    bot = Process(emulator, tmp_path, token)
    port = _free_port()
    secret = secrets.token_urlsafe(16)
    # A path of the operator's choosing: the bot listens where it tells Telegram to post.
    path = f"tg/{secrets.token_hex(4)}"
    url = f"http://127.0.0.1:{port}/{path}"
    user = next(_user_ids)
    person = Person(emulator, bot, user)
    bot.spawn(
        *("--webhook-url", url, "--listen", "127.0.0.1", "--port", str(port)),
        *("--secret-token", secret),
        name="webhook",
    )
    try:
        http = httpx.Client(timeout=5.0)

        def up() -> bool:
            assert bot.popen is not None
            if bot.popen.poll() is not None:
                raise RuntimeError(f"cadrebot run exited:\n{_tail(bot.log_path)}")
            try:
                http.post(url, json={}, headers={"X-Telegram-Bot-Api-Secret-Token": "x"})
            except httpx.TransportError:
                return False
            return True

        _wait_until(up, BOT_START_TIMEOUT, "the webhook server", step=0.2)

        def update(update_id: int, words: str) -> dict[str, Any]:
            return {
                "update_id": update_id,
                "message": {
                    "message_id": update_id,
                    "date": int(time.time()),
                    "chat": {"id": user, "type": "private"},
                    "from": {"id": user, "is_bot": False, "first_name": "W"},
                    "text": words,
                    "entities": [{"type": "bot_command", "offset": 0, "length": len(words)}],
                },
            }

        start = update(900_001, "/start")
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            refused = http.post(url, json=start, headers=headers)
            assert refused.status_code == 403
        right = {"X-Telegram-Bot-Api-Secret-Token": secret}
        assert http.post(url, json=start, headers=right).status_code == 200
        (welcome,) = person.receive(1)
        assert "欢迎" in welcome.text
        # Telegram retries a webhook call it thinks failed: same update_id, answered once.
        assert http.post(url, json=start, headers=right).status_code == 200
        assert http.post(url, json=update(900_002, "/help"), headers=right).status_code == 200
        (help_text,) = person.receive(1)
        assert "/start" in help_text.text
        time.sleep(1.0)
        assert [r.text for r in person.receive(0)] == []
        assert len(_replies(emulator, token, user)) == 2
        assert "received before: ignored" in bot.log()
        http.close()
    finally:
        bot.terminate()


# -- one active process -----------------------------------------------------------------------


def test_sqlite_refuses_a_second_process(emulator: Emulator, tmp_path: Path) -> None:
    bot = Process(emulator, tmp_path, _token())
    try:
        bot.start()
        second = subprocess.run(
            bot.command("run", "--no-migrate"),
            cwd=tmp_path,
            env=bot.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode != 0
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "already running" in lines[0], second.stderr
        assert bot.running
    finally:
        bot.stop()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A database of its own: the advisory lock is per database."""
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    _pg_run(f"CREATE DATABASE {name}")
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        _pg_run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_postgres_standby_takes_over_mid_form(
    emulator: Emulator, tmp_path: Path, pg_url: str
) -> None:
    token = _token()
    first = Process(emulator, tmp_path / "a", token, database_url=pg_url)
    second = Process(emulator, tmp_path / "b", token, database_url=pg_url)
    second.data_key = first.data_key
    for process in (first, second):
        process.workdir.mkdir()
    try:
        first.start()
        first.cli("geo", "import", str(_villages(tmp_path)), "--county", "示例县")
        second.spawn("--poll-interval", "0.2", name="standby")
        _wait_until(
            lambda: "waiting as standby" in second.log(), BOT_START_TIMEOUT, "the standby line"
        )
        person = Person(emulator, first, next(_user_ids))
        (notice,) = person.ask("/nominate")
        person.press(notice, button(notice, "同意"))
        (sensitive,) = person.receive(1)
        person.press(sensitive, button(sensitive, "同意"))
        question = person.receive(1)[-1]
        assert "姓名" in question.text
        (question,) = person.ask("张三")
        person.press(question, button(question, "男"))
        (question,) = person.receive(1)
        assert "身份证" in question.text

        assert first._process is not None
        first._process.send_signal(signal.SIGKILL)
        first._process.wait(timeout=10)
        first.stop()  # already dead: closes its log
        killed_at = time.monotonic()
        _wait_until(lambda: "taking over" in second.log(), 10, "the standby to take over")
        assert time.monotonic() - killed_at < 5
        # The standby answers the person's next message at the question they were asked.
        # A kill after the ID question went out but before its update's commit makes the
        # standby replay that press (at least once, never lost): the question may come again,
        # and nothing else may come before the answer to the ID number.
        person.send(make_id_number("520221", date(1990, 3, 7), 12, male=True))
        inbox = Inbox(person)
        inbox.wait("手机号", timeout=20)
        assert all("身份证" in replayed.text for replayed in inbox.stash), inbox.stash
    finally:
        first.stop()
        second.terminate()


def _villages(tmp_path: Path) -> Path:
    path = tmp_path / "villages.csv"
    path.write_text("青山镇,第1村\n", encoding="utf-8")
    return path
