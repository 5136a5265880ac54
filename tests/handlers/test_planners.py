"""The tick's planners: what is due becomes outbox rows once, and is delivered once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot import jobs, planners, scheduler, summaries
from handlers.chat.context import CadreContext
from storage import geo, nominations, people
from storage.models import Nomination, OutboxMessage, Pairing, Role, RoleGrant, VettingReview
from storage.nominations import NominationForm
from storage.rules.vetting import Channel
from tests.support.harness import BotHarness

OFFICIAL, MENTOR, REVIEWER = 9101, 9102, 9103


@pytest.fixture
async def county(harness: BotHarness) -> BotHarness:
    """A township with an official, a mentor and a police reviewer, each with an account."""
    async with harness.database.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "青山村")])
        township = await geo.township_by_name(session, "青山镇")
        assert township is not None
        for telegram_id, grant in (
            (OFFICIAL, {"role": Role.TOWNSHIP_OFFICIAL.value, "township_id": township.id}),
            (MENTOR, {"role": Role.MENTOR.value, "township_id": township.id,
                      "mentor_slot": "township"}),
            (REVIEWER, {"role": Role.REVIEWER.value, "department": "police"}),
        ):  # fmt: skip
            account = await people.ensure_account(session, telegram_id, "zh-hans")
            session.add(RoleGrant(person_id=account.person_id, **grant))
    return harness


async def _nomination(bot: BotHarness, status: str, name: str = "冯十二") -> int:
    async with bot.database.sessionmaker.begin() as session:
        township = await geo.township_by_name(session, "青山镇")
        assert township is not None
        nomination = await nominations.create_nomination(
            session,
            bot.app.bot_data["cipher"],  # type: ignore[union-attr]
            NominationForm(full_name=name, township_id=township.id, key_group="veteran"),
            channel=Channel.ORGANIZATION,
            submitted_by=None,
            person_id=None,
            now=datetime.now(UTC),
        )
        nomination.status = status
        return nomination.id


async def _paired_days_ago(bot: BotHarness, days: int) -> None:
    """A cadre in the pool, paired with MENTOR in the township slot `days` days ago."""
    nomination_id = await _nomination(bot, "in_pool")
    async with bot.database.sessionmaker.begin() as session:
        mentor = await people.load_actor(session, MENTOR)
        assert mentor is not None
        session.add(
            Pairing(
                nomination_id=nomination_id,
                mentor_person_id=mentor.person_id,
                slot="township",
                assigned_at=datetime.now(UTC) - timedelta(days=days),
            )
        )


async def _run(bot: BotHarness, planner: scheduler.Planner, now: datetime) -> int:
    assert bot.app is not None
    context = CadreContext(bot.app)
    async with bot.database.sessionmaker.begin() as session:
        return await planner(session, context, now)


async def _outbox_rows(bot: BotHarness) -> int:
    async with bot.database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


async def test_overdue_talk_reminds_the_mentor_and_escalates_once(county: BotHarness) -> None:
    await _paired_days_ago(county, 45)
    now = datetime.now(UTC)
    assert await _run(county, planners.plan_talk_cadence, now) == 2
    # A second tick, or a second process, plans nothing more.
    assert await _run(county, planners.plan_talk_cadence, now + timedelta(minutes=1)) == 0
    delivered = await county.drain()
    by_chat = {s.chat_id: s.text for s in delivered}
    assert set(by_chat) == {MENTOR, OFFICIAL}
    assert "逾期" in by_chat[MENTOR] and "冯十二" in by_chat[MENTOR]
    assert "督促" in by_chat[OFFICIAL]
    assert await county.drain() == []


async def test_talk_due_soon_reminds_only_the_mentor(county: BotHarness) -> None:
    await _paired_days_ago(county, 26)
    assert await _run(county, planners.plan_talk_cadence, datetime.now(UTC)) == 1
    (reminder,) = await county.drain()
    assert reminder.chat_id == MENTOR and "提醒" in reminder.text


async def test_vetting_pending_reminds_the_department_once_per_period(county: BotHarness) -> None:
    nomination_id = await _nomination(county, "vetting")
    requested = datetime.now(UTC) - timedelta(days=4)
    async with county.database.sessionmaker.begin() as session:
        for department in ("police", "discipline", "judicial"):
            session.add(
                VettingReview(
                    nomination_id=nomination_id, department=department, requested_at=requested
                )
            )
    now = datetime.now(UTC)
    # Only police has a reviewer with an account; the others have nobody to remind.
    assert await _run(county, planners.plan_vetting_pending, now) == 1
    assert await _run(county, planners.plan_vetting_pending, now) == 0
    # Three days later (the next period of VETTING_REMIND_DAYS) it is reminded again.
    assert await _run(county, planners.plan_vetting_pending, now + timedelta(days=3)) == 1
    delivered = await county.drain()
    assert [s.chat_id for s in delivered] == [REVIEWER, REVIEWER]
    assert "/vetting" in delivered[0].text
    async with county.database.sessionmaker() as session:
        assert (await session.get(Nomination, nomination_id)) is not None
    assert await _outbox_rows(county) == 2


async def test_a_failing_planner_does_not_stop_the_tick(
    county: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    async def broken(*_args: object) -> int:
        calls.append("broken")
        raise RuntimeError("boom")

    async def fine(*_args: object) -> int:
        calls.append("fine")
        return 0

    assert county.app is not None
    monkeypatch.setitem(
        county.app.bot_data, scheduler.PLANNERS_KEY, [("broken", broken), ("fine", fine)]
    )
    await scheduler.tick(CadreContext(county.app))
    assert calls == ["broken", "fine"]


async def test_the_tick_runs_every_planner_of_the_one_list_in_order(county: BotHarness) -> None:
    """The app's tick runs bot/jobs.py's list as written, whatever was imported first."""
    assert county.app is not None
    installed = county.app.bot_data[scheduler.PLANNERS_KEY]
    assert installed == jobs.PLANNERS
    assert [name for name, _ in installed] == [
        "inbox-prune",
        "restore-notices",
        "vetting-pending",
        "talk-cadence",
        "training-tomorrow",
        "retention",
        "summaries",
    ]
    assert [function for _, function in installed] == [
        scheduler.prune_inbox,
        scheduler.plan_restore_notices,
        planners.plan_vetting_pending,
        planners.plan_talk_cadence,
        planners.plan_training_reminders,
        planners.plan_retention,
        summaries.plan_summaries,
    ]


async def test_jobs_coalesce_into_one_catch_up_after_downtime(county: BotHarness) -> None:
    """The app's JobQueue holds the two jobs, each set to run once after missed runs."""
    assert county.app is not None and county.app.job_queue is not None
    for name in ("tick", "outbox-drain"):
        (job,) = county.app.job_queue.get_jobs_by_name(name)
        assert job.job.coalesce is True
        assert job.job.max_instances == 1
        assert job.job.misfire_grace_time == 3600


@pytest.mark.parametrize(("hours", "heading"), [(20, "明日提醒"), (6, "今日提醒")])
async def test_training_reminder_goes_once_to_invitees_who_did_not_decline(
    county: BotHarness, hours: int, heading: str
) -> None:
    """Planned at 08:00 county time: a session at 04:00 next morning is "明日", one at 14:00
    the same day "今日"; a session that started an hour ago is never reminded."""
    from storage.models import Training, TrainingInvite

    yes_id = await _nomination(county, "in_pool", "褚十四")
    no_id = await _nomination(county, "in_pool", "卫十五")
    tz = county.settings.tz
    now = datetime.now(tz).replace(hour=8, minute=0, second=0, microsecond=0).astimezone(UTC)
    async with county.database.sessionmaker.begin() as session:
        for telegram_id, nomination_id in ((9201, yes_id), (9202, no_id)):
            account = await people.ensure_account(session, telegram_id, "zh-hans")
            nomination = await session.get(Nomination, nomination_id)
            assert nomination is not None
            nomination.person_id = account.person_id
        for starts in (now + timedelta(hours=hours), now - timedelta(hours=1)):
            training = Training(
                kind="integrity",
                topic="policy_law",
                title="廉政教育基地参观",
                place="县廉政教育基地",
                starts_at=starts,
                ends_at=starts + timedelta(hours=4),
                checkin_code="ABC234",
            )
            session.add(training)
            await session.flush()
            session.add(TrainingInvite(training_id=training.id, nomination_id=yes_id, rsvp="yes"))
            session.add(TrainingInvite(training_id=training.id, nomination_id=no_id, rsvp="no"))
    assert await _run(county, planners.plan_training_reminders, now) == 1
    assert await _run(county, planners.plan_training_reminders, now) == 0
    (reminder,) = await county.drain()
    assert reminder.chat_id == 9201 and heading in reminder.text
