"""The error handler and the per-update log line."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.logs import RedactingFilter
from storage import people
from storage.models import Role, RoleGrant
from tests.support.fake_telegram import Sent
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
    # Admin notices go through the outbox (deduplicated); deliver them as the drain job would.
    harness.auto_drain = True
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


async def test_admins_hear_of_one_kind_of_failure_once_an_hour_even_across_a_restart(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with harness.database.sessionmaker.begin() as session:
        account = await people.ensure_account(session, ADMIN, "en")
        session.add(RoleGrant(person_id=account.person_id, role=Role.ADMIN.value))

    async def broken(*_args: object) -> None:
        raise RuntimeError("the same bug")

    async def other(*_args: object) -> None:
        raise KeyError("another bug")

    def help_handler() -> Any:
        assert harness.app is not None
        return next(
            h
            for h in harness.app.handlers[0]
            if getattr(h, "commands", None) == frozenset({"help"})
        )

    harness.auto_drain = True
    monkeypatch.setattr(help_handler(), "callback", broken)
    first = await harness.send(9402, "/help", language_code="en")
    again = await harness.send(9403, "/help", language_code="en")
    await harness.restart()
    monkeypatch.setattr(help_handler(), "callback", broken)
    after_restart = await harness.send(9404, "/help", language_code="en")
    monkeypatch.setattr(help_handler(), "callback", other)
    different = await harness.send(9405, "/help", language_code="en")

    def notices(replies: list[Sent]) -> list[str]:
        return [r.text for r in replies if r.chat_id == ADMIN]

    assert len(notices(first)) == 1 and "RuntimeError" in notices(first)[0]
    assert notices(again) == [] and notices(after_restart) == []
    assert len(notices(different)) == 1 and "KeyError" in notices(different)[0]
    # Each person who hit the failure was still told, every time.
    for replies, who in ((first, 9402), (again, 9403), (after_restart, 9404)):
        assert any(r.chat_id == who and "something went wrong" in r.text for r in replies)
