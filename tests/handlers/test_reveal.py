"""Issue 12, item 3, through a real Application: the people who must act see what they need,
every look audited, and a look out of scope is an audited refusal.

The world is /export's (tests/handlers/test_export.py): 张三 (ID_A, phone 13900000001) in
青山镇's pool, 王五 (13900000002) in 木黄镇's, officials, a police reviewer, the uploads sent.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from storage.crypto import DataCipher
from storage.models import AuditLog, UserData
from storage.rules.identity import make_id_number
from tests.handlers.test_export import (
    ADMIN,
    CANDIDATE,
    COUNTY,
    FORBIDDEN,
    ID_A,
    MENTOR,
    OFFICIAL_A,
    REVIEWER,
    STRANGER,
    World,
    _cells,
    _nomination_of,
    world,
)
from tests.support.county import nominate

__all__ = ["world"]  # the fixture, shared with test_export

PHONE_ZHANG = "13900000001"
BORN = date(1988, 6, 6)
ID_C = make_id_number("520221", BORN, 21, male=False)
SHOW_PHONE = "查看完整手机号"


async def _audit(world: World, action: str) -> list[AuditLog]:
    async with world.bot.database.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
        )
        return list(rows)


def _datas(replies: list[Any]) -> list[str]:
    return [data for reply in replies for row in reply.buttons for _label, data in row]


async def test_township_official_reveals_a_phone_once_from_the_file(world: World) -> None:
    nid = await _nomination_of(world, "张三")
    (file,) = await world.bot.send(OFFICIAL_A, f"/dossier {nid}")
    assert PHONE_ZHANG not in file.text and "139****0001" in file.text
    assert any(SHOW_PHONE in label for label in file.labels)

    replies = await world.bot.press(OFFICIAL_A, file.button(SHOW_PHONE))

    (shown,) = replies
    assert PHONE_ZHANG in shown.text and "张三" in shown.text and "已记录" in shown.text
    assert not shown.edited  # a message of its own: the file stays as it was
    (row,) = await _audit(world, "phone.reveal")
    assert (row.subject_type, row.subject_id) == ("nomination", nid)
    assert row.detail == {"via": "button", "full": ["phone"]}
    assert PHONE_ZHANG not in repr(row.detail)
    # Every tap is a new look, audited again; the number is in no draft.
    await world.bot.press(OFFICIAL_A, f"ph:{nid}")
    assert len(await _audit(world, "phone.reveal")) == 2
    cipher = DataCipher(world.bot.settings.require_data_key())
    async with world.bot.database.sessionmaker() as session:
        stored = [cipher.decrypt_bytes(r.payload) for r in await session.scalars(select(UserData))]
    assert not any(PHONE_ZHANG.encode() in payload for payload in stored)
    # The person can see who saw their number, and what was shown.
    (mine,) = await world.bot.send(CANDIDATE, "/mydata")
    assert "乡镇（街道）干部（青山镇）查阅（含完整手机号）" in mine.text


async def test_the_review_card_offers_the_phone_too(world: World) -> None:
    nid = await nominate(world.county, "赵六", "青山镇", to="new")
    (card,) = await world.bot.press(OFFICIAL_A, f"rv:o:{nid}")
    assert f"ph:{nid}" in _datas([card])
    (shown,) = await world.bot.press(OFFICIAL_A, f"ph:{nid}")
    assert "赵六" in shown.text and "1390000000" in shown.text


async def test_county_officials_may_reveal_what_they_manage(world: World) -> None:
    nid = await _nomination_of(world, "王五")
    (shown,) = await world.bot.press(COUNTY, f"ph:{nid}")
    assert "13900000002" in shown.text


async def test_out_of_scope_reveals_are_refused_and_audited(world: World) -> None:
    other = await _nomination_of(world, "王五")
    own = await _nomination_of(world, "张三")
    # The candidate reads their own file, with no button to reveal (it is their number).
    (file,) = await world.bot.send(CANDIDATE, "/dossier")
    assert f"ph:{own}" not in _datas([file])
    for who, nid in (
        (OFFICIAL_A, other),
        (MENTOR, own),
        (REVIEWER, own),
        (CANDIDATE, own),
        (STRANGER, own),
    ):
        replies = await world.bot.press(who, f"ph:{nid}")
        assert [r.text for r in replies] == [FORBIDDEN], who
        assert not any("1390000000" in r.text for r in replies)
    assert await _audit(world, "phone.reveal") == []
    denied = await _audit(world, "denied")
    assert len(denied) == 5
    assert {r.detail["attempted"] for r in denied} == {"button:ph"}


async def test_a_reviewer_sees_the_check_fields_one_person_at_a_time(world: World) -> None:
    nid = await nominate(
        world.county,
        "孙八",
        "青山镇",
        to="vetting",
        id_number=ID_C,
        gender="female",
        birth_date=BORN,
        village_id=None,
    )
    (queue,) = await world.bot.send(REVIEWER, "/vetting")
    assert "孙八" in queue.text and "/vetting 名单" in queue.text
    (card,) = await world.bot.press(REVIEWER, queue.button("孙八"))
    assert "孙八" in card.text and ID_C in card.text and "青山镇" in card.text
    assert "性别：女" in card.text and "出生日期：1988-06-06" in card.text
    reads = [r for r in await _audit(world, "nomination.read") if r.subject_id == nid]
    assert [r.detail for r in reads] == [{"via": "vetting", "full": ["id_number"]}]


async def test_a_reviewer_takes_the_queue_as_a_list_for_the_check(world: World) -> None:
    first = await nominate(world.county, "孙八", "青山镇", to="vetting", id_number=ID_C)
    second = await nominate(world.county, "周九", "木黄镇", to="vetting")
    await nominate(world.county, "吴十", "青山镇", to="new")

    replies = await world.bot.send(REVIEWER, "/vetting 名单")

    assert [r.kind for r in replies] == ["document"]
    assert "共 2 人" in replies[0].text
    (upload,) = world.uploads
    assert upload.chat_id == REVIEWER and upload.filename.startswith("vetting-")
    ((title, rows),) = _cells(upload.content).items()
    assert title == "待核查名单"
    assert rows[0][:4] == ("联审部门", "编号", "姓名", "身份证号（完整）")
    assert [row[2] for row in rows[1:]] == ["孙八", "周九"]
    assert rows[1][3] == ID_C and rows[1][0] == "公安"
    assert "吴十" not in repr(rows)
    listed = await _audit(world, "export.vetting")
    assert sorted(r.subject_id for r in listed) == sorted([first, second])
    assert all(r.detail == {"department": "police", "full": ["id_number"]} for r in listed)


async def test_the_list_is_only_for_reviewers_and_empty_queues_send_nothing(world: World) -> None:
    replies = await world.bot.send(REVIEWER, "/vetting list")
    assert [r.kind for r in replies] == ["text"] and "没有待本部门审核" in replies[0].text
    for who in (OFFICIAL_A, COUNTY, STRANGER):
        replies = await world.bot.send(who, "/vetting 名单")
        assert [r.text for r in replies] == [FORBIDDEN], who
    assert world.uploads == [] and await _audit(world, "export.vetting") == []


async def test_export_carries_full_phones_only_when_asked(world: World) -> None:
    (default,) = await world.bot.send(OFFICIAL_A, "/export")
    assert "已脱敏" in default.text and "/export 手机号" in default.text
    assert PHONE_ZHANG not in repr(_cells(world.uploads[-1].content))
    assert await _audit(world, "export.phone") == []

    (usage,) = await world.bot.send(OFFICIAL_A, "/export 电话")
    assert usage.kind == "text" and "/export 手机号" in usage.text
    assert len(world.uploads) == 1

    (full,) = await world.bot.send(OFFICIAL_A, "/export 手机号")
    assert full.kind == "document" and "完整号码" in full.text
    roster = _cells(world.uploads[-1].content)["花名册"]
    assert "手机号（完整）" in roster[0]
    assert PHONE_ZHANG in repr(roster) and ID_A not in repr(roster)
    assert "13900000002" not in repr(roster)  # 木黄镇's is not theirs
    (row,) = await _audit(world, "export.phone")
    assert row.subject_id == await _nomination_of(world, "张三")
    workbooks = await _audit(world, "export.workbook")
    assert [w.detail.get("phones") for w in workbooks] == [None, True]


async def test_export_with_phones_in_english_and_refused_to_others(world: World) -> None:
    (full,) = await world.bot.send(ADMIN, "/export phones", language_code="en")
    assert full.kind == "document" and "in full" in full.text
    assert len(await _audit(world, "export.phone")) == 2
    replies = await world.bot.send(MENTOR, "/export 手机号")
    assert [r.text for r in replies] == [FORBIDDEN]
