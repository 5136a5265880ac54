"""Which staff menus wait to be published (storage/menus.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import geo, menus, people
from storage.db import Database
from storage.models import Role, TelegramAccount
from storage.people import RedeemOutcome

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


async def _redeem_in(session: AsyncSession, telegram_id: int, role: Role, **scope: Any) -> int:
    """An invite for `role` redeemed by `telegram_id`; returns their person id."""
    (code,) = await people.create_invites(session, role=role, now=T0, days=7, **scope)
    account = await people.ensure_account(session, telegram_id, "en-US")
    redeemed = await people.redeem_invite(
        session, account, code, now=T0, max_failures=5, window=timedelta(minutes=10)
    )
    assert redeemed.outcome == RedeemOutcome.GRANTED
    return account.person_id


async def _redeem(db: Database, telegram_id: int, role: Role, **scope: Any) -> int:
    async with db.sessionmaker.begin() as session:
        return await _redeem_in(session, telegram_id, role, **scope)


async def _changes(db: Database) -> dict[int, int]:
    async with db.sessionmaker() as session:
        rows = await session.execute(
            select(TelegramAccount.telegram_id, TelegramAccount.menu_changes)
        )
        return {int(t): int(n) for t, n in rows.all()}


async def _township(db: Database) -> int:
    async with db.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("青山镇", "青山村")])
        township = await geo.township_by_name(session, "青山镇")
        assert township is not None
        return township.id


async def test_a_grant_marks_the_menu_in_its_transaction(db: Database) -> None:
    async with db.sessionmaker.begin() as session:
        await people.ensure_account(session, 7_000_000_001, None)  # the public: never marked
    await _redeem(db, 7_000_000_002, Role.COUNTY_OFFICIAL)
    await _redeem(db, 7_000_000_002, Role.ADMIN)
    assert await _changes(db) == {7_000_000_001: 0, 7_000_000_002: 2}
    async with db.sessionmaker() as session:
        (waiting,) = await menus.pending(session, limit=10)
    assert waiting == menus.PendingMenu(
        7_000_000_002, 2, frozenset({Role.COUNTY_OFFICIAL, Role.ADMIN}), "en-US"
    )
    # A grant rolled back leaves no mark.
    async with db.sessionmaker() as session:
        await _redeem_in(session, 7_000_000_003, Role.ADMIN)
        await session.rollback()
    assert 7_000_000_003 not in await _changes(db)


async def test_published_clears_only_what_was_read(db: Database) -> None:
    first_person = await _redeem(db, 7_000_000_011, Role.ADMIN)
    await _redeem(db, 7_000_000_012, Role.ADMIN)
    async with db.sessionmaker() as session:
        first, second = await menus.pending(session, limit=10)
        assert [p.telegram_id for p in await menus.pending(session, limit=1)] == [7_000_000_011]
        others = await menus.pending(session, limit=10, exclude={7_000_000_011})
        assert [p.telegram_id for p in others] == [7_000_000_012]
    # A change while the first menu was being published: its mark stays for the next run.
    async with db.sessionmaker.begin() as session:
        await menus.mark_changed(session, first_person)
    async with db.sessionmaker.begin() as session:
        assert not await menus.published(session, first.telegram_id, first.changes)
        assert await menus.published(session, second.telegram_id, second.changes)
    assert await _changes(db) == {7_000_000_011: 2, 7_000_000_012: 0}


async def test_lang_marks_staff_only(db: Database) -> None:
    township = await _township(db)
    await _redeem(db, 7_000_000_021, Role.MENTOR, township_id=township, mentor_slot="village")
    async with db.sessionmaker.begin() as session:
        await people.ensure_account(session, 7_000_000_022, None)
        for telegram_id in (7_000_000_021, 7_000_000_022):
            await people.set_locale(session, telegram_id, "en")
    assert await _changes(db) == {7_000_000_021: 2, 7_000_000_022: 0}
    async with db.sessionmaker() as session:
        (waiting,) = await menus.pending(session, limit=10)
    assert waiting.language == "en"  # the /lang choice wins over the client's en-US


async def test_a_demo_invite_marks_both_accounts(db: Database) -> None:
    """A demo invite moves a prepared person (with their role) to the redeemer: the account
    that held that person loses the role, so both menus change."""
    holder = await _redeem(db, 7_000_000_031, Role.ADMIN)
    async with db.sessionmaker.begin() as session:
        assert await menus.published(session, 7_000_000_031, 1)
        await _redeem_in(session, 7_000_000_032, Role.COUNTY_OFFICIAL, for_person_id=holder)
    assert await _changes(db) == {7_000_000_031: 1, 7_000_000_032: 1}
    async with db.sessionmaker() as session:
        waiting = {p.telegram_id: p.roles for p in await menus.pending(session, limit=10)}
    assert waiting == {
        7_000_000_031: frozenset(),
        7_000_000_032: frozenset({Role.ADMIN, Role.COUNTY_OFFICIAL}),
    }
