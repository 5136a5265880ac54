"""The /export workbook on SQLite and PostgreSQL: sheets, titles, masks, scope, streaming."""

from __future__ import annotations

import argparse
import gc
import io
import os
import threading
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from cryptography.fernet import Fernet
from openpyxl import load_workbook
from sqlalchemy import insert, select

import storage.export
from bot import cli_export
from handlers.oversight.export import file_name, workbook_labels
from storage import export, geo, models, nominations
from storage.crypto import DataCipher
from storage.db import Database
from storage.export import ExportScope, ExportSummary
from storage.nominations import NominationForm, NotAllowed
from storage.people import Actor, Grant
from storage.rules.vetting import Channel
from templates import build_environment
from tests.conftest import make_settings
from tests.support.county import grade_move, pair, townships
from tests.support.county import person as _person

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 00:30 on 2 March in Shanghai, still 1 March in UTC: dates must be the county's.
NOW = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
ENV = build_environment()
ZH = workbook_labels(ENV, "zh_CN")
EN = workbook_labels(ENV, "en")

ID_A = "520222199001011234"
PHONE_A = "13800001111"
ID_B = "522226198505052345"
PHONE_B = "13900002222"
HOSTILE_NOTE = '=HYPERLINK("http://evil.example","click")\x07'

ZH_SHEETS = [
    "花名册",
    "推荐报名",
    "资格联审",
    "谈心谈话",
    "实际困难",
    "培训与出勤",
    "职级变动",
    "领办项目",
]
EN_SHEETS = [
    "Roster",
    "Nominations",
    "Vetting",
    "Talks",
    "Difficulties",
    "Trainings",
    "Grades",
    "Projects",
]
ZH_HEADERS = {
    "花名册": [
        "编号",
        "姓名",
        "性别",
        "出生日期",
        "身份证号（脱敏）",
        "手机号（脱敏）",
        "民族",
        "政治面貌",
        "学历",
        "乡镇（街道）",
        "村（社区）",
        "人员类别",
        "推荐渠道",
        "状态",
        "职级",
        "本级年限",
    ],
    "推荐报名": [
        "编号",
        "姓名",
        "乡镇（街道）",
        "推荐渠道",
        "人员类别",
        "报名（推荐）日期",
        "状态",
        "状态变更日期",
        "办理经过",
    ],
    "资格联审": [
        "编号",
        "姓名",
        "乡镇（街道）",
        "联审部门",
        "审核意见",
        "送审日期",
        "审核日期",
        "说明",
    ],
    "谈心谈话": [
        "谈话日期",
        "谈话方式",
        "联系导师",
        "谈话对象",
        "编号",
        "乡镇（街道）",
        "思想状态",
        "工作情况",
        "生活情况",
        "存在问题",
    ],
    "实际困难": [
        "提出日期",
        "编号",
        "姓名",
        "乡镇（街道）",
        "困难描述",
        "办理状态",
        "解决情况",
        "解决日期",
    ],
    "培训与出勤": [
        "培训编号",
        "培训名称",
        "培训类型",
        "培训主题",
        "培训时间",
        "地点",
        "编号",
        "参训人",
        "报名回复",
        "是否签到",
        "成绩",
    ],
    "职级变动": [
        "编号",
        "姓名",
        "乡镇（街道）",
        "考核年度",
        "考核结果",
        "原职级",
        "新职级",
        "原本级年限",
        "新本级年限",
        "补贴（元）",
        "记录日期",
    ],
    "领办项目": [
        "项目编号",
        "乡镇（街道）",
        "村（社区）",
        "项目名称",
        "资金（万元）",
        "项目状态",
        "领办人",
        "集体增收（万元）",
    ],
}
# Everything of township B that township A's workbook must not hold.
B_ONLY = [
    "王五",
    "木黄镇",
    "木黄村",
    "5222",
    "139****2222",
    "木黄谈话内容",
    "木黄困难",
    "木黄镇培训",
    "木黄项目",
    "纪检监察意见",
]


@dataclass
class World:
    db: Database
    township_a: int
    township_b: int
    zhang: int  # township A, full personal data, in the pool, with a history
    li: int  # township A, mass recommendation, no ID or phone
    wang: int  # township B
    official_a: Actor
    county: Actor
    mentor_only: Actor


def _actor(person_id: int, *grants: Grant) -> Actor:
    return Actor(person_id=person_id, telegram_id=person_id + 10_000, grants=grants)


DATA_KEY = Fernet.generate_key().decode()
CIPHER = DataCipher(DATA_KEY)


@pytest.fixture
async def world(db: Database) -> World:
    cipher = CIPHER
    async with db.sessionmaker.begin() as session:
        pairs = [("青山镇", "青山村"), ("青山镇", "石门村"), ("木黄镇", "木黄村")]
        towns = await townships(session, pairs)
        a, b = towns["青山镇"], towns["木黄镇"]
        villages = {v.name: v.id for v in (await geo.list_villages(session, a))[0]}
        villages |= {v.name: v.id for v in (await geo.list_villages(session, b))[0]}

        async def nominate(form: NominationForm, channel: Channel) -> models.Nomination:
            return await nominations.create_nomination(
                session,
                cipher,
                form,
                channel=channel,
                submitted_by=None,
                person_id=None,
                now=NOW,
                consent=True,
            )

        zhang = await nominate(
            NominationForm(
                full_name="张三",
                township_id=a,
                village_id=villages["青山村"],
                key_group="veteran",
                gender="male",
                birth_date=date(1990, 1, 1),
                ethnicity="tujia",
                political_status="party_member",
                education="bachelor",
                id_number=ID_A,
                phone=PHONE_A,
            ),
            Channel.SELF,
        )
        li = await nominate(
            NominationForm(full_name="李四", township_id=a, key_group="coop_leader"),
            Channel.MASS,
        )
        wang = await nominate(
            NominationForm(
                full_name="王五",
                township_id=b,
                village_id=villages["木黄村"],
                key_group="veteran",
                id_number=ID_B,
                phone=PHONE_B,
            ),
            Channel.ORGANIZATION,
        )
        zhang.status = wang.status = li.status = "in_pool"
        zhang.created_at = li.created_at = wang.created_at = NOW
        # 张三's way into the pool: sent to vetting, then approved.
        session.add_all(
            models.StatusChange(
                nomination_id=zhang.id, from_status=old, to_status=new, event=event, at=NOW
            )
            for old, new, event in (
                ("new", "vetting", "send_to_vetting"),
                ("vetting", "in_pool", "vetting_approved"),
            )
        )

        def approved(nomination_id: int, department: str, note: str) -> models.VettingReview:
            decided = {"decision": "approve", "note": note, "requested_at": NOW, "decided_at": NOW}
            return models.VettingReview(
                nomination_id=nomination_id, department=department, **decided
            )

        session.add_all(
            [
                approved(zhang.id, "police", "无违法记录"),
                models.VettingReview(
                    nomination_id=zhang.id, department="judicial", requested_at=NOW
                ),
                approved(wang.id, "discipline", "纪检监察意见"),
                models.GradeState(
                    nomination_id=zhang.id, grade=2, years_in_grade=1, subsidy_yuan=300
                ),
                grade_move(zhang.id, 2025, "excellent", (1, 2), (1, 0), subsidy_yuan=300, at=NOW),
                grade_move(wang.id, 2025, "competent", (1, 1), (0, 1), at=NOW),
            ]
        )
        mentor = await _person(session, "导师甲")
        pairings = {}
        for nomination in (zhang, wang):
            pairings[nomination.id] = (await pair(session, nomination.id, mentor)).id
        talk = models.TalkLog(
            pairing_id=pairings[zhang.id],
            nomination_id=zhang.id,
            mentor_person_id=mentor,
            talk_date=date(2026, 3, 2),
            mode="home",
            topics={
                "thought": {"text": "思想稳定"},
                "work": {"voice": "VOICE-FILE-1"},
                "life": {"text": "家庭和睦"},
                "problems": {"text": "缺少启动资金"},
            },
        )
        session.add_all(
            [
                talk,
                models.TalkLog(
                    pairing_id=pairings[wang.id],
                    nomination_id=wang.id,
                    mentor_person_id=mentor,
                    talk_date=date(2026, 3, 3),
                    mode="phone",
                    topics={k: {"text": "木黄谈话内容"} for k in ("thought", "work", "life")},
                ),
            ]
        )
        await session.flush()
        session.add_all(
            [
                models.Difficulty(
                    nomination_id=zhang.id,
                    talk_id=talk.id,
                    description="缺少启动资金",
                    raised_at=NOW,
                ),
                models.Difficulty(
                    nomination_id=zhang.id,
                    description=HOSTILE_NOTE,
                    status="resolved",
                    resolution="已协调贷款",
                    resolved_at=NOW,
                    raised_at=NOW,
                ),
                models.Difficulty(nomination_id=wang.id, description="木黄困难", raised_at=NOW),
            ]
        )

        def training(title: str, township_id: int | None) -> models.Training:
            return models.Training(
                kind="order",
                topic="industry",
                title=title,
                place="县委党校",
                starts_at=NOW,
                ends_at=NOW,
                township_id=township_id,
                checkin_code=title[:4],
            )

        own, county_wide, other, empty = (
            training("青山镇培训", a),
            training("全县培训", None),
            training("木黄镇培训", b),
            training("青山镇待邀请", a),
        )
        session.add_all([own, county_wide, other, empty])
        await session.flush()
        session.add_all(
            [
                models.TrainingInvite(
                    training_id=own.id,
                    nomination_id=zhang.id,
                    rsvp="yes",
                    attended_at=NOW,
                    score=88.5,
                ),
                models.TrainingInvite(training_id=county_wide.id, nomination_id=li.id, rsvp="no"),
                models.TrainingInvite(training_id=county_wide.id, nomination_id=wang.id),
                models.TrainingInvite(training_id=other.id, nomination_id=wang.id, rsvp="yes"),
            ]
        )
        project_a = models.Project(
            village_id=villages["青山村"],
            name="闲置校舍改民宿",
            funds_yuan=1_234_500,
            status="under_way",
        )
        project_b = models.Project(
            village_id=villages["木黄村"], name="木黄项目", funds_yuan=500_000
        )
        session.add_all([project_a, project_b])
        await session.flush()
        session.add_all(
            [
                # Wang (township B) co-leads A's project: A's workbook must not name him.
                models.ProjectLead(project_id=project_a.id, nomination_id=zhang.id),
                models.ProjectLead(project_id=project_a.id, nomination_id=li.id),
                models.ProjectLead(project_id=project_a.id, nomination_id=wang.id),
                models.ProjectLead(project_id=project_b.id, nomination_id=wang.id),
                models.ProjectReport(
                    project_id=project_a.id, report_date=date(2026, 1, 1), income_yuan=100_000
                ),
                models.ProjectReport(
                    project_id=project_a.id, report_date=date(2026, 2, 1), income_yuan=50_000
                ),
            ]
        )
        official = await _person(session, "镇干部")
        county = await _person(session, "县干部")
        mentor_only = await _person(session, "只是导师")
    return World(
        db=db,
        township_a=a,
        township_b=b,
        zhang=zhang.id,
        li=li.id,
        wang=wang.id,
        official_a=_actor(official, Grant(models.Role.TOWNSHIP_OFFICIAL, a, "青山镇", None)),
        county=_actor(county, Grant(models.Role.COUNTY_OFFICIAL, None, None, None)),
        mentor_only=_actor(mentor_only, Grant(models.Role.MENTOR, a, "青山镇", None, "township")),
    )


async def _export(
    db: Database, who: Actor | ExportScope, labels: dict[str, str] = ZH
) -> tuple[bytes, ExportSummary]:
    buffer = io.BytesIO()
    async with db.sessionmaker.begin() as session:
        summary = await export.write_workbook(
            session, who, buffer, locale_labels=labels, tz=SHANGHAI, cipher=CIPHER
        )
    return buffer.getvalue(), summary


def _sheets(data: bytes) -> dict[str, list[list[Any]]]:
    book = load_workbook(io.BytesIO(data), read_only=True)
    try:
        return {
            ws.title: [list(row) for row in ws.iter_rows(values_only=True)]
            for ws in book.worksheets
        }
    finally:
        book.close()


def _by_title(rows: list[list[Any]]) -> list[dict[str, Any]]:
    header, *body = rows
    # Write-only sheets store no empty cells: a row read back ends at its last value.
    return [
        dict(zip(header, [*row, *[None] * (len(header) - len(row))], strict=True)) for row in body
    ]


def _all_text(data: bytes) -> str:
    """Every cell as text, and every part of the .xlsx package unzipped."""
    cells = [
        str(v) for rows in _sheets(data).values() for row in rows for v in row if v is not None
    ]
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        parts = [package.read(name).decode("utf-8", "replace") for name in package.namelist()]
    return "\n".join(cells + parts)


async def test_county_workbook_has_every_sheet_with_titled_columns_and_rows(world: World) -> None:
    data, summary = await _export(world.db, world.county)
    sheets = _sheets(data)

    assert list(sheets) == ZH_SHEETS
    for title, headers in ZH_HEADERS.items():
        assert sheets[title][0] == headers, title
    assert summary.rows == {
        "roster": 3,
        "nominations": 3,
        "vetting": 3,
        "talks": 2,
        "difficulties": 3,
        "trainings": 5,
        "grades": 2,
        "projects": 2,
    }
    for title, key in zip(ZH_SHEETS, summary.rows, strict=True):
        assert len(sheets[title]) - 1 == summary.rows[key], title

    roster = {row["编号"]: row for row in _by_title(sheets["花名册"])}
    zhang = roster[world.zhang]
    assert zhang == {
        "编号": world.zhang,
        "姓名": "张三",
        "性别": "男",
        "出生日期": datetime(1990, 1, 1),
        "身份证号（脱敏）": "5202**********1234",
        "手机号（脱敏）": "138****1111",
        "民族": "土家族",
        "政治面貌": "中共党员",
        "学历": "本科",
        "乡镇（街道）": "青山镇",
        "村（社区）": "青山村",
        "人员类别": "退役军人",
        "推荐渠道": "个人自荐",
        "状态": "已入库",
        "职级": 2,
        "本级年限": 1,
    }
    assert roster[world.li]["身份证号（脱敏）"] is None
    assert roster[world.li]["职级"] is None
    assert roster[world.wang]["乡镇（街道）"] == "木黄镇"

    projects = {row["项目名称"]: row for row in _by_title(sheets["领办项目"])}
    assert projects["闲置校舍改民宿"]["资金（万元）"] == pytest.approx(123.45)
    assert projects["闲置校舍改民宿"]["集体增收（万元）"] == pytest.approx(15)
    assert projects["闲置校舍改民宿"]["领办人"] == "张三、李四、王五"
    assert projects["闲置校舍改民宿"]["项目状态"] == "实施中"
    assert projects["木黄项目"]["集体增收（万元）"] == 0


async def test_values_are_labelled_dated_in_the_county_and_voice_is_only_named(
    world: World,
) -> None:
    data, _ = await _export(world.db, world.county)
    sheets = _sheets(data)

    history = {row["编号"]: row for row in _by_title(sheets["推荐报名"])}[world.zhang]
    # Stored at 16:30 UTC on 1 March: 2 March in Shanghai.
    assert history["报名（推荐）日期"] == datetime(2026, 3, 2)
    assert history["办理经过"] == (
        "2026-03-02 提交报名或推荐；2026-03-02 提交资格联审；2026-03-02 通过资格联审"
    )

    vetting = {(r["编号"], r["联审部门"]): r for r in _by_title(sheets["资格联审"])}
    assert vetting[(world.zhang, "公安")]["审核意见"] == "通过"
    assert vetting[(world.zhang, "公安")]["说明"] == "无违法记录"
    # Still open, but the case is settled (in the pool): nothing left to review.
    assert vetting[(world.zhang, "司法")]["审核意见"] == "无需审核"

    talks = _by_title(sheets["谈心谈话"])
    assert talks[0] == {
        "谈话日期": datetime(2026, 3, 2),
        "谈话方式": "入户走访",
        "联系导师": "导师甲",
        "谈话对象": "张三",
        "编号": world.zhang,
        "乡镇（街道）": "青山镇",
        "思想状态": "思想稳定",
        "工作情况": "（语音）",
        "生活情况": "家庭和睦",
        "存在问题": "缺少启动资金",
    }
    assert talks[1]["存在问题"] is None

    trainings = _by_title(sheets["培训与出勤"])
    own = next(r for r in trainings if r["培训名称"] == "青山镇培训")
    assert own["培训时间"] == datetime(2026, 3, 2, 0, 30)
    assert (own["报名回复"], own["是否签到"], own["成绩"]) == ("参加", "是", 88.5)
    assert (own["培训类型"], own["培训主题"]) == ("订单式培训", "产业发展")
    waiting = next(r for r in trainings if r["培训名称"] == "青山镇待邀请")
    assert waiting["参训人"] is None and waiting["是否签到"] is None

    grades = _by_title(sheets["职级变动"])
    assert grades[0]["考核结果"] == "优秀"
    assert (grades[0]["原职级"], grades[0]["新职级"]) == (1, 2)

    book = load_workbook(io.BytesIO(data), read_only=True)
    roster = book["花名册"]
    header = next(roster.iter_rows(min_row=1, max_row=1))
    assert all(cell.font.b for cell in header)
    first = next(roster.iter_rows(min_row=2, max_row=2))
    assert first[3].is_date and first[3].number_format == "yyyy-mm-dd"
    book.close()
    assert "VOICE-FILE-1" not in _all_text(data)


async def test_typed_text_is_text_in_excel_never_a_formula(world: World) -> None:
    data, _ = await _export(world.db, world.county)
    book = load_workbook(io.BytesIO(data), read_only=True)
    cells = [
        cell
        for row in book["实际困难"].iter_rows(min_row=2)
        for cell in row
        if isinstance(cell.value, str) and "HYPERLINK" in cell.value
    ]
    book.close()
    assert len(cells) == 1
    assert cells[0].data_type == "s"
    # The control character (which XLSX cannot hold) is dropped, the rest kept as typed.
    assert cells[0].value == HOSTILE_NOTE.rstrip("\x07")


async def test_full_id_and_phone_numbers_appear_nowhere_in_the_file(world: World) -> None:
    data, _ = await _export(world.db, world.county)
    everything = _all_text(data)
    assert "5202**********1234" in everything
    assert "5222**********2345" in everything
    for secret in (ID_A, ID_B, PHONE_A, PHONE_B):
        assert secret not in everything


async def test_township_workbook_holds_nothing_of_another_township(world: World) -> None:
    data, summary = await _export(world.db, world.official_a)
    sheets = _sheets(data)

    assert list(sheets) == ZH_SHEETS
    assert summary.rows == {
        "roster": 2,
        "nominations": 2,
        "vetting": 2,
        "talks": 1,
        "difficulties": 2,
        "trainings": 3,
        "grades": 1,
        "projects": 1,
    }
    assert {r["编号"] for r in _by_title(sheets["花名册"])} == {world.zhang, world.li}
    everything = _all_text(data)
    for leaked in B_ONLY:
        assert leaked not in everything, leaked
    project = _by_title(sheets["领办项目"])[0]
    assert project["领办人"] == "张三、李四"
    county_wide = next(r for r in _by_title(sheets["培训与出勤"]) if r["培训名称"] == "全县培训")
    assert (county_wide["参训人"], county_wide["报名回复"]) == ("李四", "不参加")

    # The other way round: B's workbook has only B.
    data_b, summary_b = await _export(world.db, ExportScope(frozenset({world.township_b})))
    assert summary_b.rows["roster"] == 1
    text_b = _all_text(data_b)
    assert "张三" not in text_b and "青山村" not in text_b and "闲置校舍改民宿" not in text_b


async def test_only_officials_export_and_every_export_is_audited(world: World) -> None:
    with pytest.raises(NotAllowed):
        await _export(world.db, world.mentor_only)
    await _export(world.db, world.official_a)
    await _export(world.db, ExportScope())
    async with world.db.sessionmaker() as session:
        rows = (
            await session.scalars(
                select(models.AuditLog)
                .where(models.AuditLog.action == "export.workbook")
                .order_by(models.AuditLog.id)
            )
        ).all()
    assert [(r.actor_person_id, r.detail["scope"]) for r in rows] == [
        (world.official_a.person_id, "township"),
        (None, "county"),
    ]
    assert rows[0].detail["township_ids"] == [world.township_a]
    assert rows[0].detail["rows"]["roster"] == 2
    assert ID_A not in str(rows[0].detail)


async def test_sheet_titles_follow_the_locale(world: World) -> None:
    data, _ = await _export(world.db, world.county, EN)
    sheets = _sheets(data)
    assert list(sheets) == EN_SHEETS
    assert sheets["Roster"][0][:6] == [
        "No.",
        "Name",
        "Gender",
        "Date of birth",
        "ID number (masked)",
        "Mobile (masked)",
    ]
    zhang = next(r for r in _by_title(sheets["Roster"]) if r["Name"] == "张三")
    assert (zhang["Gender"], zhang["Status"]) == (EN["gender.male"], EN["status.in_pool"])
    assert zhang["Gender"] == "Male"


async def test_scope_names_for_file_names(world: World) -> None:
    async with world.db.sessionmaker() as session:
        assert await export.scope_names(session, ExportScope()) == ["示例县"]
        township = export.scope_of(world.official_a)
        assert township is not None
        assert await export.scope_names(session, township) == ["青山镇"]
    assert export.scope_of(world.mentor_only) is None
    assert file_name(["青山镇"], NOW) == "cadrebot-青山镇-2026-03-01.xlsx"
    assert file_name(["a/b:c"], NOW) == "cadrebot-a_b_c-2026-03-01.xlsx"
    assert file_name([], NOW) == "cadrebot-2026-03-01.xlsx"


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_command_line_export_writes_the_file_or_says_why_not(
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The command opens DATABASE_URL itself; on PostgreSQL the test's schema goes with it.
    monkeypatch.setattr(cli_export, "Database", lambda url: Database(url, schema=world.db.schema))
    # The DATA_KEY the world was written with: the command reads encrypted talks.
    settings = make_settings(world.db, data_key=DATA_KEY)
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "青山镇.xlsx"
    args = argparse.Namespace(scope="township:青山镇", out=out)
    assert await cli_export.run(args, settings) == 0
    assert "roster 2" in capsys.readouterr().out
    assert list(_sheets(out.read_bytes())) == ZH_SHEETS
    assert _names(folder) == ["青山镇.xlsx"]

    for scope, expected in [("township:无此镇", "no township named"), ("city", "--scope must")]:
        args = argparse.Namespace(scope=scope, out=folder / "x.xlsx")
        assert await cli_export.run(args, settings) == 1
        captured = capsys.readouterr()
        assert captured.err.startswith("cadrebot: ") and expected in captured.err
        assert captured.err.count("\n") == 1
    args = argparse.Namespace(scope="county", out=folder / "missing" / "x.xlsx")
    assert await cli_export.run(args, settings) == 1
    assert "cannot write" in capsys.readouterr().err
    # No half-written or temporary file is left behind by the failures.
    assert _names(folder) == ["青山镇.xlsx"]


class PeakRss:
    """The highest resident memory of this process while the block runs, sampled by a thread.

    Cheaper than tracemalloc (which slows openpyxl several times over) and it sees the memory
    of the database drivers too.
    """

    PAGE = os.sysconf("SC_PAGE_SIZE")

    def __init__(self) -> None:
        self.baseline = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * PeakRss.PAGE

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


async def test_twenty_thousand_rows_stream_in_write_only_mode(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: list[bool] = []
    real_workbook = openpyxl.Workbook

    def spy(*args: Any, **kwargs: Any) -> Any:
        modes.append(bool(kwargs.get("write_only")))
        return real_workbook(*args, **kwargs)

    monkeypatch.setattr(storage.export, "Workbook", spy)
    async with db.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "青山村")])
        township = await geo.township_by_name(session, "青山镇")
        assert township is not None
        person = await _person(session, "批量")
        await session.execute(
            insert(models.Nomination),
            [
                {
                    "person_id": person,
                    "channel": "organization",
                    "status": "in_pool",
                    "township_id": township.id,
                    "key_group": "veteran",
                    "education": "college",
                    "birth_date": date(1990, 1, 1 + i % 28),
                    "id_number_masked": f"5202**********{i % 10_000:04d}",
                    "status_changed_at": NOW,
                }
                for i in range(20_000)
            ],
        )
    gc.collect()
    with PeakRss() as memory:
        data, summary = await _export(db, ExportScope())

    assert modes == [True]
    assert summary.rows["roster"] == 20_000
    assert summary.rows["nominations"] == 20_000
    # Streamed, the export grows the process by a few megabytes; a normal (not write-only)
    # workbook of these 500,000 cells alone would take about 250 MB.
    assert memory.growth < 150 * 1024 * 1024, memory.growth
    book = load_workbook(io.BytesIO(data), read_only=True)
    assert sum(1 for _ in book["花名册"].iter_rows(values_only=True)) == 20_001
    book.close()


def test_every_column_and_sheet_has_a_title_in_every_locale() -> None:
    for labels in (ZH, EN):
        for sheet, columns in export.SHEETS.items():
            title = labels[f"export.sheet.{sheet}"]
            assert len(title) <= 31 and not set(title) & set("[]:*?/\\")
            for column in columns:
                assert labels[f"export.col.{column.key}"].strip()


async def test_command_line_export_has_full_phones_only_with_the_flag(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_export, "Database", lambda url: Database(url, schema=world.db.schema))
    settings = make_settings(world.db, data_key=DATA_KEY)
    parser = argparse.ArgumentParser()
    cli_export.add_parser(parser.add_subparsers())
    for flags, shown in (([], "138****1111"), (["--phones"], PHONE_A)):
        out = tmp_path / f"county{len(flags)}.xlsx"
        args = parser.parse_args(["export", "--scope", "county", "--out", str(out), *flags])
        assert await cli_export.run(args, settings) == 0
        (header, *rows) = _sheets(out.read_bytes())["花名册"]
        assert ("手机号（完整）" in header) == bool(flags)
        assert shown in repr(rows) and (PHONE_A in repr(rows)) == bool(flags)
    async with world.db.sessionmaker() as session:
        exported = (
            await session.scalars(
                select(models.AuditLog).where(models.AuditLog.action == "export.phone")
            )
        ).all()
    # The operator's command line acts as no person, as in its export.workbook row.
    assert exported and all(r.actor_person_id is None for r in exported)
    assert {r.subject_id for r in exported} >= {world.zhang}
