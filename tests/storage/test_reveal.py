"""Issue 12, item 3, in storage on SQLite and PostgreSQL: the full numbers are opened only for
those who must act, inside their scope, and each look is audited per file."""

from __future__ import annotations

import io
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from handlers.oversight.export import workbook_labels
from storage import export, reveal, review_queries
from storage.models import AuditLog
from storage.nominations import NotAllowed
from storage.rules.vetting import Channel, Decision
from templates import build_environment
from tests.storage.test_nominations_flow import (
    ADMIN,
    CANDIDATE,
    CIPHER,
    COUNTY_OFFICIAL,
    DISCIPLINE,
    ID_1,
    ID_2,
    JUDICIAL,
    MUHUANG_OFFICIAL,
    POLICE,
    QINGSHAN_OFFICIAL,
    STRANGER,
    County,
    county,
)

TZ = ZoneInfo("Asia/Shanghai")

__all__ = ["county"]  # the fixture, shared with test_nominations_flow

PHONE = "13812345678"


def _labels() -> dict[str, str]:
    return workbook_labels(build_environment(), "zh_CN")


async def _audit(county: County, action: str) -> list[AuditLog]:
    async with county.db.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
        )
        return list(rows)


async def test_a_phone_is_revealed_to_who_manages_the_file_and_audited(county: County) -> None:
    nid = await county.nominate(county.form("张三", phone=PHONE))
    for who in (QINGSHAN_OFFICIAL, COUNTY_OFFICIAL, ADMIN):
        async with county.db.sessionmaker.begin() as session:
            shown = await reveal.reveal_phone(
                session, county[who], nid, cipher=CIPHER, via="button"
            )
        assert (shown.nomination_id, shown.full_name, shown.phone) == (nid, "张三", PHONE)
    rows = await _audit(county, "phone.reveal")
    assert [r.actor_person_id for r in rows] == [
        county[w].person_id for w in (QINGSHAN_OFFICIAL, COUNTY_OFFICIAL, ADMIN)
    ]
    assert all((r.subject_type, r.subject_id) == ("nomination", nid) for r in rows)
    assert all(r.detail == {"via": "button", "full": ["phone"]} for r in rows)


async def test_a_phone_is_refused_out_of_scope(county: County) -> None:
    nid = await county.nominate(county.form("张三", phone=PHONE))
    for who in (MUHUANG_OFFICIAL, POLICE, CANDIDATE, STRANGER):
        async with county.db.sessionmaker.begin() as session:
            with pytest.raises(NotAllowed):
                await reveal.reveal_phone(session, county[who], nid, cipher=CIPHER, via="button")
    async with county.db.sessionmaker.begin() as session:
        with pytest.raises(NotAllowed):
            await reveal.reveal_phone(
                session, county[QINGSHAN_OFFICIAL], 999_999, cipher=CIPHER, via="button"
            )
    assert await _audit(county, "phone.reveal") == []


async def test_no_phone_on_file_shows_nothing_and_audits_nothing(county: County) -> None:
    nid = await county.nominate(county.form("李四"))
    async with county.db.sessionmaker.begin() as session:
        shown = await reveal.reveal_phone(
            session, county[QINGSHAN_OFFICIAL], nid, cipher=CIPHER, via="button"
        )
    assert shown.phone is None
    assert await _audit(county, "phone.reveal") == []


async def test_the_vetting_card_opened_for_the_check_has_the_full_id(county: County) -> None:
    form = county.form("张三", id_number=ID_1, gender="male", birth_date=date(1990, 3, 7))
    nid = await county.nominate(form, channel=Channel.SELF)
    reviews = await county.send(nid)
    async with county.db.sessionmaker.begin() as session:
        plain = await review_queries.vetting_card(session, county[POLICE], reviews["police"])
        card = await review_queries.vetting_card(
            session, county[POLICE], reviews["police"], cipher=CIPHER
        )
    # Without the cipher (the approve/reject buttons) the card holds no full number.
    assert plain.id_number is None and ID_1 not in str(plain)
    assert card.id_number == ID_1
    assert (card.gender, card.birth_date) == ("male", date(1990, 3, 7))
    reads = await _audit(county, "nomination.read")
    assert [r.detail for r in reads] == [
        {"via": "vetting"},
        {"via": "vetting", "full": ["id_number"]},
    ]
    # Another department's card stays refused, cipher or not.
    async with county.db.sessionmaker.begin() as session:
        with pytest.raises(NotAllowed):
            await review_queries.vetting_card(
                session, county[POLICE], reviews["judicial"], cipher=CIPHER
            )


async def _vetting_list(county: County, who: int) -> list[tuple[object, ...]]:
    buffer = io.BytesIO()
    async with county.db.sessionmaker.begin() as session:
        await export.write_vetting_list(
            session, county[who], buffer, locale_labels=_labels(), tz=TZ, cipher=CIPHER
        )
    book = load_workbook(io.BytesIO(buffer.getvalue()), read_only=True)
    try:
        (sheet,) = book.worksheets
        return [tuple(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


async def test_a_department_lists_only_its_pending_items(county: County) -> None:
    first = await county.nominate(county.form("张三", id_number=ID_1), channel=Channel.SELF)
    second = await county.nominate(
        county.form("王五", township="木黄镇", id_number=ID_2), channel=Channel.SELF
    )
    await county.nominate(county.form("赵六"))  # still with the township
    first_reviews = await county.send(first)
    await county.send(second, MUHUANG_OFFICIAL)
    # The police decided on 张三 already: only 王五 waits for them, both for the others.
    await county.decide(POLICE, first_reviews["police"], Decision.APPROVE)

    police = await _vetting_list(county, POLICE)
    judicial = await _vetting_list(county, JUDICIAL)

    assert police[0][:4] == ("联审部门", "编号", "姓名", "身份证号（完整）")
    assert [(r[1], r[2], r[3]) for r in police[1:]] == [(second, "王五", ID_2)]
    assert [(r[1], r[2], r[3]) for r in judicial[1:]] == [
        (first, "张三", ID_1),
        (second, "王五", ID_2),
    ]
    assert "赵六" not in repr(police + judicial)
    listed = [(r.actor_person_id, r.subject_id) for r in await _audit(county, "export.vetting")]
    assert listed == [
        (county[POLICE].person_id, second),
        (county[JUDICIAL].person_id, first),
        (county[JUDICIAL].person_id, second),
    ]


async def test_only_reviewers_take_a_vetting_list(county: County) -> None:
    nid = await county.nominate(county.form("张三", id_number=ID_1), channel=Channel.SELF)
    await county.send(nid)
    for who in (QINGSHAN_OFFICIAL, COUNTY_OFFICIAL, ADMIN, CANDIDATE, STRANGER):
        with pytest.raises(NotAllowed):
            await _vetting_list(county, who)
    assert len(await _vetting_list(county, DISCIPLINE)) == 2
    assert len(await _audit(county, "export.vetting")) == 1


async def _roster(county: County, who: int, *, phones: bool) -> list[tuple[object, ...]]:
    buffer = io.BytesIO()
    async with county.db.sessionmaker.begin() as session:
        await export.write_workbook(
            session,
            county[who],
            buffer,
            locale_labels=_labels(),
            tz=TZ,
            cipher=CIPHER,
            phones=phones,
        )
    book = load_workbook(io.BytesIO(buffer.getvalue()), read_only=True)
    try:
        return [tuple(row) for row in book["花名册"].iter_rows(values_only=True)]
    finally:
        book.close()


async def test_the_workbook_has_full_phones_only_when_asked(county: County) -> None:
    zhang = await county.nominate(county.form("张三", phone=PHONE, id_number=ID_1))
    await county.nominate(county.form("李四"))  # no phone: nothing to audit
    await county.nominate(county.form("王五", township="木黄镇", phone="13912345678"))

    masked = await _roster(county, QINGSHAN_OFFICIAL, phones=False)
    assert "手机号（脱敏）" in masked[0] and PHONE not in repr(masked)
    assert await _audit(county, "export.phone") == []

    full = await _roster(county, QINGSHAN_OFFICIAL, phones=True)
    assert "手机号（完整）" in full[0] and PHONE in repr(full)
    assert ID_1 not in repr(full) and "13912345678" not in repr(full)
    (row,) = await _audit(county, "export.phone")
    assert (row.actor_person_id, row.subject_id) == (county[QINGSHAN_OFFICIAL].person_id, zhang)
    assert row.detail == {"full": ["phone"]}
    workbooks = await _audit(county, "export.workbook")
    assert [w.detail.get("phones") for w in workbooks] == [None, True]
