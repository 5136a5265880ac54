"""Talks recorded by an official on a mentor's behalf (storage/behalf.py), on SQLite and
PostgreSQL, in test_mentoring's county."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from storage import behalf, mentoring, models
from storage.mentoring import Stale, TalkInput
from storage.nominations import NotAllowed
from storage.rules.identity import RuleError
from tests.storage.test_mentoring import (  # noqa: F401 - world is a fixture
    CIPHER,
    COUNTY,
    MENTOR_T,
    MENTOR_T2,
    NOBODY,
    NOW,
    OFFICIAL,
    OTHER_OFFICIAL,
    SHANGHAI,
    TODAY,
    TOPICS,
    World,
    _assign,
    _save,
    world,
)


async def _record(w: World, by: int, pairing_id: int, day: date) -> models.TalkLog:
    talk = TalkInput(talk_date=day, mode="phone", topics=TOPICS, difficulties=["修路缺资金"])
    async with w.db.sessionmaker.begin() as session:
        return await behalf.record_talk(
            session, w.actors[by], pairing_id, talk, cipher=CIPHER, now=NOW, tz=SHANGHAI
        )


async def test_an_official_records_an_older_talk_on_the_mentors_behalf(world: World) -> None:  # noqa: F811
    """A talk 80 days back: refused to the mentor (30 days), recorded by the township's
    official or the county's for the mentor, marked so in the file and the audit log; never
    by another township, a mentor or nobody; never before the pairing nor in the future."""
    w = world
    paired = await _assign(
        w, OFFICIAL, w.cadre, "township", MENTOR_T, now=NOW - timedelta(days=85)
    )
    pid = paired.pairing_id
    old = TODAY - timedelta(days=80)
    with pytest.raises(RuleError) as refused:
        await _save(w, MENTOR_T, pid, day=old)
    assert refused.value.code == "talk_date.too_old"
    async with w.db.sessionmaker() as session:
        listed, total = await behalf.recordable_pairings(session, w.actors[OFFICIAL], tz=SHANGHAI)
        assert total == 1 and [(p.full_name, p.mentor_name) for p in listed] == [
            ("张三", "镇导师甲")
        ]
        for outsider in (OTHER_OFFICIAL, MENTOR_T, NOBODY):
            assert await behalf.recordable_pairings(session, w.actors[outsider], tz=SHANGHAI) == (
                [],
                0,
            )
    for outsider in (OTHER_OFFICIAL, MENTOR_T, NOBODY):
        with pytest.raises(NotAllowed):
            await _record(w, outsider, pid, old)
    for day, code in [
        (TODAY - timedelta(days=86), "talk_date.before_pairing"),
        (TODAY + timedelta(days=1), "talk_date.future"),
    ]:
        with pytest.raises(RuleError) as refused:
            await _record(w, OFFICIAL, pid, day)
        assert refused.value.code == code
    talk = await _record(w, OFFICIAL, pid, old)
    await _record(w, COUNTY, pid, old + timedelta(days=10))
    assert talk.mentor_person_id == w.persons[MENTOR_T]
    assert talk.recorded_by_person_id == w.persons[OFFICIAL]
    async with w.db.sessionmaker() as session:
        section = await mentoring.dossier_section(session, w.cadre, cipher=CIPHER)
        pairing = await session.get(models.Pairing, pid)
        audit = (
            await session.scalars(
                select(models.AuditLog).where(
                    models.AuditLog.action == "talk.create",
                    models.AuditLog.subject_id == talk.id,
                )
            )
        ).one()
    assert [(t.talk_date, t.recorded_by) for t in section.talks] == [
        (old + timedelta(days=10), "县干部"),
        (old, "乡干部"),
    ]
    assert [d.description for d in section.difficulties] == ["修路缺资金", "修路缺资金"]
    assert pairing is not None and pairing.last_talk_on == old + timedelta(days=10)
    assert audit.actor_person_id == w.persons[OFFICIAL]
    assert audit.detail["on_behalf_of"] == w.persons[MENTOR_T]
    # The mentor's own talks stay unmarked.
    await _save(w, MENTOR_T, pid, day=TODAY)
    async with w.db.sessionmaker() as session:
        section = await mentoring.dossier_section(session, w.cadre, cipher=CIPHER)
    assert section.talks[0].talk_date == TODAY and section.talks[0].recorded_by is None
    # A pairing that ended can no longer be recorded for.
    await _assign(w, OFFICIAL, w.cadre, "township", MENTOR_T2)
    with pytest.raises(Stale):
        await _record(w, OFFICIAL, pid, old)
    async with w.db.sessionmaker() as session:
        with pytest.raises(Stale):
            await behalf.recordable_pairing(session, w.actors[OFFICIAL], pid, tz=SHANGHAI)
