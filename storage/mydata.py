"""What the county holds about one person, for /mydata (PIPL's right to know).

Only the person's own data, with ID and phone as the masks stored beside them; who read their
file comes from the audit log as the reader's role and township, never the reader's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.models import Nomination, RoleGrant, Township, Village

# The audit actions that are someone reading (or taking away) a person's file.
# Every audited look at a file: the dossier, its workbook, the review and vetting screens
# (nomination.read) and the grade view; a phone shown in full, and a workbook or a vetting
# list that carried the file (storage/reveal.py).
READ_ACTIONS = (
    "dossier.read",
    "export.dossier",
    "nomination.read",
    "grade.read",
    "phone.reveal",
    "export.phone",
    "export.vetting",
)


@dataclass(frozen=True, slots=True)
class HeldFile:
    id: int
    status: str
    channel: str
    township: str
    village: str | None
    key_group: str
    id_masked: str | None
    phone_masked: str | None
    created_at: datetime
    consent_at: datetime | None
    sensitive_consent_at: datetime | None


@dataclass(frozen=True, slots=True)
class Reader:
    """A role someone held when they read a file: the role, and its township if any."""

    role: str
    township: str | None
    department: str | None


@dataclass(frozen=True, slots=True)
class Read:
    at: datetime
    file_id: int
    action: str
    by_self: bool
    # Roles the reader holds or held; empty when they had none (e.g. the file's own person).
    roles: tuple[Reader, ...]
    # What the look showed in full ("phone", "id_number"; storage/reveal.py), else nothing.
    full: tuple[str, ...] = ()


async def files_of(session: AsyncSession, person_id: int) -> list[HeldFile]:
    rows = await session.execute(
        select(Nomination, Township.name, Village.name)
        .join(Township, Township.id == Nomination.township_id)
        .outerjoin(Village, Village.id == Nomination.village_id)
        .where(Nomination.person_id == person_id)
        .order_by(Nomination.id)
    )
    return [
        HeldFile(
            id=n.id,
            status=n.status,
            channel=n.channel,
            township=township,
            village=village,
            key_group=n.key_group,
            id_masked=n.id_number_masked,
            phone_masked=n.phone_masked,
            created_at=n.created_at,
            consent_at=n.consent_at,
            sensitive_consent_at=n.sensitive_consent_at,
        )
        for n, township, village in rows.all()
    ]


async def reads_of(session: AsyncSession, person_id: int, file_ids: list[int]) -> list[Read]:
    """Who read these files and when, newest first, as roles (see Reader)."""
    entries = await audit.reads_of(session, file_ids, actions=READ_ACTIONS)
    readers = {e.actor_person_id for e in entries if e.actor_person_id is not None}
    roles: dict[int, list[Reader]] = {}
    if readers:
        grants = await session.execute(
            select(RoleGrant.person_id, RoleGrant.role, Township.name, RoleGrant.department)
            .outerjoin(Township, Township.id == RoleGrant.township_id)
            .where(RoleGrant.person_id.in_(readers))
            .order_by(RoleGrant.id)
        )
        for reader_id, role, township, department in grants.all():
            held = Reader(role, township, department)
            if held not in roles.setdefault(reader_id, []):
                roles[reader_id].append(held)
    return [
        Read(
            at=e.at,
            file_id=e.subject_id or 0,
            action=e.action,
            by_self=e.actor_person_id == person_id,
            roles=tuple(roles.get(e.actor_person_id or 0, ())),
            full=tuple(str(f) for f in e.detail.get("full", ())),
        )
        for e in entries
    ]
