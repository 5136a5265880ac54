"""/start, invites, /help, /lang, /cancel and the group guard through a real Application."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select, update

from storage import people
from storage.models import ConversationState, InviteFailure, Person, Role, TelegramAccount
from tests.support.county import role_invite
from tests.support.harness import BotHarness


async def test_start_answers_in_chinese_by_default(harness: BotHarness) -> None:
    (reply,) = await harness.send(1001, "/start")
    assert "欢迎" in reply.text
    assert "/nominate" in reply.text
    assert "/vetting" not in reply.text  # no reviewer grant, no reviewer menu


async def test_start_answers_in_english_for_english_clients(harness: BotHarness) -> None:
    (reply,) = await harness.send(1002, "/start", language_code="en-US")
    assert "Welcome" in reply.text


async def test_invite_code_works_once_only(harness: BotHarness) -> None:
    code = await role_invite(harness, Role.TOWNSHIP_OFFICIAL)
    granted, menu = await harness.send(2001, f"/start {code}")
    assert "乡镇（街道）干部" in granted.text and "青山镇" in granted.text
    assert "/review" in menu.text
    (again,) = await harness.send(2002, f"/start {code}")
    assert "已被使用" in again.text
    async with harness.database.sessionmaker() as session:
        actor = await people.load_actor(session, 2002)
    assert actor is not None and not actor.grants


async def test_expired_code_is_refused(harness: BotHarness) -> None:
    code = await role_invite(harness, Role.REVIEWER, days=1, department="police")
    async with harness.database.sessionmaker.begin() as session:
        from sqlalchemy import update

        from storage.models import InviteCode

        await session.execute(
            update(InviteCode).values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    (reply,) = await harness.send(2101, f"/start {code}")
    assert "过期" in reply.text


async def test_five_wrong_codes_then_wait(harness: BotHarness) -> None:
    for attempt in range(5):
        (reply,) = await harness.send(2201, f"/start WRONGCODE{attempt}")
        assert "无效" in reply.text
    code = await role_invite(harness, Role.MENTOR)
    (reply,) = await harness.send(2201, f"/start {code}")
    assert "分钟后再试" in reply.text
    async with harness.database.sessionmaker() as session:
        failures = await session.scalar(select(func.count()).select_from(InviteFailure))
        actor = await people.load_actor(session, 2201)
    assert failures == 5
    assert actor is not None and not actor.grants  # the good code was not spent


async def test_help_depends_on_role(harness: BotHarness) -> None:
    (plain,) = await harness.send(2301, "/help")
    assert "/vetting" not in plain.text
    code = await role_invite(harness, Role.REVIEWER, department="police")
    await harness.send(2301, f"/start {code}")
    (reviewer,) = await harness.send(2301, "/help")
    assert "/vetting" in reviewer.text


async def test_lang_switches_and_is_remembered(harness: BotHarness) -> None:
    (choose,) = await harness.send(2401, "/lang")
    data = choose.button("English")
    (done,) = await harness.press(2401, data)
    assert "English" in done.text
    (menu,) = await harness.send(2401, "/start")
    assert "Welcome" in menu.text
    async with harness.database.sessionmaker() as session:
        account = await session.get(TelegramAccount, 2401)
    assert account is not None and account.locale == "en"


async def test_cancel_outside_a_flow(harness: BotHarness) -> None:
    (reply,) = await harness.send(2501, "/cancel")
    assert "没有进行中的操作" in reply.text


async def test_group_chat_points_to_private_and_stores_nothing(harness: BotHarness) -> None:
    (reply,) = await harness.send(2601, "/start", chat_type="group")
    assert "私聊" in reply.text
    assert await harness.send(2601, "hello", chat_type="group") == []
    async with harness.database.sessionmaker() as session:
        assert await session.get(TelegramAccount, 2601) is None


async def test_unknown_command_and_stray_button(harness: BotHarness) -> None:
    (reply,) = await harness.send(2701, "/nosuchthing")
    assert "/help" in reply.text
    (stale,) = await harness.press(2701, "x:1")
    assert "失效" in stale.text


async def _name_on_file(bot: BotHarness, telegram_id: int) -> str | None:
    async with bot.database.sessionmaker() as session:
        account = await people.ensure_account(session, telegram_id, None)
        return await people.own_name(session, account.person_id)


async def test_invited_mentor_records_their_name_once(harness: BotHarness) -> None:
    code = await role_invite(harness, Role.MENTOR)
    granted, _menu = await harness.send(2101, f"/start {code}")
    assert "/name" in granted.text
    (ask,) = await harness.send(2101, "/name")
    assert "真实姓名" in ask.text
    # A wrong name is refused in the form's words and asked for again; nothing is stored.
    wrong, again = await harness.send(2101, "王2")
    assert "姓名只能包含汉字" in wrong.text and "真实姓名" in again.text
    assert await _name_on_file(harness, 2101) is None
    # "<" is not a name letter: refused again, and the person's text is never echoed raw.
    wrong, again = await harness.send(2101, "王 <b>小")
    assert "姓名只能包含汉字" in wrong.text and "<b>小" not in wrong.text + again.text
    (saved,) = await harness.send(2101, "王　小明")  # a full-width space inside
    assert "已登记姓名：<b>王小明</b>" in saved.text
    assert await _name_on_file(harness, 2101) == "王小明"
    # Once on file, it is not replaced by the person.
    (refused,) = await harness.send(2101, "/name 李四")
    assert "王小明" in refused.text and "不能自行修改" in refused.text
    assert await _name_on_file(harness, 2101) == "王小明"


async def test_name_in_the_command_and_in_english(harness: BotHarness) -> None:
    code = await role_invite(harness, Role.REVIEWER, department="police")
    granted, _menu = await harness.send(2102, f"/start {code}", language_code="en")
    assert "/name" in granted.text
    (saved,) = await harness.send(2102, "/name Zhang  San", language_code="en")
    assert saved.text == "✅ Your name is recorded: <b>Zhang San</b>."


async def test_name_flow_can_be_cancelled_and_guards_other_commands(harness: BotHarness) -> None:
    await harness.send(2103, "/start")
    await harness.send(2103, "/name")
    (busy,) = await harness.send(2103, "/nominate")
    assert "/cancel" in busy.text
    (left,) = await harness.send(2103, "/cancel")
    assert "已退出" in left.text
    (idle,) = await harness.send(2103, "张三")
    assert await _name_on_file(harness, 2103) is None
    assert "张三" not in idle.text


async def test_a_candidates_name_comes_from_the_nomination_not_from_name(
    harness: BotHarness,
) -> None:
    async with harness.database.sessionmaker.begin() as session:
        account = await people.ensure_account(session, 2104, "zh-hans")
        await session.execute(
            update(Person).where(Person.id == account.person_id).values(full_name="赵六")
        )
    granted_invite = await role_invite(harness, Role.TOWNSHIP_OFFICIAL)
    granted, _menu = await harness.send(2104, f"/start {granted_invite}")
    assert "/name" not in granted.text  # a name is on file: no hint
    (refused,) = await harness.send(2104, "/name")
    assert "赵六" in refused.text


async def test_a_name_asked_for_before_the_flow_engine_is_taken_under_it(
    harness: BotHarness,
) -> None:
    """Nobody stranded by the deploy: /name kept no draft, only its state 0 (waiting for the
    name); the name sent after the deploy is recorded."""
    code = await role_invite(harness, Role.MENTOR)
    await harness.send(2105, f"/start {code}")
    await harness.stop()
    async with harness.database.sessionmaker.begin() as session:
        await session.execute(
            insert(ConversationState).values(
                name="name", key=json.dumps([2105, 2105]), state={"state": 0}
            )
        )
    await harness.start()
    wrong, again = await harness.send(2105, "王2")
    assert "姓名只能包含汉字" in wrong.text and "真实姓名" in again.text
    (saved,) = await harness.send(2105, "王小明")
    assert "已登记姓名" in saved.text
    assert await _name_on_file(harness, 2105) == "王小明"
