"""One reserve cadre put to use (用): the real `cadrebot run` over HTTP.

A candidate of 青山镇 goes into the pool through /nominate, /review and three vetting
departments; the township official creates a hard-post project (/project) with the cadre as
its lead, typing the funds wrongly once; the cadre reports progress (/report) and the official
is told; /projects shows the funds and the income; the official records with /outcome that the
cadre was elected into the village two committees; /dossier shows the project and the
election with the cadre's new status.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from storage.rules.identity import make_id_number
from tests.e2e.chat import Inbox, button, data_starting, edited_to, invite, take_role
from tests.e2e.conftest import BotMessage, Emulator

if TYPE_CHECKING:
    from tests.e2e.conftest import BotProcess, Person

    MakePerson = Callable[..., Person]

pytestmark = pytest.mark.e2e

NAME = "罗明辉"
PHONE = "15885012377"
ID_NUMBER = make_id_number("520221", datetime(1991, 5, 9).date(), 31, male=True)
PROJECT_NAME = "闲置村小学改建研学基地"
POSITION = "村委会委员"


def choose(
    inbox: Inbox, message: BotMessage, label: str, then: str, buttons: str = ""
) -> BotMessage:
    """Press the button labelled `label`; wait for the next message containing `then`."""
    inbox.press(message, button(message, label))
    return inbox.wait(then, buttons=buttons)


def nominate(candidate: Inbox) -> None:
    """The candidate's own nomination, straight through the form (its errors are tested
    elsewhere)."""
    consent = candidate.ask("/nominate", "个人信息处理告知")
    consent_id = choose(candidate, consent, "同意", "敏感个人信息单独同意")
    choose(candidate, consent_id, "同意", "（1/13）")
    ask_gender = candidate.ask(NAME, "（2/13）")
    choose(candidate, ask_gender, "男", "（3/13）")
    candidate.ask(ID_NUMBER, "手机号")
    candidate.person.send(PHONE)
    question = candidate.wait("（5/13）")
    for label, then in (
        ("土家族", "（6/13）"),
        ("群众", "（7/13）"),
        ("高中/中专", "（8/13）"),
        ("青山镇", "（9/13）"),
        ("石门村", "（10/13）"),
        ("返乡创业青年", "（11/13）"),
    ):
        question = choose(candidate, question, label, then)
    candidate.ask("养殖，电商", "（12/13）")
    candidate.ask("2015–2022 在广东务工", "（13/13）")
    review = candidate.ask("想为村里办实事", "请核对报名信息")
    assert f"姓名：{NAME}" in review.text and "村（社区）：石门村" in review.text
    choose(candidate, review, "✅ 确认提交", "报名已提交")


def test_a_pooled_cadre_leads_a_project_reports_and_is_elected(
    emulator: Emulator, bot: BotProcess, person: MakePerson
) -> None:
    started = time.monotonic()
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    elected_on = today - timedelta(days=10)

    # -- the county and its people ---------------------------------------------------------
    demo: dict[str, str] = {}
    # The demo staff without the demo's files: the queues counted below hold only ours.
    for line in bot.cli("seed", "--demo", "--staff-only").splitlines():
        if line.strip():
            role, code, _link = line.split()
            demo[role] = code
    official = Inbox(person())
    take_role(official, demo["township_official"], "青山镇")
    reviewers = [Inbox(person()) for _ in range(3)]
    take_role(reviewers[0], demo["reviewer"], "公安")
    take_role(
        reviewers[1], invite(bot, "--role", "reviewer", "--department", "discipline"), "纪检监察"
    )
    take_role(reviewers[2], invite(bot, "--role", "reviewer", "--department", "judicial"), "司法")

    # -- into the pool ---------------------------------------------------------------------
    candidate = Inbox(person())
    nominate(candidate)
    official.wait("新的个人自荐待审核")
    queue = official.ask("/review", "待审核的推荐人选", buttons="rv:o:")
    (opened,) = data_starting(queue, "rv:o:")
    nomination_id = int(opened.rsplit(":", 1)[1])
    official.press(queue, opened)
    card = edited_to(emulator, bot, official.person, queue, "来源：个人自荐")
    official.press(card, button(card, "📤 提交资格联审"))
    edited_to(emulator, bot, official.person, queue, "提交资格联审。")
    for reviewer in reviewers:
        reviewer.wait("等待资格联审")
        queue = reviewer.ask("/vetting", "待联审人选", buttons="vt:o:")
        (opened,) = data_starting(queue, "vt:o:")
        reviewer.press(queue, opened)
        item = edited_to(emulator, bot, reviewer.person, queue, "资格联审：")
        ask_note = choose(reviewer, item, "✅ 通过", "请填写审核意见", buttons="vt:n:")
        choose(reviewer, ask_note, "无意见", "已记录")
    candidate.wait("资源库")
    official.wait("已通过资格联审")
    pooled = time.monotonic() - started

    # -- /project: the official creates a project the cadre leads --------------------------
    villages = official.ask("/project", "请选择项目所在的村", buttons="prj:v:")
    assert "青山镇" in villages.text
    choose(official, villages, "石门村", "请输入项目名称")
    ask_funds = official.ask(PROJECT_NAME, "请输入项目涉及资金")
    assert "万元" in ask_funds.text
    # A wrong amount: the error, then the same question again; nothing else moves on.
    official.person.send("abc")
    error = official.wait("没有看懂这个金额")
    assert error.text.startswith("⚠️"), error.text
    again = official.wait("请输入项目涉及资金")
    assert again.message_id > error.message_id  # the error first, then the question again
    assert not any("阶段" in m.text for m in official.stash)  # and not the next question
    ask_status = official.ask("120.5", "项目目前处于什么阶段", buttons="prj:s:")
    assert button(ask_status, "推进中") == "prj:s:under_way"
    leads = choose(official, ask_status, "推进中", "选择牵头的后备干部", buttons="prj:l:")
    assert "在库后备干部共 1 人" in leads.text and "已选 0 人" in leads.text, leads.text
    lead_label = f"⬜ {NAME}（石门村）"
    assert button(leads, lead_label) == f"prj:l:{nomination_id}"
    official.press(leads, f"prj:l:{nomination_id}")
    leads = edited_to(emulator, bot, official.person, leads, "已选 1 人")
    assert f"已选 1 人：{NAME}" in leads.text
    assert button(leads, f"✅ {NAME}（石门村）") == f"prj:l:{nomination_id}"
    review = choose(official, leads, "✅ 选好了", "请核对项目信息", buttons="prj:ok")
    for expected in (
        "乡镇（街道）：青山镇",
        "村（社区）：石门村",
        f"项目名称：{PROJECT_NAME}",
        "涉及资金：120.5 万元",
        "项目状态：推进中",
        f"牵头后备干部：{NAME}",
    ):
        assert expected in review.text, (expected, review.text)
    saved = choose(official, review, "✅ 确认提交", "项目已保存")
    assert PROJECT_NAME in saved.text and "涉及资金 120.5 万元，牵头后备干部 1 人" in saved.text

    # -- /report: the lead cadre reports the income ----------------------------------------
    choose_project = candidate.ask("/report", "请选择要报告的项目", buttons="rpt:p:")
    assert PROJECT_NAME in choose_project.text and "累计增收 0 万元" in choose_project.text
    (picked,) = data_starting(choose_project, "rpt:p:")
    project_id = int(picked.rsplit(":", 1)[1])
    assert f"项目已保存（编号 {project_id}）" in saved.text, saved.text
    ask_income = choose(candidate, choose_project, PROJECT_NAME, "增收多少")
    assert PROJECT_NAME in ask_income.text
    ask_status = candidate.ask("12.3", "项目当前状态：推进中", buttons="rpt:s:")
    assert "rpt:s:under_way" not in ask_status.buttons  # the current status is not offered
    ask_note = choose(candidate, ask_status, "已完成", "请简要说明进展情况", buttons="rpt:skip")
    review = choose(candidate, ask_note, "不写备注", "请核对进展报告", buttons="rpt:ok")
    assert "本期增收：12.3 万元" in review.text, review.text
    assert "项目状态：推进中 → 已完成" in review.text and "备注：无" in review.text
    done = choose(candidate, review, "✅ 确认提交", "进展报告已提交")
    assert "本期增收 12.3 万元，累计增收 12.3 万元" in done.text, done.text

    notice = official.wait("项目进展报告")
    assert f"青山镇 石门村 · <b>{PROJECT_NAME}</b>" in notice.text, notice.text
    assert f"报告人：{NAME}" in notice.text, notice.text
    assert "本期增收 12.3 万元，累计增收 12.3 万元" in notice.text
    assert "状态：推进中 → 已完成" in notice.text

    listing = official.ask("/projects", "急难险重项目（闲置资产盘活）")
    assert "共 1 个项目" in listing.text, listing.text
    assert f"{project_id}｜<b>{PROJECT_NAME}</b>" in listing.text
    assert "青山镇 石门村 · 已完成 · 牵头 1 人" in listing.text
    assert "资金 120.5 万元，已带动集体经济增收 12.3 万元" in listing.text, listing.text

    # -- /outcome: elected into the village two committees --------------------------------
    people = official.ask("/outcome", "记录使用成效", buttons="out:p:")
    assert f"{nomination_id}｜{NAME}｜青山镇" in people.text, people.text
    assert button(people, f"{NAME}（{nomination_id}）") == f"out:p:{nomination_id}"
    kinds = choose(official, people, f"{NAME}（{nomination_id}）", "记录哪一项", buttons="out:k:")
    assert "已入库" in kinds.text, kinds.text
    ask_position = choose(official, kinds, "当选村两委", "当选村两委的职务是什么")
    assert NAME in ask_position.text
    ask_date = official.ask(POSITION, "请输入当选日期", buttons="out:today")
    assert today.isoformat() in ask_date.text, ask_date.text
    typed_date = f"{elected_on.year}年{elected_on.month}月{elected_on.day}日"
    review = official.ask(typed_date, "请核对：当选村两委", buttons="out:ok")
    assert f"后备干部：{NAME}（青山镇）" in review.text
    assert f"职务：{POSITION}" in review.text
    assert f"当选日期：{elected_on.isoformat()}" in review.text, review.text
    recorded = choose(official, review, "✅ 确认提交", "已记录：当选村两委")
    assert f"{NAME} 于 {elected_on.isoformat()} 当选{POSITION}" in recorded.text
    assert "状态已更新为“已进入村两委”" in recorded.text, recorded.text

    # -- /dossier: the project and the election in the cadre's file ------------------------
    dossier = official.ask(f"/dossier {nomination_id}", "一人一档 · ")
    assert f"一人一档 · {NAME}" in dossier.text
    assert "当前状态：已进入村两委" in dossier.text, dossier.text
    assert "<b>急难险重项目</b>" in dossier.text
    assert (
        f"· {PROJECT_NAME}（青山镇 石门村 · 已完成）资金 120.5 万元，增收 12.3 万元"
        in dossier.text
    ), dossier.text
    assert "合计：牵头 1 个项目，资金 120.5 万元，带动集体经济增收 12.3 万元。" in dossier.text
    assert "<b>使用成效</b>" in dossier.text
    assert f"· {elected_on.isoformat()} 当选村两委：{POSITION}" in dossier.text, dossier.text

    # Nothing the bot sent to anyone said it failed.
    failures = ("系统出了点问题", "按钮已失效", "没有权限", "没有理解", "没有这个命令", "出错")
    for item in emulator.history(bot.token):
        message = item.get("message") or {}
        if "chat_id" in message:
            text = str(message.get("text", ""))
            assert not any(failure in text for failure in failures), text
            assert ID_NUMBER not in text and PHONE not in text, text

    elapsed = time.monotonic() - started
    print(f"pooled after {pooled:.1f} s, all done after {elapsed:.1f} s")
    assert elapsed < 90
