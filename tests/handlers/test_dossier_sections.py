"""The dossier shows each stage's part once there is something in it."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from storage.crypto import DataCipher
from storage.models import GradeState, Nomination, Pairing, PracticePost, Role, TalkLog
from storage.rekey import seal_plaintext
from tests.support.county import form_nomination, pair, saved_talk, staff, townships
from tests.support.harness import BotHarness

OFFICIAL = 9301


async def _paired_file(harness: BotHarness, talk_text: str) -> tuple[Nomination, Pairing]:
    """A file in the pool, its township's official also its township-cadre mentor, and one
    talk stored as before migration 0011 (plain topics)."""
    assert harness.app is not None
    now = datetime.now(UTC)
    async with harness.database.sessionmaker.begin() as session:
        township = (await townships(session, [("青山镇", "青山村")]))["青山镇"]
        mentor = await staff(
            session,
            OFFICIAL,
            None,
            [(Role.TOWNSHIP_OFFICIAL, township, None), (Role.MENTOR, township, "township")],
        )
        cipher = harness.app.bot_data["cipher"]
        nid = await form_nomination(session, cipher, "陈十三", township, now=now)
        nomination = await session.get_one(Nomination, nid)
        pairing = await pair(session, nid, mentor, "township")
        session.add(
            TalkLog(
                pairing_id=pairing.id,
                nomination_id=nomination.id,
                mentor_person_id=mentor,
                talk_date=datetime.now(UTC).astimezone(harness.settings.tz).date(),
                mode="face",
                topics={t: {"text": talk_text} for t in ("thought", "work", "life", "problems")},
            )
        )
    return nomination, pairing


async def test_file_shows_mentoring_grade_and_posts(harness: BotHarness) -> None:
    nomination, _ = await _paired_file(harness, "良好")
    async with harness.database.sessionmaker.begin() as session:
        session.add(GradeState(nomination_id=nomination.id, grade=3, years_in_grade=1))
        session.add(
            PracticePost(nomination_id=nomination.id, kind="grid", start_date=date(2026, 3, 1))
        )
    replies = await harness.send(OFFICIAL, f"/dossier {nomination.id}")
    text = "\n".join(r.text for r in replies)
    assert "陈十三" in text
    assert "“2+1”结对帮带" in text and "谈心谈话</b>（1 次）" in text
    assert "职级管理" in text and "3" in text
    assert "实践锻炼" in text


async def test_file_shows_talks_encrypted_at_rest_and_plain_ones_from_before(
    harness: BotHarness,
) -> None:
    """Finding 18: a talk is stored encrypted, yet the dossier reads it as before; a talk
    stored in plain before migration 0011 reads the same until it is sealed."""
    assert harness.app is not None
    cipher: DataCipher = harness.app.bot_data["cipher"]
    nomination, pairing = await _paired_file(harness, "家庭和睦")
    await saved_talk(
        harness,
        OFFICIAL,
        pairing.id,
        mode="home",
        text="母亲住院，家里缺钱",
        difficulties=["医药费负担重"],
    )
    async with harness.database.sessionmaker() as session:
        stored = list(await session.scalars(select(TalkLog).order_by(TalkLog.id)))
    assert stored[1].topics == {} and stored[1].topics_enc is not None
    assert "母亲".encode() not in stored[1].topics_enc
    for _ in range(2):  # before and after the plain talk is sealed
        text = "\n".join(r.text for r in await harness.send(OFFICIAL, f"/dossier {nomination.id}"))
        assert "谈心谈话</b>（2 次）" in text
        assert "母亲住院，家里缺钱" in text and "家庭和睦" in text and "医药费负担重" in text
        await seal_plaintext(harness.database, cipher)
