"""/invite and /staff through a real Application: codes made by officials within what their
role hands out, the staff in scope, a role revoked after a confirmation (the person's menu
marked, audited), a name corrected (audited), forged buttons refused."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from storage import audit as audit_log
from storage import people
from storage.models import AuditLog, InviteCode, Person, Role, RoleGrant, TelegramAccount
from tests.support.county import staff, townships
from tests.support.fake_telegram import Sent
from tests.support.harness import BotHarness, assert_refused, count

COUNTY, TOWN, FAR, ADMIN, REVIEWER = 8001, 8002, 8003, 8004, 8005
MENTOR, FAR_MENTOR, NEWCOMER = 8101, 8102, 8201


@dataclass
class Staffed:
    bot: BotHarness
    persons: dict[int, int]  # telegram id → person id

    async def grant_of(self, telegram_id: int) -> RoleGrant:
        async with self.bot.database.sessionmaker() as session:
            found = await session.scalar(
                select(RoleGrant).where(RoleGrant.person_id == self.persons[telegram_id])
            )
        assert found is not None
        return found

    async def account(self, telegram_id: int) -> TelegramAccount:
        async with self.bot.database.sessionmaker() as session:
            found = await session.get(TelegramAccount, telegram_id)
        assert found is not None
        return found

    async def audits(self, action: str) -> list[AuditLog]:
        async with self.bot.database.sessionmaker() as session:
            return list(await session.scalars(select(AuditLog).where(AuditLog.action == action)))


@pytest.fixture
async def county(harness: BotHarness) -> Staffed:
    async with harness.database.sessionmaker.begin() as session:
        ids = await townships(session, [("青山镇", "青山村"), ("木黄镇", "木黄村")])
        qs, mh = ids["青山镇"], ids["木黄镇"]
        persons = {
            COUNTY: await staff(session, COUNTY, "县干部", [(Role.COUNTY_OFFICIAL, None, None)]),
            ADMIN: await staff(session, ADMIN, "管理员", [(Role.ADMIN, None, None)]),
            TOWN: await staff(session, TOWN, "镇干部", [(Role.TOWNSHIP_OFFICIAL, qs, None)]),
            FAR: await staff(session, FAR, "远镇干部", [(Role.TOWNSHIP_OFFICIAL, mh, None)]),
            REVIEWER: await staff(
                session, REVIEWER, "审核员", [(Role.REVIEWER, None, None)], "police"
            ),
            MENTOR: await staff(session, MENTOR, "村书记", [(Role.MENTOR, qs, "village")]),
            FAR_MENTOR: await staff(
                session, FAR_MENTOR, "远导师", [(Role.MENTOR, mh, "township")]
            ),
        }
    return Staffed(harness, persons)


def only(replies: list[Sent]) -> Sent:
    assert len(replies) == 1, [r.text for r in replies]
    return replies[0]


def code_of(made: Sent) -> str:
    line = next(line for line in made.text.splitlines() if "?start=" in line)
    return line.rsplit("?start=", 1)[1].strip()


async def test_a_county_official_makes_a_reviewer_code_for_a_chosen_department(
    county: Staffed,
) -> None:
    bot = county.bot
    roles = only(await bot.send(COUNTY, "/invite"))
    assert roles.labels == ["乡镇（街道）干部", "联审部门审核人", "系统管理员"]
    departments = only(await bot.press(COUNTY, roles.button("审核人")))
    assert departments.labels == ["公安", "纪检监察", "司法"]
    confirm = only(await bot.press(COUNTY, departments.button("司法")))
    assert "联审部门审核人" in confirm.text and "司法" in confirm.text
    assert "有效期 7 天" in confirm.text
    assert await count(bot, InviteCode) == 0  # nothing is made before "make"
    made = only(await bot.press(COUNTY, confirm.button("生成邀请码")))
    code = code_of(made)
    assert f"https://t.me/cadre_test_bot?start={code}" in made.text
    assert f"<code>{code}</code>" in made.text
    async with bot.database.sessionmaker() as session:
        invite = await session.scalar(select(InviteCode))
    assert invite is not None
    assert (invite.role, invite.department) == ("reviewer", "judicial")
    assert invite.created_by_person_id == county.persons[COUNTY]
    # Only the hash is kept: the code itself is nowhere in the database's row.
    assert invite.code_hash == people.hash_code(code) != code
    await bot.send(NEWCOMER, f"/start {code}")
    async with bot.database.sessionmaker() as session:
        actor = await people.load_actor(session, NEWCOMER)
    assert actor is not None and actor.departments() == {"judicial"}
    assert [a.detail["role"] for a in await county.audits("invite.create")] == ["reviewer"]


async def test_a_township_official_code_names_the_chosen_township(county: Staffed) -> None:
    bot = county.bot
    roles = only(await bot.send(COUNTY, "/invite"))
    towns = only(await bot.press(COUNTY, roles.button("乡镇（街道）干部")))
    assert towns.labels == ["青山镇", "木黄镇"]
    confirm = only(await bot.press(COUNTY, towns.button("木黄镇")))
    made = only(await bot.press(COUNTY, confirm.button("生成邀请码")))
    await bot.send(NEWCOMER, f"/start {code_of(made)}")
    async with bot.database.sessionmaker() as session:
        actor = await people.load_actor(session, NEWCOMER)
    assert actor is not None and actor.grants[0].township_name == "木黄镇"
    assert actor.roles == {Role.TOWNSHIP_OFFICIAL}


async def test_an_admin_may_also_make_a_county_official_code(county: Staffed) -> None:
    roles = only(await county.bot.send(ADMIN, "/invite"))
    assert roles.labels == ["乡镇（街道）干部", "县委组织部干部", "联审部门审核人", "系统管理员"]


async def test_a_township_official_makes_mentor_codes_for_their_township_only(
    county: Staffed,
) -> None:
    bot = county.bot
    # Their only role to hand out and their only township are taken as chosen.
    slots = only(await bot.send(TOWN, "/invite"))
    assert slots.labels == ["乡镇干部导师", "村党组织书记导师"]
    confirm = only(await bot.press(TOWN, slots.button("村党组织书记")))
    assert "青山镇" in confirm.text
    made = only(await bot.press(TOWN, confirm.button("生成邀请码")))
    await bot.send(NEWCOMER, f"/start {code_of(made)}")
    async with bot.database.sessionmaker() as session:
        actor = await people.load_actor(session, NEWCOMER)
    assert actor is not None
    (grant,) = actor.grants
    assert (grant.role, grant.township_name, grant.mentor_slot) == (
        Role.MENTOR,
        "青山镇",
        "village",
    )


async def test_declining_makes_no_code_and_a_forged_role_is_refused(county: Staffed) -> None:
    bot = county.bot
    slots = only(await bot.send(TOWN, "/invite"))
    # A township official cannot make an admin code by forging the role button.
    forged = only(await bot.press(TOWN, "iv:r:admin"))
    assert "已失效" in forged.text
    confirm = only(await bot.press(TOWN, slots.button("乡镇干部导师")))
    dropped = only(await bot.press(TOWN, confirm.button("不生成")))
    assert "未生成" in dropped.text
    assert await count(bot, InviteCode) == 0


async def test_invite_and_staff_are_for_officials_only(county: Staffed) -> None:
    for user in (MENTOR, REVIEWER, NEWCOMER):
        await assert_refused(county.bot, user, "/invite")
        await assert_refused(county.bot, user, "/staff")
    help_text = only(await county.bot.send(COUNTY, "/help")).text
    assert "/invite" in help_text and "/staff" in help_text
    assert "/invite" not in only(await county.bot.send(MENTOR, "/help")).text


async def test_staff_lists_what_each_official_manages(county: Staffed) -> None:
    bot = county.bot
    listed = only(await bot.send(COUNTY, "/staff"))
    names = " ".join(listed.labels)
    for name in ("镇干部", "远镇干部", "审核员", "管理员", "村书记", "远导师"):
        assert name in names
    assert "县干部" not in names  # not oneself
    town = only(await bot.send(TOWN, "/staff"))
    assert town.labels == ["村书记 · 联系导师 · 青山镇"]
    assert "共 1 项" in town.text


async def test_revoking_asks_first_then_ends_the_role_and_marks_the_menu(
    county: Staffed,
) -> None:
    bot = county.bot
    listed = only(await bot.send(TOWN, "/staff"))
    card = only(await bot.press(TOWN, listed.button("村书记")))
    ask = only(await bot.press(TOWN, card.button("撤销身份")))
    assert "确认撤销" in ask.text and "村书记" in ask.text
    kept = only(await bot.press(TOWN, ask.button("保留身份")))
    assert "未作更改" in kept.text
    assert (await county.grant_of(MENTOR)).revoked_at is None
    menus_before = (await county.account(MENTOR)).menu_changes
    done = only(await bot.press(TOWN, ask.button("确认撤销")))
    assert "已撤销" in done.text
    grant = await county.grant_of(MENTOR)
    assert grant.revoked_at is not None
    assert (await county.account(MENTOR)).menu_changes == menus_before + 1
    (audit,) = await county.audits("role.revoke")
    assert (audit.actor_person_id, audit.subject_id) == (county.persons[TOWN], grant.id)
    # The role is gone at once: the mentor's commands refuse, the button is spent.
    await assert_refused(bot, MENTOR, "/mentees")
    again = only(await bot.press(TOWN, ask.button("确认撤销")))
    assert "已失效" in again.text
    assert len(await county.audits("role.revoke")) == 1
    assert "暂无" in only(await bot.send(TOWN, "/staff")).text


async def test_forged_staff_buttons_outside_scope_are_refused_and_audited(
    county: Staffed,
) -> None:
    bot = county.bot
    far = (await county.grant_of(FAR_MENTOR)).id
    official = (await county.grant_of(FAR)).id
    for data in (f"sf:o:{far}", f"sf:r:{far}", f"sf:ry:{far}", f"sf:ry:{official}"):
        assert "没有权限" in only(await bot.press(TOWN, data)).text, data
    assert (await county.grant_of(FAR_MENTOR)).revoked_at is None
    assert (await county.grant_of(FAR)).revoked_at is None
    denials = await county.audits(audit_log.DENIED)
    assert [d.actor_person_id for d in denials] == [county.persons[TOWN]] * 4
    refused = only(await bot.press(TOWN, f"sf:n:{far}"))
    assert "没有权限" in refused.text
    assert len(await county.audits(audit_log.DENIED)) == 5
    assert len(await county.audits("person.name_correct")) == 0


async def test_an_official_corrects_a_name_within_scope(county: Staffed) -> None:
    bot = county.bot
    listed = only(await bot.send(COUNTY, "/staff"))
    card = only(await bot.press(COUNTY, listed.button("远导师")))
    ask = only(await bot.press(COUNTY, card.button("更正姓名")))
    assert "远导师" in ask.text
    wrong = await bot.send(COUNTY, "x1")
    assert "姓名" in wrong[0].text
    done = only(await bot.send(COUNTY, "王  小明"))
    assert "王小明" in done.text
    async with bot.database.sessionmaker() as session:
        person = await session.get(Person, county.persons[FAR_MENTOR])
    assert person is not None and person.full_name == "王小明"
    (audit,) = await county.audits("person.name_correct")
    assert (audit.actor_person_id, audit.subject_id) == (
        county.persons[COUNTY],
        county.persons[FAR_MENTOR],
    )
    assert "王小明" not in str(audit.detail)  # the audit log holds ids, not the name


async def test_the_list_turns_pages_and_a_page_emptied_meanwhile_shows_the_first(
    county: Staffed,
) -> None:
    bot = county.bot
    async with bot.database.sessionmaker.begin() as session:
        ids = await townships(session, [])
        for n in range(5):  # 6 + 5 = 11 in the county official's scope: two pages of 8
            await staff(
                session, 8300 + n, f"导师{n}号", [(Role.MENTOR, ids["青山镇"], "township")]
            )
    first = only(await bot.send(COUNTY, "/staff"))
    assert "共 11 项，第 1/2 页" in first.text and len(first.labels) == 9  # 8, then "next"
    second = only(await bot.press(COUNTY, first.button("下一页")))
    assert "第 2/2 页" in second.text
    assert len(second.labels) == 4  # 3 people, "previous"
    assert not set(second.labels[:3]) & set(first.labels[:8])
    # A page that no longer exists (staff revoked meanwhile) shows the first one.
    assert "第 1/2 页" in only(await bot.press(COUNTY, "sf:pg:5")).text
