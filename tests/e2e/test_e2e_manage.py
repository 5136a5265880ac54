"""One reserve cadre through "管": 2+1 mentoring, a training with check-in, an annual result.

The real `cadrebot run` over HTTP against the emulator. The demo county is seeded; a candidate
enters the pool by /nominate and three-department vetting (the happy path only: the wrong
answers are covered in test_e2e_select.py); the township official pairs the cadre with the
seeded township-cadre mentor and a village-secretary mentor; the township mentor logs a talk
with two practical difficulties (the bot is killed with -9 in the middle of it and started
again) and resolves one, the township official the other; the official creates a training
starting in ten minutes for the township, the cadre accepts and checks in with the code; the
official records the annual result and the cadre's /grade shows grade 2.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from storage.rules.identity import make_id_number
from tests.e2e.chat import Inbox, button, data_starting, edited_to, invite, take_role
from tests.e2e.conftest import Emulator

if TYPE_CHECKING:
    from tests.e2e.conftest import BotProcess, Person

    MakePerson = Callable[..., Person]

pytestmark = pytest.mark.e2e

SHANGHAI = ZoneInfo("Asia/Shanghai")
NAME = "王春燕"
ID_NUMBER = make_id_number("520221", date(1992, 5, 14), 21, male=False)
PHONE = "15885012347"
TOPICS = (
    "理想信念坚定，干事热情高",
    "正在协助村里做茶叶合作社账务",
    "家中老人身体尚可，生活稳定",
    "群众工作经验不足，需多下组入户",
)
DIFFICULTIES = ("合作社缺少冷库，鲜叶难以存放", "孩子上学接送不便")
RESOLUTION = "已协调镇农业服务中心帮助申报冷库项目"
OFFICIAL_RESOLUTION = "镇里协调村小学开设课后托管"
TRAINING_TITLE = "茶产业电商培训班"
TRAINING_PLACE = "青山镇党群服务中心"
FAILURES = ("系统出了点问题", "按钮已失效", "没有权限", "没有理解", "没有这个命令", "出错")


def nominate(candidate: Inbox) -> None:
    """The /nominate form, right answers only."""
    consent = candidate.ask("/nominate", "个人信息处理告知")
    consent_id = candidate.press(consent, button(consent, "同意"), "敏感个人信息单独同意")
    candidate.press(consent_id, button(consent_id, "同意"), "（1/13）")
    ask_gender = candidate.ask(NAME, "（2/13）")
    candidate.press(ask_gender, button(ask_gender, "女"), "（3/13）")
    candidate.ask(ID_NUMBER, "（4/13）")
    ask_ethnicity = candidate.ask(PHONE, "（5/13）", buttons="nom:")
    ask_political = candidate.press(ask_ethnicity, button(ask_ethnicity, "汉族"), "（6/13）")
    ask_education = candidate.press(ask_political, button(ask_political, "群众"), "（7/13）")
    ask_township = candidate.press(ask_education, button(ask_education, "高中/中专"), "（8/13）")
    ask_village = candidate.press(ask_township, button(ask_township, "青山镇"), "（9/13）")
    ask_group = candidate.press(ask_village, button(ask_village, "石门村"), "（10/13）")
    candidate.press(ask_group, button(ask_group, "返乡创业青年"), "（11/13）")
    candidate.ask("茶叶种植", "（12/13）")
    candidate.ask("2015 年起在本村经营茶园", "（13/13）")
    review = candidate.ask("想为村里做点实事", "请核对报名信息")
    assert f"姓名：{NAME}" in review.text
    candidate.press(review, button(review, "✅ 确认提交"), "报名已提交")


def test_a_reserve_cadre_is_mentored_trained_and_graded(
    emulator: Emulator, bot: BotProcess, person: MakePerson
) -> None:
    started = time.monotonic()
    steps: dict[str, float] = {}

    def lap(step: str) -> None:
        steps[step] = round(time.monotonic() - started, 1)

    # -- the county and its people ---------------------------------------------------------
    demo: dict[str, str] = {}
    # The demo staff without the demo's files: the queues counted below hold only ours.
    for line in bot.cli("seed", "--demo", "--staff-only").splitlines():
        if line.strip():
            role, code, _link = line.split()
            demo[role] = code
    assert {"admin", "county_official", "township_official", "mentor", "reviewer"} <= set(demo)
    village_code = invite(bot, "--role", "mentor", "--township", "青山镇", "--slot", "village")
    discipline_code = invite(bot, "--role", "reviewer", "--department", "discipline")
    judicial_code = invite(bot, "--role", "reviewer", "--department", "judicial")

    official = Inbox(person())
    take_role(official, demo["township_official"], "青山镇")
    mentor = Inbox(person())
    take_role(mentor, demo["mentor"], "青山镇")
    village_mentor = Inbox(person())
    take_role(village_mentor, village_code, "青山镇")
    reviewers = [Inbox(person()), Inbox(person()), Inbox(person())]
    take_role(reviewers[0], demo["reviewer"], "公安")
    take_role(reviewers[1], discipline_code, "纪检监察")
    take_role(reviewers[2], judicial_code, "司法")
    lap("roles")

    # -- a candidate enters the pool -------------------------------------------------------
    cadre = Inbox(person())
    nominate(cadre)
    official.wait("新的个人自荐待审核")
    queue = official.ask("/review", "待审核的推荐人选")
    (open_data,) = data_starting(queue, "rv:o:")
    nomination_id = int(open_data.rsplit(":", 1)[1])
    official.person.press(queue, open_data)
    card = edited_to(emulator, bot, official.person, queue, "来源：个人自荐")
    official.person.press(card, button(card, "📤 提交资格联审"))
    edited_to(emulator, bot, official.person, queue, "提交资格联审。")
    for reviewer in reviewers:
        reviewer.wait("等待资格联审")
        queue = reviewer.ask("/vetting", "待联审人选")
        (vet_open,) = data_starting(queue, "vt:o:")
        reviewer.person.press(queue, vet_open)
        item = edited_to(emulator, bot, reviewer.person, queue, "资格联审：")
        ask_note = reviewer.press(item, button(item, "✅ 通过"), "请填写审核意见", buttons="vt:n:")
        reviewer.press(ask_note, button(ask_note, "无意见"), "已记录")
    pooled = cadre.wait("资源库")
    assert "入库" in pooled.text, pooled.text
    official.wait("已通过资格联审")
    lap("pool")

    # -- /pair: the township mentor, then the village secretary ---------------------------
    cadres = official.ask("/pair", "“2+1”结对帮带", buttons="pr:n:")
    assert NAME in cadres.text and "尚未配导师" in cadres.text, cadres.text
    pick = f"pr:n:{nomination_id}"
    assert pick in data_starting(cadres, "pr:n:"), cadres.buttons
    township_slot = official.press(cadres, pick, "请选择乡镇干部导师", buttons="pr:m:")
    assert NAME in township_slot.text
    choose = button(township_slot, "演示导师")
    assert choose.startswith(f"pr:m:{nomination_id}:township:"), choose
    official.person.press(township_slot, choose)
    done = official.wait("✅ 已安排 演示导师")
    assert NAME in done.text, done.text
    village_slot = official.wait("请选择村党组织书记导师", buttons="pr:m:")
    (choose,) = data_starting(village_slot, f"pr:m:{nomination_id}:village:")
    official.person.press(village_slot, choose)
    done = official.wait("✅ 已安排")
    assert "村党组织书记导师" in done.text and NAME in done.text, done.text
    overview = official.wait("的“2+1”导师")
    assert "乡镇干部导师：演示导师" in overview.text, overview.text
    assert "尚未安排" not in overview.text, overview.text
    notice = mentor.wait("您已被安排为后备干部")
    assert NAME in notice.text and "乡镇干部导师" in notice.text, notice.text
    notice = village_mentor.wait("您已被安排为后备干部")
    assert NAME in notice.text and "村党组织书记导师" in notice.text, notice.text
    lap("pair")

    # -- /talk: today, face to face, the four topics, two difficulties --------------------
    pick_mentee = mentor.ask("/talk", "和谁谈的", buttons="tk:p:")
    ask_date = mentor.press(
        pick_mentee, button(pick_mentee, NAME), "的谈话是哪天进行的", buttons="tk:d:"
    )
    # The bot's own "today" (Shanghai), not the test machine's.
    today_match = re.search(r"今天是 (\d{4}-\d{2}-\d{2})", ask_date.text)
    assert today_match is not None, ask_date.text
    today = date.fromisoformat(today_match.group(1))
    assert abs(today - datetime.now(SHANGHAI).date()) <= timedelta(days=1)
    ask_mode = mentor.press(ask_date, button(ask_date, "今天"), "的谈话方式", buttons="tk:m:")
    assert str(today) in ask_mode.text, ask_mode.text
    mentor.press(ask_mode, button(ask_mode, "面对面"), "（1/4）")
    mentor.ask(TOPICS[0], "（2/4）")
    # kill -9 in the middle of the talk: the next process takes the next answer at the
    # question the mentor was asked, with the talk's person, date, mode and first topic kept
    # (the review below shows them all).
    bot.kill()
    bot.start()
    lap("kill -9 and start")
    for step, answer in enumerate(TOPICS[1:-1], start=3):
        mentor.ask(answer, f"（{step}/4）")
    ask_difficulties = mentor.ask(TOPICS[-1], "<b>实际困难</b>", buttons="tk:dd")
    for number, difficulty in enumerate(DIFFICULTIES, start=1):
        ask_difficulties = mentor.ask(difficulty, f"{number}. {difficulty}", buttons="tk:dd")
    review = mentor.press(ask_difficulties, "tk:dd", "请核对谈话记录", buttons="tk:go")
    for expected in (f"谈话对象：{NAME}", f"日期：{today}", "方式：面对面", *TOPICS):
        assert expected in review.text, (expected, review.text)
    for number, difficulty in enumerate(DIFFICULTIES, start=1):
        assert f"{number}. {difficulty}" in review.text, review.text
    saved = mentor.press(review, button(review, "✅ 保存谈话记录"), "✅ 已保存")
    assert f"已保存 {today} 与 {NAME} 的谈心谈话" in saved.text, saved.text
    assert "记录实际困难 2 条" in saved.text and "下次谈话请在" in saved.text, saved.text
    lap("talk")

    # -- /difficulties: resolve the first one ---------------------------------------------
    listing = mentor.ask("/difficulties", "待解决的实际困难", buttons="df:r:")
    assert "共 2 条" in listing.text, listing.text
    assert all(d in listing.text for d in DIFFICULTIES), listing.text
    ask_resolution = mentor.press(listing, button(listing, "✅ 解决 1"), "请写明是如何解决的")
    resolved_text = next(d for d in DIFFICULTIES if d in ask_resolution.text)
    resolved = mentor.ask(RESOLUTION, "✅ 已标记为已解决")
    assert resolved_text in resolved.text and RESOLUTION in resolved.text, resolved.text
    listing = mentor.ask("/difficulties", "待解决的实际困难", buttons="df:r:")
    assert "共 1 条" in listing.text and resolved_text not in listing.text, listing.text
    # The township official resolves the other one; the mentor's list is then empty.
    listing = official.ask("/difficulties", "待解决的实际困难", buttons="df:r:")
    assert "共 1 条" in listing.text and NAME in listing.text, listing.text
    official.press(listing, button(listing, "✅ 解决 1"), "请写明是如何解决的")
    resolved = official.ask(OFFICIAL_RESOLUTION, "✅ 已标记为已解决")
    assert OFFICIAL_RESOLUTION in resolved.text, resolved.text
    mentor.ask("/difficulties", "没有待解决的实际困难")
    lap("difficulties")

    # -- /training for the township, starting in ten minutes -------------------------------
    starts = (datetime.now(SHANGHAI) + timedelta(minutes=10)).replace(second=0, microsecond=0)
    ask_kind = official.ask("/training", "新建培训", buttons="tc:k:")
    ask_topic = official.press(ask_kind, button(ask_kind, "订单式培训"), "（2/7）", "tc:o:")
    official.press(ask_topic, button(ask_topic, "产业发展"), "（3/7）")
    official.ask(TRAINING_TITLE, "（4/7）")
    ask_duration = official.ask(starts.strftime("%Y-%m-%d %H:%M"), "（5/7）", buttons="tc:d:")
    official.press(ask_duration, button(ask_duration, "2 小时"), "（6/7）")
    ask_audience = official.ask(TRAINING_PLACE, "（7/7）", buttons="tc:a:")
    township = button(ask_audience, "青山镇")
    assert township.startswith("tc:a:t:"), township
    review = official.press(ask_audience, township, "请核对培训信息", buttons="tc:go")
    assert f"名称：{TRAINING_TITLE}" in review.text and "青山镇后备干部" in review.text
    saved = official.press(review, button(review, "✅ 保存并发出邀请"), "✅ 培训已保存")
    code_match = re.search(r"签到码：<code>([^<]+)</code>", saved.text)
    assert code_match is not None, saved.text
    checkin_code = code_match.group(1)
    assert "已邀请 1 人" in saved.text, saved.text
    when = f"{starts.year}年{starts.month}月{starts.day}日 {starts:%H:%M}"
    assert when in saved.text, (when, saved.text)

    invitation = cadre.wait("培训邀请", buttons="tr:r:")
    assert TRAINING_TITLE in invitation.text and TRAINING_PLACE in invitation.text
    rsvp_yes = button(invitation, "✅ 参加")
    assert re.fullmatch(r"tr:r:\d+:y", rsvp_yes), rsvp_yes
    cadre.person.press(invitation, rsvp_yes)
    answered = edited_to(emulator, bot, cadre.person, invitation, "您已回复：参加")
    assert TRAINING_TITLE in answered.text
    checked_in = cadre.ask(checkin_code, "签到成功")
    assert TRAINING_TITLE in checked_in.text and TRAINING_PLACE in checked_in.text
    lap("training")

    # -- /results: this year's 称职, then /grade --------------------------------------------
    year = datetime.now(SHANGHAI).year
    choose_year = official.ask("/results", "录入年度考核结果", buttons="grd:y:")
    year_data = button(choose_year, f"{year} 年度")
    assert year_data == f"grd:y:{year}", year_data
    official.person.press(choose_year, year_data)
    people = edited_to(emulator, bot, official.person, choose_year, "年度考核结果录入")
    assert f"{nomination_id}｜{NAME}｜青山镇｜第 1 级 0 年" in people.text, people.text
    person_data = button(people, f"{NAME}（{nomination_id}）")
    assert person_data == f"grd:p:{nomination_id}", person_data
    official.person.press(people, person_data)
    results = edited_to(emulator, bot, official.person, choose_year, "请选择考核结果")
    official.person.press(results, button(results, "称职"))
    confirm = edited_to(emulator, bot, official.person, choose_year, "请确认")
    assert "<b>称职</b>" in confirm.text, confirm.text
    official.person.press(confirm, button(confirm, "✅ 确认提交"))
    applied = official.wait("✅ 已录入")
    assert f"{NAME} {year} 年度考核称职" in applied.text, applied.text

    grade = cadre.ask("/grade", "我的职级")
    assert "当前职级：第 2 级" in grade.text, grade.text
    assert f"{year} 年 称职：第 1 级 → 第 2 级" in grade.text, grade.text
    lap("grade")

    # Nothing the bot sent to anyone said it failed or refused.
    for stored in emulator.history(bot.token):
        message = stored.get("message") or {}
        if "chat_id" in message:  # the bot's messages; people's updates carry "chat"
            text = str(message.get("text", ""))
            assert not any(failure in text for failure in FAILURES), text
            assert ID_NUMBER not in text and PHONE not in text, text

    print(f"steps (s since start): {steps}")
