"""/pool and /dossier through a real Application: paging, filters, search, files, adjusting."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import func, insert, select, update

from storage import people
from storage.crypto import DataCipher
from storage.models import (
    AuditLog,
    ConversationState,
    Nomination,
    Role,
    RoleGrant,
    StatusChange,
    UserData,
)
from storage.rules.identity import make_id_number
from storage.rules.vetting import Channel
from tests.support.county import T0, County, build_county, grant, nominate
from tests.support.fake_telegram import Sent
from tests.support.harness import BotHarness

COUNTY_OFFICIAL = 7001
TOWNSHIP_A = 7002
CANDIDATE = 7003
STRANGER = 7004
RECOMMENDER = 7005


def last(replies: list[Sent]) -> Sent:
    assert replies, "the bot sent nothing"
    return replies[-1]


def person_buttons(sent: Sent) -> list[str]:
    return [label for row in sent.buttons for label, data in row if data.startswith("pl:o:")]


async def dossier_reads(bot: BotHarness) -> int:
    async with bot.database.sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(AuditLog).where(AuditLog.action == "dossier.read")
            )
            or 0
        )


@pytest.fixture
async def county(harness: BotHarness) -> County:
    county = await build_county(harness)
    await grant(harness, COUNTY_OFFICIAL, Role.COUNTY_OFFICIAL)
    await grant(harness, TOWNSHIP_A, Role.TOWNSHIP_OFFICIAL, township_id=county.towns["青山镇"])
    return county


async def test_pool_is_paged_ten_at_a_time(county: County) -> None:
    bot = county.bot
    for i in range(23):
        await nominate(county, f"张{chr(0x4E00 + i)}{chr(0x4E00 + i)}")
    await nominate(county, "李待审", to="vetting")
    (first,) = await bot.send(COUNTY_OFFICIAL, "/pool")
    assert "共 23 人，第 1/3 页" in first.text and "已入库" in first.text
    assert len(person_buttons(first)) == 10
    assert "李待审" not in first.text
    assert "上一页" not in first.labels
    (second,) = await bot.press(COUNTY_OFFICIAL, first.button("下一页"))
    assert second.edited and "第 2/3 页" in second.text and "11. " in second.text
    assert set(person_buttons(second)).isdisjoint(person_buttons(first))
    (third,) = await bot.press(COUNTY_OFFICIAL, second.button("下一页"))
    assert "第 3/3 页" in third.text and len(person_buttons(third)) == 3
    assert "下一页" not in third.labels
    (back,) = await bot.press(COUNTY_OFFICIAL, third.button("上一页"))
    assert "第 2/3 页" in back.text
    # A page that no longer exists shows the last one there is.
    (clamped,) = await bot.press(COUNTY_OFFICIAL, "pl:p:40")
    assert "第 3/3 页" in clamped.text
    # Every button is a short id, never a name.
    for row in first.buttons:
        for _label, data in row:
            assert data.startswith("pl:") and len(data.encode()) <= 64
            assert "张" not in data


async def test_filters_by_group_education_status_and_township(county: County) -> None:
    bot = county.bot
    await nominate(county, "王退伍", key_group="veteran", education="high_school")
    await nominate(county, "赵能手", key_group="wealth_leader", education="bachelor")
    await nominate(county, "钱医生", key_group="doctor_teacher", education="college")
    await nominate(county, "孙木黄", "木黄镇", key_group="veteran", education="bachelor")
    await nominate(county, "周联审", key_group="veteran", to="vetting")
    await nominate(county, "吴出库", key_group="veteran", to="adjusted")

    (listing,) = await bot.send(COUNTY_OFFICIAL, "/pool")
    assert "共 4 人" in listing.text and "清除筛选" not in listing.labels
    (choose,) = await bot.press(COUNTY_OFFICIAL, listing.button("按类别"))
    assert "人员类别" in choose.text and "退役军人" in choose.labels
    (veterans,) = await bot.press(COUNTY_OFFICIAL, choose.button("退役军人"))
    assert "共 2 人" in veterans.text and "人员类别：退役军人" in veterans.text
    assert "王退伍" in veterans.text and "孙木黄" in veterans.text
    (choose,) = await bot.press(COUNTY_OFFICIAL, veterans.button("按学历"))
    (bachelors,) = await bot.press(COUNTY_OFFICIAL, choose.button("本科"))
    assert person_buttons(bachelors) == ["孙木黄 · 木黄镇"]
    (choose,) = await bot.press(COUNTY_OFFICIAL, bachelors.button("按乡镇"))
    (nobody,) = await bot.press(COUNTY_OFFICIAL, choose.button("青山镇"))
    assert "没有符合条件的人员" in nobody.text and "乡镇（街道）：青山镇" in nobody.text
    (cleared,) = await bot.press(COUNTY_OFFICIAL, nobody.button("清除筛选"))
    assert "共 4 人" in cleared.text
    (choose,) = await bot.press(COUNTY_OFFICIAL, cleared.button("按状态"))
    (vetting,) = await bot.press(COUNTY_OFFICIAL, choose.button("资格联审中"))
    assert person_buttons(vetting) == ["周联审 · 青山镇"] and "资格联审中" in vetting.text
    (choose,) = await bot.press(COUNTY_OFFICIAL, vetting.button("按状态"))
    (adjusted,) = await bot.press(COUNTY_OFFICIAL, choose.button("已调整出库"))
    assert person_buttons(adjusted) == ["吴出库 · 青山镇"]
    # "Any" lifts one filter; the filter survives a restart (user_data is persisted).
    (choose,) = await bot.press(COUNTY_OFFICIAL, adjusted.button("按状态"))
    (any_status,) = await bot.press(COUNTY_OFFICIAL, choose.button("不限"))
    assert "共 4 人" in any_status.text
    (choose,) = await bot.press(COUNTY_OFFICIAL, any_status.button("按类别"))
    await bot.press(COUNTY_OFFICIAL, choose.button("乡村医生教师"))
    await bot.restart()
    (again,) = await bot.send(COUNTY_OFFICIAL, "/pool")
    assert person_buttons(again) == ["钱医生 · 青山镇"]


async def test_township_official_sees_own_township_only(county: County) -> None:
    bot = county.bot
    await nominate(county, "青山甲")
    await nominate(county, "木黄乙", "木黄镇")
    (listing,) = await bot.send(TOWNSHIP_A, "/pool")
    assert "青山甲" in listing.text and "木黄乙" not in listing.text
    assert "按乡镇" not in listing.labels
    # A forged township filter is refused, not silently applied.
    (forged,) = await bot.press(TOWNSHIP_A, f"pl:f:t:{county.towns['木黄镇']}")
    assert "没有权限" in forged.text and "木黄乙" not in forged.text
    (forged,) = await bot.press(TOWNSHIP_A, "pl:f:t")
    assert "没有权限" in forged.text


async def test_search_by_name_escapes_wildcards(county: County) -> None:
    bot = county.bot
    await nominate(county, "张三丰")
    await nominate(county, "张无忌")
    await nominate(county, "李寻欢")
    (listing,) = await bot.send(COUNTY_OFFICIAL, "/pool")
    (ask,) = await bot.press(COUNTY_OFFICIAL, listing.button("按姓名搜索"))
    assert "姓名" in ask.text
    wrong, again = await bot.send_sticker(COUNTY_OFFICIAL)
    assert "文字" in wrong.text and "姓名" in again.text
    invalid, again = await bot.send(COUNTY_OFFICIAL, "张" * 21)
    assert "1–20" in invalid.text and "姓名" in again.text
    # The engine asks the open question again under "busy" (before, the question scrolled away).
    busy, again = await bot.send(COUNTY_OFFICIAL, "/nosuch")
    assert "/cancel" in busy.text and "姓名" in again.text
    (found,) = await bot.send(COUNTY_OFFICIAL, "张")
    assert "姓名含：张" in found.text
    assert sorted(person_buttons(found)) == ["张三丰 · 青山镇", "张无忌 · 青山镇"]
    for wildcard in ("%", "_"):
        (ask,) = await bot.press(COUNTY_OFFICIAL, "pl:s")
        (none,) = await bot.send(COUNTY_OFFICIAL, wildcard)
        assert "没有符合条件的人员" in none.text
    (ask,) = await bot.press(COUNTY_OFFICIAL, "pl:s")
    (cancelled,) = await bot.send(COUNTY_OFFICIAL, "/cancel")
    assert "已退出" in cancelled.text
    # After /cancel, text is no longer taken as a name.
    (reply,) = await bot.send(COUNTY_OFFICIAL, "李")
    assert "没有理解" in reply.text


async def test_dossier_shows_the_file_with_masked_id_and_phone(county: County) -> None:
    bot = county.bot
    id_number = make_id_number("520221", date(1990, 3, 7), 12, male=True)
    await grant(bot, RECOMMENDER, None, full_name="举荐人甲")
    async with bot.database.sessionmaker() as session:
        recommender = await people.load_actor(session, RECOMMENDER)
    assert recommender is not None
    nid = await nominate(
        county,
        "陈小明",
        channel=Channel.MASS,
        submitted_by=recommender.person_id,
        gender="male",
        birth_date=date(1990, 3, 7),
        ethnicity="tujia",
        political_status="party_member",
        id_number=id_number,
        specialties="电商<b>运营</b>",
        work_history="在外务工五年",
        motivation="建设家乡",
        reason="带头种茶",
    )
    async with bot.database.sessionmaker() as session:
        phone = (await session.get_one(Nomination, nid)).phone_masked
    replies = await bot.send(COUNTY_OFFICIAL, f"/dossier {nid}")
    text = "\n".join(r.text for r in replies)
    assert "一人一档 · 陈小明" in text and f"档案编号：{nid}" in text
    assert f"身份证号：{id_number[:4]}{'*' * 10}{id_number[-4:]}" in text
    assert id_number not in text and id_number[4:14] not in text
    assert f"手机号：{phone}" in text and "****" in (phone or "")
    for shown in ("性别：男", "出生日期：1990-03-07", "民族：土家族", "政治面貌：中共党员"):
        assert shown in text
    assert "学历：大专" in text and "乡镇（街道）：青山镇" in text and "人员类别：退役军人" in text
    assert "推荐方式：群众举荐" in text and "电商&lt;b&gt;运营&lt;/b&gt;" in text
    assert "带头种茶" in text  # officials see the recommendation's reason…
    assert "举荐人甲" not in text  # …never who made it
    assert "2026-03-02 04:30 提交报名或推荐 → 待乡镇审核" in text
    assert "通过资格联审 → 已入库" in text
    assert "公安：通过（2026-03-02 04:30）" in text and "意见：无违法违纪记录" in text
    assert replies[-1].button("调整出库") == f"pl:a:{nid}"
    # Full-width digits and a leading "#" work; the read is audited each time.
    before = await dossier_reads(bot)
    fullwidth = str(nid).translate({48 + i: 0xFF10 + i for i in range(10)})
    replies = await bot.send(COUNTY_OFFICIAL, f"/dossier #{fullwidth}")
    assert "陈小明" in replies[0].text
    assert await dossier_reads(bot) == before + 1
    for sent in bot.fake.sent:
        assert id_number not in sent.text


async def test_dossier_usage_and_forged_buttons(county: County) -> None:
    bot = county.bot
    nid = await nominate(county, "郑秘密")
    for command in ("/dossier abc", "/dossier 1 2", "/dossier", "/dossier 99999999999"):
        (usage,) = await bot.send(COUNTY_OFFICIAL, command)
        assert "/dossier 123" in usage.text
    (forbidden,) = await bot.press(COUNTY_OFFICIAL, "pl:o:999999")
    assert "没有权限" in forbidden.text
    for forged in ("pl:zz", "pl:f:kg:no_such_group", "pl:o:1x", "pl:y:1", f"pl:n:{nid}"):
        (stale,) = await bot.press(COUNTY_OFFICIAL, forged)
        assert "失效" in stale.text and "郑秘密" not in stale.text
    (forbidden,) = await bot.send(STRANGER, "/pool")
    assert "没有权限" in forbidden.text
    (forbidden,) = await bot.press(STRANGER, f"pl:o:{nid}")
    assert "没有权限" in forbidden.text and "郑秘密" not in forbidden.text


async def test_long_file_is_split_never_cut(county: County) -> None:
    bot = county.bot
    long_specialties = "种植" * 249 + "尾"
    long_work = "在外务工经历" * 166 + "末"
    long_motivation = "服务群众" * 249 + "终"
    long_note = "意见" * 499 + "完"
    long_reason = "理由" * 499 + "止"
    nid = await nominate(
        county,
        "林长档",
        to="rejected",
        specialties=long_specialties,
        work_history=long_work,
        motivation=long_motivation,
        reject_note=long_note,
        reason=long_reason,
    )
    replies = await bot.send(COUNTY_OFFICIAL, f"/dossier {nid}")
    assert len(replies) >= 2
    assert all(len(r.text) <= 4096 for r in replies)
    joined = "".join(r.text for r in replies)
    for piece in (long_specialties, long_work, long_motivation, long_note, long_reason):
        assert piece in joined.replace("\n", "")
    # The police veto settled it: the other departments' open reviews are moot, not pending.
    assert "纪检监察：无需审核" in joined and "待审核" not in joined


async def test_open_reviews_of_a_nomination_in_vetting_are_pending(county: County) -> None:
    nid = await nominate(county, "周联审", to="vetting")
    (file,) = await county.bot.send(COUNTY_OFFICIAL, f"/dossier {nid}")
    assert "公安：待审核" in file.text and "当前状态：资格联审中" in file.text
    assert "调整出库" not in file.labels  # only someone in the pool can be adjusted out


async def test_adjust_out_with_bad_input_cancel_and_confirmation(harness_any: BotHarness) -> None:
    bot = harness_any
    county = await build_county(bot)
    await grant(bot, TOWNSHIP_A, Role.TOWNSHIP_OFFICIAL, township_id=county.towns["青山镇"])
    nid = await nominate(county, "何调整")

    async def status_and_history() -> tuple[str, int]:
        async with bot.database.sessionmaker() as session:
            nomination = await session.get_one(Nomination, nid)
            changes = await session.scalar(
                select(func.count())
                .select_from(StatusChange)
                .where(StatusChange.nomination_id == nid)
            )
            return nomination.status, int(changes or 0)

    before = await status_and_history()
    assert before[0] == "in_pool"
    (listing,) = await bot.send(TOWNSHIP_A, "/pool")
    (file,) = await bot.press(TOWNSHIP_A, listing.button("何调整"))
    (ask,) = await bot.press(TOWNSHIP_A, file.button("调整出库"))
    assert "何调整" in ask.text and "2–500" in ask.text
    error, again = await bot.send(TOWNSHIP_A, "走")
    assert "2–500" in error.text and "调整原因" in again.text
    error, again = await bot.send(TOWNSHIP_A, "x" * 501)
    assert "2–500" in error.text
    error, again = await bot.send(TOWNSHIP_A, "坏\u202e字")
    assert "控制字符" in error.text
    wrong, again = await bot.send_sticker(TOWNSHIP_A)
    assert "文字" in wrong.text and "调整原因" in again.text
    # The engine asks the open question again under "busy" (before, the question scrolled away).
    busy, again = await bot.send(TOWNSHIP_A, "/nosuch")
    assert "调整出库" in busy.text and "/cancel" in busy.text and "调整原因" in again.text
    (kept,) = await bot.send(TOWNSHIP_A, "/cancel")
    assert "未做任何调整" in kept.text
    assert await status_and_history() == before

    # Confirmation screen: "keep" changes nothing, typed text only re-asks.
    (ask,) = await bot.press(TOWNSHIP_A, file.button("调整出库"))
    (confirm,) = await bot.send(TOWNSHIP_A, "  长期在外，无法履职  ")
    assert "长期在外，无法履职" in confirm.text and "确认调整出库" in confirm.labels
    use_buttons, confirm = await bot.send(TOWNSHIP_A, "确认")
    assert "按钮" in use_buttons.text
    (kept,) = await bot.press(TOWNSHIP_A, confirm.button("暂不调整"))
    assert "未做任何调整" in kept.text
    assert await status_and_history() == before

    # Another button in the middle abandons the adjustment.
    await bot.press(TOWNSHIP_A, file.button("调整出库"))
    await bot.press(TOWNSHIP_A, "pl:p:0")
    (reply,) = await bot.send(TOWNSHIP_A, "不该被当作原因")
    assert "没有理解" in reply.text
    assert await status_and_history() == before

    (ask,) = await bot.press(TOWNSHIP_A, file.button("调整出库"))
    (confirm,) = await bot.send(TOWNSHIP_A, "长期在外，无法履职")
    (done,) = await bot.press(TOWNSHIP_A, confirm.button("确认调整出库"))
    assert "已将 何调整 调整出库" in done.text.replace("<b>", "").replace("</b>", "")
    status, changes = await status_and_history()
    assert status == "adjusted" and changes == before[1] + 1
    async with bot.database.sessionmaker() as session:
        latest = await session.scalar(
            select(StatusChange)
            .where(StatusChange.nomination_id == nid)
            .order_by(StatusChange.id.desc())
            .limit(1)
        )
    assert latest is not None and latest.event == "adjust_out"
    assert latest.reason is None and latest.reason_enc is not None  # encrypted at rest
    assert county.cipher.decrypt(latest.reason_enc) == "长期在外，无法履职"
    assert latest.from_status == "in_pool"

    # The same confirmation pressed again, or the old adjust button: nothing happens.
    (stale,) = await bot.press(TOWNSHIP_A, confirm.button("确认调整出库"))
    assert "失效" in stale.text
    (gone,) = await bot.press(TOWNSHIP_A, file.button("调整出库"))
    assert "已不在资源库中" in gone.text
    replies = await bot.send(TOWNSHIP_A, f"/dossier {nid}")
    text = "\n".join(r.text for r in replies)
    assert "当前状态：已调整出库" in text and "原因：长期在外，无法履职" in text
    assert "调整出库" not in replies[-1].labels


async def test_candidate_sees_own_file_only(county: County) -> None:
    bot = county.bot
    candidate = await grant(bot, CANDIDATE, None)
    own = await nominate(
        county,
        "冯自荐",
        to="rejected",
        person_id=candidate,
        submitted_by=candidate,
        reject_note="有犯罪记录",
        reason="组织考察意见",
    )
    other = await nominate(county, "褚别人")
    replies = await bot.send(CANDIDATE, "/dossier")
    text = "\n".join(r.text for r in replies)
    assert "一人一档 · 冯自荐" in text and "未通过资格联审" in text
    assert "有犯罪记录" not in text and "组织考察意见" not in text
    assert "资格联审</b>" not in text and "公安" not in text and "原因" not in text
    assert not replies[-1].buttons
    (same,) = await bot.send(CANDIDATE, f"/dossier {own}")
    assert "冯自荐" in same.text
    (denied,) = await bot.send(CANDIDATE, f"/dossier {other}")
    assert "没有权限" in denied.text and "褚别人" not in denied.text
    (denied,) = await bot.send(CANDIDATE, "/pool")
    assert "没有权限" in denied.text
    (denied,) = await bot.press(CANDIDATE, f"pl:a:{own}")
    assert "没有权限" in denied.text
    (none,) = await bot.send(STRANGER, "/dossier")
    assert "/nominate" in none.text
    (english,) = await bot.send(CANDIDATE, "/dossier", language_code="en")
    assert "File · 冯自荐" in english.text and "Did not pass vetting" in english.text


async def test_confirmation_rechecks_scope_and_status(county: County) -> None:
    bot = county.bot
    first = await nominate(county, "吕先到")
    second = await nominate(county, "施后到")

    async def to_confirmation(user: int, nid: int) -> Sent:
        await bot.press(user, f"pl:a:{nid}")
        return last(await bot.send(user, "不再适宜担任后备干部"))

    # Two officials adjust the same person: the second one is told, nothing changes twice.
    late = await to_confirmation(TOWNSHIP_A, first)
    done = await to_confirmation(COUNTY_OFFICIAL, first)
    await bot.press(COUNTY_OFFICIAL, done.button("确认调整出库"))
    (gone,) = await bot.press(TOWNSHIP_A, late.button("确认调整出库"))
    assert "已不在资源库中" in gone.text
    async with bot.database.sessionmaker() as session:
        events = await session.scalars(
            select(StatusChange.event).where(StatusChange.nomination_id == first)
        )
        assert list(events).count("adjust_out") == 1

    # A grant revoked between the question and the press: refused, still in the pool.
    confirm = await to_confirmation(TOWNSHIP_A, second)
    async with bot.database.sessionmaker.begin() as session:
        await session.execute(
            update(RoleGrant).where(RoleGrant.role == "township_official").values(revoked_at=T0)
        )
    (denied,) = await bot.press(TOWNSHIP_A, confirm.button("确认调整出库"))
    assert "没有权限" in denied.text
    async with bot.database.sessionmaker() as session:
        assert (await session.get_one(Nomination, second)).status == "in_pool"
    # Every other pool button refuses a former official too.
    for data in ("pl:x", "pl:s", "pl:f:kg", "pl:p:0", "pl:f:kg:veteran", f"pl:a:{second}"):
        (denied,) = await bot.press(TOWNSHIP_A, data)
        assert "没有权限" in denied.text and "施后到" not in denied.text


async def test_a_search_or_adjustment_open_before_the_engine_is_finished_under_it(
    harness_any: BotHarness,
) -> None:
    """Nobody is stranded by the deploy: user_data["pool"] and the "pool" conversation's state
    as the module before the flow engine wrote them (0 a name, 1 a reason, 2 the confirmation)
    resume at the same moment with what was entered."""
    bot = harness_any
    county = await build_county(bot)
    searcher, reasoner, confirmer = COUNTY_OFFICIAL, TOWNSHIP_A, 7006
    await grant(bot, searcher, Role.COUNTY_OFFICIAL)
    await grant(bot, reasoner, Role.TOWNSHIP_OFFICIAL, township_id=county.towns["青山镇"])
    await grant(bot, confirmer, Role.COUNTY_OFFICIAL)
    first = await nominate(county, "张旧稿")
    second = await nominate(county, "李旧稿")
    await bot.stop()
    old = {
        searcher: ({"kg": "veteran", "page": 0, "waiting": "name"}, 0),
        reasoner: ({"adjust": first, "adjust_name": "张旧稿", "waiting": "reason"}, 1),
        confirmer: (
            {"adjust": second, "adjust_name": "李旧稿", "waiting": "confirm", "reason": "外出"},
            2,
        ),
    }
    cipher = DataCipher(bot.settings.require_data_key())
    async with bot.database.sessionmaker.begin() as session:
        for user, (draft, state) in old.items():
            payload = cipher.encrypt(json.dumps({"pool": draft}))
            await session.execute(insert(UserData).values(user_id=user, payload=payload))
            await session.execute(
                insert(ConversationState).values(
                    name="pool", key=json.dumps([user, user]), state={"state": state}
                )
            )
    await bot.start()

    (found,) = await bot.send(searcher, "张")
    assert person_buttons(found) == ["张旧稿 · 青山镇"] and "姓名含：张" in found.text
    assert "人员类别：退役军人" in found.text  # the filter chosen before the deploy holds

    confirm = last(await bot.send(reasoner, "不再适宜担任"))
    assert "张旧稿" in confirm.text and "不再适宜担任" in confirm.text
    (done,) = await bot.press(reasoner, confirm.button("确认调整出库"))
    assert "已将 张旧稿 调整出库" in done.text.replace("<b>", "").replace("</b>", "")

    # The confirmation button of the message sent before the deploy still works.
    (done,) = await bot.press(confirmer, f"pl:y:{second}")
    assert "已将 李旧稿 调整出库" in done.text.replace("<b>", "").replace("</b>", "")
    async with bot.database.sessionmaker() as session:
        statuses = await session.scalars(
            select(Nomination.status).where(Nomination.id.in_([first, second]))
        )
        assert list(statuses) == ["adjusted", "adjusted"]
