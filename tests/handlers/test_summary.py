"""/summary, /schedule and the scheduled-summary planner through a real Application."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from telegram.ext import CommandHandler

from bot import summaries
from bot.app import CadreApp
from handlers.chat.context import CadreContext
from storage import geo, people, summary
from storage.db import Database
from storage.models import (
    Award,
    Election,
    Nomination,
    OutboxMessage,
    Publicity,
    RoleGrant,
    SummarySchedule,
)
from tests.conftest import make_settings
from tests.support.county import nomination_row
from tests.support.harness import BotHarness

TOWNSHIP_OFFICIAL, COUNTY_OFFICIAL, STRANGER = 8101, 8102, 8103
# Monday 23 November 2026 08:30 in Shanghai is 00:30 UTC.
MONDAY_0830 = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)


def _install(app: CadreApp | None) -> None:
    """bot/app.py registers /summary and /schedule ahead of the catch-alls."""
    assert app is not None
    commands = {c for h in app.handlers[0] if isinstance(h, CommandHandler) for c in h.commands}
    assert {"summary", "schedule"} <= commands


async def _setup(bot: BotHarness) -> dict[str, int]:
    async with bot.database.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "青山村"), ("木黄镇", "木黄村")])
        a = await geo.township_by_name(session, "青山镇")
        assert a is not None
        persons = {}
        for telegram_id, role, township_id in (
            (TOWNSHIP_OFFICIAL, "township_official", a.id),
            (COUNTY_OFFICIAL, "county_official", None),
            (STRANGER, None, None),
        ):
            account = await people.ensure_account(session, telegram_id, "zh-hans")
            persons[str(telegram_id)] = account.person_id
            if role:
                session.add(
                    RoleGrant(person_id=account.person_id, role=role, township_id=township_id)
                )
        for name in ("张三", "李四"):
            await nomination_row(session, a.id, name, channel="self", education="college")
        persons["a"] = a.id
    return persons


@pytest.fixture
async def county(harness: BotHarness) -> BotHarness:
    _install(harness.app)
    harness.__dict__["persons"] = await _setup(harness)
    return harness


def _persons(bot: BotHarness) -> dict[str, int]:
    """Person ids by telegram id (as text) and the township id under "a"."""
    persons: dict[str, int] = bot.__dict__["persons"]
    return persons


async def _add_cadre(bot: BotHarness, township_id: int) -> None:
    async with bot.database.sessionmaker.begin() as session:
        await nomination_row(session, township_id, "王五", channel="mass")


async def _outbox(database: Database) -> list[OutboxMessage]:
    async with database.sessionmaker() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def _plan(bot: BotHarness, now: datetime) -> int:
    assert bot.app is not None
    async with bot.database.sessionmaker.begin() as session:
        return await summaries.plan_summaries(session, CadreContext(bot.app), now)


# -- /summary ---------------------------------------------------------------------------------


async def test_township_official_gets_text_then_chart(county: BotHarness) -> None:
    replies = await county.send(TOWNSHIP_OFFICIAL, "/summary")
    text, photo = replies[0], replies[-1]
    assert "青山镇村级后备干部工作简报" in text.text
    assert "后备干部资源库 <b>2</b> 名，其中大专及以上学历占 100.0%" in text.text
    assert text.text.count("本周") == 1
    assert photo.kind == "photo" and "青山镇" in photo.text
    calls = [c for c in county.fake.calls if c.method == "sendPhoto"]
    assert len(calls) == 1


async def test_county_official_gets_the_county_for_this_month(county: BotHarness) -> None:
    replies = await county.send(COUNTY_OFFICIAL, "/summary", language_code="en")
    assert "示例县: village reserve cadres" in replies[0].text
    assert "This month" in replies[0].text
    assert replies[-1].kind == "photo"


async def test_summary_is_forbidden_to_others(county: BotHarness) -> None:
    (answer,) = await county.send(STRANGER, "/summary")
    assert "没有权限" in answer.text
    (answer,) = await county.send(424242, "/summary")
    assert "没有权限" in answer.text
    assert not [c for c in county.fake.calls if c.method == "sendPhoto"]


def _after_this_periods_moment(bot: BotHarness) -> datetime:
    """Now, unless the default moments (Monday and the 1st, 08:30 county time) of this week
    or month are still ahead: then nine hours ago, in the period before, whose moment has
    passed. (Run between Monday 00:00 and 08:30 in the county, `now` planned nothing.)"""
    now = datetime.now(UTC)
    local = now.astimezone(bot.settings.tz)
    early = (local.hour, local.minute) < (8, 30)
    if early and (local.weekday() == 0 or local.day == 1):
        return now - timedelta(hours=9)
    return now


async def test_summary_shows_the_change_since_the_scheduled_one(county: BotHarness) -> None:
    assert await _plan(county, _after_this_periods_moment(county)) == 2
    await _add_cadre(county, _persons(county)["a"])
    replies = await county.send(TOWNSHIP_OFFICIAL, "/summary")
    assert "<b>3</b> 名（▲1）" in replies[0].text


async def test_summary_counts_outcomes_dated_today(county: BotHarness) -> None:
    """An award, a media report and an election recorded today are in "this week so far"."""
    today = datetime.now(UTC).astimezone(county.settings.tz).date()
    async with county.database.sessionmaker.begin() as session:
        first, second = await session.scalars(select(Nomination.id).order_by(Nomination.id))
        session.add(Award(nomination_id=first, kind="award", title="先进个人", awarded_on=today))
        session.add(
            Publicity(nomination_id=second, outlet="铜仁日报", title="报道", published_on=today)
        )
        session.add(Election(nomination_id=first, position="村委委员", elected_on=today))
    replies = await county.send(TOWNSHIP_OFFICIAL, "/summary")
    assert "本期表彰后备干部 1 人次，先进事迹获媒体宣传报道 1 篇。" in replies[0].text
    assert "本期 1 名后备干部通过选举进入村“两委”，累计 1 名" in replies[0].text


# -- /schedule --------------------------------------------------------------------------------


async def _stored(bot: BotHarness, person_id: int) -> SummarySchedule | None:
    async with bot.database.sessionmaker() as session:
        return await session.get(SummarySchedule, person_id)


async def test_schedule_changed_with_buttons_is_persisted(county: BotHarness) -> None:
    person_id = _persons(county)[str(TOWNSHIP_OFFICIAL)]
    (shown,) = await county.send(TOWNSHIP_OFFICIAL, "/schedule")
    assert "每周周一 08:30" in shown.text and "默认" in shown.text
    assert await _stored(county, person_id) is None
    (days,) = await county.press(TOWNSHIP_OFFICIAL, shown.button("每周"))
    assert days.labels[:7] == ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
    (times,) = await county.press(TOWNSHIP_OFFICIAL, days.button("周五"))
    assert "每周周五几点" in times.text
    assert times.labels[:4] == ["07:00", "08:30", "12:00", "18:00"]
    (saved,) = await county.press(TOWNSHIP_OFFICIAL, times.button("18:00"))
    assert "已保存" in saved.text and "每周周五 18:00" in saved.text
    stored = await _stored(county, person_id)
    assert stored is not None
    assert (stored.cadence, stored.day, stored.at_minute) == ("weekly", 4, 18 * 60)

    (monthly,) = await county.press(TOWNSHIP_OFFICIAL, saved.button("每月"))
    assert monthly.labels[0] == "1" and "28" in monthly.labels
    (when,) = await county.press(TOWNSHIP_OFFICIAL, monthly.button("15"))
    await county.press(TOWNSHIP_OFFICIAL, when.button("07:00"))
    stored = await _stored(county, person_id)
    assert stored is not None and (stored.cadence, stored.day, stored.at_minute) == (
        "monthly",
        15,
        7 * 60,
    )
    (off,) = await county.press(TOWNSHIP_OFFICIAL, "sch:off")
    assert "已关闭" in off.text
    stored = await _stored(county, person_id)
    assert stored is not None and stored.cadence == "off"
    # Switched off: the planner sends nothing to this person.
    await _plan(county, MONDAY_0830)
    assert {m.chat_id for m in await _outbox(county.database)} == {COUNTY_OFFICIAL}


async def test_schedule_refuses_strangers_and_forged_buttons(county: BotHarness) -> None:
    (answer,) = await county.press(STRANGER, "sch:w:4:1080")
    assert "没有权限" in answer.text
    assert await _stored(county, _persons(county)[str(STRANGER)]) is None
    for forged in ("sch:m:29:510", "sch:w:0:61", "sch:w:9:420"):
        (menu,) = await county.press(TOWNSHIP_OFFICIAL, forged)
        assert "定时简报" in menu.text and "已保存" not in menu.text
    assert await _stored(county, _persons(county)[str(TOWNSHIP_OFFICIAL)]) is None


# -- the planner ------------------------------------------------------------------------------


async def test_scheduled_summaries_are_planned_once_across_ticks_and_restarts(
    county: BotHarness,
) -> None:
    assert await _plan(county, MONDAY_0830 - timedelta(minutes=1)) == 1  # county: monthly
    assert await _plan(county, MONDAY_0830) == 1  # township: Monday 08:30
    assert await _plan(county, MONDAY_0830 + timedelta(minutes=1)) == 0
    await county.restart()
    _install(county.app)
    assert await _plan(county, MONDAY_0830 + timedelta(minutes=2)) == 0
    rows = await _outbox(county.database)
    township_person = _persons(county)[str(TOWNSHIP_OFFICIAL)]
    assert sorted(r.key for r in rows) == sorted(
        [
            f"summary:{_persons(county)[str(COUNTY_OFFICIAL)]}:2026-11",
            f"summary:{township_person}:2026-W48",
        ]
    )
    sent = await county.drain()
    delivered = {s.chat_id: s.text for s in sent if s.kind == "text"}
    # Each summary is its text, then its chart, drawn by the dispatcher from the row.
    assert [(s.chat_id, s.kind) for s in sent if s.chat_id == TOWNSHIP_OFFICIAL] == [
        (TOWNSHIP_OFFICIAL, "text"),
        (TOWNSHIP_OFFICIAL, "photo"),
    ]
    charts = {s.chat_id: s.text for s in sent if s.kind == "photo"}
    assert charts.keys() == {TOWNSHIP_OFFICIAL, COUNTY_OFFICIAL}
    assert "11月16日—11月22日" in charts[TOWNSHIP_OFFICIAL]
    photo = next(c for c in county.fake.calls if c.method == "sendPhoto")
    assert next(iter(photo.files.values())).startswith(b"\x89PNG")
    assert "上周：2026年11月16日—2026年11月22日" in delivered[TOWNSHIP_OFFICIAL]
    assert "上月：2026年10月1日—2026年10月31日" in delivered[COUNTY_OFFICIAL]
    assert "/summary" in delivered[TOWNSHIP_OFFICIAL]
    stored = await _stored(county, township_person)
    assert stored is not None and stored.last_period == "2026-W48"
    assert stored.last_figures is not None
    scope = f"township:{_persons(county)['a']}"
    assert list(stored.last_figures["scopes"]) == [scope]
    assert stored.last_figures["scopes"][scope]["pool"] == 2


async def test_week_starts_at_shanghai_midnight_not_utc(county: BotHarness) -> None:
    person = _persons(county)[str(TOWNSHIP_OFFICIAL)]
    async with county.database.sessionmaker.begin() as session:
        await summary.save_schedule(session, person, summary.Schedule("weekly", 0, 7 * 60))
        await summary.claim_period(session, person, "2026-W47", summary.Schedule("weekly", 0))
        await summary.save_schedule(
            session,
            _persons(county)[str(COUNTY_OFFICIAL)],
            summary.Schedule("off", 0),
        )
    # Sunday 22 November 22:59 UTC is Monday 06:59 in Shanghai: not yet.
    assert await _plan(county, datetime(2026, 11, 22, 22, 59, tzinfo=UTC)) == 0
    # 23:00 UTC, still Sunday (ISO week 47) in UTC, is Monday 07:00 of week 48 in Shanghai.
    assert await _plan(county, datetime(2026, 11, 22, 23, 0, tzinfo=UTC)) == 1
    (row,) = await _outbox(county.database)
    assert row.key == f"summary:{person}:2026-W48"


async def test_two_processes_plan_one_summary(harness_any: BotHarness) -> None:
    """Two app instances (two processes' worth of engines and sessions) in the same window."""
    bot = harness_any
    await _setup(bot)
    other = BotHarness(make_settings(bot.database), bot.database)
    await other.start()
    try:
        counts = await asyncio.gather(_plan(bot, MONDAY_0830), _plan(other, MONDAY_0830))
        assert sum(counts) == 2  # one for each official, whoever planned it
        assert await _plan(other, MONDAY_0830 + timedelta(seconds=30)) == 0
        assert await _plan(bot, MONDAY_0830 + timedelta(seconds=30)) == 0
    finally:
        await other.stop()
    rows = await _outbox(bot.database)
    assert len(rows) == 2
    async with bot.database.sessionmaker() as session:
        schedules = await session.scalar(select(func.count()).select_from(SummarySchedule))
    assert schedules == 2


async def test_a_failing_summary_does_not_stop_the_others(
    county: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = summaries.summary_of
    calls = {"n": 0}

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return await real(*args, **kwargs)

    monkeypatch.setattr(summaries, "summary_of", flaky)
    assert await _plan(county, MONDAY_0830) == 1
    # The failed one was rolled back to its savepoint: the next tick plans it.
    assert await _plan(county, MONDAY_0830 + timedelta(minutes=1)) == 1
    assert len(await _outbox(county.database)) == 2
