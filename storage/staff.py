"""Staff managed in the bot: invite codes made by officials, the staff in an official's
scope, a role revoked, a name corrected. Functions take a session and never commit.

Scope is a condition of each query (`_in_scope`), never a check after the read: a grant
outside the actor's reach is `NotAllowed`, like one that does not exist. An actor never
manages their own grants (no one revokes themself out of the last admin seat by a slip).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import ColumnElement, Row, Select, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit, menus, people
from storage.models import Person, Role, RoleGrant, Township
from storage.people import Actor
from storage.rules.staff import county_managed, invitable
from storage.scoped import NotAllowed, Stale, page


@dataclass(frozen=True, slots=True)
class StaffMember:
    """One active grant in scope, as /staff lists it (a person with two roles shows twice)."""

    grant_id: int
    person_id: int
    full_name: str | None
    role: Role
    township: str | None
    department: str | None
    mentor_slot: str | None
    granted_at: datetime


async def make_invite(
    session: AsyncSession,
    actor: Actor,
    role: Role,
    *,
    now: datetime,
    days: int,
    departments: Sequence[str],
    township_id: int | None = None,
    department: str | None = None,
    mentor_slot: str | None = None,
) -> str:
    """One invite code made by `actor`, within what their roles may hand out (NotAllowed
    otherwise: a forged button, or a role lost meanwhile); the CLI's storage makes it."""
    if role not in invitable(actor.roles):
        raise NotAllowed
    if role == Role.MENTOR and township_id not in actor.township_ids(Role.TOWNSHIP_OFFICIAL):
        raise NotAllowed
    if role == Role.TOWNSHIP_OFFICIAL and (
        township_id is None or await session.get(Township, township_id) is None
    ):
        raise Stale
    if role == Role.REVIEWER and department not in departments:
        raise NotAllowed
    (code,) = await people.create_invites(
        session,
        role=role,
        now=now,
        days=days,
        township_id=township_id,
        department=department,
        created_by=actor.person_id,
        mentor_slot=mentor_slot,
    )
    return code


def _in_scope(actor: Actor) -> ColumnElement[bool]:
    """Active grants of other people that `actor` manages: county-level roles anywhere for
    the county's side, mentors of their own township for a township official."""
    reach: list[ColumnElement[bool]] = []
    county = county_managed(actor.roles)
    if county:
        reach.append(RoleGrant.role.in_([r.value for r in county]))
    townships = actor.township_ids(Role.TOWNSHIP_OFFICIAL)
    if townships:
        reach.append(
            (RoleGrant.role == Role.MENTOR.value) & RoleGrant.township_id.in_(sorted(townships))
        )
    return (
        RoleGrant.revoked_at.is_(None)
        & (RoleGrant.person_id != actor.person_id)
        & (or_(*reach) if reach else false())
    )


def _members() -> Select[int, int, str | None, str, str, str | None, str | None, datetime]:
    """Grants with their holder's name and township (filter and order them after)."""
    return (
        select(
            RoleGrant.id,
            RoleGrant.person_id,
            Person.full_name,
            RoleGrant.role,
            Township.name,
            RoleGrant.department,
            RoleGrant.mentor_slot,
            RoleGrant.granted_at,
        )
        .join(Person, Person.id == RoleGrant.person_id)
        .outerjoin(Township, Township.id == RoleGrant.township_id)
    )


def _member(
    row: Row[int, int, str | None, str, str, str | None, str | None, datetime],
) -> StaffMember:
    grant_id, person_id, name, role, township, department, slot, granted_at = row
    return StaffMember(
        grant_id, person_id, name, Role(role), township, department, slot, granted_at
    )


async def staff_in_scope(
    session: AsyncSession, actor: Actor, *, offset: int, limit: int
) -> tuple[list[StaffMember], int]:
    """A page of the active grants `actor` manages (by township, role, then newest first)
    and how many there are in all."""
    rows, total = await page(
        session,
        _members()
        .where(_in_scope(actor))
        .order_by(RoleGrant.township_id.is_not(None), Township.name, RoleGrant.role)
        .order_by(RoleGrant.id.desc()),
        select(func.count()).select_from(RoleGrant).where(_in_scope(actor)),
        offset=offset,
        limit=limit,
    )
    return [_member(r) for r in rows], total


async def member(session: AsyncSession, actor: Actor, grant_id: int) -> StaffMember:
    """One grant `actor` manages; NotAllowed when it is not theirs to manage, Stale when it
    was theirs but has been revoked since."""
    found = (
        await session.execute(_members().where(RoleGrant.id == grant_id, _in_scope(actor)))
    ).first()
    if found is not None:
        return _member(found)
    # Revoked since the button was drawn? Ask again without the "active" part of the scope.
    revoked = await session.scalar(
        select(RoleGrant.id).where(RoleGrant.id == grant_id, RoleGrant.revoked_at.is_not(None))
    )
    if revoked is not None:
        raise Stale
    raise NotAllowed


async def revoke(
    session: AsyncSession, actor: Actor, grant_id: int, *, now: datetime
) -> StaffMember:
    """End the grant (kept, with the time it ended); the person's "/" menu is published
    again in this transaction, and the act is audited."""
    revoked = await member(session, actor, grant_id)
    # The scope is the UPDATE's own condition too: two officials pressing at once end it once.
    done = await session.execute(
        update(RoleGrant).where(RoleGrant.id == grant_id, _in_scope(actor)).values(revoked_at=now)
    )
    if not getattr(done, "rowcount", 0):
        raise Stale
    await menus.mark_changed(session, revoked.person_id)
    await audit.record(
        session,
        actor.person_id,
        "role.revoke",
        "role_grant",
        grant_id,
        role=revoked.role.value,
        person=revoked.person_id,
    )
    return revoked


async def correct_name(
    session: AsyncSession, actor: Actor, grant_id: int, full_name: str
) -> StaffMember:
    """Put `full_name` (already normalized) on file for the holder of a grant in scope, in
    place of what they typed or of none; audited without the name."""
    holder = await member(session, actor, grant_id)
    await session.execute(
        update(Person).where(Person.id == holder.person_id).values(full_name=full_name)
    )
    await audit.record(session, actor.person_id, "person.name_correct", "person", holder.person_id)
    return replace(holder, full_name=full_name)
