"""Rounds and re-entry through a real Application: /round, /nominate in and between rounds,
readmission from the file, and the file's history naming who made each change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from storage import nominations
from storage.models import Nomination, Role, SelectionRound, StatusChange, VettingReview
from storage.rules.identity import make_id_number
from storage.rules.vetting import Channel, Decision
from tests.support.county import County, build_county, grant, nominate
from tests.support.fake_telegram import Sent
from tests.support.harness import BotHarness

CANDIDATE = 5001
COUNTY_OFFICIAL = 7001
TOWNSHIP_A = 7002
TOWNSHIP_B = 7003
ID_NUMBER = make_id_number("520221", date(1990, 3, 7), 12, male=True)


def last(replies: list[Sent]) -> Sent:
    assert replies, "the bot sent nothing"
    return replies[-1]


def plain(sent: Sent) -> str:
    return sent.text.replace("<b>", "").replace("</b>", "")


async def fill_and_submit(bot: BotHarness) -> Sent:
    """The whole self-nomination form, answered and submitted."""
    (notice,) = await bot.send(CANDIDATE, "/nominate")
    (sensitive,) = await bot.press(CANDIDATE, notice.button("同意"))
    question = last(await bot.press(CANDIDATE, sensitive.button("同意")))
    question = last(await bot.send(CANDIDATE, "张三"))
    question = last(await bot.press(CANDIDATE, question.button("男")))
    question = last(await bot.send(CANDIDATE, ID_NUMBER))
    question = last(await bot.send(CANDIDATE, "13812345678"))
    for choice in ["土家族", "中共党员", "大专", "青山镇", "青山镇一村", "返乡大学毕业生"]:
        question = last(await bot.press(CANDIDATE, question.button(choice)))
    for text in ["电商运营", "在外务工五年"]:
        question = last(await bot.send(CANDIDATE, text))
    review = last(await bot.send(CANDIDATE, "建设家乡"))
    return last(await bot.press(CANDIDATE, review.button("确认提交")))


async def reject(county: County, nid: int) -> None:
    """Sent to vetting and rejected by one department, through storage."""
    assert county.staff is not None
    departments = county.bot.settings.department_codes
    async with county.bot.database.sessionmaker.begin() as session:
        await nominations.send_to_vetting(
            session, county.staff, nid, departments=departments, now=datetime.now(UTC)
        )
    async with county.bot.database.sessionmaker.begin() as session:
        department = departments[0]
        review_id = await session.scalar(
            select(VettingReview.id).where(
                VettingReview.nomination_id == nid, VettingReview.department == department
            )
        )
        assert review_id is not None
        await nominations.decide_review(
            session,
            county.reviewers[department],
            review_id,
            decision=Decision.REJECT,
            note="有不良记录",
            departments=departments,
            now=datetime.now(UTC),
            cipher=county.cipher,
        )


async def own_nominations(bot: BotHarness) -> list[Nomination]:
    async with bot.database.sessionmaker() as session:
        return list(await session.scalars(select(Nomination).order_by(Nomination.id)))


async def test_a_rejected_candidate_nominates_again_once_a_round_is_open(
    harness: BotHarness,
) -> None:
    bot = harness
    county = await build_county(bot)
    await grant(bot, COUNTY_OFFICIAL, Role.COUNTY_OFFICIAL, full_name="县组织部干部")
    done = await fill_and_submit(bot)
    assert "报名已提交" in done.text
    (first,) = await own_nominations(bot)
    assert first.round_id is None
    await reject(county, first.id)
    # No round opened yet: once per person, as before rounds.
    (again,) = await bot.send(CANDIDATE, "/nominate")
    assert "已经报名" in again.text

    # The county official opens a round from today.
    listing, ask = await bot.send(COUNTY_OFFICIAL, "/round")
    assert "尚未开设选拔批次" in listing.text and "批次名称" in ask.text
    ask = last(await bot.send(COUNTY_OFFICIAL, "2026年第一批"))
    assert "开始日期" in ask.text
    ask = last(await bot.press(COUNTY_OFFICIAL, ask.button("今天")))
    assert "截止日期" in ask.text
    error, ask = await bot.send(COUNTY_OFFICIAL, "2000-01-01")
    assert "结束日期不能早于开始日期" in error.text
    today = datetime.now(bot.settings.tz).date()
    ends = today + timedelta(days=30)
    review = last(await bot.send(COUNTY_OFFICIAL, ends.isoformat()))
    assert "2026年第一批" in review.text and ends.isoformat() in review.text
    opened = last(await bot.press(COUNTY_OFFICIAL, review.button("确认提交")))
    assert "已开设选拔批次" in opened.text
    async with bot.database.sessionmaker() as session:
        made = await session.scalar(select(SelectionRound))
    assert made is not None and (made.starts_on, made.ends_on) == (today, ends)

    # The rejected candidate is taken in the new round; then holds one open file again.
    done = await fill_and_submit(bot)
    assert "报名已提交" in done.text
    old, new = await own_nominations(bot)
    assert (old.status, old.round_id) == ("rejected", None)
    assert (new.status, new.round_id, new.person_id) == ("new", made.id, old.person_id)
    (again,) = await bot.send(CANDIDATE, "/nominate")
    assert "已经报名" in again.text

    # An overlapping round is refused, its first day asked again.
    listing, ask = await bot.send(COUNTY_OFFICIAL, "/round")
    assert "2026年第一批" in listing.text and "正在报名" in listing.text
    ask = last(await bot.send(COUNTY_OFFICIAL, "重叠批次"))
    ask = last(await bot.press(COUNTY_OFFICIAL, ask.button("今天")))
    review = last(await bot.send(COUNTY_OFFICIAL, ends.isoformat()))
    overlap, ask = await bot.press(COUNTY_OFFICIAL, review.button("确认提交"))
    assert "日期重叠" in overlap.text and "开始日期" in ask.text
    await bot.send(COUNTY_OFFICIAL, "/cancel")
    async with bot.database.sessionmaker() as session:
        assert len(list(await session.scalars(select(SelectionRound)))) == 1


async def test_between_rounds_nominate_says_when_the_next_opens(harness: BotHarness) -> None:
    bot = harness
    await build_county(bot)
    today = datetime.now(bot.settings.tz).date()
    async with bot.database.sessionmaker.begin() as session:
        session.add(
            SelectionRound(
                name="去年",
                starts_on=today - timedelta(days=400),
                ends_on=today - timedelta(days=300),
            )
        )
        session.add(
            SelectionRound(
                name="下一批",
                starts_on=today + timedelta(days=10),
                ends_on=today + timedelta(days=40),
            )
        )
    (closed,) = await bot.send(CANDIDATE, "/nominate")
    assert "目前不在报名期间" in closed.text and "下一批" in closed.text
    assert (today + timedelta(days=10)).isoformat() in closed.text
    # Recommendations are taken between rounds.
    (question,) = await bot.send(CANDIDATE, "/recommend")
    assert "目前不在报名期间" not in question.text


async def test_round_is_for_the_county_only(harness: BotHarness) -> None:
    bot = harness
    county = await build_county(bot)
    await grant(bot, TOWNSHIP_A, Role.TOWNSHIP_OFFICIAL, township_id=county.towns["青山镇"])
    (refused,) = await bot.send(TOWNSHIP_A, "/round")
    assert "没有权限" in refused.text
    (refused,) = await bot.send(CANDIDATE, "/round")
    assert "没有权限" in refused.text


async def test_a_township_official_readmits_an_adjusted_person_with_a_reason(
    harness: BotHarness,
) -> None:
    bot = harness
    county = await build_county(bot)
    official = await grant(
        bot,
        TOWNSHIP_A,
        Role.TOWNSHIP_OFFICIAL,
        township_id=county.towns["青山镇"],
        full_name="青山干部",
    )
    await grant(bot, TOWNSHIP_B, Role.TOWNSHIP_OFFICIAL, township_id=county.towns["木黄镇"])
    owner = await grant(bot, CANDIDATE, None, full_name="何返乡")
    nid = await nominate(county, "何返乡", to="adjusted", person_id=owner)

    # Another township's official: no button, and a forged one is refused.
    (forged,) = await bot.press(TOWNSHIP_B, f"ra:a:{nid}")
    assert "没有权限" in forged.text
    replies = await bot.send(TOWNSHIP_A, f"/dossier {nid}")
    assert "重新入库" in replies[-1].labels and "调整出库" not in replies[-1].labels
    (ask,) = await bot.press(TOWNSHIP_A, replies[-1].button("重新入库"))
    assert "何返乡" in plain(ask) and "2–500" in ask.text
    error, ask = await bot.send(TOWNSHIP_A, "走")
    assert "2–500" in error.text
    (confirm,) = await bot.send(TOWNSHIP_A, "已返乡，可以履职")
    assert "已返乡，可以履职" in confirm.text
    (done,) = await bot.press(TOWNSHIP_A, confirm.button("确认提交"))
    assert "已将 何返乡 重新纳入资源库" in plain(done)
    async with bot.database.sessionmaker() as session:
        assert (await session.get_one(Nomination, nid)).status == "in_pool"
        latest = await session.scalar(
            select(StatusChange)
            .where(StatusChange.nomination_id == nid)
            .order_by(StatusChange.id.desc())
            .limit(1)
        )
    assert latest is not None and latest.event == "readmit"
    assert latest.actor_person_id == official and latest.reason is None
    assert county.cipher.decrypt(latest.reason_enc or b"") == "已返乡，可以履职"
    # Pressed again: no longer adjusted out, nothing changes.
    (gone,) = await bot.press(TOWNSHIP_A, f"ra:a:{nid}")
    assert "未做任何改动" in gone.text

    # The file's history says who made each change, to officials; not to the candidate.
    text = "\n".join(r.text for r in await bot.send(TOWNSHIP_A, f"/dossier {nid}"))
    lines = text.splitlines()
    assert any(line.endswith("重新纳入后备干部库 → 已入库（经办：青山干部）") for line in lines)
    assert any(line.endswith("调整出库 → 已调整出库（经办：县委组织部）") for line in lines)
    assert "原因：已返乡，可以履职" in text
    own = "\n".join(r.text for r in await bot.send(CANDIDATE, "/dossier"))
    assert "重新纳入后备干部库" in own and "经办" not in own


async def test_a_mass_recommender_is_never_named_in_the_history(harness: BotHarness) -> None:
    bot = harness
    county = await build_county(bot)
    await grant(bot, COUNTY_OFFICIAL, Role.COUNTY_OFFICIAL)
    recommender = await grant(bot, CANDIDATE, None, full_name="举荐人甲")
    nid = await nominate(
        county, "被举荐", to="new", channel=Channel.MASS, submitted_by=recommender
    )
    text = "\n".join(r.text for r in await bot.send(COUNTY_OFFICIAL, f"/dossier {nid}"))
    assert "提交报名或推荐" in text and "举荐人甲" not in text
