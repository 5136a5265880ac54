"""The demo county (issue 12, item 8): whoever redeems a demo role's invite lands on a person
with work waiting. The mentor used to open on "您目前没有结对的后备干部"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bot.fakeapi.html import html_to_text
from storage import seed
from storage.models import Nomination
from tests.support.harness import BotHarness

USER = 8100


async def demo_invites(bot: BotHarness) -> dict[str, str]:
    """`cadrebot seed --demo` on the bot's database: role → invite code."""
    assert bot.app is not None
    now = datetime.now(UTC)
    async with bot.database.sessionmaker.begin() as session:
        invites = await seed.seed_small(session, now=now, days=7)
        added = await seed.seed_files(
            session,
            bot.app.bot_data["cipher"],
            now=now,
            tz=bot.settings.tz,
            departments=bot.settings.department_codes,
        )
    assert added == len(seed.demo_data()["files"])
    return {invite.role.value: invite.code for invite in invites}


@pytest.mark.parametrize(
    ("role", "command", "expected"),
    [
        pytest.param(
            "mentor",
            "/mentees",
            # Two mentees, the most urgent talk first: one overdue, one due within the week.
            ["田秀芬 · 青山镇 石门村", "已逾期 4 天", "杨光明 · 青山镇 青山村", "4 天后到期"],
            id="mentor-mentees",
        ),
        pytest.param(
            "mentor",
            "/difficulties",
            ["杨光明", "合作社缺少冷库"],
            id="mentor-difficulty-raised",
        ),
        pytest.param(
            "reviewer",
            "/vetting",
            ["待联审人选（共 1 人", "吴建国 · 青山镇 · 公安"],
            id="reviewer-vetting",
        ),
        pytest.param(
            "township_official",
            "/review",
            ["待审核的推荐人选（共 1 人", "冉小燕 · 青山镇 · 个人自荐"],
            id="official-review",
        ),
        pytest.param(
            "township_official",
            "/difficulties",
            ["待解决的实际困难（共 1 条）", "杨光明 · 青山镇 青山村", "合作社缺少冷库"],
            id="official-difficulty",
        ),
    ],
)
async def test_a_demo_invite_lands_on_work_waiting(
    harness_any: BotHarness, role: str, command: str, expected: list[str]
) -> None:
    bot = harness_any
    code = (await demo_invites(bot))[role]
    granted = await bot.send(USER, f"/start {code}")
    assert "邀请码有效" in granted[0].text, granted[0].text
    (reply,) = await bot.send(USER, command)
    text = html_to_text(reply.text)
    for fragment in expected:
        assert fragment in text, (fragment, text)


async def test_the_demo_files_are_complete_and_seeded_once(harness_any: BotHarness) -> None:
    """Every file has an ID number, a phone and both consents (vetting needs them); a second
    seed adds fresh codes but no second copy of the files."""
    bot = harness_any
    assert bot.app is not None
    await demo_invites(bot)
    async with bot.database.sessionmaker.begin() as session:
        again = await seed.seed_files(
            session,
            bot.app.bot_data["cipher"],
            now=datetime.now(UTC),
            tz=bot.settings.tz,
            departments=bot.settings.department_codes,
        )
        incomplete = await session.scalar(
            select(func.count())
            .select_from(Nomination)
            .where(
                (Nomination.id_number_enc.is_(None))
                | (Nomination.phone_enc.is_(None))
                | (Nomination.consent_at.is_(None))
                | (Nomination.sensitive_consent_at.is_(None))
            )
        )
        total = await session.scalar(select(func.count()).select_from(Nomination))
    assert again == 0
    assert incomplete == 0 and total == len(seed.demo_data()["files"])
