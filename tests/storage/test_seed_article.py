"""The article's county: its grouped figures are the seed article's figures."""

from __future__ import annotations

from datetime import UTC, date, datetime

from cryptography.fernet import Fernet

from storage import figures, mentoring, outcomes, projects, trainings
from storage.crypto import DataCipher
from storage.db import Database
from storage.models import Role
from storage.people import Actor, Grant
from storage.seed_article import seed_article

COUNTY = Actor(person_id=0, telegram_id=0, grants=(Grant(Role.COUNTY_OFFICIAL, None, None, None),))
SINCE = datetime(2024, 1, 1, tzinfo=UTC)
UNTIL = datetime(2025, 1, 1, tzinfo=UTC)
LATER = datetime(2030, 1, 1, tzinfo=UTC)  # stock figures: everything the seed wrote


async def test_article_county_reproduces_the_articles_figures(db: Database) -> None:
    cipher = DataCipher(Fernet.generate_key().decode())
    async with db.sessionmaker.begin() as session:
        counts = await seed_article(session, cipher, now=datetime.now(UTC))
    assert counts.reserve_cadres == 754
    async with db.sessionmaker() as session:
        select = await figures.select_figures(session, since=SINCE, until=LATER)
        by_kind = await trainings.counts_by_kind(session, COUNTY, since=SINCE, until=UNTIL)
        visits = await trainings.integrity_visits(session, COUNTY, since=SINCE, until=UNTIL)
        difficulties = await mentoring.difficulty_counts(session, since=SINCE, until=LATER)
        talks = await mentoring.talk_counts(session, now=UNTIL, since=SINCE, until=UNTIL)
        project = await projects.project_figures(
            session, since=date(2024, 1, 1), until=date(2025, 1, 1)
        )
        outcome = await outcomes.outcome_figures(
            session, since=date(2024, 1, 1), until=date(2025, 1, 1)
        )
    total = select.total
    # 754 reserve cadres, six of whom were elected into the two committees.
    assert total.by_status.get("in_pool", 0) + total.by_status.get("elected", 0) == 754
    assert set(total.by_channel) == {"self", "mass", "organization"}
    assert len(total.by_key_group) == 7
    # Over 70% at 大专 or higher (the pool's share, as the article counts it).
    assert total.pool_college_or_higher / total.by_status["in_pool"] > 0.70
    regular = [g for g in by_kind if g.kind != "integrity"]
    assert len(regular) >= 1 and sum(g.sessions for g in regular) >= 20
    assert sum(g.person_times for g in regular) == 1800
    assert visits == 13
    assert sum(t.talks for t in talks) >= 1600
    assert sum(d.resolved for d in difficulties) == 89
    assert project.total.projects == 66 and project.total.leads == 35
    assert project.total.funds_yuan == 52_330_000
    assert project.total.income_yuan > 2_000_000
    assert outcome.total.elected == 6
    assert outcome.total.publicity >= 10
