"""Demo data: a small fictional county, one prepared person per staff role, and the candidates'
files that give each of those people work waiting (storage/data/demo_small.json).

The files go through the real storage transitions, so their history, audit rows and tallies
are what the bot would have written: the township official has a self-nomination to review
and an open difficulty, the reviewer a vetting item of their department, the mentor two
mentees, one with a talk due soon and one overdue. Their dates are counted back from `now`,
so the demo is as fresh on the day it is seeded as on the day it was written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit, geo, mentoring, nominations, people
from storage.crypto import DataCipher
from storage.models import Nomination, Pairing, Person, Role, RoleGrant, VettingReview
from storage.nominations import NominationForm
from storage.people import Actor, Grant
from storage.rules.cadence import local_date
from storage.rules.identity import make_id_number
from storage.rules.vetting import Channel, Decision

DATA_DIR = Path(__file__).parent / "data"
# The files' order codes in their ID numbers start here (make_id_number's `seq`).
FIRST_ID_SEQ = 100


@cache
def demo_data() -> dict[str, Any]:
    """storage/data/demo_small.json, read once."""
    data: dict[str, Any] = json.loads((DATA_DIR / "demo_small.json").read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True, slots=True)
class DemoInvite:
    role: Role
    person_name: str
    code: str


async def demo_person(session: AsyncSession, name: str) -> Person:
    """The demo person named `name`, created on first use. Found by name: the 演示… names
    keep the demo's staff apart from anyone a real or the article's county holds."""
    person = await session.scalar(select(Person).where(Person.full_name == name))
    if person is None:
        person = Person(full_name=name)
        session.add(person)
        await session.flush()
    return person


async def demo_invite(
    session: AsyncSession,
    role: Role,
    spec: dict[str, Any],
    person_id: int,
    *,
    now: datetime,
    days: int,
) -> str:
    """A fresh single-use invite that steps its redeemer into the demo person `person_id`.

    ValueError when the demo's township is not in the database."""
    township_id = None
    if "township" in spec:
        township = await geo.township_by_name(session, spec["township"])
        if township is None:
            raise ValueError(f"the demo township {spec['township']} is missing from the database")
        township_id = township.id
    (code,) = await people.create_invites(
        session,
        role=role,
        now=now,
        days=days,
        township_id=township_id,
        department=spec.get("department"),
        mentor_slot=spec.get("mentor_slot"),
        for_person_id=person_id,
    )
    return code


async def seed_small(session: AsyncSession, *, now: datetime, days: int) -> list[DemoInvite]:
    """Create the small demo county and its staff (idempotent) and return a fresh invite per
    demo role; `seed_files` adds the work waiting for them."""
    data = demo_data()
    pairs = [(t, v) for t, villages in data["townships"].items() for v in villages]
    await geo.import_pairs(session, data["county"], pairs)
    invites: list[DemoInvite] = []
    for role_name, spec in data["people"].items():
        role = Role(role_name)
        person = await demo_person(session, spec["name"])
        code = await demo_invite(session, role, spec, person.id, now=now, days=days)
        invites.append(DemoInvite(role, spec["name"], code))
    return invites


async def seed_files(
    session: AsyncSession,
    cipher: DataCipher,
    *,
    now: datetime,
    tz: ZoneInfo,
    departments: Sequence[str],
) -> int:
    """Add the demo's candidates' files in the demo official's township, each moved as far
    as its `days_ago` says; returns how many were added. Idempotent: a file whose ID number
    or phone is already stored is left alone. Needs `seed_small` first (its people)."""
    data = demo_data()
    staff = data["people"]
    place = staff[Role.TOWNSHIP_OFFICIAL.value]["township"]
    township = await geo.township_by_name(session, place)
    if township is None:
        raise ValueError(f"the demo township {place} is missing from the database")
    found, _ = await geo.list_villages(session, township.id, limit=1000)
    villages = {v.name: v.id for v in found}
    # The demo's staff, as they will act once their invites are redeemed.
    official = Actor(
        (await demo_person(session, staff[Role.TOWNSHIP_OFFICIAL.value]["name"])).id,
        0,
        (Grant(Role.TOWNSHIP_OFFICIAL, township.id, township.name, None),),
    )
    mentor_spec = staff[Role.MENTOR.value]
    mentor = Actor(
        (await demo_person(session, mentor_spec["name"])).id,
        0,
        (Grant(Role.MENTOR, township.id, township.name, None, mentor_spec["mentor_slot"]),),
    )
    reviewers = await _reviewers(session, departments)
    today = local_date(now, tz)

    def moment(days_ago: int) -> datetime:
        """10:00 in the county, `days_ago` days before today."""
        day = today - timedelta(days=days_ago)
        return datetime.combine(day, time(10), tzinfo=tz).astimezone(UTC)

    added = 0
    for number, spec in enumerate(data["files"]):
        male = spec["gender"] == "male"
        birth = date.fromisoformat(spec["birth_date"])
        form = NominationForm(
            full_name=spec["name"],
            township_id=township.id,
            village_id=villages[spec["village"]],
            gender=spec["gender"],
            birth_date=birth,
            ethnicity=spec["ethnicity"],
            political_status=spec["political_status"],
            education=spec["education"],
            key_group=spec["key_group"],
            id_number=make_id_number(data["id_region"], birth, FIRST_ID_SEQ + number, male),
            phone=spec["phone"],
            specialties=spec["specialties"],
            work_history=spec["work_history"],
            motivation=spec["motivation"],
        )
        if await nominations.is_duplicate(
            session, cipher, id_number=form.id_number, phone=form.phone
        ):
            continue
        days_ago: dict[str, int] = spec["days_ago"]
        nomination = await _self_nomination(session, cipher, form, moment(days_ago["submitted"]))
        if "vetting" in days_ago:
            await nominations.send_to_vetting(
                session,
                official,
                nomination.id,
                departments=departments,
                now=moment(days_ago["vetting"]),
            )
        if "approved" in days_ago:
            await _approve(session, cipher, nomination.id, reviewers, moment(days_ago["approved"]))
        if "paired" in days_ago:
            pairing = await _pair(
                session, official, mentor, nomination.id, moment(days_ago["paired"])
            )
            if "talk" in days_ago:
                talk = spec["talk"]
                at = moment(days_ago["talk"])
                await mentoring.save_talk(
                    session,
                    mentor,
                    pairing.id,
                    mentoring.TalkInput(
                        talk_date=local_date(at, tz),
                        mode=talk["mode"],
                        topics={code: {"text": text} for code, text in talk["topics"].items()},
                        difficulties=talk["difficulties"],
                    ),
                    cipher=cipher,
                    now=at,
                    tz=tz,
                )
        added += 1
    return added


async def _reviewers(session: AsyncSession, departments: Sequence[str]) -> dict[str, Actor]:
    """An acting reviewer per department: the demo reviewer for theirs, and for each other
    department a colleague with a reviewer grant of their own (no invite: they never log in).
    A deployment with more departments than colleagues has a colleague sit for two."""
    data = demo_data()
    spec = data["people"][Role.REVIEWER.value]
    colleagues = iter(data["colleagues"] * len(departments))
    reviewers: dict[str, Actor] = {}
    for department in departments:
        name = spec["name"] if department == spec["department"] else next(colleagues)
        person = await demo_person(session, name)
        if name != spec["name"]:
            granted = await session.scalar(
                select(RoleGrant.id).where(
                    RoleGrant.person_id == person.id,
                    RoleGrant.role == Role.REVIEWER.value,
                    RoleGrant.department == department,
                )
            )
            if granted is None:
                session.add(
                    RoleGrant(person_id=person.id, role=Role.REVIEWER.value, department=department)
                )
        grant = Grant(Role.REVIEWER, None, None, department)
        reviewers[department] = Actor(person.id, 0, (grant,))
    await session.flush()
    return reviewers


async def _self_nomination(
    session: AsyncSession, cipher: DataCipher, form: NominationForm, at: datetime
) -> Nomination:
    """A self-nomination with both consents, as /nominate stores it, received `at`."""
    person = Person(full_name=form.full_name)
    session.add(person)
    await session.flush()
    nomination = await nominations.create_nomination(
        session,
        cipher,
        form,
        channel=Channel.SELF,
        submitted_by=person.id,
        person_id=person.id,
        now=at,
        consent=True,
    )
    # The column defaults to the database's clock: the file was received days ago.
    nomination.created_at = at
    await session.flush()
    return nomination


async def _approve(
    session: AsyncSession,
    cipher: DataCipher,
    nomination_id: int,
    reviewers: dict[str, Actor],
    at: datetime,
) -> None:
    """Every department approves, each with its usual note: the file enters the pool."""
    notes: dict[str, str] = demo_data()["vetting_notes"]
    reviews = await session.scalars(
        select(VettingReview)
        .where(VettingReview.nomination_id == nomination_id)
        .order_by(VettingReview.id)
    )
    for review in list(reviews):
        await nominations.decide_review(
            session,
            reviewers[review.department],
            review.id,
            decision=Decision.APPROVE,
            note=notes.get(review.department),
            departments=list(reviewers),
            now=at,
            cipher=cipher,
        )


async def _pair(
    session: AsyncSession, official: Actor, mentor: Actor, nomination_id: int, at: datetime
) -> Pairing:
    """The demo mentor in their slot of the cadre's "2+1", assigned by the demo official.

    A row, not mentoring.assign_mentor: that checks the mentor's grant, which the demo mentor
    receives only when someone redeems their invite."""
    (grant,) = mentor.grants
    assert grant.mentor_slot is not None
    pairing = Pairing(
        nomination_id=nomination_id,
        mentor_person_id=mentor.person_id,
        slot=grant.mentor_slot,
        assigned_by_person_id=official.person_id,
        assigned_at=at,
    )
    session.add(pairing)
    await session.flush()
    await audit.record(
        session,
        official.person_id,
        "pairing.assign",
        "pairing",
        pairing.id,
        nomination_id=nomination_id,
        slot=grant.mentor_slot,
        mentor_person_id=mentor.person_id,
    )
    return pairing
