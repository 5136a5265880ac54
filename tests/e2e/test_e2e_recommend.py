"""Issue 12, item 1, over HTTP: a recommendation becomes a complete, consented file only
through its nominee, then goes through vetting into the pool and is paired.

The real `cadrebot run` against the emulator, on the demo county: a member of the public
recommends 杨秀英 with her phone; the township official finds the file incomplete (vetting is
refused) and gives a code; she opens the file with `/nominate CODE`, consents and completes
it; the official sends it to vetting, the three departments approve, she is told she entered
the pool, and the official pairs her with the demo mentor.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

import pytest

from storage.rules.identity import make_id_number
from tests.e2e.chat import Inbox, button, data_starting, edited_to, invite, take_role
from tests.e2e.conftest import Emulator

if TYPE_CHECKING:
    from tests.e2e.conftest import BotProcess, Person

    MakePerson = Callable[..., Person]

pytestmark = pytest.mark.e2e

NAME = "杨秀英"
ID_NUMBER = make_id_number("520221", date(1993, 9, 2), 24, male=False)
PHONE = "15885019876"


def test_a_recommendation_is_completed_by_its_nominee_then_vetted_and_paired(
    emulator: Emulator, bot: BotProcess, person: MakePerson
) -> None:
    demo: dict[str, str] = {}
    # Staff only: the demo's own candidate files would stand in 青山镇's review queue.
    for line in bot.cli("seed", "--demo", "--staff-only").splitlines():
        if line.strip():
            role, code, _link = line.split()
            demo[role] = code
    official = Inbox(person())
    take_role(official, demo["township_official"], "青山镇")
    mentor = Inbox(person())
    take_role(mentor, demo["mentor"], "青山镇")
    reviewers = [Inbox(person()) for _ in range(3)]
    take_role(reviewers[0], demo["reviewer"], "公安")
    take_role(
        reviewers[1], invite(bot, "--role", "reviewer", "--department", "discipline"), "纪检监察"
    )
    take_role(reviewers[2], invite(bot, "--role", "reviewer", "--department", "judicial"), "司法")

    # -- a member of the public recommends her -------------------------------------------------
    public = Inbox(person())
    public.ask("/recommend", "（1/6）")
    ask_township = public.ask(NAME, "（2/6）", buttons="rec:")
    ask_village = public.press(ask_township, button(ask_township, "青山镇"), "（3/6）")
    public.press(ask_village, button(ask_village, "石门村"), "（4/6）")
    ask_group = public.ask(PHONE, "（5/6）", buttons="rec:")
    public.press(ask_group, button(ask_group, "致富能手"), "（6/6）")
    review = public.ask("带领全组发展茶叶", "请核对推荐信息")
    public.press(review, button(review, "✅ 确认提交"), "感谢您的举荐")

    # -- the township finds it incomplete and gives her a code ---------------------------------
    official.wait("新的群众举荐待审核")
    queue = official.ask("/review", "待审核的推荐人选", buttons="rv:o:")
    (opened,) = data_starting(queue, "rv:o:")
    nomination_id = int(opened.rsplit(":", 1)[1])
    official.press(queue, opened)
    card = edited_to(emulator, bot, official.person, queue, "档案待本人完善")
    official.press(card, button(card, "📤 提交资格联审"))
    refused = edited_to(emulator, bot, official.person, queue, "不能提交资格联审：缺")
    official.press(refused, button(refused, "✉️ 生成补全邀请码"))
    shown = edited_to(emulator, bot, official.person, queue, "仅显示这一次")
    found = re.search(r"/nominate ([A-Z0-9]+)", shown.text)
    assert found is not None, shown.text
    code = found.group(1)

    # -- she opens her file, consents and completes it -----------------------------------------
    nominee = Inbox(person())
    nominee.person.send(f"/nominate {code}")
    nominee.wait("请您本人确认同意并补全信息")
    consent = nominee.wait("个人信息处理告知")
    consent_id = nominee.press(consent, button(consent, "同意"), "敏感个人信息单独同意")
    nominee.press(consent_id, button(consent_id, "同意"), "（1/13）")
    ask_gender = nominee.ask(NAME, "（2/13）")
    nominee.press(ask_gender, button(ask_gender, "女"), "（3/13）")
    nominee.ask(ID_NUMBER, "（4/13）")
    ask_ethnicity = nominee.ask(PHONE, "（5/13）", buttons="nom:")
    ask_political = nominee.press(ask_ethnicity, button(ask_ethnicity, "苗族"), "（6/13）")
    ask_education = nominee.press(ask_political, button(ask_political, "群众"), "（7/13）")
    # Township, village and group came with the file: the next question is her specialties.
    nominee.press(ask_education, button(ask_education, "大专"), "（11/13）")
    nominee.ask("茶叶种植", "（12/13）")
    nominee.ask("在外务工五年", "（13/13）")
    review = nominee.ask("想为村里做点实事", "请核对报名信息")
    assert "乡镇（街道）：青山镇" in review.text and "村（社区）：石门村" in review.text
    nominee.press(review, button(review, "✅ 确认提交"), "报名已提交")
    # Nothing she was shown names the recommendation or who made it.
    assert not any("举荐" in m.text for m in nominee.stash)

    # -- to vetting, into the pool -------------------------------------------------------------
    official.wait("已由本人确认同意并补全")
    queue = official.ask("/review", "待审核的推荐人选", buttons="rv:o:")
    official.press(queue, f"rv:o:{nomination_id}")
    card = edited_to(emulator, bot, official.person, queue, "身份证号：")
    assert "档案待本人完善" not in card.text and ID_NUMBER not in card.text
    official.press(card, button(card, "📤 提交资格联审"))
    edited_to(emulator, bot, official.person, queue, "提交资格联审。")
    for reviewer in reviewers:
        reviewer.wait("等待资格联审")
        queue = reviewer.ask("/vetting", "待联审人选")
        (vet_open,) = data_starting(queue, "vt:o:")
        reviewer.person.press(queue, vet_open)
        item = edited_to(emulator, bot, reviewer.person, queue, "资格联审：")
        ask_note = reviewer.press(item, button(item, "✅ 通过"), "请填写审核意见", buttons="vt:n:")
        reviewer.press(ask_note, button(ask_note, "无意见"), "已记录")
    pooled = nominee.wait("资源库")
    assert "入库" in pooled.text, pooled.text
    official.wait("已通过资格联审")

    # -- paired with the demo county's township-cadre mentor -----------------------------------
    cadres = official.ask("/pair", "“2+1”结对帮带", buttons="pr:n:")
    pick = f"pr:n:{nomination_id}"
    assert pick in data_starting(cadres, "pr:n:"), cadres.buttons
    township_slot = official.press(cadres, pick, "请选择乡镇干部导师", buttons="pr:m:")
    official.person.press(township_slot, button(township_slot, "演示导师"))
    done = official.wait("✅ 已安排 演示导师")
    assert NAME in done.text, done.text
