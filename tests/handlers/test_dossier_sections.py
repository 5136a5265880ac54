"""The dossier shows each stage's part once there is something in it."""

from __future__ import annotations

from datetime import UTC, date, datetime

from storage import geo, nominations, people
from storage.models import GradeState, Pairing, PracticePost, RoleGrant, TalkLog
from storage.nominations import NominationForm
from storage.rules.vetting import Channel
from tests.support.harness import BotHarness

OFFICIAL = 9301


async def test_file_shows_mentoring_grade_and_posts(harness: BotHarness) -> None:
    now = datetime.now(UTC)
    async with harness.database.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "青山村")])
        township = await geo.township_by_name(session, "青山镇")
        assert township is not None
        account = await people.ensure_account(session, OFFICIAL, "zh-hans")
        session.add(
            RoleGrant(
                person_id=account.person_id, role="township_official", township_id=township.id
            )
        )
        nomination = await nominations.create_nomination(
            session,
            harness.app.bot_data["cipher"],  # type: ignore[union-attr]
            NominationForm(full_name="陈十三", township_id=township.id, key_group="veteran"),
            channel=Channel.ORGANIZATION,
            submitted_by=None,
            person_id=None,
            now=now,
        )
        nomination.status = "in_pool"
        await session.flush()
        pairing = Pairing(
            nomination_id=nomination.id, mentor_person_id=account.person_id, slot="township"
        )
        session.add(pairing)
        await session.flush()
        session.add(
            TalkLog(
                pairing_id=pairing.id,
                nomination_id=nomination.id,
                mentor_person_id=account.person_id,
                talk_date=date.today(),
                mode="face",
                topics={t: {"text": "良好"} for t in ("thought", "work", "life", "problems")},
            )
        )
        session.add(GradeState(nomination_id=nomination.id, grade=3, years_in_grade=1))
        session.add(
            PracticePost(nomination_id=nomination.id, kind="grid", start_date=date(2026, 3, 1))
        )
        nomination_id = nomination.id
    replies = await harness.send(OFFICIAL, f"/dossier {nomination_id}")
    text = "\n".join(r.text for r in replies)
    assert "陈十三" in text
    assert "“2+1”结对帮带" in text and "谈心谈话</b>（1 次）" in text
    assert "职级管理" in text and "3" in text
    assert "实践锻炼" in text
