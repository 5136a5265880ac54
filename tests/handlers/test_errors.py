"""The error handler and the per-update log line."""

from __future__ import annotations

import logging

import pytest

from bot.logs import RedactingFilter
from storage import people
from storage.models import Role, RoleGrant
from tests.support.harness import BotHarness

ID_NUMBER = "52022119900307123X"
PHONE = "13812345678"
ADMIN = 9401


async def test_a_failing_handler_apologises_and_tells_the_admins_without_personal_data(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness.database.sessionmaker.begin() as session:
        account = await people.ensure_account(session, ADMIN, "en")
        session.add(RoleGrant(person_id=account.person_id, role=Role.ADMIN.value))

    async def broken(*_args: object) -> None:
        raise RuntimeError(f"lookup failed for {ID_NUMBER} / {PHONE}")

    handler = next(
        h
        for h in harness.app.handlers[0]  # type: ignore[union-attr]
        if getattr(h, "commands", None) == frozenset({"help"})
    )
    monkeypatch.setattr(handler, "callback", broken)
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.ERROR, logger="cadrebot.errors"):
        replies = await harness.send(9402, "/help", language_code="en")
    by_chat = {r.chat_id: r.text for r in replies}
    assert "something went wrong" in by_chat[9402]
    assert "RuntimeError" in by_chat[ADMIN] and ID_NUMBER not in by_chat[ADMIN]
    logged = caplog.text
    assert "RuntimeError" in logged and "Traceback" in logged
    assert ID_NUMBER not in logged and PHONE not in logged


async def test_one_log_line_per_update_names_the_handler(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="cadrebot.updates"):
        await harness.send(9403, "/start")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "cadrebot.updates"]
    assert "handler=start.start" in line and "ms=" in line
    assert line.startswith("update ")
