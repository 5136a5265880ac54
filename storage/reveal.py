"""The full numbers the people who must act need, each look audited.

Numbers are stored encrypted beside their masks (`storage/nominations.py`), and every other
read shows the mask. Three reads open them, each for one task and audited per file with
`full` naming what was shown in full, so `/mydata` can tell the person who saw it:
- a phone, for contacting the person: whoever manages the file (`manageable_by`: the township
  official of its township, a county official, an admin), one file a tap (`phone.reveal`);
- an ID number, for a vetting department's check: the department's reviewers, one person a
  card (`review_queries.vetting_card` with the cipher) or their queue as a list
  (`export.write_vetting_list`, `export.vetting`);
- phones in the scope's workbook, when the official asks for them (`export.phone`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.crypto import DataCipher
from storage.models import AuditLog, Nomination, Person
from storage.nominations import manageable_by
from storage.people import Actor
from storage.scoped import row_or_refuse

PHONE_REVEALED = "phone.reveal"
PHONES_EXPORTED = "export.phone"
CHECK_LISTED = "export.vetting"


@dataclass(frozen=True, slots=True)
class RevealedPhone:
    nomination_id: int
    full_name: str
    # None when the file holds no phone (nothing was shown, nothing audited).
    phone: str | None


async def reveal_phone(
    session: AsyncSession, actor: Actor, nomination_id: int, *, cipher: DataCipher, via: str
) -> RevealedPhone:
    """The full phone of a file the actor manages, audited; NotAllowed outside their scope
    (an erased file has no phone to show and is nobody's)."""
    nomination, full_name = await row_or_refuse(
        session,
        select(Nomination, Person.full_name)
        .join(Person, Person.id == Nomination.person_id)
        .where(
            Nomination.id == nomination_id,
            Nomination.erased_at.is_(None),
            manageable_by(actor),
        ),
    )
    phone = cipher.decrypt(nomination.phone_enc) if nomination.phone_enc is not None else None
    if phone is not None:
        await audit.record(
            session,
            actor.person_id,
            PHONE_REVEALED,
            "nomination",
            nomination.id,
            via=via,
            full=["phone"],
        )
    return RevealedPhone(nomination.id, full_name or "", phone)


async def audit_each(
    session: AsyncSession,
    actor_person_id: int | None,
    action: str,
    nomination_ids: Iterable[int],
    **detail: object,
) -> None:
    """One audit row per file (a list or a workbook that showed them), in one statement."""
    rows = [
        {
            "actor_person_id": actor_person_id,
            "action": action,
            "subject_type": "nomination",
            "subject_id": nomination_id,
            "detail": detail,
        }
        for nomination_id in nomination_ids
    ]
    if rows:
        await session.execute(insert(AuditLog), rows)
