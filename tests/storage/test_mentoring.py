"""2+1 pairing, talks, difficulties and the talk cadence on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.exc import IntegrityError

from storage import erasure, mentoring, models
from storage.crypto import DataCipher
from storage.db import Database
from storage.mentoring import DifficultyItem, PairingRefused, Stale, TalkInput
from storage.nominations import NotAllowed
from storage.people import Actor
from storage.rules.cadence import CadenceState, talk_status
from storage.rules.identity import RuleError
from templates import LOCALES, build_environment
from tests.support.county import form_nomination, loaded_actor, pair, townships
from tests.support.county import staff as _person
from tests.support.hostile import HOSTILE, HostileValue
from tests.support.telegram_html import check

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 00:30 on 2 March in Shanghai, still 1 March in UTC.
NOW = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
TODAY = date(2026, 3, 2)
TOPICS = {
    "thought": {"text": "思想稳定，积极向上"},
    "work": {"voice": "VOICE-FILE-1"},
    "life": {"text": "家庭和睦"},
    "problems": {"text": "缺少启动资金"},
}

OFFICIAL, OTHER_OFFICIAL, COUNTY = 101, 102, 103
MENTOR_T, MENTOR_T2, MENTOR_V, MENTOR_BOTH, MENTOR_ELSEWHERE = 201, 202, 203, 204, 205
NOBODY = 301


@dataclass
class World:
    db: Database
    t1: int
    t2: int
    cadre: int  # in the pool, township 1
    cadre2: int  # in the pool, township 1
    far_cadre: int  # in the pool, township 2
    new_cadre: int  # not yet in the pool, township 1
    persons: dict[int, int]  # telegram id → person id
    # Loaded once after setup; on SQLite a second session inside an open one would wait for
    # the first one's write lock.
    actors: dict[int, Actor] = field(default_factory=dict)

    async def actor(self, telegram_id: int) -> Actor:
        return await loaded_actor(self.db, telegram_id)


# The cadres were nominated three months before the tests' "now".
_nomination = partial(form_nomination, now=NOW - timedelta(days=90))


CIPHER = DataCipher(Fernet.generate_key().decode())


@pytest.fixture
async def world(db: Database) -> World:
    cipher = CIPHER
    async with db.sessionmaker.begin() as session:
        pairs = [("青山镇", "青山村"), ("青山镇", "石板村"), ("木黄镇", "木黄村")]
        towns = await townships(session, pairs)
        t1, t2 = towns["青山镇"], towns["木黄镇"]
        persons = {
            OFFICIAL: await _person(
                session, OFFICIAL, "乡干部", [(models.Role.TOWNSHIP_OFFICIAL, t1, None)]
            ),
            OTHER_OFFICIAL: await _person(
                session, OTHER_OFFICIAL, "木黄干部", [(models.Role.TOWNSHIP_OFFICIAL, t2, None)]
            ),
            COUNTY: await _person(
                session, COUNTY, "县干部", [(models.Role.COUNTY_OFFICIAL, None, None)]
            ),
            MENTOR_T: await _person(
                session, MENTOR_T, "镇导师甲", [(models.Role.MENTOR, t1, "township")]
            ),
            MENTOR_T2: await _person(
                session, MENTOR_T2, "镇导师乙", [(models.Role.MENTOR, t1, "township")]
            ),
            MENTOR_V: await _person(
                session, MENTOR_V, "村书记", [(models.Role.MENTOR, t1, "village")]
            ),
            MENTOR_BOTH: await _person(
                session,
                MENTOR_BOTH,
                "双岗导师",
                [(models.Role.MENTOR, t1, "township"), (models.Role.MENTOR, t1, "village")],
            ),
            MENTOR_ELSEWHERE: await _person(
                session, MENTOR_ELSEWHERE, "木黄导师", [(models.Role.MENTOR, t2, "township")]
            ),
            NOBODY: await _person(session, NOBODY, "路人", []),
        }
        world = World(
            db,
            t1,
            t2,
            cadre=await _nomination(session, cipher, "张三", t1),
            cadre2=await _nomination(session, cipher, "李四", t1),
            far_cadre=await _nomination(session, cipher, "王五", t2),
            new_cadre=await _nomination(session, cipher, "赵六", t1, status="new"),
            persons=persons,
        )
    for telegram_id in persons:
        world.actors[telegram_id] = await world.actor(telegram_id)
    return world


async def _assign(
    w: World, by: int, nomination_id: int, slot: str, mentor: int, now: datetime = NOW
) -> mentoring.Assignment:
    actor = await w.actor(by)
    async with w.db.sessionmaker.begin() as session:
        return await mentoring.assign_mentor(
            session, actor, nomination_id, slot, w.persons[mentor], now=now
        )


async def _resolve(w: World, telegram_id: int, difficulty_id: int, note: str) -> DifficultyItem:
    """`telegram_id`'s actor resolves the difficulty with `note`, in its own transaction."""
    async with w.db.sessionmaker.begin() as session:
        return await mentoring.resolve_difficulty(
            session, w.actors[telegram_id], difficulty_id, cipher=CIPHER, note=note, now=NOW
        )


async def _pairings(w: World, nomination_id: int) -> list[models.Pairing]:
    async with w.db.sessionmaker() as session:
        return list(
            await session.scalars(
                select(models.Pairing)
                .where(models.Pairing.nomination_id == nomination_id)
                .order_by(models.Pairing.id)
            )
        )


async def _count(db: Database, model: type, *where: Any) -> int:
    async with db.sessionmaker() as session:
        return int(
            await session.scalar(select(func.count()).select_from(model).where(*where)) or 0
        )


# --- pairing --------------------------------------------------------------------------------


async def test_pairing_fills_each_slot_with_a_matching_mentor(world: World) -> None:
    w = world
    first = await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T)
    assert first.changed and first.previous_person_id is None
    assert first.mentor_telegram_id == MENTOR_T and first.cadre.full_name == "张三"
    # A village secretary cannot take the township cadre's slot, nor the reverse.
    with pytest.raises(PairingRefused) as refused:
        await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_V)
    assert refused.value.code == "slot"
    with pytest.raises(PairingRefused):
        await _assign(w, OFFICIAL, w.cadre, "village", MENTOR_T2)
    second = await _assign(w, OFFICIAL, w.cadre, "village", MENTOR_V)
    assert second.changed
    # Two slots, two different people, even when one person holds both kinds of grant.
    await _assign(w, OFFICIAL, w.cadre2, "township", MENTOR_BOTH)
    with pytest.raises(PairingRefused) as refused:
        await _assign(w, OFFICIAL, w.cadre2, "village", MENTOR_BOTH)
    assert refused.value.code == "same_person"
    again = await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T)
    assert not again.changed and again.pairing_id == first.pairing_id
    async with w.db.sessionmaker() as session:
        cadre = await mentoring.cadre_pairings(session, w.actors[OFFICIAL], w.cadre)
    assert {s: m.full_name for s, m in cadre.current.items()} == {
        "township": "镇导师甲",
        "village": "村书记",
    }
    assert await _count(w.db, models.AuditLog, models.AuditLog.action == "pairing.assign") == 3


async def test_reassignment_ends_the_old_pairing_and_keeps_history(world: World) -> None:
    w = world
    first = await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T, now=NOW - timedelta(days=40))
    second = await _assign(w, COUNTY, w.cadre, "township", MENTOR_T2)
    assert second.changed and second.previous_person_id == w.persons[MENTOR_T]
    assert second.previous_name == "镇导师甲" and second.previous_telegram_id == MENTOR_T
    rows = await _pairings(w, w.cadre)
    assert [(p.id, p.ended_at is None) for p in rows] == [
        (first.pairing_id, False),
        (second.pairing_id, True),
    ]
    assert rows[0].ended_at == NOW and rows[1].assigned_by_person_id == w.persons[COUNTY]
    # Back to the first mentor: a third row, the history still complete.
    await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T)
    rows = await _pairings(w, w.cadre)
    assert len(rows) == 3 and sum(p.ended_at is None for p in rows) == 1
    audit = await _count(
        w.db,
        models.AuditLog,
        models.AuditLog.action == "pairing.assign",
        models.AuditLog.subject_id == second.pairing_id,
    )
    assert audit == 1


async def test_database_allows_one_active_pairing_per_slot(world: World) -> None:
    w = world
    await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T)
    with pytest.raises(IntegrityError):
        async with w.db.sessionmaker.begin() as session:
            await pair(session, w.cadre, w.persons[MENTOR_T2], assigned_at=NOW)
    # An ended one beside the active one is history, and allowed.
    async with w.db.sessionmaker.begin() as session:
        await pair(
            session,
            w.cadre,
            w.persons[MENTOR_T2],
            assigned_at=NOW - timedelta(days=9),
            ended_at=NOW - timedelta(days=8),
        )


async def test_pairing_scope(world: World) -> None:
    w = world
    other = w.actors[OTHER_OFFICIAL]
    async with w.db.sessionmaker() as session:
        cadres, total = await mentoring.pairable_cadres(session, other)
        assert [c.nomination_id for c in cadres] == [w.far_cadre] and total == 1
        mine, total = await mentoring.pairable_cadres(session, w.actors[OFFICIAL])
        # In the pool only: the new nomination is not offered.
        assert {c.nomination_id for c in mine} == {w.cadre, w.cadre2} and total == 2
        _everyone, total = await mentoring.pairable_cadres(session, w.actors[COUNTY])
        assert total == 3
        for who in (MENTOR_T, NOBODY):
            found, total = await mentoring.pairable_cadres(session, w.actors[who])
            assert (found, total) == ([], 0)
        with pytest.raises(NotAllowed):
            await mentoring.cadre_pairings(session, other, w.cadre)
        with pytest.raises(NotAllowed):
            await mentoring.eligible_mentors(session, other, w.cadre, "township")
        with pytest.raises(Stale):
            await mentoring.cadre_pairings(session, w.actors[OFFICIAL], w.new_cadre)
        choice = await mentoring.eligible_mentors(session, w.actors[OFFICIAL], w.cadre, "township")
        # Same township and slot only: not the village secretary, not 木黄's mentor.
        assert {m.full_name for m in choice.mentors} == {"镇导师甲", "镇导师乙", "双岗导师"}
        village = await mentoring.eligible_mentors(session, w.actors[OFFICIAL], w.cadre, "village")
        assert {m.full_name for m in village.mentors} == {"村书记", "双岗导师"}
        with pytest.raises(NotAllowed):
            await mentoring.eligible_mentors(session, w.actors[OFFICIAL], w.cadre, "x")
    with pytest.raises(NotAllowed):
        await _assign(w, OTHER_OFFICIAL, w.cadre, "township", MENTOR_T)
    with pytest.raises(NotAllowed):
        await _assign(w, MENTOR_T, w.cadre, "township", MENTOR_T)
    # A mentor of another township cannot be put on this township's cadre, even by the county.
    with pytest.raises(NotAllowed):
        await _assign(w, COUNTY, w.cadre, "township", MENTOR_ELSEWHERE)
    with pytest.raises(NotAllowed):
        await _assign(w, OFFICIAL, w.cadre, "township", NOBODY)
    with pytest.raises(Stale):
        await _assign(w, OFFICIAL, w.new_cadre, "township", MENTOR_T)
    # A revoked grant no longer qualifies.
    async with w.db.sessionmaker.begin() as session:
        await session.execute(
            update(models.RoleGrant)
            .where(models.RoleGrant.person_id == w.persons[MENTOR_T2])
            .values(revoked_at=NOW)
        )
    with pytest.raises(NotAllowed):
        await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T2)
    assert await _count(w.db, models.Pairing) == 0


# --- talks ----------------------------------------------------------------------------------


async def _save(
    w: World, mentor: int, pairing_id: int, *, day: date = TODAY, **changes: Any
) -> models.TalkLog:
    values: dict[str, Any] = {"talk_date": day, "mode": "face", "topics": TOPICS}
    values.update(changes)
    actor = await w.actor(mentor)
    async with w.db.sessionmaker.begin() as session:
        return await mentoring.save_talk(
            session, actor, pairing_id, TalkInput(**values), cipher=CIPHER, now=NOW, tz=SHANGHAI
        )


async def test_talk_is_saved_with_its_difficulties(world: World) -> None:
    w = world
    pairing = await _assign(
        w, OFFICIAL, w.cadre, "township", MENTOR_T, now=NOW - timedelta(days=5)
    )
    talk = await _save(
        w, MENTOR_T, pairing.pairing_id, difficulties=["缺少资金", "  技术培训不足  "], mode="home"
    )
    async with w.db.sessionmaker() as session:
        stored = await session.get(models.TalkLog, talk.id)
        assert stored is not None
        assert stored.talk_date == TODAY and stored.mode == "home"
        assert mentoring.talk_topics(CIPHER, stored.topics, stored.topics_enc) == TOPICS
        assert stored.mentor_person_id == w.persons[MENTOR_T]
        rows = list(
            await session.scalars(select(models.Difficulty).order_by(models.Difficulty.id))
        )
    # At rest the texts are encrypted (finding 18): nothing readable in the plain columns.
    assert stored.topics == {} and stored.topics_enc is not None
    assert all(d.description == "" and d.description_enc is not None for d in rows)
    assert [(mentoring.difficulty_texts(CIPHER, d)[0], d.status, d.talk_id) for d in rows] == [
        ("缺少资金", "open", talk.id),
        ("技术培训不足", "open", talk.id),
    ]
    assert await _count(w.db, models.AuditLog, models.AuditLog.action == "talk.create") == 1


async def test_talk_refusals_save_nothing(world: World) -> None:
    w = world
    pairing = await _assign(
        w, OFFICIAL, w.cadre, "township", MENTOR_T, now=NOW - timedelta(days=5)
    )
    pid = pairing.pairing_id
    # 00:30 in Shanghai on 2 March: the 2nd is today, the 3rd is the future.
    for day, code in [
        (date(2026, 3, 3), "talk_date.future"),
        (TODAY - timedelta(days=6), "talk_date.before_pairing"),
    ]:
        with pytest.raises(RuleError) as refused:
            await _save(w, MENTOR_T, pid, day=day)
        assert refused.value.code == code
    with pytest.raises(RuleError):
        await _save(w, MENTOR_T, pid, topics={**TOPICS, "life": {"text": "好"}})
    with pytest.raises(ValueError):
        await _save(w, MENTOR_T, pid, topics={k: v for k, v in TOPICS.items() if k != "life"})
    with pytest.raises(ValueError):
        await _save(w, MENTOR_T, pid, topics={**TOPICS, "life": {"text": "好的", "voice": "V"}})
    with pytest.raises(ValueError):
        await _save(w, MENTOR_T, pid, mode="letter")
    # Not their mentee: refused in the SQL, whether another mentor or an official.
    for who in (MENTOR_T2, OFFICIAL, COUNTY, NOBODY):
        with pytest.raises(NotAllowed):
            await _save(w, who, pid)
    # Once the pairing ends, its buttons are stale.
    await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T2)
    with pytest.raises(Stale):
        await _save(w, MENTOR_T, pid)
    assert await _count(w.db, models.TalkLog) == 0
    assert await _count(w.db, models.Difficulty) == 0


async def test_mentees_with_cadence(world: World) -> None:
    w = world
    early = await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T, now=NOW - timedelta(days=40))
    late = await _assign(w, OFFICIAL, w.cadre2, "township", MENTOR_T, now=NOW - timedelta(days=3))
    await _assign(w, OFFICIAL, w.cadre, "village", MENTOR_V, now=NOW - timedelta(days=3))
    await _save(w, MENTOR_T, late.pairing_id, day=TODAY - timedelta(days=1))
    actor = w.actors[MENTOR_T]
    async with w.db.sessionmaker() as session:
        mentees = await mentoring.list_mentees(session, actor, now=NOW, tz=SHANGHAI)
        with pytest.raises(NotAllowed):
            await mentoring.own_mentee(session, w.actors[MENTOR_V], early.pairing_id, now=NOW)
        mentee = await mentoring.own_mentee(session, actor, late.pairing_id, now=NOW)
    assert [(m.full_name, m.cadence.state, m.last_talk) for m in mentees] == [
        ("张三", CadenceState.OVERDUE, None),
        ("李四", CadenceState.OK, TODAY - timedelta(days=1)),
    ]
    assert mentees[0].paired_on == TODAY - timedelta(days=40)
    assert mentees[0].cadence.days_left == -10
    assert mentee.cadence.due_date == TODAY + timedelta(days=29)
    async with w.db.sessionmaker() as session:
        assert await mentoring.list_mentees(session, w.actors[OFFICIAL], now=NOW) == []


# --- difficulties ---------------------------------------------------------------------------


async def _difficulties_everywhere(w: World) -> dict[str, int]:
    """One talk with a difficulty for 张三 (township 1) and one for 王五 (township 2)."""
    here = await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T, now=NOW - timedelta(days=5))
    there = await _assign(
        w, OTHER_OFFICIAL, w.far_cadre, "township", MENTOR_ELSEWHERE, now=NOW - timedelta(days=5)
    )
    await _save(w, MENTOR_T, here.pairing_id, difficulties=["缺少资金"])
    await _save(w, MENTOR_ELSEWHERE, there.pairing_id, difficulties=["道路不通"])
    async with w.db.sessionmaker() as session:
        rows = list(await session.scalars(select(models.Difficulty)))
    return {mentoring.difficulty_texts(CIPHER, d)[0]: d.id for d in rows}


async def test_difficulties_scope_and_resolution(world: World) -> None:
    w = world
    ids = await _difficulties_everywhere(w)
    seen: dict[int, set[str]] = {}
    async with w.db.sessionmaker() as session:
        for who in (MENTOR_T, MENTOR_V, OFFICIAL, OTHER_OFFICIAL, COUNTY, NOBODY):
            items, total = await mentoring.open_difficulties(session, w.actors[who], cipher=CIPHER)
            assert total == len(items)
            seen[who] = {i.description for i in items}
    assert seen == {
        MENTOR_T: {"缺少资金"},
        MENTOR_V: set(),
        OFFICIAL: {"缺少资金"},
        OTHER_OFFICIAL: {"道路不通"},
        COUNTY: {"缺少资金", "道路不通"},
        NOBODY: set(),
    }
    for who in (OTHER_OFFICIAL, MENTOR_V, NOBODY):
        with pytest.raises(NotAllowed):
            await _resolve(w, who, ids["缺少资金"], "已解决")
    with pytest.raises(RuleError):
        await _resolve(w, MENTOR_T, ids["缺少资金"], "好")
    done = await _resolve(w, MENTOR_T, ids["缺少资金"], "协调小额贷款 5 万元")
    assert done.status == "resolved" and done.resolution == "协调小额贷款 5 万元"
    assert done.resolved_at == NOW
    with pytest.raises(Stale):
        await _resolve(w, OFFICIAL, ids["缺少资金"], "再次解决")
    async with w.db.sessionmaker() as session:
        with pytest.raises(Stale):
            await mentoring.difficulty_for_resolution(
                session, w.actors[COUNTY], ids["缺少资金"], cipher=CIPHER
            )
        row = await session.get(models.Difficulty, ids["缺少资金"])
        assert row is not None and row.resolved_by_person_id == w.persons[MENTOR_T]
    assert await _count(w.db, models.AuditLog, models.AuditLog.action == "difficulty.resolve") == 1
    # The county official resolves the other township's one.
    await _resolve(w, COUNTY, ids["道路不通"], "已修通道路")


async def test_difficulty_counts_per_township(world: World) -> None:
    w = world
    ids = await _difficulties_everywhere(w)
    await _resolve(w, COUNTY, ids["缺少资金"], "已解决好")
    async with w.db.sessionmaker() as session:
        counts = await mentoring.difficulty_counts(session)
        assert [(c.township, c.raised, c.resolved, c.open) for c in counts] == [
            ("青山镇", 1, 1, 0),
            ("木黄镇", 1, 0, 1),
        ]
        later = await mentoring.difficulty_counts(session, since=NOW + timedelta(seconds=1))
        assert [(c.raised, c.resolved, c.open) for c in later] == [(0, 0, 0), (0, 0, 1)]
        one = await mentoring.difficulty_counts(session, township_id=w.t2, until=NOW)
        assert [(c.township, c.raised) for c in one] == [("木黄镇", 0)]


# --- cadence in SQL -------------------------------------------------------------------------


async def test_due_pairings_match_talk_status(world: World) -> None:
    """Only due-soon and overdue pairings come back, exactly those talk_status names."""
    w = world
    cases = [
        # (cadre, slot, mentor, paired days ago, last talk days ago or None)
        (w.cadre, "township", MENTOR_T, 40, None),  # overdue by 10 days
        (w.cadre, "village", MENTOR_V, 31, 31),  # due yesterday: overdue
        (w.cadre2, "township", MENTOR_T2, 60, 30),  # due today
        (w.cadre2, "village", MENTOR_BOTH, 23, None),  # due in 7 days: due soon
        (w.far_cadre, "township", MENTOR_ELSEWHERE, 22, None),  # due in 8 days: ok
    ]
    ids: dict[int, int] = {}
    async with w.db.sessionmaker.begin() as session:
        for index, (cadre, slot, mentor, paired_ago, talk_ago) in enumerate(cases):
            # At 00:30 Shanghai time: a pairing made "N days ago" at that local hour.
            pairing = await pair(
                session,
                cadre,
                w.persons[mentor],
                slot,
                assigned_at=NOW - timedelta(days=paired_ago),
            )
            ids[index] = pairing.id
            if talk_ago is not None:
                session.add(
                    models.TalkLog(
                        pairing_id=pairing.id,
                        nomination_id=cadre,
                        mentor_person_id=w.persons[mentor],
                        talk_date=TODAY - timedelta(days=talk_ago),
                        mode="phone",
                        topics=TOPICS,
                    )
                )
                # An older talk too: the latest one counts.
                session.add(
                    models.TalkLog(
                        pairing_id=pairing.id,
                        nomination_id=cadre,
                        mentor_person_id=w.persons[mentor],
                        talk_date=TODAY - timedelta(days=talk_ago + 20),
                        mode="face",
                        topics=TOPICS,
                    )
                )
        # Talks inserted as rows, not through save_talk: the pairings' dates are recomputed.
        await mentoring.refresh_last_talks(session, list(ids.values()))
        # An ended pairing long overdue, and a cadre out of the pool: neither is due.
        await pair(
            session,
            w.far_cadre,
            w.persons[MENTOR_ELSEWHERE],
            "village",
            assigned_at=NOW - timedelta(days=200),
            ended_at=NOW - timedelta(days=100),
        )
        await pair(
            session, w.new_cadre, w.persons[MENTOR_T], assigned_at=NOW - timedelta(days=200)
        )
    statements: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sync_engine = w.db.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", capture)
    try:
        async with w.db.sessionmaker() as session:
            due = await mentoring.due_pairings(session, NOW, 30, 7, tz=SHANGHAI)
    finally:
        event.remove(sync_engine, "before_cursor_execute", capture)
    assert [(d.pairing_id, d.cadence.state, d.cadence.days_left) for d in due] == [
        (ids[0], CadenceState.OVERDUE, -10),
        (ids[1], CadenceState.OVERDUE, -1),
        (ids[2], CadenceState.DUE_SOON, 0),
        (ids[3], CadenceState.DUE_SOON, 7),
    ]
    assert due[0].mentor_telegram_id == MENTOR_T and due[0].mentor_name == "镇导师甲"
    assert due[0].last_talk is None and due[1].last_talk == TODAY - timedelta(days=31)
    assert due[0].township == "青山镇" and due[0].full_name == "张三"
    assert all(d.mentor_active for d in due)
    # The due condition is in SQL, on the date the pairing keeps: talk_log is not read.
    main = next(s for s in statements if "last_talk_on" in s.lower())
    assert "talk_log" not in main.lower() and "group by" not in main.lower()
    # Brute force over every active pairing agrees.
    async with w.db.sessionmaker() as session:
        expected = set()
        for pairing in await session.scalars(
            select(models.Pairing)
            .join(models.Nomination)
            .where(models.Pairing.ended_at.is_(None), models.Nomination.status == "in_pool")
        ):
            last = await session.scalar(
                select(func.max(models.TalkLog.talk_date)).where(
                    models.TalkLog.pairing_id == pairing.id
                )
            )
            paired_on = pairing.assigned_at.astimezone(SHANGHAI).date()
            if talk_status(last, paired_on, NOW, tz=SHANGHAI).state != CadenceState.OK:
                expected.add(pairing.id)
        assert {d.pairing_id for d in due} == expected
        only_two = await mentoring.due_pairings(session, NOW, tz=SHANGHAI, township_id=w.t2)
        assert only_two == []
        # A day later the ok one is due soon too; a shorter cadence makes more overdue.
        tomorrow = await mentoring.due_pairings(session, NOW + timedelta(days=1), tz=SHANGHAI)
        assert len(tomorrow) == 5
        strict = await mentoring.due_pairings(session, NOW, 20, 0, tz=SHANGHAI)
        assert {d.pairing_id for d in strict if d.cadence.state == "overdue"} == {
            ids[0],
            ids[1],
            ids[2],
            ids[3],
            ids[4],
        }
        counts = await mentoring.talk_counts(session, now=NOW, tz=SHANGHAI)
    # A revoked mentor's pairing is still due (the official must hear of it), flagged so.
    async with w.db.sessionmaker.begin() as session:
        await session.execute(
            update(models.RoleGrant)
            .where(models.RoleGrant.person_id == w.persons[MENTOR_T])
            .values(revoked_at=NOW)
        )
    async with w.db.sessionmaker() as session:
        revoked = await mentoring.due_pairings(session, NOW, tz=SHANGHAI)
    assert [(d.pairing_id, d.mentor_active) for d in revoked][:2] == [
        (ids[0], False),
        (ids[1], True),
    ]
    assert [(c.township, c.pairings, c.cadres_paired, c.due_soon, c.overdue) for c in counts] == [
        ("青山镇", 4, 2, 2, 2),
        ("木黄镇", 1, 1, 0, 0),
    ]
    assert [c.talks for c in counts] == [4, 0]


async def test_pairing_date_is_the_shanghai_date(world: World) -> None:
    """Paired at 16:30 UTC on 1 Feb, 00:30 on 2 Feb in Shanghai: due 4 March, not 3 March."""
    w = world
    async with w.db.sessionmaker.begin() as session:
        await pair(
            session,
            w.cadre,
            w.persons[MENTOR_T],
            assigned_at=datetime(2026, 2, 1, 16, 30, tzinfo=UTC),
        )
    async with w.db.sessionmaker() as session:
        # 2026-02-24 Shanghai: 8 days before 4 March, not yet due soon.
        assert (
            await mentoring.due_pairings(
                session, datetime(2026, 2, 24, 1, tzinfo=SHANGHAI), tz=SHANGHAI
            )
            == []
        )
        (due,) = await mentoring.due_pairings(
            session, datetime(2026, 2, 25, 1, tzinfo=SHANGHAI), tz=SHANGHAI
        )
    assert due.paired_on == date(2026, 2, 2) and due.cadence.due_date == date(2026, 3, 4)


# --- dossier --------------------------------------------------------------------------------


async def test_dossier_section_and_its_template(world: World) -> None:
    w = world
    old = await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T, now=NOW - timedelta(days=20))
    await _save(w, MENTOR_T, old.pairing_id, day=TODAY - timedelta(days=2), difficulties=["缺水"])
    await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T2, now=NOW - timedelta(days=1))
    await _assign(w, OFFICIAL, w.cadre, "village", MENTOR_V, now=NOW - timedelta(days=1))
    async with w.db.sessionmaker() as session:
        section = await mentoring.dossier_section(session, w.cadre, cipher=CIPHER)
        empty = await mentoring.dossier_section(session, w.cadre2, cipher=CIPHER)
    assert [m.full_name for m in section.current] == ["镇导师乙", "村书记"]
    assert [m.full_name for m in section.past] == ["镇导师甲"]
    (talk,) = section.talks
    assert talk.mentor_name == "镇导师甲" and talk.difficulties == 1
    assert [(t.code, t.voice) for t in talk.topics] == [
        ("thought", False),
        ("work", True),
        ("life", False),
        ("problems", False),
    ]
    assert [d.description for d in section.difficulties] == ["缺水"]
    assert section.open_difficulties == 1
    env = build_environment()
    for locale in LOCALES:
        source = f'{{% include "{locale}/dossier/_mentoring.html.j2" %}}'
        html = env.from_string(source).render(locale=locale, mentoring=section)
        plain = check(html)
        assert "镇导师甲" in plain and "思想稳定" in plain and "缺水" in plain
        assert check(env.from_string(source).render(locale=locale, mentoring=empty))
        for equal in (False, True):
            hostile = env.from_string(source).render(
                locale=locale, mentoring=HostileValue(HOSTILE, equal=equal)
            )
            assert "<script>alert(1)</script>" in check(hostile)


# --- the latest talk date kept on the pairing -----------------------------------------------


async def _last_talks(w: World) -> dict[int, tuple[date | None, date | None]]:
    """Per pairing: (last_talk_on as kept, the latest talk_date recomputed from talk_log)."""
    latest = (
        select(func.max(models.TalkLog.talk_date)).where(
            models.TalkLog.pairing_id == models.Pairing.id
        )
    ).scalar_subquery()
    async with w.db.sessionmaker() as session:
        rows = await session.execute(
            select(models.Pairing.id, models.Pairing.last_talk_on, latest)
        )
        return {int(pid): (kept, actual) for pid, kept, actual in rows.all()}


async def test_saved_talks_keep_the_latest_date_on_the_pairing(world: World) -> None:
    w = world
    here = await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T, now=NOW - timedelta(days=40))
    other = await _assign(
        w, OFFICIAL, w.cadre2, "township", MENTOR_T, now=NOW - timedelta(days=40)
    )
    assert await _last_talks(w) == {here.pairing_id: (None, None), other.pairing_id: (None, None)}
    five_ago, twelve_ago = TODAY - timedelta(days=5), TODAY - timedelta(days=12)
    await _save(w, MENTOR_T, here.pairing_id, day=five_ago)
    # An older talk reported later does not move the date back.
    await _save(w, MENTOR_T, here.pairing_id, day=twelve_ago)
    assert await _last_talks(w) == {
        here.pairing_id: (five_ago, five_ago),
        other.pairing_id: (None, None),
    }
    # In the saving session too: a Pairing already loaded there shows the new date.
    async with w.db.sessionmaker.begin() as session:
        await mentoring.save_talk(
            session,
            w.actors[MENTOR_T],
            here.pairing_id,
            TalkInput(TODAY - timedelta(days=1), "phone", TOPICS),
            cipher=CIPHER,
            now=NOW,
            tz=SHANGHAI,
        )
        loaded = await session.get(models.Pairing, here.pairing_id)
        assert loaded is not None and loaded.last_talk_on == TODAY - timedelta(days=1)
    assert (await _last_talks(w))[here.pairing_id] == (TODAY - timedelta(days=1),) * 2
    # The reminders read it: the pairing that just had a talk is no longer due, the other is.
    async with w.db.sessionmaker() as session:
        due = await mentoring.due_pairings(session, NOW, tz=SHANGHAI)
        (mentee,) = [
            m
            for m in await mentoring.list_mentees(session, w.actors[MENTOR_T], now=NOW)
            if m.pairing_id == here.pairing_id
        ]
    assert [(d.pairing_id, d.last_talk) for d in due] == [(other.pairing_id, None)]
    assert mentee.last_talk == TODAY - timedelta(days=1)


async def test_refresh_after_a_talk_is_edited_or_deleted(world: World) -> None:
    w = world
    here = await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T, now=NOW - timedelta(days=40))
    there = await _assign(
        w, OFFICIAL, w.cadre2, "township", MENTOR_T, now=NOW - timedelta(days=40)
    )
    first = await _save(w, MENTOR_T, here.pairing_id, day=TODAY - timedelta(days=20))
    latest = await _save(w, MENTOR_T, here.pairing_id, day=TODAY - timedelta(days=2))
    await _save(w, MENTOR_T, there.pairing_id, day=TODAY - timedelta(days=3))
    untouched = (TODAY - timedelta(days=3),) * 2

    # The latest talk's date corrected to an earlier day: the other talk is now the latest.
    async with w.db.sessionmaker.begin() as session:
        await session.execute(
            update(models.TalkLog)
            .where(models.TalkLog.id == latest.id)
            .values(talk_date=TODAY - timedelta(days=25))
        )
        await mentoring.refresh_last_talks(session, [here.pairing_id])
    kept = await _last_talks(w)
    assert kept[here.pairing_id] == (TODAY - timedelta(days=20),) * 2
    assert kept[there.pairing_id] == untouched

    # Deleted: the one left counts; none left: no date, the pairing date counts again.
    async with w.db.sessionmaker.begin() as session:
        await session.execute(delete(models.TalkLog).where(models.TalkLog.id == first.id))
        await mentoring.refresh_last_talks(session, [here.pairing_id])
    assert (await _last_talks(w))[here.pairing_id] == (TODAY - timedelta(days=25),) * 2
    async with w.db.sessionmaker.begin() as session:
        await session.execute(delete(models.TalkLog).where(models.TalkLog.id == latest.id))
        await mentoring.refresh_last_talks(session, [here.pairing_id])
    kept = await _last_talks(w)
    assert kept == {here.pairing_id: (None, None), there.pairing_id: untouched}
    async with w.db.sessionmaker() as session:
        due = await mentoring.due_pairings(session, NOW, tz=SHANGHAI)
    assert [(d.pairing_id, d.cadence.state) for d in due] == [
        (here.pairing_id, CadenceState.OVERDUE)
    ]

    # A bulk load refreshes every pairing; an empty list refreshes none.
    stale = TODAY - timedelta(days=100)
    async with w.db.sessionmaker.begin() as session:
        await session.execute(update(models.Pairing).values(last_talk_on=stale))
        await mentoring.refresh_last_talks(session, [])
    assert {kept for kept, _ in (await _last_talks(w)).values()} == {stale}
    async with w.db.sessionmaker.begin() as session:
        await mentoring.refresh_last_talks(session)
    assert await _last_talks(w) == {here.pairing_id: (None, None), there.pairing_id: untouched}


async def test_reassignment_starts_the_new_pairing_without_a_talk(world: World) -> None:
    w = world
    first = await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T, now=NOW - timedelta(days=40))
    await _save(w, MENTOR_T, first.pairing_id, day=TODAY - timedelta(days=3))
    second = await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T2)
    assert await _last_talks(w) == {
        first.pairing_id: (TODAY - timedelta(days=3),) * 2,
        second.pairing_id: (None, None),
    }
    # The new mentor's cadence runs from the pairing date (today), not from the old mentor's
    # talk three days ago: due soon from day 23, not day 20; the ended pairing never.
    async with w.db.sessionmaker() as session:
        day_21 = await mentoring.due_pairings(session, NOW + timedelta(days=21), tz=SHANGHAI)
        day_23 = await mentoring.due_pairings(session, NOW + timedelta(days=23), tz=SHANGHAI)
    assert day_21 == []
    assert [(d.pairing_id, d.last_talk, d.cadence.days_left) for d in day_23] == [
        (second.pairing_id, None, 7)
    ]


async def test_erasure_leaves_the_kept_dates_true(world: World) -> None:
    w = world
    gone = await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T, now=NOW - timedelta(days=40))
    stays = await _assign(
        w, OFFICIAL, w.cadre2, "township", MENTOR_T, now=NOW - timedelta(days=40)
    )
    await _save(w, MENTOR_T, gone.pairing_id, day=TODAY - timedelta(days=2))
    await _save(w, MENTOR_T, stays.pairing_id, day=TODAY - timedelta(days=4))
    async with w.db.sessionmaker.begin() as session:
        cadre_person = await erasure.person_of_nomination(session, w.cadre)
        assert cadre_person is not None
        # The cadre's file stays anonymous with its (now ended) pairing and its talks, so the
        # county's counts hold; the mentor keeps the talks they held with others, so that
        # pairing's date stays.
        await erasure.erase_person(session, cadre_person, actor_person_id=None)
        await erasure.erase_person(session, w.persons[MENTOR_T], actor_person_id=None)
    assert await _last_talks(w) == {
        gone.pairing_id: (TODAY - timedelta(days=2),) * 2,
        stays.pairing_id: (TODAY - timedelta(days=4),) * 2,
    }
    async with w.db.sessionmaker() as session:
        assert await mentoring.due_pairings(session, NOW, tz=SHANGHAI) == []
        late = await mentoring.due_pairings(session, NOW + timedelta(days=19), tz=SHANGHAI)
    assert [(d.pairing_id, d.last_talk) for d in late] == [
        (stays.pairing_id, TODAY - timedelta(days=4))
    ]
