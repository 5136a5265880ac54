"""Issue 12, item 7: the summary in the organization department's terms, on SQLite and
PostgreSQL against the hand-counted county of test_summary."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from handlers.chat.charts import ChartData
from handlers.oversight.summary import render_summary
from storage import summary
from storage.db import Database
from storage.models import Nomination
from storage.summary import Summary
from templates import build_environment, render
from tests.storage.test_summary import NOW, SINCE, TZ, build_county

ENV = build_environment()
# The first twenty days of November: a period that ended before NOW.
PAST_END = datetime(2026, 11, 21, tzinfo=TZ)


async def _past(db: Database, township_id: int | None = None) -> Summary:
    async with db.sessionmaker() as session:
        return await summary.build_summary(
            session,
            township_id=township_id,
            since=SINCE,
            until=PAST_END,
            now=NOW,
            tz=TZ,
            talk_every_days=30,
            talk_soon_days=7,
            stocks_at_end=True,
        )


def _text(s: Summary, locale: str = "zh_CN", **how: object) -> str:
    return render_summary(ENV, locale, s, tz=TZ, period="range", soon_days=7, **how)


async def test_a_past_period_takes_its_stocks_at_its_end(db: Database) -> None:
    """No stock of today in a past period: rebuilt as of its end, or left out with a note."""
    county = await build_county(db)
    s = await _past(db)
    assert s.past
    # In the pool on 21 November: 1, 2 and 6 (5 was elected on the 15th, 8 never entered).
    assert (s.pool, s.by_status["in_pool"], s.by_status["elected"]) == (3, 3, 1)
    # P4 (assigned on the 20th) counts; P6 ended on the 10th; P7's cadre was elected.
    assert (s.pairings, s.cadres_paired, s.mentors) == (5, 3, 3)
    # Open on the 21st: 1's (raised 10th), 6's from September; 2's was resolved on the 12th.
    assert s.difficulties_open == 2
    # The intern post from 1 November; the hard post starts on the 30th.
    assert s.posts_active_by_kind == {"intern": 1}
    # The fixture's projects were created today, after the end: none yet, nor their income.
    assert (s.projects, s.funds_yuan, s.income_total_yuan) == (0, 0, 0)
    # What no record rebuilds is left out, not today's figure.
    assert (s.talks_due_soon, s.talks_overdue, s.overdue_mentors) == (0, 0, ())
    assert (s.unreachable_candidates, s.unreachable_mentors, s.projects_done) == (0, 0, 0)
    text = _text(s)
    assert "存量为期末数" in text and "不列入" in text
    assert "已逾期 <b>" not in text and "（已完成" not in text and "⚠️" not in text
    assert "期末尚未解决 2 件" in text
    # The same period asked for with today's stocks (the default) shows them.
    async with db.sessionmaker() as session:
        now = await summary.build_summary(
            session,
            township_id=county.a,
            since=SINCE,
            until=PAST_END,
            now=NOW,
            tz=TZ,
            talk_every_days=30,
            talk_soon_days=7,
        )
    assert not now.past and now.talks_overdue == 1


async def test_headline_groups_and_mentors_structure_and_villages(db: Database) -> None:
    await build_county(db)
    s = await _past(db)
    text = _text(s)
    # The headline: selected into the pool in the period (1 on the 5th, 6 on the 12th).
    assert "本期选拔村级后备干部 <b>2</b> 名。" in text
    # "2+1" in groups and mentors, never in pairs.
    assert "“2+1”结对帮带 3 组，导师 3 名" in text and "1496 对" not in text
    assert "其中大专及以上学历占 66.7%" in text  # college, high school, college
    # Received in the period: 1, 3, 4, 6, 7; 4's education is unknown and out of the share.
    assert "大专及以上学历占 75.0%（学历不详 1 人，不计入占比）" in text
    assert "2 个村均有后备干部" in text
    english = _text(s, "en")
    assert "<b>2</b> reserve cadres selected into the pool in the period." in english
    assert '"2+1" mentoring: 3 groups with 3 mentors' in english


async def test_unknown_education_is_not_counted_below_college(db: Database) -> None:
    county = await build_county(db)
    async with db.sessionmaker.begin() as session:
        await session.execute(
            update(Nomination).where(Nomination.id == county.n[2]).values(education=None)
        )
    s = await _past(db)
    assert s.structure.education_unknown == 1
    # 1 and 6 at 大专, 2 unknown: 100%, not 66.7%.
    assert "其中大专及以上学历占 100.0%（学历不详 1 人，不计入占比）" in _text(s)


async def test_a_village_with_nobody_in_the_pool_is_named(db: Database) -> None:
    county = await build_county(db)
    async with db.sessionmaker.begin() as session:
        await session.execute(
            update(Nomination).where(Nomination.id == county.n[6]).values(status="adjusted")
        )
    async with db.sessionmaker() as session:
        s = await summary.build_summary(
            session,
            township_id=None,
            since=SINCE,
            until=NOW,
            now=NOW,
            tz=TZ,
            talk_every_days=30,
            talk_soon_days=7,
        )
    assert (s.villages, s.villages_without_cadre, s.villages_without_cadre_named) == (
        2,
        1,
        ("木黄镇木黄村",),
    )
    assert "尚无后备干部的村 <b>1</b> 个（共 2 个村）：木黄镇木黄村。" in _text(s)
    assert "1 village of 2 has no reserve cadre: 木黄镇木黄村." in _text(s, "en")


async def test_the_change_hint_only_with_a_change_shown(db: Database) -> None:
    await build_county(db)
    s = await _past(db)
    figures = summary.key_figures(s)
    same = summary.changes(figures, figures)
    assert same == {}
    assert "括号内" not in _text(s, change=same)
    more = summary.changes(figures, {**figures, "pool": s.pool - 1})
    text = _text(s, change=more)
    assert "（括号内为与上次简报相比的变化）" in text and "（▲1）" in text


async def test_english_plurals(db: Database) -> None:
    await build_county(db)
    s = await _past(db)
    text = _text(s, "en")
    # One election in the period (5, on the 15th) and one in all before the 21st.
    assert "1 reserve cadre elected" in text and "1 cadres" not in text
    assert "1 reserve cadres" not in text


async def test_a_township_chart_is_titled_for_its_township(db: Database) -> None:
    county = await build_county(db)
    township = await _past(db, county.a)
    chart = ChartData.of(township)
    assert chart.township_scope and ChartData.from_json(chart.to_json()) == chart
    title = render(ENV, "zh_CN", "summary/chart_talks_title", township=chart.scope_name)
    assert title == "青山镇谈心谈话（对/次）"
    assert render(ENV, "zh_CN", "summary/chart_talks_title", township=None).startswith("各乡镇")
    assert render(ENV, "en", "summary/chart_talks_title", township="青山镇").endswith("青山镇")
    # The funnel is the period's: received 1, 3, 4; vetted and into the pool 1; a mentor
    # given to 2 (P4, the 20th); 5 elected on the 15th.
    assert [n for _, n in chart.funnel] == [3, 1, 1, 1, 1]
    assert [n for _, n in (await _past(db)).funnel] == [5, 3, 2, 1, 1]
