"""From a recommendation to a complete, consented file (issue 12, item 1).

A recommendation (群众举荐 or 组织推荐) names a person who has consented to nothing and whose
ID number nobody typed. The township gives that person a one-time code (`invite_nominee`);
with it, or by sharing the phone the recommendation carries, the person fills in their own
file through /nominate (`complete`). Only a complete file goes to joint vetting
(`send_complete_to_vetting`). Who recommended them is never part of anything here.
Functions take a session and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.crypto import DataCipher
from storage.models import Nomination, NomineeInvite, Person, Township, Village
from storage.nominations import Duplicate, NominationForm, locked, manageable_by, send_to_vetting
from storage.people import Actor, hash_code, new_code
from storage.rules.identity import mask_id, mask_phone
from storage.rules.vetting import Channel, Status
from storage.scoped import Stale, one_or_refuse

# A file the nominee can still complete: a recommendation the township has not yet decided.
_OPEN = (Status.NEW.value, Status.CONTACTED.value)
_RECOMMENDED = (Channel.MASS.value, Channel.ORGANIZATION.value)


class Incomplete(Exception):
    """The file lacks what joint vetting needs; `missing` names it (template codes)."""

    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__(", ".join(missing))
        self.missing = tuple(missing)


def missing(nomination: Nomination) -> tuple[str, ...]:
    """What a file still lacks before vetting: the ID number, the two consents."""
    lacks = []
    if nomination.id_number_hash is None:
        lacks.append("id_number")
    if nomination.consent_at is None or nomination.sensitive_consent_at is None:
        lacks.append("consent")
    return tuple(lacks)


def _completable() -> list[ColumnElement[bool]]:
    return [
        Nomination.channel.in_(_RECOMMENDED),
        Nomination.status.in_(_OPEN),
        Nomination.erased_at.is_(None),
        or_(Nomination.id_number_hash.is_(None), Nomination.sensitive_consent_at.is_(None)),
    ]


async def lacking(session: AsyncSession, actor: Actor, nomination_id: int) -> tuple[str, ...]:
    """What the file `nomination_id` lacks, if the actor manages it (else NotAllowed)."""
    query = select(Nomination).where(Nomination.id == nomination_id, manageable_by(actor))
    return missing(await one_or_refuse(session, query))


async def send_complete_to_vetting(
    session: AsyncSession,
    actor: Actor,
    nomination_id: int,
    *,
    departments: Sequence[str],
    now: datetime,
) -> Nomination:
    """Send the file to joint vetting only if it is complete; else Incomplete (the caller
    says what it lacks, and records the refusal with `refuse_incomplete`)."""
    lacks = await lacking(session, actor, nomination_id)
    if lacks:
        raise Incomplete(lacks)
    return await send_to_vetting(session, actor, nomination_id, departments=departments, now=now)


async def refuse_incomplete(session: AsyncSession, actor: Actor, nomination_id: int) -> None:
    """Audit an official's attempt to send an incomplete file to vetting."""
    await audit.record(
        session, actor.person_id, "vetting.refused_incomplete", "nomination", nomination_id
    )


async def invite_nominee(
    session: AsyncSession, actor: Actor, nomination_id: int, *, now: datetime, days: int
) -> str:
    """A new one-time code for the nominee of a recommendation in the actor's scope; the
    codes given before for the same file stop working (a lost slip is replaced, not added).
    Only the code's hash is kept: it is shown once."""
    nomination = await locked(session, manageable_by(actor), nomination_id)
    if nomination.channel not in _RECOMMENDED or nomination.status not in _OPEN:
        raise Stale
    if not missing(nomination):
        raise Stale
    await session.execute(
        update(NomineeInvite)
        .where(NomineeInvite.nomination_id == nomination.id, NomineeInvite.used_at.is_(None))
        .values(expires_at=now)
    )
    code = new_code()
    session.add(
        NomineeInvite(
            nomination_id=nomination.id,
            code_hash=hash_code(code),
            created_by_person_id=actor.person_id,
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
    )
    await audit.record(session, actor.person_id, "nomination.invite", "nomination", nomination.id)
    return code


@dataclass(frozen=True, slots=True)
class OpenFile:
    """What the nominee's form starts with: the file's township, village and group (their
    name they type themselves; nothing says who recommended them)."""

    nomination_id: int
    township_id: int
    township_name: str
    village_id: int | None
    village_name: str | None
    key_group: str


async def open_invite(session: AsyncSession, code: str, *, now: datetime) -> OpenFile | None:
    """The file an unused, unexpired code opens, while it can still be completed."""
    row = (
        await session.execute(
            select(Nomination, Township.name, Village.name)
            .join(NomineeInvite, NomineeInvite.nomination_id == Nomination.id)
            .join(Township, Township.id == Nomination.township_id)
            .outerjoin(Village, Village.id == Nomination.village_id)
            .where(
                NomineeInvite.code_hash == hash_code(code),
                NomineeInvite.used_at.is_(None),
                NomineeInvite.expires_at > now,
                *_completable(),
            )
        )
    ).first()
    if row is None:
        return None
    nomination, township, village = row
    return OpenFile(
        nomination.id,
        nomination.township_id,
        township,
        nomination.village_id,
        village,
        nomination.key_group,
    )


async def pending_by_phone(session: AsyncSession, cipher: DataCipher, phone: str) -> int | None:
    """The recommendation waiting for its nominee that carries this phone, if any."""
    found = await session.scalar(
        select(Nomination.id).where(
            Nomination.phone_hash == cipher.lookup_hash(phone), *_completable()
        )
    )
    return found


async def complete(
    session: AsyncSession,
    cipher: DataCipher,
    nomination_id: int,
    form: NominationForm,
    *,
    person_id: int,
    now: datetime,
) -> Nomination:
    """The nominee's own answers and both consents into the recommended file, which becomes
    theirs (`person_id`: their account's person). Duplicate if the ID number or phone belongs
    to another file; Stale if the file can no longer be completed."""
    nomination = await session.scalar(
        select(Nomination).where(Nomination.id == nomination_id, *_completable()).with_for_update()
    )
    if nomination is None:
        raise Stale
    hashes = [cipher.lookup_hash(v) for v in (form.id_number, form.phone) if v]
    taken = await session.scalar(
        select(func.count()).where(
            Nomination.id != nomination.id,
            or_(Nomination.id_number_hash.in_(hashes), Nomination.phone_hash.in_(hashes)),
        )
    )
    if taken or not form.id_number:
        raise Duplicate
    recommended_person = nomination.person_id
    person = await session.get_one(Person, person_id)
    person.full_name = form.full_name
    nomination.person_id = person_id
    for name in (
        "township_id",
        "village_id",
        "gender",
        "birth_date",
        "ethnicity",
        "political_status",
        "education",
        "key_group",
        "specialties",
        "work_history",
        "motivation",
    ):
        setattr(nomination, name, getattr(form, name))
    nomination.id_number_enc = cipher.encrypt(form.id_number)
    nomination.id_number_hash = cipher.lookup_hash(form.id_number)
    nomination.id_number_masked = mask_id(form.id_number)
    if form.phone:
        nomination.phone_enc = cipher.encrypt(form.phone)
        nomination.phone_hash = cipher.lookup_hash(form.phone)
        nomination.phone_masked = mask_phone(form.phone)
    nomination.consent_at = now
    nomination.sensitive_consent_at = now
    await session.execute(
        update(NomineeInvite)
        .where(NomineeInvite.nomination_id == nomination.id, NomineeInvite.used_at.is_(None))
        .values(used_at=now)
    )
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Duplicate from None
    if recommended_person != person_id:
        # The person the recommender typed in named nobody else: the nominee is now the file's
        # person, and the recommender's spelling of their name is not kept beside it.
        others = await session.scalar(
            select(func.count()).where(Nomination.person_id == recommended_person)
        )
        if not others:
            await session.delete(await session.get_one(Person, recommended_person))
    await audit.record(session, person_id, "nomination.complete", "nomination", nomination.id)
    return nomination
