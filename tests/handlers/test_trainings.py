"""/training, /trainings, RSVP buttons and check-in codes through a real Application.

Times are real: sessions are created relative to now (and moved into the past with a direct
UPDATE where a test needs a session that is over), so the handlers' own clock decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, insert, select, update
from telegram import Update
from telegram.ext import MessageHandler, filters

from handlers.chat.context import CadreContext
from handlers.chat.passing import PassingText as CheckinCodeHandler
from storage import people, trainings
from storage.crypto import DataCipher
from storage.models import (
    ConversationState,
    Nomination,
    Person,
    Role,
    RoleGrant,
    TelegramAccount,
    Training,
    TrainingInvite,
    UserData,
)
from storage.trainings import TrainingDraft
from templates import build_environment, render
from tests.support.county import loaded_actor, townships
from tests.support.fake_telegram import Sent
from tests.support.harness import BotHarness

SHANGHAI = ZoneInfo("Asia/Shanghai")
COUNTY = 7001
QINGSHAN = 7002
MUHUANG = 7003
STRANGER = 7009
FORBIDDEN = render(build_environment(), "zh_CN", "common/forbidden")
STALE = render(build_environment(), "zh_CN", "common/stale_button")
NOT_UNDERSTOOD = render(build_environment(), "zh_CN", "common/not_understood")


@dataclass
class County:
    bot: BotHarness
    towns: dict[str, int] = field(default_factory=dict)
    cadres: dict[str, int] = field(default_factory=dict)  # name → nomination id
    telegram: dict[str, int] = field(default_factory=dict)  # name → telegram id

    async def actor(self, telegram_id: int) -> people.Actor:
        return await loaded_actor(self.bot.database, telegram_id)

    async def create(self, telegram_id: int, **overrides: Any) -> Training:
        """A session stored by the real storage function, as the given official."""
        values: dict[str, Any] = {
            "kind": "order",
            "topic": "industry",
            "title": "茶叶种植培训",
            "place": "青山镇会议室",
            "starts_at": datetime.now(UTC) + timedelta(minutes=20),
            "duration": "2h",
            "audience": "county",
        }
        values.update(overrides)
        actor = await self.actor(telegram_id)
        async with self.bot.database.sessionmaker.begin() as session:
            created = await trainings.create_training(
                session, actor, TrainingDraft(**values), now=datetime.now(UTC)
            )
        return created.training

    async def invite(self, training_id: int, name: str) -> int:
        async with self.bot.database.sessionmaker() as session:
            invite_id = await session.scalar(
                select(TrainingInvite.id).where(
                    TrainingInvite.training_id == training_id,
                    TrainingInvite.nomination_id == self.cadres[name],
                )
            )
        assert invite_id is not None
        return invite_id

    async def move(self, training_id: int, by: timedelta) -> None:
        """Shift a session in time (tests only: the storage refuses a start in the past)."""
        async with self.bot.database.sessionmaker.begin() as session:
            training = await session.get_one(Training, training_id)
            await session.execute(
                update(Training)
                .where(Training.id == training_id)
                .values(starts_at=training.starts_at + by, ends_at=training.ends_at + by)
            )


@pytest.fixture
async def county(harness: BotHarness) -> County:
    c = County(harness)
    async with harness.database.sessionmaker.begin() as session:
        c.towns = await townships(session, [("青山镇", "一村"), ("木黄镇", "二村")])
        for telegram_id, role, town in [
            (COUNTY, Role.COUNTY_OFFICIAL, None),
            (QINGSHAN, Role.TOWNSHIP_OFFICIAL, "青山镇"),
            (MUHUANG, Role.TOWNSHIP_OFFICIAL, "木黄镇"),
        ]:
            account = await people.ensure_account(session, telegram_id, "zh-hans")
            session.add(
                RoleGrant(
                    person_id=account.person_id,
                    role=role.value,
                    township_id=c.towns[town] if town else None,
                )
            )
        for name, town, status, telegram_id in [
            ("张一", "青山镇", "in_pool", 9001),
            ("张二", "青山镇", "in_pool", 9002),
            ("李四", "木黄镇", "in_pool", 9004),
            ("王新", "青山镇", "new", 9006),
        ]:
            person = Person(full_name=name)
            session.add(person)
            await session.flush()
            session.add(TelegramAccount(telegram_id=telegram_id, person_id=person.id))
            nomination = Nomination(
                person_id=person.id,
                channel="self",
                status=status,
                township_id=c.towns[town],
                key_group="veteran",
            )
            session.add(nomination)
            await session.flush()
            c.cadres[name] = nomination.id
            c.telegram[name] = telegram_id
    return c


def last(replies: list[Sent]) -> Sent:
    assert replies, "the bot sent nothing"
    return replies[-1]


async def count(bot: BotHarness, model: type) -> int:
    async with bot.database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def future_text(days: int = 1, hour: int = 9) -> str:
    when = datetime.now(SHANGHAI) + timedelta(days=days)
    return when.replace(hour=hour, minute=30).strftime("%Y-%m-%d %H:%M")


async def fill_until_review(bot: BotHarness, user: int = QINGSHAN) -> Sent:
    (question,) = await bot.send(user, "/training")
    question = last(await bot.press(user, question.button("订单式培训")))
    question = last(await bot.press(user, question.button("基层党建")))
    question = last(await bot.send(user, "党史学习"))
    question = last(await bot.send(user, future_text()))
    question = last(await bot.press(user, question.button("2 小时")))
    question = last(await bot.send(user, "镇党委会议室"))
    return last(await bot.press(user, question.button("青山镇")))


# --- creating a session ---------------------------------------------------------------------


async def test_full_creation_with_wrong_answers_everywhere(county: County) -> None:
    bot = county.bot
    (question,) = await bot.send(QINGSHAN, "/training")
    assert "培训类型" in question.text
    assert question.labels == ["订单式培训", "外出考察", "擂台比武", "廉政教育"]
    # Kind: typed text, a sticker and a forged button are each answered, then asked again.
    hint, again = await bot.send(QINGSHAN, "订单式培训")
    assert "按钮" in hint.text and "培训类型" in again.text
    hint, again = await bot.send_sticker(QINGSHAN)
    # Before the flow engine a sticker here was answered "a text reply is needed", at a
    # question answered by buttons: it now says to use the buttons (issue 15).
    assert "按钮" in hint.text and "培训类型" in again.text
    stale, again = await bot.press(QINGSHAN, "tc:k:party")
    assert stale.text == STALE and "培训类型" in again.text
    question = last(await bot.press(QINGSHAN, again.button("擂台比武")))
    assert "主题" in question.text
    assert question.labels == ["基层党建", "产业发展", "政策法规", "其他"]
    hint, again = await bot.send(QINGSHAN, "产业")
    assert "按钮" in hint.text and "主题" in again.text
    question = last(await bot.press(QINGSHAN, again.button("产业发展")))
    # Title: 1 character, a sticker.
    assert "名称" in question.text
    error, again = await bot.send(QINGSHAN, "擂")
    assert "2–100" in error.text and "名称" in again.text
    hint, again = await bot.send_sticker(QINGSHAN)
    assert "名称" in again.text
    question = last(await bot.send(QINGSHAN, "  茶叶种植\n擂台赛  "))
    # Date and time: garbage, more than a year ago, impossible, then right.
    assert "开始时间" in question.text
    error, again = await bot.send(QINGSHAN, "下周一上午")
    assert "格式" in error.text and "开始时间" in again.text
    error, again = await bot.send(QINGSHAN, "2020-01-01 09:00")
    assert "一年以前" in error.text
    error, again = await bot.send(QINGSHAN, "2-30 09:00")
    assert "没有这个日期" in error.text
    hint, again = await bot.send_sticker(QINGSHAN)
    assert "开始时间" in again.text
    starts = future_text(days=2, hour=14)
    question = last(await bot.send(QINGSHAN, starts))
    # Duration.
    assert question.labels == ["2 小时", "4 小时", "1 天", "2 天", "3 天", "5 天", "7 天"]
    hint, again = await bot.send(QINGSHAN, "4")
    assert "按钮" in hint.text
    question = last(await bot.press(QINGSHAN, again.button("4 小时")))
    # Place.
    error, again = await bot.send(QINGSHAN, "镇")
    assert "2–100" in error.text and "地点" in again.text
    question = last(await bot.send(QINGSHAN, "青山镇文化广场"))
    # Audience: a township official sees their township and "chosen people", no county.
    assert question.labels == ["青山镇", "指定人员"]
    forbidden, again = await bot.press(QINGSHAN, "tc:a:c")
    assert forbidden.text == FORBIDDEN and again.labels == ["青山镇", "指定人员"]
    forbidden, again = await bot.press(QINGSHAN, f"tc:a:t:{county.towns['木黄镇']}")
    assert forbidden.text == FORBIDDEN
    hint, again = await bot.send_sticker(QINGSHAN)
    assert again.labels == ["青山镇", "指定人员"]
    page = last(await bot.press(QINGSHAN, again.button("指定人员")))
    # Chosen people: only 青山镇's pool (王新 is not in the pool, 李四 is another township's).
    assert "第 1/1 页" in page.text and "共 2 人" in page.text
    assert page.labels == ["⬜ 张一 · 青山镇", "⬜ 张二 · 青山镇", "✅ 选好了"]
    none, again = await bot.press(QINGSHAN, page.button("选好了"))
    assert "至少选择 1 人" in none.text
    page = last(await bot.press(QINGSHAN, again.button("张一")))
    assert page.edited and "已选 1 人" in page.text and "✅ 张一 · 青山镇" in page.labels
    forbidden, again = await bot.press(QINGSHAN, f"tc:p:{county.cadres['李四']}")
    assert forbidden.text == FORBIDDEN and "已选 1 人" in again.text
    forbidden, again = await bot.press(QINGSHAN, f"tc:p:{county.cadres['王新']}")
    assert forbidden.text == FORBIDDEN
    page = last(await bot.press(QINGSHAN, again.button("张二")))
    page = last(await bot.press(QINGSHAN, page.button("张二")))
    assert "已选 1 人" in page.text
    review = last(await bot.press(QINGSHAN, page.button("选好了")))
    # Review: everything shown, nothing stored yet; edit the title and come back.
    assert "请核对" in review.text
    for shown in ["擂台比武", "产业发展", "茶叶种植 擂台赛", "4 小时", "青山镇文化广场", "张一"]:
        assert shown in review.text
    assert "张二" not in review.text
    hint, again = await bot.send_sticker(QINGSHAN)
    assert "请核对" in again.text
    question = last(await bot.press(QINGSHAN, again.button("改名称")))
    assert "当前：茶叶种植 擂台赛" in question.text
    review = last(await bot.send(QINGSHAN, "茶叶种植技能擂台赛"))
    assert "请核对" in review.text and "茶叶种植技能擂台赛" in review.text
    assert await count(bot, Training) == 0
    bot.fake.clear()
    saved = last(await bot.press(QINGSHAN, review.button("保存并发出邀请")))
    assert "培训已保存" in saved.text and "已邀请 1 人" in saved.text
    assert "1 份邀请正在发送" in saved.text  # queued in the outbox with the session
    (invitation,) = await bot.drain()
    assert "培训邀请" in invitation.text and len(invitation.labels) == 2
    async with bot.database.sessionmaker() as session:
        training = await session.scalar(select(Training))
        assert training is not None
        invites = list(await session.scalars(select(TrainingInvite)))
    assert training.checkin_code in saved.text
    assert (training.kind, training.topic, training.title) == (
        "competition",
        "industry",
        "茶叶种植技能擂台赛",
    )
    assert training.place == "青山镇文化广场"
    assert training.starts_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") == starts
    assert training.ends_at - training.starts_at == timedelta(hours=4)
    assert training.township_id == county.towns["青山镇"]
    assert [i.nomination_id for i in invites] == [county.cadres["张一"]]
    # The invitee got the invitation with RSVP buttons carrying only the invite id.
    (invitation,) = [s for s in bot.fake.sent if s.chat_id == 9001]
    assert "培训邀请" in invitation.text and "茶叶种植技能擂台赛" in invitation.text
    assert invitation.buttons == [
        [("✅ 参加", f"tr:r:{invites[0].id}:y"), ("❌ 不参加", f"tr:r:{invites[0].id}:n")]
    ]
    # The draft is gone: /training starts afresh.
    (question,) = await bot.send(QINGSHAN, "/training")
    assert "培训类型" in question.text


async def test_last_months_study_tour_is_recorded_and_its_roster_marked(county: County) -> None:
    """A session in the past: the review and the saved screen say it is recorded, nobody is
    invited or reminded, and the saved screen opens the check-in list to mark who came."""
    bot = county.bot
    (question,) = await bot.send(QINGSHAN, "/training")
    question = last(await bot.press(QINGSHAN, question.button("外出考察")))
    question = last(await bot.press(QINGSHAN, question.button("产业发展")))
    question = last(await bot.send(QINGSHAN, "赴浙江安吉学习考察"))
    held = datetime.now(SHANGHAI) - timedelta(days=30)
    starts = held.replace(hour=8, minute=0).strftime("%Y-%m-%d %H:%M")
    question = last(await bot.send(QINGSHAN, starts))
    question = last(await bot.press(QINGSHAN, question.button("3 天")))
    question = last(await bot.send(QINGSHAN, "浙江省安吉县余村"))
    review = last(await bot.press(QINGSHAN, question.button("青山镇")))
    assert "3 天" in review.text and "保存即为补录，不发邀请" in review.text
    bot.fake.clear()
    saved = last(await bot.press(QINGSHAN, review.button("保存并发出邀请")))
    assert "培训已补录" in saved.text and "参训对象 2 人" in saved.text
    assert "签到码" not in saved.text  # its window closed long ago
    assert saved.labels == ["📋 签到名单"]
    assert await bot.drain() == []  # no invitation, no reminder
    async with bot.database.sessionmaker() as session:
        training = await session.scalar(select(Training))
    assert training is not None
    assert training.ends_at - training.starts_at == timedelta(days=2, hours=8)
    # The head shows the last day's date: the session runs over three days.
    last_day = held + timedelta(days=2)
    assert f"{last_day.month}月{last_day.day}日 16:00\n地点：浙江省安吉县余村" in saved.text
    page = last(await bot.press(QINGSHAN, saved.button("签到名单")))
    assert "已签到 0/2 人" in page.text
    page = last(await bot.press(QINGSHAN, page.button("张一")))
    assert "已签到 1/2 人" in page.text and "✅ 张一 · 青山镇" in page.labels


async def test_county_official_chooses_the_county_or_any_township(county: County) -> None:
    bot = county.bot
    (question,) = await bot.send(COUNTY, "/training")
    question = last(await bot.press(COUNTY, question.button("廉政教育")))
    question = last(await bot.press(COUNTY, question.button("政策法规")))
    question = last(await bot.send(COUNTY, "廉政教育基地参观"))
    question = last(await bot.send(COUNTY, future_text(days=3)))
    question = last(await bot.press(COUNTY, question.button("1 天")))
    question = last(await bot.send(COUNTY, "县廉政教育基地"))
    assert question.labels == ["全县", "青山镇", "木黄镇", "指定人员"]
    review = last(await bot.press(COUNTY, question.button("木黄镇")))
    assert "木黄镇后备干部" in review.text
    question = last(await bot.press(COUNTY, review.button("改参训对象")))
    review = last(await bot.press(COUNTY, question.button("全县")))
    assert "全县后备干部" in review.text
    bot.fake.clear()
    saved = last(await bot.press(COUNTY, review.button("保存并发出邀请")))
    assert "已邀请 3 人" in saved.text and "3 份邀请正在发送" in saved.text
    await bot.drain()
    assert sorted({s.chat_id for s in bot.fake.sent if "培训邀请" in s.text}) == [9001, 9002, 9004]


async def test_only_officials_may_create(county: County) -> None:
    for user in (9001, STRANGER):
        (refused,) = await county.bot.send(user, "/training")
        assert refused.text == FORBIDDEN
    # Not in a conversation: a text goes to the catch-all.
    (answer,) = await county.bot.send(STRANGER, "党史学习")
    assert answer.text == NOT_UNDERSTOOD


async def test_invitation_survives_a_blocked_invitee(county: County) -> None:
    bot = county.bot
    review = await fill_until_review(bot)
    # 张一 (9001) blocked the bot; 张二 (9002) did not.
    bot.fake.blocked.add(9001)
    bot.fake.clear()
    saved = last(await bot.press(QINGSHAN, review.button("保存并发出邀请")))
    assert "培训已保存" in saved.text and "已邀请 2 人" in saved.text
    await bot.drain()
    assert [s.chat_id for s in bot.fake.sent if "培训邀请" in s.text] == [9002]
    assert await count(bot, TrainingInvite) == 2
    async with bot.database.sessionmaker() as session:
        blocked = await session.get(TelegramAccount, 9001)
    assert blocked is not None and blocked.unreachable_at is not None


async def test_cancel_mid_creation_stores_nothing(county: County) -> None:
    bot = county.bot
    await bot.send(QINGSHAN, "/training")
    (cancelled,) = await bot.send(QINGSHAN, "/cancel")
    assert "已退出" in cancelled.text
    review = await fill_until_review(bot)
    assert "请核对" in review.text
    # Another command mid-flow is answered, the question repeated.
    busy, again = await bot.send(QINGSHAN, "/trainings")
    assert "正在新建培训" in busy.text and "请核对" in again.text
    (cancelled,) = await bot.send(QINGSHAN, "/cancel")
    assert "已退出" in cancelled.text
    assert await count(bot, Training) == 0 and await count(bot, TrainingInvite) == 0
    # The review's buttons are dead now.
    (stale,) = await bot.press(QINGSHAN, review.button("保存并发出邀请"))
    assert stale.text == STALE
    assert await count(bot, Training) == 0
    (question,) = await bot.send(QINGSHAN, "/training")
    assert "培训类型" in question.text
    await bot.send(QINGSHAN, "/cancel")
    assert bot.app is not None
    await bot.app.update_persistence()
    assert "training" not in bot.app.user_data.get(QINGSHAN, {})
    await bot.restart()
    assert bot.app is not None and "training" not in bot.app.user_data.get(QINGSHAN, {})


async def test_restart_mid_creation_resumes(county: County) -> None:
    bot = county.bot
    (question,) = await bot.send(QINGSHAN, "/training")
    question = last(await bot.press(QINGSHAN, question.button("外出考察")))
    question = last(await bot.press(QINGSHAN, question.button("其他")))
    await bot.restart()
    question = last(await bot.send(QINGSHAN, "赴外县学习"))
    assert "开始时间" in question.text
    question = last(await bot.send(QINGSHAN, future_text(days=5)))
    question = last(await bot.press(QINGSHAN, question.button("2 小时")))
    question = last(await bot.send(QINGSHAN, "县城集合"))
    page = last(await bot.press(QINGSHAN, question.button("指定人员")))
    page = last(await bot.press(QINGSHAN, page.button("张二")))
    await bot.restart()
    # The new process knows the page and the pick.
    page = last(await bot.press(QINGSHAN, "tc:pp:0"))
    assert "✅ 张二 · 青山镇" in page.labels
    review = last(await bot.press(QINGSHAN, page.button("选好了")))
    await bot.restart()
    for shown in ["外出考察", "其他", "赴外县学习", "县城集合", "张二"]:
        assert shown in review.text
    saved = last(await bot.press(QINGSHAN, review.button("保存并发出邀请")))
    assert "培训已保存" in saved.text and "已邀请 1 人" in saved.text


async def test_chosen_person_leaving_the_pool_before_saving(county: County) -> None:
    bot = county.bot
    review = await fill_until_review(bot)
    question = last(await bot.press(QINGSHAN, review.button("改参训对象")))
    page = last(await bot.press(QINGSHAN, question.button("指定人员")))
    page = last(await bot.press(QINGSHAN, page.button("张一")))
    page = last(await bot.press(QINGSHAN, page.button("张二")))
    review = last(await bot.press(QINGSHAN, page.button("选好了")))
    assert "指定人员 2 人" in review.text
    async with bot.database.sessionmaker.begin() as session:
        await session.execute(
            update(Nomination)
            .where(Nomination.id == county.cadres["张二"])
            .values(status="adjusted")
        )
    notice, page = await bot.press(QINGSHAN, review.button("保存并发出邀请"))
    assert "已不在资源库" in notice.text
    assert "已选 1 人" in page.text and page.labels[:1] == ["✅ 张一 · 青山镇"]
    assert await count(bot, Training) == 0
    review = last(await bot.press(QINGSHAN, page.button("选好了")))
    saved = last(await bot.press(QINGSHAN, review.button("保存并发出邀请")))
    assert "已邀请 1 人" in saved.text


# --- RSVP -----------------------------------------------------------------------------------


async def test_rsvp_by_the_invitee_only(county: County) -> None:
    bot = county.bot
    training = await county.create(COUNTY, starts_at=datetime.now(UTC) + timedelta(days=1))
    invite_id = await county.invite(training.id, "张一")
    answer = last(await bot.press(9001, f"tr:r:{invite_id}:y"))
    assert answer.edited and "您已回复：参加" in answer.text
    assert answer.labels == ["✅ 参加", "❌ 不参加"]
    answer = last(await bot.press(9001, f"tr:r:{invite_id}:n"))
    assert "您已回复：不参加" in answer.text
    for forger in (9002, 9004, QINGSHAN, COUNTY, STRANGER):
        (refused,) = await bot.press(forger, f"tr:r:{invite_id}:y")
        assert refused.text == FORBIDDEN and not refused.edited
        (refused,) = await bot.press(forger, f"tr:i:{invite_id}")
        assert refused.text == FORBIDDEN
    (stale,) = await bot.press(9001, f"tr:r:{invite_id}:maybe")
    assert stale.text == STALE
    async with bot.database.sessionmaker() as session:
        invite = await session.get_one(TrainingInvite, invite_id)
    assert invite.rsvp == "no"
    # The invitee's /trainings lists their invitations and reopens one.
    mine = last(await bot.send(9001, "/trainings"))
    assert "我的培训" in mine.text and "茶叶种植培训" in mine.text and "不参加" in mine.text
    shown = last(await bot.press(9001, mine.button("茶叶种植培训")))
    assert "您已回复：不参加" in shown.text and shown.labels == ["✅ 参加", "❌ 不参加"]
    # Once the session has started the answer is fixed.
    await county.move(training.id, -timedelta(days=1, minutes=1))
    (closed,) = await bot.press(9001, f"tr:r:{invite_id}:y")
    assert "已经开始" in closed.text
    async with bot.database.sessionmaker() as session:
        invite = await session.get_one(TrainingInvite, invite_id)
    assert invite.rsvp == "no"


# --- check-in by code -----------------------------------------------------------------------


async def test_check_in_by_code_inside_the_window_only(county: County) -> None:
    bot = county.bot
    soon = await county.create(COUNTY, title="即将开始")  # in 20 minutes: check-in is open
    later = await county.create(
        COUNTY, title="两小时后", starts_at=datetime.now(UTC) + timedelta(hours=2)
    )
    over = await county.create(
        COUNTY, title="已结束", starts_at=datetime.now(UTC) + timedelta(hours=1)
    )
    await county.move(over.id, -timedelta(hours=4))

    (done,) = await bot.send(9001, soon.checkin_code.lower())
    assert "签到成功" in done.text and "即将开始" in done.text
    (again,) = await bot.send(9001, soon.checkin_code)
    assert "已签到过" in again.text
    (early,) = await bot.send(9002, later.checkin_code)
    assert "尚未开始" in early.text and "两小时后" in early.text
    (late,) = await bot.send(9002, over.checkin_code)
    assert "已于" in late.text and "结束" in late.text
    async with bot.database.sessionmaker() as session:
        attended = list(
            await session.scalars(
                select(TrainingInvite.nomination_id).where(TrainingInvite.attended_at.is_not(None))
            )
        )
    assert attended == [county.cadres["张一"]]
    # Not invited (王新 is not in the pool), or no account: the text is not a code for them.
    for user in (9006, STRANGER):
        (answer,) = await bot.send(user, soon.checkin_code)
        assert answer.text == NOT_UNDERSTOOD


async def test_code_shaped_text_passes_on_to_later_handlers(county: County) -> None:
    """A text that is no code of the sender's sessions reaches the next handler of group 0."""
    bot = county.bot
    assert bot.app is not None
    seen: list[str] = []

    async def record(update: Update, context: CadreContext) -> None:
        assert update.effective_message is not None
        seen.append(update.effective_message.text or "")

    group = bot.app.handlers[0]
    index = next(i for i, h in enumerate(group) if isinstance(h, CheckinCodeHandler))
    group.insert(index + 1, MessageHandler(filters.TEXT, record))
    # Code-shaped (the alphabet, six characters), so the check-in handler looks first.
    assert group[index].check_update(_text_update(bot, 9001, "ABC234"))
    soon = await county.create(COUNTY)
    assert await bot.send(9001, "ABC234") == []
    assert await bot.send(9001, "thanks") == []
    assert seen == ["ABC234", "thanks"]
    (done,) = await bot.send(9001, soon.checkin_code)
    assert "签到成功" in done.text and seen == ["ABC234", "thanks"]
    # Inside a conversation the conversation keeps its answers, code-shaped or not.
    (question,) = await bot.send(COUNTY, "/training")
    question = last(await bot.press(COUNTY, question.button("订单式培训")))
    question = last(await bot.press(COUNTY, question.button("其他")))
    question = last(await bot.send(COUNTY, soon.checkin_code))
    assert "开始时间" in question.text
    assert seen == ["ABC234", "thanks"]


def _text_update(bot: BotHarness, user: int, text: str) -> Update:
    assert bot.app is not None
    sender = {"id": user, "is_bot": False, "first_name": "U"}
    message = {"message_id": 1, "date": 0, "chat": {"id": user, "type": "private"}}
    payload = {"update_id": 1, "message": {**message, "from": sender, "text": text}}
    return Update.de_json(payload, bot.app.bot)


# --- the organizer: check-in list, scores, ranking ------------------------------------------


async def test_organizer_toggles_the_check_in_list(county: County) -> None:
    bot = county.bot
    training = await county.create(
        QINGSHAN, audience="township", township_id=county.towns["青山镇"]
    )
    future = await county.create(
        QINGSHAN,
        title="下周培训",
        audience="township",
        township_id=county.towns["青山镇"],
        starts_at=datetime.now(UTC) + timedelta(days=7),
    )
    listing = last(await bot.send(QINGSHAN, "/trainings"))
    assert "共 2 场" in listing.text and "茶叶种植培训" in listing.text
    view = last(await bot.press(QINGSHAN, listing.button("茶叶种植培训")))
    assert training.checkin_code in view.text and "邀请 2 人" in view.text
    assert "录入成绩" not in " ".join(view.labels)
    page = last(await bot.press(QINGSHAN, view.button("签到名单")))
    assert "已签到 0/2 人" in page.text
    assert page.labels[:2] == ["⬜ 张一 · 青山镇", "⬜ 张二 · 青山镇"]
    page = last(await bot.press(QINGSHAN, page.button("张二")))
    assert page.edited and "已签到 1/2 人" in page.text and "✅ 张二 · 青山镇" in page.labels
    page = last(await bot.press(QINGSHAN, page.button("张一")))
    page = last(await bot.press(QINGSHAN, page.button("张二")))
    assert "已签到 1/2 人" in page.text and "⬜ 张二 · 青山镇" in page.labels
    # Another township's official, the county's cadres and strangers are refused.
    invite_id = await county.invite(training.id, "张一")
    for outsider in (MUHUANG, 9001, STRANGER):
        for data in (f"tr:t:{invite_id}:0", f"tr:c:{training.id}:0", f"tr:v:{training.id}"):
            (refused,) = await bot.press(outsider, data)
            assert refused.text == FORBIDDEN, (outsider, data)
    (listing,) = await bot.send(MUHUANG, "/trainings")
    assert "茶叶种植培训" not in listing.text
    # The county official may manage it too.
    page = last(await bot.press(COUNTY, f"tr:c:{training.id}:0"))
    assert "✅ 张一 · 青山镇" in page.labels
    # Before the check-in opens nothing can be ticked.
    early = await county.invite(future.id, "张一")
    (refused,) = await bot.press(QINGSHAN, f"tr:t:{early}:0")
    assert "尚未开始" in refused.text
    (stale,) = await bot.press(QINGSHAN, "tr:t:x:0")
    assert stale.text == STALE


async def test_competition_scores_and_ranking(county: County) -> None:
    bot = county.bot
    training = await county.create(COUNTY, kind="competition", title="产业技能擂台赛")
    for name in ("张一", "张二", "李四"):
        await bot.press(COUNTY, f"tr:t:{await county.invite(training.id, name)}:0")
    view = last(await bot.press(COUNTY, f"tr:v:{training.id}"))
    assert "已签到 3 人" in view.text
    scores = last(await bot.press(COUNTY, view.button("录入成绩")))
    assert "共 3 人签到" in scores.text and "张一 · 未录入" in scores.labels
    question = last(await bot.press(COUNTY, scores.button("张一")))
    assert "张一" in question.text and "0–100" in question.text
    (error,) = await bot.send(COUNTY, "九十")
    assert "数字" in error.text
    (error,) = await bot.send(COUNTY, "100.5")
    assert "0–100" in error.text
    (refused,) = await bot.send_sticker(COUNTY)
    assert "文字" in refused.text
    saved, scores = await bot.send(COUNTY, "90")
    assert "成绩 90.0 已保存" in saved.text and "张一 · 90.0" in scores.labels
    for name, score in (("张二", "85.5"), ("李四", "90")):
        last(await bot.press(COUNTY, scores.button(name)))
        _, scores = await bot.send(COUNTY, score)
    assert "张二 · 85.5" in scores.labels
    # Changing a score: /cancel keeps the old one.
    last(await bot.press(COUNTY, scores.button("张二")))
    (cancelled,) = await bot.send(COUNTY, "/cancel")
    assert "已退出" in cancelled.text
    ranking = last(await bot.press(COUNTY, f"tr:k:{training.id}"))
    lines = [line for line in ranking.text.splitlines() if line.startswith("第")]
    assert len(lines) == 3
    assert sorted(lines[:2]) == sorted(
        ["第 1 名　张一（青山镇）　90.0 分", "第 1 名　李四（木黄镇）　90.0 分"]
    )
    assert lines[2] == "第 3 名　张二（青山镇）　85.5 分"
    # Forged score buttons: another township's official; a plain session has no scores.
    invite_id = await county.invite(training.id, "李四")
    (refused,) = await bot.press(QINGSHAN, f"tr:sc:{invite_id}")
    assert refused.text == FORBIDDEN
    (refused,) = await bot.press(QINGSHAN, f"tr:k:{training.id}")
    assert refused.text == FORBIDDEN
    plain = await county.create(COUNTY)
    (refused,) = await bot.press(COUNTY, f"tr:s:{plain.id}:0")
    assert refused.text == FORBIDDEN
    async with bot.database.sessionmaker() as session:
        stored = dict(
            (
                await session.execute(
                    select(TrainingInvite.nomination_id, TrainingInvite.score).where(
                        TrainingInvite.training_id == training.id
                    )
                )
            ).all()
        )
    assert stored == {
        county.cadres["张一"]: 90.0,
        county.cadres["张二"]: 85.5,
        county.cadres["李四"]: 90.0,
    }


# --- nobody stranded by the flow engine -----------------------------------------------------


async def _write_old_draft(bot: BotHarness, user: int, draft: dict[str, Any], state: int) -> None:
    """Store a draft and a conversation state as the conversation before the flow engine
    wrote them, with the bot stopped, as a deploy finds them."""
    await bot.stop()
    cipher = DataCipher(bot.settings.require_data_key())
    payload = cipher.encrypt(json.dumps({"training": draft}))
    async with bot.database.sessionmaker.begin() as session:
        await session.execute(delete(UserData).where(UserData.user_id == user))
        await session.execute(
            delete(ConversationState).where(ConversationState.name == "training")
        )
        await session.execute(insert(UserData).values(user_id=user, payload=payload))
        await session.execute(
            insert(ConversationState).values(
                name="training", key=json.dumps([user, user]), state={"state": state}
            )
        )
    await bot.start()


async def test_a_creation_draft_from_before_the_flow_engine_is_finished(county: County) -> None:
    """At the old PICK state (7), "starts_at" in the answers, the picks beside them: the
    same page of people comes back with the pick, and the session is saved."""
    bot = county.bot
    starts = datetime.now(UTC) + timedelta(days=2)
    old = {
        "answers": {
            "kind": "order",
            "topic": "other",
            "title": "部署前的培训",
            "starts_at": starts.isoformat(),
            "duration": "4h",
            "place": "县委党校",
            "audience": "people",
            "township_id": None,
            "township_name": "",
        },
        "editing": False,
        "picked": [county.cadres["张二"]],
        "page": 0,
        "at": 7,
    }
    await _write_old_draft(bot, QINGSHAN, old, 7)
    hint, page = await bot.send_sticker(QINGSHAN)
    assert "按钮" in hint.text and "已选 1 人" in page.text and "✅ 张二 · 青山镇" in page.labels
    review = last(await bot.press(QINGSHAN, page.button("选好了")))
    for shown in ["部署前的培训", "县委党校", "4 小时", "张二"]:
        assert shown in review.text
    saved = last(await bot.press(QINGSHAN, review.button("保存并发出邀请")))
    assert "培训已保存" in saved.text and "已邀请 1 人" in saved.text
    async with bot.database.sessionmaker() as session:
        training = await session.scalar(select(Training))
    assert training is not None and training.title == "部署前的培训"
    assert abs(training.starts_at.astimezone(UTC) - starts) < timedelta(seconds=1)


async def test_a_score_being_typed_before_the_flow_engine_is_stored(county: County) -> None:
    """At the old SCORE state (20), the invite beside empty answers: the typed score lands."""
    bot = county.bot
    training = await county.create(COUNTY, kind="competition", title="部署前擂台赛")
    invite_id = await county.invite(training.id, "张一")
    await bot.press(COUNTY, f"tr:t:{invite_id}:0")
    old = {"answers": {}, "editing": False, "picked": [], "page": 0, "at": 20}
    await _write_old_draft(bot, COUNTY, {**old, "invite_id": invite_id}, 20)
    busy, again = await bot.send(COUNTY, "/trainings")
    assert "录入比武成绩" in busy.text and "张一" in again.text
    saved, scores = await bot.send(COUNTY, "77.5")
    assert "成绩 77.5 已保存" in saved.text and "张一 · 77.5" in scores.labels
    async with bot.database.sessionmaker() as session:
        invite = await session.get_one(TrainingInvite, invite_id)
    assert invite.score == 77.5


async def test_a_review_from_before_the_flow_engine_is_saved(county: County) -> None:
    """At the old REVIEW state (8, now the number of another question): the review's save
    button saves what was entered."""
    bot = county.bot
    old = {
        "answers": {
            "kind": "integrity",
            "topic": "policy_law",
            "title": "部署前的廉政教育",
            "starts_at": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
            "duration": "1d",
            "place": "县廉政教育基地",
            "audience": "township",
            "township_id": county.towns["青山镇"],
            "township_name": "青山镇",
        },
        "editing": False,
        "picked": [],
        "page": 0,
        "at": 8,
    }
    await _write_old_draft(bot, QINGSHAN, old, 8)
    saved = last(await bot.press(QINGSHAN, "tc:go"))
    assert "培训已保存" in saved.text and "已邀请 2 人" in saved.text
    assert "部署前的廉政教育" in saved.text
