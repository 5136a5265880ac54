"""Demo data: a small fictional county and one prepared person per role."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import geo, people
from storage.models import Person, Role

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True, slots=True)
class DemoInvite:
    role: Role
    person_name: str
    code: str


async def seed_small(session: AsyncSession, *, now: datetime, days: int) -> list[DemoInvite]:
    """Create the small demo county (idempotent) and return a fresh invite per demo role."""
    data = json.loads((DATA_DIR / "demo_small.json").read_text(encoding="utf-8"))
    pairs = [(t, v) for t, villages in data["townships"].items() for v in villages]
    await geo.import_pairs(session, data["county"], pairs)
    invites: list[DemoInvite] = []
    for role_name, spec in data["people"].items():
        role = Role(role_name)
        person = await session.scalar(select(Person).where(Person.full_name == spec["name"]))
        if person is None:
            person = Person(full_name=spec["name"])
            session.add(person)
            await session.flush()
        township_id = None
        if "township" in spec:
            township = await geo.township_by_name(session, spec["township"])
            assert township is not None
            township_id = township.id
        (code,) = await people.create_invites(
            session,
            role=role,
            now=now,
            days=days,
            township_id=township_id,
            department=spec.get("department"),
            mentor_slot=spec.get("mentor_slot"),
            for_person_id=person.id,
        )
        invites.append(DemoInvite(role, spec["name"], code))
    return invites
