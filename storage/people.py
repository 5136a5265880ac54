"""Accounts, role grants and invite codes. Functions take a session and never commit."""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    Table,
    bindparam,
    exists,
    func,
    insert,
    null,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.sql import Executable

from storage import audit, menus
from storage.models import (
    InviteCode,
    InviteFailure,
    Person,
    Role,
    RoleGrant,
    TelegramAccount,
    Township,
)

# Crockford-style alphabet: no 0/O or 1/I/L to misread when a code is read out on the phone.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12
# "2+1": each reserve cadre has a township-cadre mentor and a village-secretary mentor.
MENTOR_SLOTS = ("township", "village")


def hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


@dataclass(frozen=True, slots=True)
class Grant:
    role: Role
    township_id: int | None
    township_name: str | None
    department: str | None
    mentor_slot: str | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: their person and active grants, loaded once per update."""

    person_id: int
    telegram_id: int
    grants: tuple[Grant, ...]

    def has(self, *roles: Role) -> bool:
        return any(g.role in roles for g in self.grants)

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(g.role for g in self.grants)

    def township_ids(self, role: Role) -> frozenset[int]:
        return frozenset(g.township_id for g in self.grants if g.role == role and g.township_id)

    def departments(self) -> frozenset[str]:
        return frozenset(
            g.department for g in self.grants if g.role == Role.REVIEWER and g.department
        )


async def ensure_account(
    session: AsyncSession, telegram_id: int, language_code: str | None
) -> TelegramAccount:
    """Return the account of a Telegram user, creating it and its person on first contact."""
    account = await session.get(TelegramAccount, telegram_id)
    if account is None:
        account = await _create_account(session, telegram_id, language_code)
        assert account is not None  # it was not there a statement ago, in this transaction
        return account
    _seen_with(account, language_code)
    return account


async def open_account(
    session: AsyncSession, telegram_id: int, language_code: str | None
) -> tuple[TelegramAccount, bool]:
    """Like ensure_account, and say whether the account was created just now.

    /start (its only caller) comes mostly from people the bot does not know yet, so this one
    inserts first: the statement creates the person and account only for a Telegram id with
    no account, so a newcomer costs one statement on PostgreSQL (two on SQLite) instead of a
    look-up and then the inserts. A known person's /start pays one statement more.
    """
    account = await _create_account(session, telegram_id, language_code)
    if account is not None:
        return account, True
    account = await session.get(TelegramAccount, telegram_id)
    assert account is not None  # the insert found it
    _seen_with(account, language_code)
    return account, False


def _seen_with(account: TelegramAccount, language_code: str | None) -> None:
    if language_code and account.language_code != language_code:
        account.language_code = language_code


_PERSON = cast(Table, Person.__table__)
_ACCOUNT = cast(Table, TelegramAccount.__table__)
# A person, only if no account has this Telegram id (none is created for a known person).
_NEW_PERSON = (
    insert(_PERSON)
    .from_select(
        ["full_name"],
        select(null()).where(
            ~exists().where(_ACCOUNT.c.telegram_id == bindparam("telegram_id", type_=BigInteger()))
        ),
    )
    .returning(_PERSON.c.id, _PERSON.c.created_at)
)
_NEW_ACCOUNT = (
    insert(_ACCOUNT)
    .values(
        telegram_id=bindparam("telegram_id", type_=BigInteger()),
        person_id=bindparam("person_id"),
        language_code=bindparam("language_code", type_=String()),
    )
    .returning(_ACCOUNT.c.first_seen_at)
)


def _new_person_and_account() -> Executable:
    """PostgreSQL: both rows in one statement (data-modifying CTEs), one round trip."""
    person = _NEW_PERSON.cte("new_person")
    account = (
        insert(_ACCOUNT)
        .from_select(
            ["telegram_id", "person_id", "language_code"],
            select(
                bindparam("telegram_id", type_=BigInteger()),
                person.c.id,
                bindparam("language_code", type_=String()),
            ),
        )
        .returning(_ACCOUNT.c.first_seen_at)
        .cte("new_account")
    )
    return select(person.c.id, person.c.created_at, account.c.first_seen_at).select_from(
        person.join(account, true())
    )


_NEW_BOTH = _new_person_and_account()


async def _create_account(
    session: AsyncSession, telegram_id: int, language_code: str | None
) -> TelegramAccount | None:
    """A newcomer's person and account, by Core inserts; None if the account exists.

    /start by a newcomer is the hottest write path, and the ORM's unit of work for these two
    rows cost about half a millisecond of CPU per update (bench/dispatch.py). The statements
    are built once, at import. The rows are then put into the session as loaded objects
    (make_transient_to_detached keeps the values given, RETURNING supplies the server
    defaults), so the caller gets the same persistent TelegramAccount, with its person, as
    the ORM would have given.
    """
    params = {"telegram_id": telegram_id, "language_code": language_code}
    if session.get_bind().dialect.name == "postgresql":
        row = (await session.execute(_NEW_BOTH, params)).one_or_none()
        if row is None:
            return None
        person_id, created_at, first_seen_at = row
    else:  # SQLite has no INSERT in a WITH: two statements
        new = (await session.execute(_NEW_PERSON, {"telegram_id": telegram_id})).one_or_none()
        if new is None:
            return None
        person_id, created_at = new
        first_seen_at = await session.scalar(_NEW_ACCOUNT, {**params, "person_id": person_id})
    person = Person(id=person_id, full_name=None, created_at=created_at)
    make_transient_to_detached(person)
    account = TelegramAccount(
        telegram_id=telegram_id,
        person_id=person_id,
        person=person,
        language_code=language_code,
        locale=None,
        first_seen_at=first_seen_at,
        unreachable_at=None,
        unreachable_reason=None,
        menu_changes=0,
    )
    make_transient_to_detached(account)
    session.add(account)  # persistent, with `person` (no SQL: both have their identity)
    return account


async def load_actor(session: AsyncSession, telegram_id: int) -> Actor | None:
    """The person behind a Telegram user with their active grants, or None if unknown."""
    rows = (
        await session.execute(
            select(
                TelegramAccount.person_id,
                RoleGrant.role,
                RoleGrant.township_id,
                Township.name,
                RoleGrant.department,
                RoleGrant.mentor_slot,
            )
            .outerjoin(
                RoleGrant,
                (RoleGrant.person_id == TelegramAccount.person_id)
                & RoleGrant.revoked_at.is_(None),
            )
            .outerjoin(Township, Township.id == RoleGrant.township_id)
            .where(TelegramAccount.telegram_id == telegram_id)
        )
    ).all()
    if not rows:
        return None
    grants = tuple(
        Grant(Role(r.role), r.township_id, r.name, r.department, r.mentor_slot)
        for r in rows
        if r.role
    )
    return Actor(person_id=rows[0].person_id, telegram_id=telegram_id, grants=grants)


async def set_locale(session: AsyncSession, telegram_id: int, locale: str) -> None:
    await session.execute(
        update(TelegramAccount)
        .where(TelegramAccount.telegram_id == telegram_id)
        # A staff member's own menu is in their language: publish it again.
        .values(locale=locale, menu_changes=menus.bump_if_staff())
    )


async def own_name(session: AsyncSession, person_id: int) -> str | None:
    """The name on file for a person (None: none recorded)."""
    return await session.scalar(select(Person.full_name).where(Person.id == person_id))


async def record_own_name(session: AsyncSession, person_id: int, full_name: str) -> str | None:
    """Record a person's own name (already normalized) if none is on file; the name on file.

    People who joined by invite have no name until they give it (/name). A name that is on
    file is never replaced here: a candidate's comes from the vetted nomination, and a
    correction is an official's act.
    """
    changed = await session.execute(
        update(Person)
        .where(Person.id == person_id, Person.full_name.is_(None))
        .values(full_name=full_name)
    )
    if changed.rowcount:  # type: ignore[attr-defined]
        await audit.record(session, person_id, "person.name", "person", person_id)
        return full_name
    return await own_name(session, person_id)


async def create_invites(
    session: AsyncSession,
    *,
    role: Role,
    now: datetime,
    days: int,
    count: int = 1,
    township_id: int | None = None,
    department: str | None = None,
    created_by: int | None = None,
    for_person_id: int | None = None,
    mentor_slot: str | None = None,
) -> list[str]:
    """Create `count` single-use codes; only their hashes are stored, so return the codes."""
    if role in (Role.TOWNSHIP_OFFICIAL, Role.MENTOR) and township_id is None:
        raise ValueError(f"a {role} invite needs a township")
    if role == Role.REVIEWER and not department:
        raise ValueError("a reviewer invite needs a department")
    if role == Role.MENTOR and mentor_slot not in MENTOR_SLOTS:
        raise ValueError("a mentor invite needs --slot township or --slot village")
    if role != Role.MENTOR:
        mentor_slot = None
    codes = [new_code() for _ in range(count)]
    for code in codes:
        session.add(
            InviteCode(
                code_hash=hash_code(code),
                role=role.value,
                township_id=township_id,
                department=department,
                created_by_person_id=created_by,
                for_person_id=for_person_id,
                mentor_slot=mentor_slot,
                expires_at=now + timedelta(days=days),
            )
        )
    await session.flush()
    await audit.record(
        session, created_by, "invite.create", "invite_code", None, role=role.value, count=count
    )
    return codes


class RedeemOutcome(enum.StrEnum):
    GRANTED = "granted"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    THROTTLED = "throttled"


@dataclass(frozen=True, slots=True)
class Redeemed:
    outcome: RedeemOutcome
    role: Role | None = None
    township_name: str | None = None
    department: str | None = None


async def recent_failures(
    session: AsyncSession, telegram_id: int, now: datetime, window: timedelta
) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(InviteFailure)
            .where(InviteFailure.telegram_id == telegram_id, InviteFailure.at > now - window)
        )
        or 0
    )


async def spend_guess(
    session: AsyncSession,
    telegram_id: int,
    *,
    now: datetime,
    max_failures: int,
    window: timedelta,
) -> bool:
    """Count one probe of a secret (here: whether an ID number or phone is registered) against
    the account's guessing budget, the one wrong invite codes use; False when it is spent.

    Every check is counted, found or not: a "not registered" answer tells as much as a
    "registered" one to someone going through a list of numbers.
    """
    if await recent_failures(session, telegram_id, now, window) >= max_failures:
        return False
    session.add(InviteFailure(telegram_id=telegram_id, at=now))
    return True


async def redeem_invite(
    session: AsyncSession,
    account: TelegramAccount,
    code: str,
    *,
    now: datetime,
    max_failures: int,
    window: timedelta,
) -> Redeemed:
    """Spend an invite code once, atomically, and grant its role to the account's person."""
    if await recent_failures(session, account.telegram_id, now, window) >= max_failures:
        return Redeemed(RedeemOutcome.THROTTLED)
    code_hash = hash_code(code)
    # One conditional UPDATE decides who wins when two people race for the same code.
    claimed = (
        await session.execute(
            update(InviteCode)
            .where(
                InviteCode.code_hash == code_hash,
                InviteCode.used_at.is_(None),
                InviteCode.expires_at > now,
            )
            .values(used_at=now, used_by_person_id=account.person_id)
            .returning(InviteCode.id)
        )
    ).scalar_one_or_none()
    if claimed is None:
        invite = await session.scalar(select(InviteCode).where(InviteCode.code_hash == code_hash))
        outcome = (
            RedeemOutcome.UNKNOWN
            if invite is None
            else RedeemOutcome.USED
            if invite.used_at is not None
            else RedeemOutcome.EXPIRED
        )
        session.add(InviteFailure(telegram_id=account.telegram_id, at=now))
        return Redeemed(outcome)
    invite = await session.get(InviteCode, claimed)
    assert invite is not None
    if invite.for_person_id is not None and invite.for_person_id != account.person_id:
        await _step_into(session, account, invite.for_person_id)
        invite.used_by_person_id = account.person_id
    session.add(
        RoleGrant(
            person_id=account.person_id,
            role=invite.role,
            township_id=invite.township_id,
            department=invite.department,
            mentor_slot=invite.mentor_slot,
            invite_id=invite.id,
        )
    )
    # With the grant, in its transaction: the new menu is published even after a crash.
    await menus.mark_changed(session, account.person_id)
    await audit.record(
        session, account.person_id, "invite.redeem", "invite_code", invite.id, role=invite.role
    )
    township = await session.get(Township, invite.township_id) if invite.township_id else None
    return Redeemed(
        RedeemOutcome.GRANTED,
        Role(invite.role),
        township.name if township else None,
        invite.department,
    )


async def _step_into(session: AsyncSession, account: TelegramAccount, person_id: int) -> None:
    """A demo invite: the Telegram account now speaks for the prepared person.

    Whoever held that person before gets a blank person of their own back: one account per
    person is a database rule. The redeemer's previous person stays, blank and harmless.
    """
    previous = await session.scalar(
        select(TelegramAccount).where(TelegramAccount.person_id == person_id)
    )
    if previous is not None:
        blank = Person()
        session.add(blank)
        await session.flush()
        previous.person_id = blank.id
        await session.flush()
        # Whatever roles the prepared person held are no longer theirs: their menu changes.
        await menus.mark_changed(session, blank.id)
    account.person_id = person_id
    await session.flush()


def reachable_staff(role: Role, *where: ColumnElement[bool]) -> Select[int]:
    """Telegram ids of the reachable people with an active grant of `role` (and `where`)."""
    return (
        select(TelegramAccount.telegram_id)
        .join(RoleGrant, RoleGrant.person_id == TelegramAccount.person_id)
        .where(RoleGrant.role == role.value, RoleGrant.revoked_at.is_(None), *where)
        .where(TelegramAccount.unreachable_at.is_(None))
    )


async def admin_chat_ids(session: AsyncSession) -> list[int]:
    """Telegram ids of the active admins who can be reached, for error notices (one who blocked
    the bot would only answer 403 again)."""
    return list(await session.scalars(reachable_staff(Role.ADMIN)))


async def recipients(
    session: AsyncSession, telegram_ids: list[int]
) -> list[tuple[int, str | None]]:
    """(telegram id, chosen locale or Telegram language) for proactive messages."""
    if not telegram_ids:
        return []
    rows = await session.execute(
        select(
            TelegramAccount.telegram_id,
            func.coalesce(TelegramAccount.locale, TelegramAccount.language_code),
        ).where(TelegramAccount.telegram_id.in_(telegram_ids))
    )
    return [(int(t), lang) for t, lang in rows.all()]
