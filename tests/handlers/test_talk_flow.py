"""/talk and the resolution of a difficulty on the flow engine: the difficulties list keeps
"done" first and asks before every delete, one flow's entry button waits while another flow
is open, and a draft written before the engine is finished under it (nobody stranded)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from storage import mentoring
from storage.crypto import DataCipher
from storage.models import ConversationState, Difficulty, TalkLog, UserData
from tests.handlers.test_mentoring import (  # noqa: F401 - county is a fixture
    MENTOR_T,
    SHANGHAI,
    County,
    county,
    difficulty_ids,
    last,
    shanghai_today,
)


async def _at_difficulties(place: County) -> Any:
    bot = place.bot
    await place.talk_with_zhang()
    for answer in ["思想稳定", "工作积极", "生活正常", "经验不足"]:
        question = last(await bot.send(MENTOR_T, answer))
    assert "实际困难" in question.text
    return question


async def test_done_stays_first_and_every_delete_asks(county: County) -> None:  # noqa: F811
    """The defect: with one difficulty listed, "删除 1" stood where "完成" had been and
    deleted at once; a thumb going for "done" lost the item."""
    bot = county.bot
    question = await _at_difficulties(county)
    assert question.buttons[0][0][1] == "tk:dd"  # before any item…
    for item in ["资金困难", "道路失修"]:
        question = last(await bot.send(MENTOR_T, item))
        assert question.buttons[0] == question.buttons[0][:1]  # …and after: alone, first
        assert question.buttons[0][0][1] == "tk:dd" and "完成" in question.labels[0]
    # tk:x:<i> only asks; "keep" leaves the list as it was.
    confirm = last(await bot.press(MENTOR_T, "tk:x:0"))
    assert "资金困难" in confirm.text and confirm.labels == ["确认删除", "保留"]
    question = last(await bot.press(MENTOR_T, confirm.button("保留")))
    assert "1. 资金困难" in question.text and "2. 道路失修" in question.text
    # A confirmation nobody was asked for (forged, or from an old message) deletes nothing.
    stale, question = await bot.press(MENTOR_T, "tk:xy:0")
    assert "失效" in stale.text and "2. 道路失修" in question.text
    confirm = last(await bot.press(MENTOR_T, question.button("删除 2")))
    assert "道路失修" in confirm.text
    question = last(await bot.press(MENTOR_T, confirm.button("确认删除")))
    assert "道路失修" not in question.text and "1. 资金困难" in question.text
    review = last(await bot.press(MENTOR_T, question.button("完成")))
    assert "请核对" in review.text and "资金困难" in review.text
    done = last(await bot.press(MENTOR_T, review.button("保存谈话记录")))
    assert "已保存" in done.text and "1 条" in done.text
    assert await county.count(Difficulty) == 1


async def test_a_resolve_button_mid_talk_waits_for_the_talk(county: County) -> None:  # noqa: F811
    bot = county.bot
    ids = await difficulty_ids(county)
    await _at_difficulties(county)
    busy, question = await bot.press(MENTOR_T, f"df:r:{ids[0]}")
    assert "正在记录谈心谈话" in busy.text and "实际困难" in question.text
    # Still in the talk: the next text is a difficulty, not a resolution note.
    question = last(await bot.send(MENTOR_T, "协调信用社贷款五万元"))
    assert "1. 协调信用社贷款五万元" in question.text
    assert await county.count(Difficulty, Difficulty.status == "resolved") == 0


async def test_a_talk_button_mid_resolution_waits_for_the_note(county: County) -> None:  # noqa: F811
    bot = county.bot
    ids = await difficulty_ids(county)
    (listing,) = await bot.send(MENTOR_T, "/mentees")
    talk_with = listing.button("记录谈话")
    (question,) = await bot.press(MENTOR_T, f"df:r:{ids[0]}")
    assert "如何解决" in question.text
    busy, question = await bot.press(MENTOR_T, talk_with)
    assert "实际困难的解决情况" in busy.text and "缺少产业启动资金" in question.text
    # Another "resolve" button switches to that difficulty.
    (question,) = await bot.press(MENTOR_T, f"df:r:{ids[1]}")
    assert "村里道路需要硬化" in question.text
    (done,) = await bot.send(MENTOR_T, "已列入明年硬化计划")
    assert "已标记为已解决" in done.text and "村里道路需要硬化" in done.text


async def _store_old(
    place: County, user_data: dict[str, Any], conversation: str, state: int
) -> None:
    """Write a draft and a conversation state as the code before the engine did."""
    bot = place.bot
    await bot.stop()
    cipher = DataCipher(bot.settings.require_data_key())
    async with bot.database.sessionmaker.begin() as session:
        row = await session.get(UserData, MENTOR_T)
        stored = json.loads(cipher.decrypt(row.payload)) if row is not None else {}
        stored.update(user_data)
        payload = cipher.encrypt(json.dumps(stored))
        if row is None:
            session.add(UserData(user_id=MENTOR_T, payload=payload))
        else:
            row.payload = payload
        session.add(
            ConversationState(
                name=conversation, key=json.dumps([MENTOR_T, MENTOR_T]), state={"state": state}
            )
        )
    await bot.start()


async def test_a_talk_draft_from_before_the_engine_is_finished(county: County) -> None:  # noqa: F811
    bot = county.bot
    pairing = await county.pair("张三", "township", MENTOR_T)
    yesterday = shanghai_today() - timedelta(days=1)
    old = {
        "at": 3,  # TOPIC
        "topic": "work",
        "topics": {"thought": {"text": "思想积极"}},
        "difficulties": [],
        "editing": False,
        "pairing_id": pairing,
        "mentee": "张三",
        "paired_on": (shanghai_today() - timedelta(days=10)).isoformat(),
        "date": yesterday.isoformat(),
        "mode": "face",
    }
    await _store_old(county, {"talk": old}, "talk", 3)
    question = last(await bot.send(MENTOR_T, "工作积极"))
    assert "生活情况" in question.text  # the work topic was the question they were on
    question = last(await bot.send(MENTOR_T, "生活正常"))
    question = last(await bot.send_voice(MENTOR_T))
    assert "实际困难" in question.text  # not skipped: the empty list was not an answer yet
    question = last(await bot.send(MENTOR_T, "资金困难"))
    review = last(await bot.press(MENTOR_T, question.button("完成")))
    assert "思想积极" in review.text and yesterday.isoformat() in review.text
    assert "面对面" in review.text and "1. 资金困难" in review.text
    done = last(await bot.press(MENTOR_T, review.button("保存谈话记录")))
    assert "已保存" in done.text
    assert await county.count(TalkLog) == 1


async def test_a_talk_draft_at_the_old_review_is_saved(county: County) -> None:  # noqa: F811
    bot = county.bot
    pairing = await county.pair("张三", "township", MENTOR_T)
    old = {
        "at": 5,  # REVIEW
        "topics": {t: {"text": "情况良好"} for t in mentoring.TALK_TOPICS},
        "difficulties": [],
        "editing": False,
        "pairing_id": pairing,
        "mentee": "张三",
        "paired_on": (shanghai_today() - timedelta(days=10)).isoformat(),
        "date": shanghai_today().isoformat(),
        "mode": "phone",
    }
    await _store_old(county, {"talk": old}, "talk", 5)
    done = last(await bot.press(MENTOR_T, "tk:go"))
    assert "已保存" in done.text
    assert await county.count(TalkLog) == 1 and await county.count(Difficulty) == 0


async def test_a_resolution_from_before_the_engine_is_finished(county: County) -> None:  # noqa: F811
    bot = county.bot
    ids = await difficulty_ids(county)
    await _store_old(county, {"resolve": {"id": ids[1]}}, "difficulty", 0)
    (done,) = await bot.send(MENTOR_T, "已列入明年硬化计划")
    assert "已标记为已解决" in done.text and "村里道路需要硬化" in done.text
    async with bot.database.sessionmaker() as session:
        row = await session.get(Difficulty, ids[1])
    assert row is not None and row.status == "resolved"
