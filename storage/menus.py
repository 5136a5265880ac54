"""Which staff members' "/" menus wait to be published, and what each should show.

A change to a person's roles bumps `telegram_account.menu_changes` in the change's own
transaction (`mark_changed`); `bot/menu.py` publishes the per-chat menu of each pending
account and clears the mark (`published`) only if no newer change came in meanwhile, so a
crash, a restart or a change during the publish loses nothing. Functions never commit.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, case, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Role, RoleGrant, TelegramAccount


@dataclass(frozen=True, slots=True)
class PendingMenu:
    """One account whose menu is to be published: its roles now and its language."""

    telegram_id: int
    changes: int
    roles: frozenset[Role]
    # The /lang choice, else the Telegram client's language (None: neither known).
    language: str | None


async def mark_changed(session: AsyncSession, person_id: int) -> None:
    """The person's roles changed: publish their menu again (in the caller's transaction)."""
    await session.execute(
        update(TelegramAccount)
        .where(TelegramAccount.person_id == person_id)
        .values(menu_changes=TelegramAccount.menu_changes + 1)
    )


def bump_if_staff() -> ColumnElement[int]:
    """`menu_changes`, plus one for a person holding a role: for an UPDATE of the account
    that changes what their menu shows (their language), so the public costs no request."""
    return case(
        (
            exists().where(
                RoleGrant.person_id == TelegramAccount.person_id, RoleGrant.revoked_at.is_(None)
            ),
            TelegramAccount.menu_changes + 1,
        ),
        else_=TelegramAccount.menu_changes,
    )


async def pending(
    session: AsyncSession, *, limit: int, exclude: Collection[int] = ()
) -> list[PendingMenu]:
    """Up to `limit` accounts whose menu waits (but those in `exclude`), with their roles."""
    accounts = (
        await session.execute(
            select(
                TelegramAccount.telegram_id,
                TelegramAccount.person_id,
                TelegramAccount.menu_changes,
                TelegramAccount.locale,
                TelegramAccount.language_code,
            )
            .where(
                TelegramAccount.menu_changes > 0, TelegramAccount.telegram_id.not_in(list(exclude))
            )
            .order_by(TelegramAccount.telegram_id)
            .limit(limit)
        )
    ).all()
    if not accounts:
        return []
    roles: dict[int, set[Role]] = {}
    grants = await session.execute(
        select(RoleGrant.person_id, RoleGrant.role).where(
            RoleGrant.person_id.in_([a.person_id for a in accounts]),
            RoleGrant.revoked_at.is_(None),
        )
    )
    for person_id, role in grants.all():
        roles.setdefault(person_id, set()).add(Role(role))
    return [
        PendingMenu(
            telegram_id=a.telegram_id,
            changes=a.menu_changes,
            roles=frozenset(roles.get(a.person_id, ())),
            language=a.locale or a.language_code,
        )
        for a in accounts
    ]


async def published(session: AsyncSession, telegram_id: int, changes: int) -> bool:
    """Clear the mark after a publish of what `changes` described; False (mark kept) if a
    newer change came in since it was read."""
    result = await session.execute(
        update(TelegramAccount)
        .where(TelegramAccount.telegram_id == telegram_id, TelegramAccount.menu_changes == changes)
        .values(menu_changes=0)
    )
    return bool(getattr(result, "rowcount", 0))
