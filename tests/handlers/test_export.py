"""/export through a real Application: officials get their scope's workbook, others nothing."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from telegram.ext import CommandHandler
from telegram.request import RequestData

from storage.models import AuditLog, Nomination, Person, Role
from templates import build_environment, render
from tests.support.county import County, build_county, grant, nominate
from tests.support.fake_telegram import FakeTelegram
from tests.support.harness import BotHarness

FORBIDDEN = render(build_environment(), "zh_CN", "common/forbidden")
ID_A = "520222199001011234"
ID_B = "522226198505052345"

OFFICIAL_A, COUNTY, ADMIN, MENTOR, REVIEWER, CANDIDATE, STRANGER = range(9101, 9108)


@dataclass
class Upload:
    chat_id: int
    filename: str
    content: bytes


@dataclass
class World:
    bot: BotHarness
    uploads: list[Upload]
    county: County


def _registered(bot: BotHarness) -> bool:
    assert bot.app is not None
    return any(
        isinstance(h, CommandHandler) and "export" in h.commands
        for handlers_ in bot.app.handlers.values()
        for h in handlers_
    )


@pytest.fixture
async def world(harness: BotHarness, monkeypatch: pytest.MonkeyPatch) -> World:
    assert harness.app is not None
    assert _registered(harness)
    uploads: list[Upload] = []
    real = FakeTelegram.do_request

    async def recording(
        self: FakeTelegram,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        **kw: Any,
    ) -> tuple[int, bytes]:
        if url.endswith("/sendDocument") and request_data is not None:
            for filename, content, _mime in request_data.multipart_data.values():
                raw = content if isinstance(content, bytes) else content.read()
                chat_id = int(str(request_data.parameters["chat_id"]))
                uploads.append(Upload(chat_id, str(filename), raw))
        return await real(self, url, method, request_data, **kw)

    monkeypatch.setattr(FakeTelegram, "do_request", recording)

    county = await build_county(harness)
    a, b = county.towns["青山镇"], county.towns["木黄镇"]
    await grant(harness, OFFICIAL_A, Role.TOWNSHIP_OFFICIAL, township_id=a)
    await grant(harness, COUNTY, Role.COUNTY_OFFICIAL)
    await grant(harness, ADMIN, Role.ADMIN)
    await grant(harness, MENTOR, Role.MENTOR, township_id=a)
    await grant(harness, REVIEWER, Role.REVIEWER, department="police")
    candidate = await grant(harness, CANDIDATE, None, full_name="张三")
    await nominate(county, "张三", "青山镇", person_id=candidate, id_number=ID_A)
    await nominate(county, "王五", "木黄镇", id_number=ID_B)
    assert a != b
    return World(harness, uploads, county)


def _today() -> str:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()


async def _nomination_of(world: World, name: str) -> int:
    async with world.bot.database.sessionmaker() as session:
        nid = await session.scalar(
            select(Nomination.id)
            .join(Person, Person.id == Nomination.person_id)
            .where(Person.full_name == name)
        )
    assert nid is not None, name
    return nid


def _cells(content: bytes) -> dict[str, list[tuple[Any, ...]]]:
    book = load_workbook(io.BytesIO(content), read_only=True)
    try:
        return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book.worksheets}
    finally:
        book.close()


async def test_township_official_gets_their_townships_workbook(world: World) -> None:
    replies = await world.bot.send(OFFICIAL_A, "/export")

    assert [r.kind for r in replies] == ["document"]
    assert replies[0].chat_id == OFFICIAL_A
    assert "青山镇" in replies[0].text and "花名册 1 人" in replies[0].text
    (upload,) = world.uploads
    assert upload.filename == f"cadrebot-青山镇-{_today()}.xlsx"
    sheets = _cells(upload.content)
    assert next(iter(sheets)) == "花名册"
    names = [row[1] for row in sheets["花名册"][1:]]
    assert names == ["张三"]
    text = repr(sheets)
    assert "5202**********1234" in text
    # nominate() gives the first nominee the phone 13900000001.
    assert "139****0001" in text
    for leaked in (ID_A, "13900000001", "王五", "木黄镇"):
        assert leaked not in text, leaked

    async with world.bot.database.sessionmaker() as session:
        audit = (
            await session.scalars(select(AuditLog).where(AuditLog.action == "export.workbook"))
        ).all()
    assert len(audit) == 1
    assert audit[0].detail["scope"] == "township"


@pytest.mark.parametrize("who", [COUNTY, ADMIN])
async def test_county_officials_and_admins_get_the_whole_county(world: World, who: int) -> None:
    replies = await world.bot.send(who, "/export")

    assert [r.kind for r in replies] == ["document"]
    assert "示例县" in replies[0].text
    (upload,) = world.uploads
    assert upload.filename == f"cadrebot-示例县-{_today()}.xlsx"
    names = sorted(row[1] for row in _cells(upload.content)["花名册"][1:])
    assert names == ["张三", "王五"]


async def test_the_workbook_speaks_the_persons_language(world: World) -> None:
    replies = await world.bot.send(OFFICIAL_A, "/export", language_code="en")

    assert [r.kind for r in replies] == ["document"]
    assert "Roster 1" in replies[0].text
    (upload,) = world.uploads
    assert list(_cells(upload.content))[:2] == ["Roster", "Nominations"]


@pytest.mark.parametrize("who", [MENTOR, REVIEWER, CANDIDATE, STRANGER])
async def test_everyone_else_is_refused_and_gets_no_file(world: World, who: int) -> None:
    replies = await world.bot.send(who, "/export")

    assert [(r.kind, r.text) for r in replies] == [("text", FORBIDDEN)]
    assert world.uploads == []
    async with world.bot.database.sessionmaker() as session:
        audit = await session.scalar(select(AuditLog).where(AuditLog.action == "export.workbook"))
    assert audit is None


async def test_an_official_exports_one_persons_file(world: World) -> None:
    nid = await _nomination_of(world, "张三")
    replies = await world.bot.send(OFFICIAL_A, f"/dossier {nid}")
    button = f"pl:e:{nid}"
    assert button in [data for row in replies[-1].buttons for _label, data in row]

    replies = await world.bot.press(OFFICIAL_A, button)

    assert [r.kind for r in replies] == ["document"]
    assert "张三" in replies[0].text
    (upload,) = world.uploads
    assert upload.chat_id == OFFICIAL_A and upload.filename == f"dossier-{nid}.xlsx"
    sheets = _cells(upload.content)
    assert list(sheets) == [
        "基本信息",
        "状态记录",
        "资格联审",
        "培养导师",
        "谈心谈话",
        "实际困难",
        "培训与出勤",
        "实践岗位",
        "职级变动",
        "领办项目",
        "使用成效",
    ]
    text = repr(sheets)
    assert "张三" in text and "5202**********1234" in text
    assert ID_A not in text and "13900000001" not in text
    async with world.bot.database.sessionmaker() as session:
        audit = (
            await session.scalars(select(AuditLog).where(AuditLog.action == "export.dossier"))
        ).all()
    assert [a.subject_id for a in audit] == [nid]


async def test_a_forged_export_button_is_refused(world: World) -> None:
    nid = await _nomination_of(world, "王五")
    for who in (OFFICIAL_A, STRANGER, MENTOR):
        replies = await world.bot.press(who, f"pl:e:{nid}")
        assert [(r.kind, r.text) for r in replies] == [("text", FORBIDDEN)], who
    assert world.uploads == []
