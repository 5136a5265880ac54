"""People told what happened to them (issue 12, item 5), and /status, through the real bot.

Each notice is an outbox row written by the step that causes it; the harness delivers the
outbox after each update (`auto_drain`), so a step's replies include the notices it caused.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from storage import people
from storage.models import Nomination, OutboxMessage, Role
from tests.support.county import (
    T0,
    County,
    build_county,
    grant,
    nominate,
    saved_talk,
    staff,
)
from tests.support.county import pair as pair_row
from tests.support.fake_telegram import Sent
from tests.support.harness import BotHarness

CANDIDATE, OFFICIAL, MENTOR_T, MENTOR_V, STRANGER = 8601, 8602, 8603, 8604, 8605
ID_NUMBER = "52022119900307123X"
TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date()
THIS_YEAR = TODAY.year


def to(replies: list[Sent], chat_id: int) -> list[Sent]:
    return [r for r in replies if r.chat_id == chat_id]


def last(replies: list[Sent]) -> Sent:
    assert replies, "the bot sent nothing"
    return replies[-1]


def plain(sent: Sent) -> str:
    return re.sub(r"</?b>", "", sent.text)


def assert_nothing_identifying(sent: Sent, phone: str = "") -> None:
    """No ID number and no phone, whole or masked, passes Telegram in a notice."""
    assert "5202" not in sent.text and "123X" not in sent.text
    assert not re.search(r"1[3-9]\d\*{4}\d{4}|1[3-9]\d{9}", sent.text)
    if phone:
        assert phone not in sent.text


async def world(bot: BotHarness, to_status: str = "in_pool") -> tuple[County, int]:
    """青山镇 with an official, two mentors (a township cadre and a village secretary), and
    王小明's own file (with his Telegram account) moved to `to_status`."""
    county = await build_county(bot)
    town = county.towns["青山镇"]
    await grant(bot, OFFICIAL, Role.TOWNSHIP_OFFICIAL, township_id=town, full_name="李干部")
    async with bot.database.sessionmaker.begin() as session:
        await staff(session, MENTOR_T, "镇导师", [(Role.MENTOR, town, "township")])
        await staff(session, MENTOR_V, "村书记", [(Role.MENTOR, town, "village")])
    candidate = await grant(bot, CANDIDATE, None, full_name="王小明")
    nid = await nominate(
        county,
        "王小明",
        to=to_status,
        person_id=candidate,
        submitted_by=candidate,
        id_number=ID_NUMBER,
    )
    # A self-nomination gives both consents; vetting refuses a file without them.
    async with bot.database.sessionmaker.begin() as session:
        await session.execute(
            update(Nomination)
            .where(Nomination.id == nid)
            .values(consent_at=T0, sensitive_consent_at=T0)
        )
    bot.auto_drain = True
    bot.fake.clear()
    return county, nid


async def outbox_keys(bot: BotHarness, prefix: str) -> list[tuple[str, int]]:
    async with bot.database.sessionmaker() as session:
        rows = await session.execute(
            select(OutboxMessage.key, OutboxMessage.chat_id)
            .where(OutboxMessage.key.startswith(prefix))
            .order_by(OutboxMessage.id)
        )
        return [(k, int(c)) for k, c in rows.all()]


async def test_sent_to_vetting_tells_the_candidate_and_status_shows_the_dates(
    harness_any: BotHarness,
) -> None:
    bot = harness_any
    _, nid = await world(bot, to_status="new")
    (queue,) = await bot.send(OFFICIAL, "/review")
    (item,) = await bot.press(OFFICIAL, queue.button("王小明"))
    replies = await bot.press(OFFICIAL, item.button("提交资格联审"))
    (notice,) = to(replies, CANDIDATE)
    assert "已提交资格联审" in notice.text and "/status" in notice.text
    assert_nothing_identifying(notice)
    assert await outbox_keys(bot, "notice-vetting:") == [
        (f"notice-vetting:{nid}:{CANDIDATE}", CANDIDATE)
    ]
    # Pressing the old button again changes nothing and tells nobody twice.
    replay = await bot.press(OFFICIAL, item.button("提交资格联审"))
    assert to(replay, CANDIDATE) == []

    (status,) = await bot.send(CANDIDATE, "/status")
    text = plain(status)
    assert "您的档案进度" in text and "青山镇" in text
    assert "青山镇：资格联审中" in text  # the current status
    # Each step with its date, in the county's time: submitted at T0 (2026-03-02 04:30 in
    # Shanghai, still 1 March in UTC), sent on today.
    assert "2026-03-02 提交报名或推荐" in text
    assert f"{TODAY.isoformat()} 提交资格联审" in text
    assert_nothing_identifying(status)
    # In English, in the person's language.
    (status_en,) = await bot.send(CANDIDATE, "/status", language_code="en")
    assert "Where your file is" in status_en.text and "In joint vetting" in status_en.text
    assert f"{TODAY.isoformat()} Sent to joint vetting" in status_en.text


async def test_status_for_someone_with_no_file(harness: BotHarness) -> None:
    (zh,) = await harness.send(STRANGER, "/status")
    assert "没有报名记录" in zh.text and "/nominate" in zh.text
    (en,) = await harness.send(STRANGER, "/status", language_code="en")
    assert "no nomination on file" in en.text


async def test_pairing_names_the_mentors_and_adjusting_out_tells_everyone(
    harness_any: BotHarness,
) -> None:
    bot = harness_any
    _, nid = await world(bot)
    (cadres,) = await bot.send(OFFICIAL, "/pair")
    township = last(await bot.press(OFFICIAL, cadres.button("王小明")))
    replies = await bot.press(OFFICIAL, township.button("镇导师"))
    (first,) = to(replies, CANDIDATE)
    assert "乡镇干部导师：镇导师" in first.text and "/status" in first.text
    village = to(replies, OFFICIAL)[-1]
    replies = await bot.press(OFFICIAL, village.button("村书记"))
    (second,) = to(replies, CANDIDATE)
    assert "乡镇干部导师：镇导师" in second.text and "村党组织书记导师：村书记" in second.text
    assert_nothing_identifying(second)
    assert len(await outbox_keys(bot, "notice-paired:")) == 2

    (status,) = await bot.send(CANDIDATE, "/status")
    assert "结对导师：乡镇干部导师 镇导师；村党组织书记导师 村书记" in status.text
    assert "已入库" in status.text

    # Adjusted out: the candidate hears it without the reason, both mentors that it ended.
    (listing,) = await bot.send(OFFICIAL, "/pool")
    (file,) = await bot.press(OFFICIAL, listing.button("王小明"))
    await bot.press(OFFICIAL, file.button("调整出库"))
    (confirm,) = await bot.send(OFFICIAL, "长期外出务工，无法履职")
    replies = await bot.press(OFFICIAL, confirm.button("确认调整出库"))
    (told,) = to(replies, CANDIDATE)
    assert "调整出村级后备干部资源库" in told.text
    assert "外出" not in told.text and "履职" not in told.text  # the reason stays with officials
    for mentor in (MENTOR_T, MENTOR_V):
        (left,) = to(replies, mentor)
        assert "王小明" in left.text and "结对随之结束" in left.text
        assert "外出" not in left.text
    assert len(await outbox_keys(bot, f"notice-mentee_left:{nid}:")) == 2
    (status,) = await bot.send(CANDIDATE, "/status")
    assert "青山镇：已调整出库" in plain(status)
    assert f"{TODAY.isoformat()} 调整出库" in status.text
    assert "结对导师" not in status.text  # the pairings ended with it


async def test_a_resolved_difficulty_is_told_to_the_mentor_who_raised_it(
    harness_any: BotHarness,
) -> None:
    bot = harness_any
    _, nid = await world(bot)
    async with bot.database.sessionmaker.begin() as session:
        t = await pair_row(session, nid, await staff(session, MENTOR_T, None), "township")
        v = await pair_row(session, nid, await staff(session, MENTOR_V, None), "village")
        pairings = {MENTOR_T: t.id, MENTOR_V: v.id}
    await saved_talk(
        bot, MENTOR_T, pairings[MENTOR_T], mode="phone", text="还好", difficulties=["孩子上学远"]
    )
    await saved_talk(
        bot, MENTOR_V, pairings[MENTOR_V], mode="face", text="还好", difficulties=["缺少启动资金"]
    )
    bot.fake.clear()

    # The official resolves the township mentor's item: that mentor is told, the other not.
    (listing,) = await bot.send(OFFICIAL, "/difficulties")
    assert "孩子上学远" in listing.text and "缺少启动资金" in listing.text
    first = listing.button("解决")
    told_id = int(first.rsplit(":", 1)[1])
    await bot.press(OFFICIAL, first)
    replies = await bot.send(OFFICIAL, "已协调镇中心校住宿")
    (told,) = to(replies, MENTOR_T)
    assert "王小明" in told.text and "已解决" in told.text
    assert "孩子上学远" in told.text
    assert to(replies, MENTOR_V) == [] and to(replies, CANDIDATE) == []
    assert_nothing_identifying(told)

    # A mentor who resolves their own item is not told of their own act.
    (listing,) = await bot.send(MENTOR_V, "/difficulties")
    assert "缺少启动资金" in listing.text and "孩子上学远" not in listing.text
    await bot.press(MENTOR_V, listing.button("解决"))
    replies = await bot.send(MENTOR_V, "已对接小额信贷")
    assert len(replies) == 1 and "反映的困难已解决" not in replies[0].text
    assert to(replies, MENTOR_T) == []
    assert [k for k, _ in await outbox_keys(bot, "notice-difficulty_resolved:")] == [
        f"notice-difficulty_resolved:{told_id}:{MENTOR_T}"
    ]


async def test_assessment_election_and_project_lead_are_told(harness_any: BotHarness) -> None:
    bot = harness_any
    _, nid = await world(bot)
    async with bot.database.sessionmaker.begin() as session:
        await pair_row(session, nid, await staff(session, MENTOR_T, None), "township")
        await pair_row(session, nid, await staff(session, MENTOR_V, None), "village")

    # An annual result: the cadre hears the result and the grade it leaves them at.
    (year_q,) = await bot.send(OFFICIAL, "/results")
    people = last(await bot.press(OFFICIAL, year_q.button(str(THIS_YEAR))))
    pick = last(await bot.press(OFFICIAL, people.button("王小明")))
    confirm = last(await bot.press(OFFICIAL, pick.button("称职")))
    replies = await bot.press(OFFICIAL, confirm.button("确认提交"))
    (assessed,) = to(replies, CANDIDATE)
    assert f"{THIS_YEAR} 年度的考核结果已录入：称职" in assessed.text
    assert "第 2 级" in assessed.text
    assert await outbox_keys(bot, "notice-assessed:") == [
        (f"notice-assessed:{nid}:{THIS_YEAR}:{CANDIDATE}", CANDIDATE)
    ]

    # A project: each lead hears they lead it, with its name and village.
    villages = last(await bot.send(OFFICIAL, "/project"))
    last(await bot.press(OFFICIAL, villages.button("青山镇一村")))
    await bot.send(OFFICIAL, "闲置校舍改民宿")
    status_q = last(await bot.send(OFFICIAL, "120"))
    leads = last(await bot.press(OFFICIAL, status_q.button("推进中")))
    picked = last(await bot.press(OFFICIAL, leads.button("王小明")))
    review = last(await bot.press(OFFICIAL, picked.button("选好了")))
    replies = await bot.press(OFFICIAL, review.button("确认提交"))
    (lead,) = to(replies, CANDIDATE)
    assert "闲置校舍改民宿" in lead.text and "青山镇一村" in lead.text and "/report" in lead.text

    # Elected into the two committees: both mentors hear it; the cadre is not told twice.
    people = last(await bot.send(OFFICIAL, "/outcome"))
    kinds = last(await bot.press(OFFICIAL, people.button("王小明")))
    last(await bot.press(OFFICIAL, kinds.button("当选村两委")))
    ask_date = last(await bot.send(OFFICIAL, "村委会委员"))
    review = last(await bot.press(OFFICIAL, ask_date.button("今天")))
    replies = await bot.press(OFFICIAL, review.button("确认提交"))
    for mentor in (MENTOR_T, MENTOR_V):
        (elected,) = to(replies, mentor)
        assert "王小明" in elected.text and "村委会委员" in elected.text
        assert TODAY.isoformat() in elected.text
    assert to(replies, CANDIDATE) == []
    assert [c for _, c in await outbox_keys(bot, "notice-mentee_elected:")] == [
        MENTOR_T,
        MENTOR_V,
    ]


async def test_notices_are_in_the_recipients_language(harness: BotHarness) -> None:
    bot = harness
    await world(bot, to_status="new")
    async with bot.database.sessionmaker.begin() as session:
        await people.set_locale(session, CANDIDATE, "en")
    (queue,) = await bot.send(OFFICIAL, "/review")
    (item,) = await bot.press(OFFICIAL, queue.button("王小明"))
    replies = await bot.press(OFFICIAL, item.button("提交资格联审"))
    (notice,) = to(replies, CANDIDATE)
    assert "sent it to joint vetting" in notice.text and "/status" in notice.text


async def test_status_is_in_help_and_answers_mid_flow(harness: BotHarness) -> None:
    bot = harness
    (help_,) = await bot.send(STRANGER, "/help")
    assert "/status" in help_.text
    (consent,) = await bot.send(STRANGER, "/nominate")
    replies = await bot.send(STRANGER, "/status")
    assert "没有报名记录" in replies[0].text
    # Then the open question again, with its buttons (as for /mydata).
    assert last(replies).text == consent.text and last(replies).labels == consent.labels
