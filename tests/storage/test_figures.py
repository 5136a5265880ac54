"""Select-stage figures on SQLite and PostgreSQL, against a data set counted by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import figures, geo, nominations
from storage.crypto import DataCipher
from storage.db import Database
from storage.models import Nomination, Person, Role, VettingReview
from storage.nominations import NominationForm
from storage.people import Actor, Grant
from storage.rules.vetting import Channel, Decision

DEPARTMENTS = ("police", "discipline")
BEFORE = datetime(2026, 2, 10, 8, 0, tzinfo=UTC)
SINCE = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
IN = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
LATE = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
UNTIL = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
AFTER = datetime(2026, 4, 2, 8, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class County:
    a: int
    b: int
    c: int
    admin: Actor
    ids: dict[int, int]  # hand-numbered nomination -> database id


def _actor(person_id: int, role: Role, **scope: Any) -> Actor:
    grant = Grant(role, scope.get("township_id"), None, scope.get("department"))
    return Actor(person_id=person_id, telegram_id=person_id + 10_000, grants=(grant,))


async def _person(session: AsyncSession) -> int:
    person = Person(full_name="办事人")
    session.add(person)
    await session.flush()
    return person.id


async def _decide(
    session: AsyncSession, reviewer: Actor, nomination_id: int, decision: Decision, at: datetime
) -> None:
    department = next(iter(reviewer.departments()))
    review_id = await session.scalar(
        select(VettingReview.id).where(
            VettingReview.nomination_id == nomination_id, VettingReview.department == department
        )
    )
    assert review_id is not None
    await nominations.decide_review(
        session,
        reviewer,
        review_id,
        decision=decision,
        note=None,
        departments=DEPARTMENTS,
        now=at,
        cipher=DataCipher(Fernet.generate_key().decode()),  # no note to encrypt
    )


# (township, channel, key group, education, created at)
ROWS: dict[int, tuple[str, Channel, str, str | None, datetime]] = {
    1: ("a", Channel.SELF, "veteran", "college", SINCE),
    2: ("a", Channel.SELF, "veteran", "bachelor", SINCE),
    3: ("a", Channel.MASS, "wealth_leader", "high_school", BEFORE),
    4: ("a", Channel.ORGANIZATION, "wealth_leader", None, IN),
    5: ("a", Channel.MASS, "doctor_teacher", "postgraduate", UNTIL),
    6: ("b", Channel.SELF, "returning_graduate", "college", BEFORE),
    7: ("b", Channel.ORGANIZATION, "returning_graduate", "junior_or_below", IN),
    8: ("b", Channel.SELF, "veteran", "college", BEFORE),
    9: ("b", Channel.MASS, "coop_leader", "high_school", IN),
}


async def build_county(db: Database) -> County:
    """Nine nominations moved through the real storage functions (see ROWS and below)."""
    cipher = DataCipher(Fernet.generate_key().decode())
    A, P, D = Decision.APPROVE, "police", "discipline"
    async with db.sessionmaker.begin() as session:
        await geo.import_pairs(
            session, "示例县", [("青山镇", "青山村"), ("木黄镇", "木黄村"), ("天堂镇", "天堂村")]
        )
        towns = {t.name: t.id for t in await geo.list_townships(session)}
        a, b, c = towns["青山镇"], towns["木黄镇"], towns["天堂镇"]
        admin = _actor(await _person(session), Role.ADMIN)
        police = _actor(await _person(session), Role.REVIEWER, department=P)
        discipline = _actor(await _person(session), Role.REVIEWER, department=D)
        reviewer = {P: police, D: discipline}
        ids: dict[int, int] = {}
        for number, (town, channel, group, education, created) in ROWS.items():
            nomination = await nominations.create_nomination(
                session,
                cipher,
                NominationForm(
                    full_name=f"人选{number}",
                    township_id=a if town == "a" else b,
                    key_group=group,
                    education=education,
                    phone=f"1380000000{number}",
                ),
                channel=channel,
                submitted_by=admin.person_id,
                person_id=None,
                now=created,
            )
            ids[number] = nomination.id
            await session.execute(
                update(Nomination).where(Nomination.id == nomination.id).values(created_at=created)
            )

        async def vet(number: int, at: datetime) -> None:
            await nominations.send_to_vetting(
                session, admin, ids[number], departments=DEPARTMENTS, now=at
            )

        async def decide(number: int, dept: str, decision: Decision, at: datetime) -> None:
            await _decide(session, reviewer[dept], ids[number], decision, at)

        async def adjust(number: int, at: datetime) -> None:
            await nominations.adjust_out(
                session, admin, ids[number], reason="不适宜", now=at, cipher=cipher
            )

        await vet(1, SINCE)
        await decide(1, P, A, IN)
        await decide(1, D, A, IN)
        await adjust(1, LATE)
        await vet(2, SINCE)
        await decide(2, P, A, SINCE)
        await decide(2, D, A, SINCE)
        await vet(3, BEFORE)
        await decide(3, P, Decision.REJECT, IN)
        await vet(4, IN)
        await decide(4, P, A, IN)
        await vet(6, BEFORE)
        await decide(6, P, A, BEFORE)
        await decide(6, D, A, BEFORE)
        await vet(7, IN)
        await decide(7, P, A, IN)
        await decide(7, D, A, AFTER)
        await vet(8, BEFORE)
        await decide(8, P, A, BEFORE)
        await decide(8, D, A, BEFORE)
        await adjust(8, UNTIL)
        await nominations.decline(session, admin, ids[9], reason="本人放弃", now=IN, cipher=cipher)
    return County(a, b, c, admin, ids)


async def _figures(db: Database, **kwargs: Any) -> figures.SelectFigures:
    async with db.sessionmaker() as session:
        return await figures.select_figures(session, **kwargs)


async def test_all_time_figures_per_township_and_county(db: Database) -> None:
    county = await build_county(db)
    result = await _figures(db)
    rows = {row.township_id: row for row in result.townships}
    assert list(rows) == sorted([county.a, county.b, county.c])
    a, b, c, total = rows[county.a], rows[county.b], rows[county.c], result.total

    assert a.township == "青山镇" and a.nominations == 5
    assert a.by_channel == {"self": 2, "mass": 2, "organization": 1}
    assert a.by_key_group == {"veteran": 2, "wealth_leader": 2, "doctor_teacher": 1}
    assert a.college_or_higher == 3 and a.college_share == pytest.approx(3 / 5)
    assert a.by_status == {"adjusted": 1, "in_pool": 1, "rejected": 1, "vetting": 1, "new": 1}
    assert (a.pool, a.pool_college_or_higher, a.vetting_pending) == (1, 1, 1)
    assert (a.vetting_approved, a.vetting_rejected) == (2, 1)
    # Nomination 3's discipline review is open but moot after the police veto: not pending.
    assert (a.reviews_pending, a.reviews_approved, a.reviews_rejected) == (1, 5, 1)
    assert (a.adjusted, a.adjusted_out) == (1, 1)

    assert b.township == "木黄镇" and b.nominations == 4
    assert b.by_channel == {"self": 2, "organization": 1, "mass": 1}
    assert b.by_key_group == {"returning_graduate": 2, "veteran": 1, "coop_leader": 1}
    assert b.college_or_higher == 2
    assert b.by_status == {"in_pool": 2, "adjusted": 1, "declined": 1}
    assert (b.pool, b.pool_college_or_higher, b.vetting_pending) == (2, 1, 0)
    assert (b.vetting_approved, b.vetting_rejected) == (3, 0)
    assert (b.reviews_pending, b.reviews_approved, b.reviews_rejected) == (0, 6, 0)
    assert (b.adjusted, b.adjusted_out) == (1, 1)

    assert c.township == "天堂镇" and c.nominations == 0 and c.pool == 0
    assert c.by_channel == {} and c.college_share is None and c.pool_college_share is None

    assert total.township_id is None and total.township is None
    assert total.nominations == 9
    assert total.by_channel == {"self": 4, "mass": 3, "organization": 2}
    assert total.by_key_group == {
        "veteran": 3,
        "wealth_leader": 2,
        "doctor_teacher": 1,
        "returning_graduate": 2,
        "coop_leader": 1,
    }
    assert total.college_or_higher == 5 and total.college_share == pytest.approx(5 / 9)
    assert total.pool == 3 and total.pool_college_or_higher == 2
    assert total.pool_college_share == pytest.approx(2 / 3)
    assert total.by_status == {
        "in_pool": 3,
        "adjusted": 2,
        "rejected": 1,
        "vetting": 1,
        "new": 1,
        "declined": 1,
    }
    assert (total.vetting_pending, total.vetting_approved, total.vetting_rejected) == (1, 5, 1)
    assert (total.reviews_pending, total.reviews_approved, total.reviews_rejected) == (1, 11, 1)
    assert (total.adjusted, total.adjusted_out) == (2, 2)


async def test_period_is_half_open_and_stock_ignores_it(db: Database) -> None:
    county = await build_county(db)
    result = await _figures(db, since=SINCE, until=UNTIL)
    rows = {row.township_id: row for row in result.townships}
    a, b, total = rows[county.a], rows[county.b], result.total
    assert (result.since, result.until) == (SINCE, UNTIL)

    # Received at SINCE counts, at UNTIL does not.
    assert a.nominations == 3 and a.by_channel == {"self": 2, "organization": 1}
    assert a.by_key_group == {"veteran": 2, "wealth_leader": 1}
    assert a.college_or_higher == 2
    assert (a.vetting_approved, a.vetting_rejected, a.adjusted_out) == (2, 1, 1)
    assert (a.reviews_pending, a.reviews_approved, a.reviews_rejected) == (1, 5, 1)

    assert b.nominations == 2 and b.by_channel == {"organization": 1, "mass": 1}
    assert b.college_or_higher == 0 and b.college_share == 0.0
    # Nomination 7 passed AFTER; 8 was adjusted exactly at UNTIL: both outside.
    assert (b.vetting_approved, b.vetting_rejected, b.adjusted_out) == (0, 0, 0)
    assert (b.reviews_approved, b.reviews_pending) == (1, 0)

    # Stock is as of now.
    assert (a.pool, a.adjusted, b.pool, b.adjusted) == (1, 1, 2, 1)
    assert total.nominations == 5 and total.college_or_higher == 2
    assert (total.vetting_approved, total.vetting_rejected, total.adjusted_out) == (2, 1, 1)
    assert (total.reviews_approved, total.reviews_rejected, total.reviews_pending) == (6, 1, 1)
    assert (total.pool, total.vetting_pending) == (3, 1)

    only_since = await _figures(db, since=LATE)
    assert only_since.total.adjusted_out == 2 and only_since.total.nominations == 1
    only_until = await _figures(db, until=SINCE)
    assert only_until.total.nominations == 3 and only_until.total.vetting_approved == 2


async def test_one_township_only(db: Database) -> None:
    county = await build_county(db)
    result = await _figures(db, township_id=county.b)
    assert [row.township_id for row in result.townships] == [county.b]
    (b,) = result.townships
    assert result.total.nominations == b.nominations == 4
    assert result.total.pool == b.pool == 2
    assert result.total.by_status == b.by_status
    empty = await _figures(db, township_id=county.c)
    assert empty.total.nominations == 0 and empty.total.reviews_pending == 0


async def test_a_fixed_number_of_grouped_queries(db: Database) -> None:
    await build_county(db)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        await _figures(db, since=SINCE, until=UNTIL)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    queries = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 5
    assert sum("GROUP BY" in s.upper() for s in queries) == 4


async def test_managed_nomination_follows_scope(db: Database) -> None:
    county = await build_county(db)
    async with db.sessionmaker() as session:
        person = county.admin.person_id
        own = _actor(person, Role.TOWNSHIP_OFFICIAL, township_id=county.a)
        other = _actor(person, Role.TOWNSHIP_OFFICIAL, township_id=county.b)
        reviewer = _actor(person, Role.REVIEWER, department="police")
        in_pool, adjusted = county.ids[2], county.ids[1]
        found = await figures.managed_nomination(session, own, in_pool)
        assert found == figures.ManagedNomination(in_pool, "人选2", "in_pool")
        assert await figures.managed_nomination(session, county.admin, in_pool) == found
        adjusted_one = await figures.managed_nomination(session, county.admin, adjusted)
        assert adjusted_one is not None and adjusted_one.status == "adjusted"
        assert await figures.managed_nomination(session, other, in_pool) is None
        assert await figures.managed_nomination(session, reviewer, in_pool) is None
        assert await figures.managed_nomination(session, county.admin, 999_999) is None
