"""/mydata: a person sees what is held about them, their consents and who read their file."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from storage import audit
from storage.models import AuditLog, Nomination, Role
from tests.support.county import build_county, grant, nominate
from tests.support.harness import BotHarness

CANDIDATE, OFFICIAL, FAR_OFFICIAL, STRANGER = 8201, 8202, 8203, 8204
ID_NUMBER = "52022119900307123X"
OFFICIAL_NAME = "李干部"

TEXTS = {
    "en": {
        "title": "What we hold about you",
        "file": "File number {nid}",
        "masked_id": "5202**********123X",
        "consent": "personal information 2026-03-01 18:00",
        "sensitive": "ID number (sensitive) 2026-03-01 18:00",
        "read_by": "read by Township official (青山镇)",
        "self": "read by you",
        "unroled": "read by a person without a role",
        "none": "No file is held about you.",
        "nobody": "Nobody has read it yet.",
        "draft": "Recommendation: 1 answer(s) so far",
    },
    "zh-hans": {
        "title": "我们保存的您的信息",
        "file": "档案编号 {nid}",
        "masked_id": "5202**********123X",
        "consent": "个人信息 2026-03-01 18:00",
        "sensitive": "身份证号（敏感信息） 2026-03-01 18:00",
        "read_by": "乡镇（街道）干部（青山镇）查阅",
        "self": "您本人查阅",
        "unroled": "无身份的人员查阅",
        "none": "没有保存关于您的档案。",
        "nobody": "尚无人查阅。",
        "draft": "举荐：已填 1 项",
    },
}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
async def test_mydata_shows_files_consents_roles_and_readers(
    harness_any: BotHarness, language: str
) -> None:
    bot = harness_any
    words = TEXTS[language]
    county = await build_county(bot)
    candidate = await grant(bot, CANDIDATE, None, full_name="王小明")
    await grant(
        bot,
        OFFICIAL,
        Role.TOWNSHIP_OFFICIAL,
        township_id=county.towns["青山镇"],
        full_name=OFFICIAL_NAME,
    )
    await grant(bot, FAR_OFFICIAL, Role.TOWNSHIP_OFFICIAL, township_id=county.towns["木黄镇"])
    nid = await nominate(
        county, "王小明", person_id=candidate, submitted_by=candidate, id_number=ID_NUMBER
    )
    consented = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)  # 18:00 Beijing time
    async with bot.database.sessionmaker.begin() as session:
        await session.execute(
            update(Nomination)
            .where(Nomination.id == nid)
            .values(consent_at=consented, sensitive_consent_at=consented)
        )
        phone = await session.scalar(select(Nomination.phone_masked).where(Nomination.id == nid))
    assert phone

    await bot.send(OFFICIAL, f"/dossier {nid}")  # in scope: a read
    await bot.send(FAR_OFFICIAL, f"/dossier {nid}")  # out of scope: refused, not a read
    await bot.send(CANDIDATE, f"/dossier {nid}")  # their own file
    # A vetting department's look (the vetting screen writes this row): a read too.
    async with bot.database.sessionmaker.begin() as session:
        await audit.record(session, None, "nomination.read", "nomination", nid, via="vetting")
    # A recommendation started and not sent: /mydata may be asked mid-form, like /help.
    await bot.send(CANDIDATE, "/recommend", language_code=language)
    await bot.press(CANDIDATE, "rec:ok:1", language_code=language)
    await bot.send(CANDIDATE, "赵六", language_code=language)

    replies = await bot.send(CANDIDATE, "/mydata", language_code=language)
    shown = "\n".join(r.text for r in replies if r.chat_id == CANDIDATE)
    assert words["title"] in shown
    assert words["file"].format(nid=nid) in shown
    assert words["masked_id"] in shown and phone in shown
    assert ID_NUMBER not in shown
    assert words["consent"] in shown and words["sensitive"] in shown
    assert words["read_by"] in shown and words["self"] in shown
    # The official's dossier and the vetting screen's look; the refusal is no read.
    assert shown.count(words["read_by"]) == 1
    assert shown.count(words["unroled"]) == 1
    assert OFFICIAL_NAME not in shown  # the reader's role, never their name
    assert words["draft"] in shown
    # Looking is recorded too, about the person who looked.
    async with bot.database.sessionmaker() as session:
        shows = await session.scalar(
            select(AuditLog.subject_id).where(AuditLog.action == "mydata.show")
        )
    assert shows == candidate
    async with bot.database.sessionmaker() as session:
        refused = list(
            await session.execute(
                select(AuditLog.actor_telegram_id, AuditLog.subject_id).where(
                    AuditLog.action == "denied"
                )
            )
        )
    assert [tuple(row) for row in refused] == [(FAR_OFFICIAL, nid)]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
async def test_mydata_for_someone_with_no_file(harness_any: BotHarness, language: str) -> None:
    replies = await harness_any.send(STRANGER, "/mydata", language_code=language)
    words = TEXTS[language]
    (reply,) = replies
    assert words["title"] in reply.text
    assert words["none"] in reply.text and words["nobody"] in reply.text
