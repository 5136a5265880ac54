"""The article county's 2024 summary: every article figure, 754 as its headline, no stock
of today (issue 12)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet

from handlers.oversight.summary import render_summary
from storage import summary
from storage.crypto import DataCipher
from storage.db import Database
from storage.seed_article import seed_article
from templates import build_environment

TZ = ZoneInfo("Asia/Shanghai")


async def test_the_2024_summary_is_the_articles(db: Database) -> None:
    now = datetime.now(UTC)
    async with db.sessionmaker.begin() as session:
        await seed_article(session, DataCipher(Fernet.generate_key().decode()), now=now)
    async with db.sessionmaker() as session:
        s = await summary.build_summary(
            session,
            township_id=None,
            since=datetime(2024, 1, 1, tzinfo=TZ),
            until=datetime(2025, 1, 1, tzinfo=TZ),
            now=now,
            tz=TZ,
            talk_every_days=30,
            talk_soon_days=7,
            stocks_at_end=True,
        )
    text = render_summary(build_environment(), "zh_CN", s, tz=TZ, period="range", soon_days=7)
    assert s.past and s.selected == 754
    assert "本期选拔村级后备干部 <b>754</b> 名。" in text
    # Every cadre was paired with a township cadre and a village secretary: groups, not pairs.
    assert f"“2+1”结对帮带 {s.cadres_paired} 组，导师 {s.mentors} 名" in text
    assert s.cadres_paired == s.pool and s.pairings == 2 * s.pool
    # No stock of today: the seed's pairings have had no talk since 2024, so "now" they are
    # all overdue; the posts of 2024 are over now but ran at its end.
    assert "已逾期" not in text and s.talks_overdue == 0
    assert s.posts_active > 0
    assert s.structure.college_or_higher / s.pool > 0.70
    for figure in (
        "举办培训 22 期，覆盖后备干部 1800 人次",
        "开展廉政教育 13 次",
        "谈心谈话 1612 次",
        "解决 89 件",
        "35 名后备干部牵头盘活闲置资产项目 66 个",
        "涉及资金 5233 万元",
        "增收 212.6 万元",
        "6 名后备干部通过选举进入村“两委”",
        "宣传报道 12 篇",
    ):
        assert figure in text, (figure, text)
