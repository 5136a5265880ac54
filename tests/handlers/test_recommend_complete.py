"""Issue 12, item 1: a recommendation becomes a complete, consented file only through its
nominee; the phone a recommender typed neither blocks nor betrays the nominee; an official's
/recommend is an organization one in their own township."""

from __future__ import annotations

from sqlalchemy import select

from storage.crypto import DataCipher
from storage.models import AuditLog, Nomination, TelegramAccount, Township
from tests.handlers.test_review_vetting import (
    CANDIDATE,
    ID_1,
    ID_2,
    POLICE,
    QINGSHAN_OFFICIAL,
    RECOMMENDER,
    complete_by_code,
    invite,
    last,
    nomination_id,
    open_item,
    recommend,
    status_of,
    to,
)
from tests.handlers.test_review_vetting import county as county
from tests.support.harness import BotHarness

PHONE = "13812340009"


async def test_a_recommendation_needs_its_nominee_before_vetting(county: BotHarness) -> None:
    nid = await recommend(county, "孙八")
    item = await open_item(county, QINGSHAN_OFFICIAL, nid)
    assert "档案待本人完善" in item.text and "身份证号" in item.text
    assert item.button("生成补全邀请码") == f"rv:i:{nid}"

    # Vetting refuses the file with what it lacks, and the refusal is audited.
    (refused,) = await county.press(QINGSHAN_OFFICIAL, item.button("提交资格联审"))
    assert "档案不完整，不能提交资格联审" in refused.text and "本人同意" in refused.text
    assert await status_of(county, nid) == "new"
    async with county.database.sessionmaker() as session:
        actions = set(
            await session.scalars(select(AuditLog.action).where(AuditLog.subject_id == nid))
        )
    assert "vetting.refused_incomplete" in actions

    code = await invite(county, QINGSHAN_OFFICIAL, nid)
    (unknown,) = await county.send(CANDIDATE, "/nominate WRONGCODE22")
    assert "邀请码无效" in unknown.text
    done = await complete_by_code(county, CANDIDATE, code, "孙八", ID_1, "13812340001")
    assert "报名已提交" in last(to(done, CANDIDATE)).text
    (told,) = to(done, QINGSHAN_OFFICIAL)
    assert "已由本人确认同意并补全" in told.text and "孙八" not in told.text
    # Nothing on the nominee's side names who recommended them.
    assert not any(str(RECOMMENDER) in s.text or "举荐" in s.text for s in to(done, CANDIDATE))

    async with county.database.sessionmaker() as session:
        nomination = await session.get_one(Nomination, nid)
        account = await session.get_one(TelegramAccount, CANDIDATE)
        assert nomination.person_id == account.person_id
        assert nomination.sensitive_consent_at is not None and nomination.id_number_hash
        assert nomination.education == "college" and nomination.channel == "mass"
    # The code was used once; the nominee's own /nominate shows their file.
    (again,) = await county.send(CANDIDATE, "/nominate")
    assert "您已经报名" in again.text
    (spent,) = await county.send(RECOMMENDER, f"/nominate {code}")
    assert "邀请码无效" in spent.text

    item = await open_item(county, QINGSHAN_OFFICIAL, nid)
    assert "档案待本人完善" not in item.text and "生成补全邀请码" not in str(item.labels)
    sent = await county.press(QINGSHAN_OFFICIAL, item.button("提交资格联审"))
    assert len(to(sent, POLICE)) == 1
    assert await status_of(county, nid) == "vetting"


async def _recommend_with_phone(bot: BotHarness, name: str) -> int:
    await bot.send(RECOMMENDER, "/recommend")
    question = last(await bot.send(RECOMMENDER, name))
    for choice in ["青山镇", "第2村"]:
        question = last(await bot.press(RECOMMENDER, question.button(choice)))
    question = last(await bot.send(RECOMMENDER, PHONE))
    question = last(await bot.press(RECOMMENDER, question.button("致富能手")))
    review = last(await bot.send(RECOMMENDER, "带领村民种茶致富"))
    done = last(to(await bot.press(RECOMMENDER, review.button("确认提交")), RECOMMENDER))
    assert "推荐已提交" in done.text
    return await nomination_id(bot, name)


async def test_the_nominees_own_phone_opens_the_recommended_file(county: BotHarness) -> None:
    nid = await _recommend_with_phone(county, "孙八")
    (consent,) = await county.send(CANDIDATE, "/nominate")
    (sensitive,) = await county.press(CANDIDATE, consent.button("同意"))
    question = last(await county.press(CANDIDATE, sensitive.button("同意")))
    question = last(await county.send(CANDIDATE, "孙八"))
    question = last(await county.press(CANDIDATE, question.button("男")))
    question = last(await county.send(CANDIDATE, ID_2))
    # A shared number that is no mainland mobile is refused like a typed one.
    foreign = await county.send_contact(CANDIDATE, "+14155550100")
    assert "11 位中国大陆手机号" in foreign[0].text
    # Typed, the number proves nothing: the person is asked to share it, told nothing more.
    typed = await county.send(CANDIDATE, PHONE)
    assert "分享您本人的手机号" in typed[0].text
    assert not any("已有报名或推荐记录" in s.text or "举荐" in s.text for s in typed)
    shared = await county.send_contact(CANDIDATE, PHONE)
    assert "等待您本人完善的档案" in shared[0].text
    question = last(shared)
    for choice in ["土家族", "中共党员", "高中", "青山镇", "第2村", "致富能手"]:
        question = last(await county.press(CANDIDATE, question.button(choice)))
    for answer in ["种茶", "在外务工五年", "建设家乡"]:
        question = last(await county.send(CANDIDATE, answer))
    done = await county.press(CANDIDATE, question.button("确认提交"))
    assert "报名已提交" in last(to(done, CANDIDATE)).text
    async with county.database.sessionmaker() as session:
        rows = list(await session.scalars(select(Nomination)))
        account = await session.get_one(TelegramAccount, CANDIDATE)
    # One file, the recommended one, now the nominee's own and consented.
    assert [n.id for n in rows] == [nid]
    assert rows[0].person_id == account.person_id and rows[0].consent_at is not None
    cipher = DataCipher(county.settings.require_data_key())
    assert rows[0].id_number_hash == cipher.lookup_hash(ID_2)


async def test_an_officials_recommendation_is_organizational_and_in_scope(
    county: BotHarness,
) -> None:
    async with county.database.sessionmaker() as session:
        muhuang = await session.scalar(select(Township.id).where(Township.name == "木黄镇"))
    await county.send(QINGSHAN_OFFICIAL, "/recommend")
    question = last(await county.send(QINGSHAN_OFFICIAL, "周九"))
    # Only the official's own township is offered; another one's button is refused.
    assert question.labels == ["青山镇"]
    stale = await county.press(QINGSHAN_OFFICIAL, f"rec:t:{muhuang}")
    assert "已失效" in stale[0].text and last(stale).labels == ["青山镇"]
    for choice in ["青山镇", "第1村", "跳过", "致富能手"]:
        question = last(await county.press(QINGSHAN_OFFICIAL, question.button(choice)))
    review = last(await county.send(QINGSHAN_OFFICIAL, "种植大户"))
    done = last(await county.press(QINGSHAN_OFFICIAL, review.button("确认提交")))
    assert "组织推荐已登记" in done.text
    assert "感谢" not in done.text and "身份不会告知" not in done.text
    nid = await nomination_id(county, "周九")
    async with county.database.sessionmaker() as session:
        assert (await session.get_one(Nomination, nid)).channel == "organization"
