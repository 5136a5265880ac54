"""The trigger-kept township columns and tallies (storage/tally.py, migration 0009) on both
engines: what each write does to them, statements that touch several rows at once, cascades,
and verify/rebuild. (Every other test using `db` also ends with tally.verify.)"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, insert, select, text, update

from storage import geo, tally
from storage.db import Database
from storage.models import (
    CadenceTally,
    Election,
    Nomination,
    NominationTally,
    Pairing,
    Person,
    StatusChange,
    TalkLog,
    TalkTally,
)

AT = datetime(2026, 3, 1, 2, tzinfo=UTC)


async def _county(db: Database) -> tuple[int, int, list[int]]:
    """Two townships; a cadre in the pool in the first (college) and one new in the second;
    mentors are persons 3 and 4."""
    async with db.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "青山村"), ("木黄镇", "木黄村")])
        a = await geo.township_by_name(session, "青山镇")
        b = await geo.township_by_name(session, "木黄镇")
        assert a is not None and b is not None
        people = [Person(full_name=f"人{i}") for i in range(4)]
        session.add_all(people)
        await session.flush()
        ids = []
        for person, township, status, education in (
            (people[0], a.id, "in_pool", "bachelor"),
            (people[1], b.id, "new", None),
        ):
            nomination = Nomination(
                person_id=person.id,
                channel="self",
                status=status,
                township_id=township,
                education=education,
                key_group="veteran",
                created_at=AT,
            )
            session.add(nomination)
            await session.flush()
            ids.append(nomination.id)
        return a.id, b.id, [*ids, people[2].id, people[3].id]


async def _rows(db: Database, model: Any) -> dict[tuple[Any, ...], int]:
    """A tally's non-zero rows, key → n."""
    table = model.__table__
    keys = [c for c in table.primary_key.columns]
    async with db.sessionmaker() as session:
        result = await session.execute(select(*keys, table.c.n).where(table.c.n != 0))
        return {tuple(row[:-1]): int(row[-1]) for row in result}


async def _pair_and_talk(db: Database, nomination: int, mentors: list[int]) -> list[int]:
    async with db.sessionmaker.begin() as session:
        pairings = [
            Pairing(nomination_id=nomination, mentor_person_id=m, slot=s, assigned_at=AT)
            for m, s in zip(mentors, ("township", "village"), strict=True)
        ]
        session.add_all(pairings)
        await session.flush()
        for pairing, day in ((pairings[0], date(2026, 3, 1)), (pairings[1], date(2026, 3, 2))):
            session.add(
                TalkLog(
                    pairing_id=pairing.id,
                    nomination_id=nomination,
                    mentor_person_id=pairing.mentor_person_id,
                    talk_date=day,
                    mode="face",
                    topics={},
                )
            )
            pairing.last_talk_on = day
        return [p.id for p in pairings]


async def test_writes_fill_the_township_and_count(db: Database) -> None:
    a, b, (cadre, newcomer, m1, m2) = await _county(db)
    assert await _rows(db, NominationTally) == {
        (a, "in_pool", True, 0): 1,
        (b, "new", False, 0): 1,
    }
    pairings = await _pair_and_talk(db, cadre, [m1, m2])
    async with db.sessionmaker.begin() as session:
        # Rows written without a township get the nomination's.
        session.add(StatusChange(nomination_id=newcomer, to_status="new", event="nominate"))
        await session.execute(
            insert(Election).values(nomination_id=cadre, position="委员", elected_on=AT.date())
        )
    async with db.sessionmaker() as session:
        assert set(await session.scalars(select(Pairing.township_id))) == {a}
        assert set(await session.scalars(select(Pairing.in_pool))) == {True}
        assert set(await session.scalars(select(TalkLog.township_id))) == {a}
        assert await session.scalar(select(StatusChange.township_id)) == b
        assert await session.scalar(select(Election.township_id)) == a
        assert await session.scalar(select(Nomination.active_pairings).filter_by(id=cadre)) == 2
    assert await _rows(db, NominationTally) == {
        (a, "in_pool", True, 2): 1,
        (b, "new", False, 0): 1,
    }
    assert await _rows(db, TalkTally) == {(a, date(2026, 3, 1)): 1, (a, date(2026, 3, 2)): 1}
    assert await _rows(db, CadenceTally) == {(a, date(2026, 3, 1)): 1, (a, date(2026, 3, 2)): 1}

    # A talk moved to another day moves its count; a newer last talk moves the pairing's.
    async with db.sessionmaker.begin() as session:
        await session.execute(
            update(TalkLog).where(TalkLog.pairing_id == pairings[0]).values(talk_date=AT.date())
        )
        await session.execute(
            update(Pairing).where(Pairing.id == pairings[0]).values(last_talk_on=date(2026, 3, 5))
        )
    assert await _rows(db, TalkTally) == {(a, date(2026, 3, 1)): 1, (a, date(2026, 3, 2)): 1}
    assert await _rows(db, CadenceTally) == {(a, date(2026, 3, 5)): 1, (a, date(2026, 3, 2)): 1}


async def test_one_statement_over_several_rows(db: Database) -> None:
    """Row triggers of one statement fire at once on SQLite and at its end on PostgreSQL:
    ending both pairings in one UPDATE leaves the cadre with none, counted once."""
    a, _b, (cadre, _newcomer, m1, m2) = await _county(db)
    await _pair_and_talk(db, cadre, [m1, m2])
    async with db.sessionmaker.begin() as session:
        await session.execute(
            update(Pairing).where(Pairing.nomination_id == cadre).values(ended_at=AT)
        )
    async with db.sessionmaker() as session:
        assert await session.scalar(select(Nomination.active_pairings).filter_by(id=cadre)) == 0
    assert await _rows(db, CadenceTally) == {}
    assert (a, "in_pool", True, 0) in await _rows(db, NominationTally)


async def test_leaving_the_pool_takes_the_pairings_out_of_the_cadence(db: Database) -> None:
    a, _b, (cadre, _newcomer, m1, m2) = await _county(db)
    await _pair_and_talk(db, cadre, [m1, m2])
    async with db.sessionmaker.begin() as session:
        await session.execute(update(Nomination).filter_by(id=cadre).values(status="elected"))
    async with db.sessionmaker() as session:
        assert set(await session.scalars(select(Pairing.in_pool))) == {False}
    assert await _rows(db, CadenceTally) == {}
    assert (a, "elected", True, 2) in await _rows(db, NominationTally)
    async with db.sessionmaker.begin() as session:
        await session.execute(update(Nomination).filter_by(id=cadre).values(status="in_pool"))
    assert len(await _rows(db, CadenceTally)) == 2


async def test_deleting_a_nomination_cascades_out_of_every_tally(db: Database) -> None:
    """Erasure deletes the nomination; its pairings and talks go by cascade, and so do their
    counts (the triggers read the township from the row, not from the deleted nomination)."""
    _a, b, (cadre, _newcomer, m1, m2) = await _county(db)
    await _pair_and_talk(db, cadre, [m1, m2])
    async with db.sessionmaker.begin() as session:
        await session.execute(delete(Nomination).filter_by(id=cadre))
    assert await _rows(db, TalkTally) == {}
    assert await _rows(db, CadenceTally) == {}
    assert await _rows(db, NominationTally) == {(b, "new", False, 0): 1}


async def test_verify_finds_what_is_wrong_and_rebuild_mends_it(db: Database) -> None:
    a, _b, (cadre, _newcomer, m1, m2) = await _county(db)
    await _pair_and_talk(db, cadre, [m1, m2])
    async with db.engine.begin() as connection:
        await connection.execute(text("UPDATE talk_tally SET n = n + 3"))
        await connection.execute(text("UPDATE talk_log SET township_id = NULL"))
        await connection.execute(text("DELETE FROM nomination_tally"))
    async with db.engine.connect() as connection:
        found = await tally.verify(connection)
    what = {m.what for m in found}
    assert what == {"talk_log.township_id", "talk_tally", "nomination_tally"}
    wrong_talks = [m for m in found if m.what == "talk_tally"]
    # 1 + 3, less the 1 that the trigger took away when the township was cleared.
    assert {(m.stored, m.counted) for m in wrong_talks} == {(3, 0)}
    async with db.engine.begin() as connection:
        await tally.rebuild(connection)
    async with db.engine.connect() as connection:
        assert await tally.verify(connection) == []
    assert await _rows(db, TalkTally) == {(a, date(2026, 3, 1)): 1, (a, date(2026, 3, 2)): 1}
