"""/pasttalk: an official records a talk older than a mentor may log, on the mentor's behalf;
the file marks it. Mentors, other townships and strangers cannot."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from storage.models import Person, TalkLog
from tests.handlers.test_mentoring import (  # noqa: F401 - county is a fixture
    FAR_OFFICIAL,
    MENTOR_T,
    NOBODY,
    OFFICIAL,
    County,
    county,
    last,
    shanghai_today,
)


async def test_an_official_records_last_seasons_talk_for_the_mentor(county: County) -> None:  # noqa: F811
    bot = county.bot
    pairing_id = await county.pair("张三", "township", MENTOR_T, days_ago=90)
    async with bot.database.sessionmaker.begin() as session:
        official = await session.get(Person, county.persons[OFFICIAL])
        assert official is not None
        official.full_name = "青山干部"
    held = shanghai_today() - timedelta(days=60)
    # The mentor cannot log it any more, and is told who can.
    (pick,) = await bot.send(MENTOR_T, "/talk")
    question = last(await bot.press(MENTOR_T, pick.button("张三")))
    question = last(await bot.press(MENTOR_T, question.button("其他日期")))
    error, _ = await bot.send(MENTOR_T, held.isoformat())
    assert "只能补记最近 30 天" in error.text and "/pasttalk" in error.text
    await bot.send(MENTOR_T, "/cancel")
    # Neither a mentor nor a stranger may record on anyone's behalf; another township has
    # nobody to pick.
    for outsider in (MENTOR_T, NOBODY):
        (refused,) = await bot.send(outsider, "/pasttalk")
        assert "无权" in refused.text or "权限" in refused.text, refused.text
    (none,) = await bot.send(FAR_OFFICIAL, "/pasttalk")
    assert "没有在结对中" in none.text
    forged = await bot.press(FAR_OFFICIAL, f"tb:p:{pairing_id}")
    assert all("哪一天" not in s.text for s in forged)
    # The township's official: the pairing, the day (before the pairing: refused), and then
    # /talk's own questions.
    (pick,) = await bot.send(OFFICIAL, "/pasttalk")
    assert "代为补录" in pick.text and pick.labels == ["张三 · 镇导师"]
    question = last(await bot.press(OFFICIAL, pick.button("张三")))
    assert "哪一天" in question.text and "镇导师" in question.text
    error, question = await bot.send(OFFICIAL, (held - timedelta(days=40)).isoformat())
    assert "不能早于结对日期" in error.text
    question = last(await bot.send(OFFICIAL, f"{held.month}-{held.day}"))
    question = last(await bot.press(OFFICIAL, question.button("入户走访")))
    for answer in ["思想稳定", "工作积极", "生活正常", "经验不足"]:
        question = last(await bot.send(OFFICIAL, answer))
    question = last(await bot.send(OFFICIAL, "缺少冷库"))
    review = last(await bot.press(OFFICIAL, question.button("完成")))
    assert "补录" in review.text and "张三 · 镇导师" in review.text
    assert held.isoformat() in review.text
    done = last(await bot.press(OFFICIAL, review.button("保存谈话记录")))
    assert "已代导师 镇导师 补录" in done.text and "1 条" in done.text
    async with bot.database.sessionmaker() as session:
        (talk,) = (await session.scalars(select(TalkLog))).all()
    assert talk.talk_date == held and talk.mode == "home"
    assert talk.mentor_person_id == county.persons[MENTOR_T]
    assert talk.recorded_by_person_id == county.persons[OFFICIAL]
    # The file marks it.
    shown = "\n".join(
        s.text for s in await bot.send(OFFICIAL, f"/dossier {county.cadres['张三']}")
    )
    assert f"{held.isoformat()} · 入户走访 · 镇导师" in shown and "由 青山干部 代为补录" in shown
