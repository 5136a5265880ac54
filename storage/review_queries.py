"""Reads behind the /review and /vetting screens: one nomination or one vetting review.

Scope is decided in the SQL, as in `storage.nominations`: a township official's query for
another township's nomination, or a reviewer's for another department's review, returns no
row, and the caller gets `NotAllowed`. Every successful read is audited.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from storage import audit
from storage.crypto import DataCipher
from storage.models import Nomination, VettingReview
from storage.nominations import manageable_by
from storage.people import Actor
from storage.rules.vetting import Status

# Stale is named here too: callers import it from this module.
from storage.scoped import NotAllowed, one_or_refuse, row_or_refuse
from storage.scoped import Stale as Stale


@dataclass(frozen=True, slots=True)
class Nominee:
    """What both cards show of the nomination itself."""

    full_name: str
    township: str
    village: str | None
    channel: str
    key_group: str
    id_masked: str | None


@dataclass(frozen=True, slots=True)
class ReviewCard(Nominee):
    """What a township official reads before deciding. No trace of who recommended whom."""

    id: int
    status: str
    gender: str | None
    education: str | None
    political_status: str | None
    phone_masked: str | None
    specialties: str | None
    work_history: str | None
    motivation: str | None
    reason: str | None


# Both cards name the person, township and village: loaded with the nomination, one query.
_WITH_PLACE = (
    joinedload(Nomination.person),
    joinedload(Nomination.township),
    joinedload(Nomination.village),
)


async def _read(
    session: AsyncSession, actor: Actor, nomination: Nomination, via: str, **detail: Any
) -> dict[str, Any]:
    """Audit the read (every card shown is one) and give the card's `Nominee` fields."""
    await audit.record(
        session, actor.person_id, "nomination.read", "nomination", nomination.id, via=via, **detail
    )
    return asdict(
        Nominee(
            full_name=nomination.person.full_name or "",
            township=nomination.township.name,
            village=nomination.village.name if nomination.village else None,
            channel=nomination.channel,
            key_group=nomination.key_group,
            id_masked=nomination.id_number_masked,
        )
    )


async def review_card(session: AsyncSession, actor: Actor, nomination_id: int) -> ReviewCard:
    """One nomination the actor may manage (review, decline, contact), or NotAllowed."""
    nomination = await one_or_refuse(
        session,
        select(Nomination)
        .options(*_WITH_PLACE)
        .where(Nomination.id == nomination_id, manageable_by(actor)),
    )
    return ReviewCard(
        id=nomination.id,
        status=nomination.status,
        **await _read(session, actor, nomination, "review"),
        gender=nomination.gender,
        education=nomination.education,
        political_status=nomination.political_status,
        phone_masked=nomination.phone_masked,
        specialties=nomination.specialties,
        work_history=nomination.work_history,
        motivation=nomination.motivation,
        reason=nomination.reason,
    )


@dataclass(frozen=True, slots=True)
class VettingCard(Nominee):
    """One department's review of one nomination, as its reviewers see it."""

    review_id: int
    nomination_id: int
    department: str
    # What the department's check needs besides the name and village (issue 12): the ID
    # number in full only on the card opened for the check (see `vetting_card`).
    gender: str | None = None
    birth_date: date | None = None
    id_number: str | None = None


async def vetting_card(
    session: AsyncSession, actor: Actor, review_id: int, *, cipher: DataCipher | None = None
) -> VettingCard:
    """An undecided review of one of the actor's departments.

    NotAllowed for another department's review (or none at all); Stale when it is the actor's
    department's but no longer awaits a decision. With the `cipher` (the card the reviewer
    opens for the check) it carries the full ID number, and the read's audit row says so.
    """
    departments = actor.departments()
    if not departments:
        raise NotAllowed
    review, nomination = await row_or_refuse(
        session,
        select(VettingReview, Nomination)
        .join(Nomination, Nomination.id == VettingReview.nomination_id)
        .options(*_WITH_PLACE)
        .where(VettingReview.id == review_id, VettingReview.department.in_(departments)),
    )
    if review.decision is not None or nomination.status != Status.VETTING.value:
        # Decided already, or settled by another department's veto: the button is stale.
        raise Stale
    sealed = nomination.id_number_enc
    id_number = cipher.decrypt(sealed) if cipher is not None and sealed is not None else None
    shown = {"full": ["id_number"]} if id_number is not None else {}
    return VettingCard(
        review_id=review.id,
        nomination_id=nomination.id,
        department=review.department,
        **await _read(session, actor, nomination, "vetting", **shown),
        gender=nomination.gender,
        birth_date=nomination.birth_date,
        id_number=id_number,
    )
