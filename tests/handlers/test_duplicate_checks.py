"""Whether an ID number or phone is registered is rationed per account (issue 11, finding 10).

The /nominate ID step and the /recommend phone step share the invite codes' guessing budget
(INVITE_MAX_FAILURES per INVITE_FAILURE_WINDOW_MINUTES); past it the person is told to wait,
keeps every answer given so far, and may go on once the window has passed. Both engines.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from storage import geo, nominations, people
from storage.db import Database
from storage.models import InviteFailure
from storage.nominations import NominationForm
from storage.rules.identity import make_id_number
from storage.rules.vetting import Channel
from tests.conftest import assert_tallies_true, make_settings
from tests.handlers.test_nomination import consent, last
from tests.support.harness import BotHarness

LIMIT = 3
PROBER = 5301
KNOWN_ID = make_id_number("520221", date(1988, 8, 8), 30, male=True)
KNOWN_PHONE = "13987654321"
FRESH_ID = make_id_number("520221", date(1992, 2, 2), 31, male=True)
FRESH_PHONE = "13700001111"


@pytest.fixture
async def bot(database: Database) -> AsyncIterator[BotHarness]:
    """A running bot on each engine, with a budget of three checks, and one registered person."""
    harness = BotHarness(make_settings(database, invite_max_failures=LIMIT), database)
    await harness.start()
    assert harness.app is not None
    async with database.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "青山村")])
        township = await geo.township_by_name(session, "青山镇")
        assert township is not None
        await nominations.create_nomination(
            session,
            harness.app.bot_data["cipher"],
            NominationForm(
                full_name="赵六",
                township_id=township.id,
                key_group="veteran",
                id_number=KNOWN_ID,
                phone=KNOWN_PHONE,
            ),
            channel=Channel.SELF,
            submitted_by=None,
            person_id=None,
            now=datetime.now(UTC),
        )
    yield harness
    if harness.app is not None:
        await harness.stop()
    await assert_tallies_true(database)
    await database.close()


def draft(bot: BotHarness, user_id: int) -> dict[str, Any]:
    assert bot.app is not None
    return copy.deepcopy(dict(bot.app.user_data[user_id]))


async def pass_the_window(bot: BotHarness, user_id: int) -> None:
    """Age the account's counted checks past INVITE_FAILURE_WINDOW_MINUTES."""
    earlier = datetime.now(UTC) - timedelta(minutes=bot.settings.invite_failure_window_minutes)
    async with bot.database.sessionmaker.begin() as session:
        await session.execute(
            update(InviteFailure).where(InviteFailure.telegram_id == user_id).values(at=earlier)
        )


async def test_id_checks_in_nominate_are_rationed(bot: BotHarness) -> None:
    await consent(bot, PROBER)
    question = last(await bot.send(PROBER, "钱七"))
    question = last(await bot.press(PROBER, question.button("男")))
    assert "身份证" in question.text
    for _ in range(LIMIT):
        refusal, again = await bot.send(PROBER, KNOWN_ID)
        assert "已有报名或推荐记录" in refusal.text and "身份证" in again.text
    kept = draft(bot, PROBER)
    # Past the budget, even an unregistered number is not looked up: the answer is "wait".
    throttled, again = await bot.send(PROBER, FRESH_ID)
    assert "查验次数过多" in throttled.text and "10 分钟" in throttled.text
    assert "已有报名" not in throttled.text and "身份证" in again.text
    assert draft(bot, PROBER) == kept
    await pass_the_window(bot, PROBER)
    question = last(await bot.send(PROBER, FRESH_ID))
    assert "手机号" in question.text
    assert draft(bot, PROBER)["nomination"]["answers"]["full_name"] == "钱七"


async def test_phone_checks_in_recommend_are_rationed(bot: BotHarness) -> None:
    (question,) = await bot.send(PROBER, "/recommend")
    question = last(await bot.send(PROBER, "孙八"))
    question = last(await bot.press(PROBER, question.button("青山镇")))
    question = last(await bot.press(PROBER, question.button("青山村")))
    for _ in range(LIMIT):
        refusal, _again = await bot.send(PROBER, KNOWN_PHONE)
        assert "该手机号" in refusal.text
    throttled = (await bot.send(PROBER, FRESH_PHONE, language_code="en"))[0]
    assert "Too many numbers checked" in throttled.text and "10 minutes" in throttled.text
    await pass_the_window(bot, PROBER)
    question = last(await bot.send(PROBER, FRESH_PHONE))
    assert "该手机号" not in question.text


async def test_the_budget_is_per_account(database: Database) -> None:
    async with database.sessionmaker.begin() as session:
        now = datetime.now(UTC)
        window = timedelta(minutes=10)
        spent = [
            await people.spend_guess(session, 1, now=now, max_failures=2, window=window)
            for _ in range(3)
        ]
        other = await people.spend_guess(session, 2, now=now, max_failures=2, window=window)
        later = await people.spend_guess(
            session, 1, now=now + window, max_failures=2, window=window
        )
    assert spent == [True, True, False] and other and later
    await database.close()
