"""Accounts, invite codes and role grants on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from storage import geo, models, people
from storage.db import Database
from storage.people import Grant, RedeemOutcome
from tests.support.county import township as _township

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
WINDOW = timedelta(minutes=10)
MAX_FAILURES = 3
BIG_ID = 7_000_000_123  # above 2**31: Telegram ids need BIGINT
OTHER_ID = 7_000_000_456


async def _invite(
    db: Database, role: models.Role = models.Role.COUNTY_OFFICIAL, **kwargs: object
) -> str:
    async with db.sessionmaker.begin() as session:
        (code,) = await people.create_invites(
            session,
            role=role,
            now=kwargs.pop("now", T0),  # type: ignore[arg-type]
            days=kwargs.pop("days", 7),  # type: ignore[arg-type]
            **kwargs,  # type: ignore[arg-type]
        )
    return code


async def _account(db: Database, telegram_id: int) -> int:
    async with db.sessionmaker.begin() as session:
        account = await people.ensure_account(session, telegram_id, "zh-hans")
        return account.person_id


async def _redeem(
    db: Database, telegram_id: int, code: str, now: datetime = T0
) -> people.Redeemed:
    async with db.sessionmaker.begin() as session:
        account = await people.ensure_account(session, telegram_id, None)
        return await people.redeem_invite(
            session, account, code, now=now, max_failures=MAX_FAILURES, window=WINDOW
        )


async def _invite_row(db: Database, code: str) -> models.InviteCode:
    async with db.sessionmaker() as session:
        invite = await session.scalar(
            select(models.InviteCode).where(models.InviteCode.code_hash == people.hash_code(code))
        )
    assert invite is not None
    return invite


async def _count(db: Database, model: type, *where: object) -> int:
    async with db.sessionmaker() as session:
        return int(
            await session.scalar(select(func.count()).select_from(model).where(*where)) or 0
        )


# --- accounts -------------------------------------------------------------------------------


async def test_ensure_account_creates_person_and_account_once(db: Database) -> None:
    async with db.sessionmaker.begin() as session:
        first = await people.ensure_account(session, BIG_ID, "zh-hans")
        person_id = first.person_id
    async with db.sessionmaker.begin() as session:
        again = await people.ensure_account(session, BIG_ID, "en")
        assert again.person_id == person_id

    assert await _count(db, models.Person) == 1
    assert await _count(db, models.TelegramAccount) == 1
    async with db.sessionmaker() as session:
        raw = (
            await session.execute(
                text("SELECT telegram_id, person_id, language_code FROM telegram_account")
            )
        ).one()
    # Read back exactly, not truncated to 32 bits; the later language code replaced the first.
    assert tuple(raw) == (BIG_ID, person_id, "en")

    async with db.sessionmaker.begin() as session:
        other = await people.ensure_account(session, OTHER_ID, None)
        assert other.person_id != person_id
    assert await _count(db, models.Person) == 2


async def test_ensure_account_keeps_language_when_none_given(db: Database) -> None:
    await _account(db, BIG_ID)
    async with db.sessionmaker.begin() as session:
        account = await people.ensure_account(session, BIG_ID, None)
        assert account.language_code == "zh-hans"


# --- creating invites -----------------------------------------------------------------------


async def test_create_invites_stores_only_the_hash(db: Database) -> None:
    township_id = await _township(db)
    admin = await _account(db, BIG_ID)
    async with db.sessionmaker.begin() as session:
        codes = await people.create_invites(
            session,
            role=models.Role.MENTOR,
            now=T0,
            days=7,
            count=3,
            township_id=township_id,
            mentor_slot="village",
            created_by=admin,
        )
    assert len(set(codes)) == 3
    for code in codes:
        assert len(code) == people.CODE_LENGTH
        assert set(code) <= set(people.CODE_ALPHABET)

    async with db.sessionmaker() as session:
        rows = (await session.execute(text("SELECT * FROM invite_code"))).mappings().all()
        audit_rows = (await session.execute(text("SELECT * FROM audit_log"))).mappings().all()
    assert len(rows) == 3
    assert {row["code_hash"] for row in rows} == {
        hashlib.sha256(code.encode()).hexdigest() for code in codes
    }
    for row in [*rows, *audit_rows]:
        for column, value in row.items():
            for code in codes:
                assert code.lower() not in str(value).lower(), f"plaintext code in {column}"

    invite = await _invite_row(db, codes[0])
    assert invite.role == "mentor"
    assert invite.township_id == township_id
    assert invite.created_by_person_id == admin
    assert invite.expires_at == T0 + timedelta(days=7)
    assert invite.used_at is None


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        (models.Role.MENTOR, {"mentor_slot": "township"}),
        (models.Role.TOWNSHIP_OFFICIAL, {}),
        (models.Role.TOWNSHIP_OFFICIAL, {"department": "组织部"}),
        (models.Role.REVIEWER, {}),
        (models.Role.REVIEWER, {"department": ""}),
    ],
)
async def test_create_invites_refuses_unscoped_roles(
    db: Database, role: models.Role, scope: dict[str, object]
) -> None:
    async with db.sessionmaker.begin() as session:
        with pytest.raises(ValueError, match=r"needs a (township|department)"):
            await people.create_invites(session, role=role, now=T0, days=7, **scope)  # type: ignore[arg-type]
    assert await _count(db, models.InviteCode) == 0
    assert await _count(db, models.AuditLog) == 0


async def test_database_also_refuses_unscoped_grants(db: Database) -> None:
    person_id = await _account(db, BIG_ID)
    with pytest.raises(IntegrityError):
        async with db.sessionmaker.begin() as session:
            session.add(models.RoleGrant(person_id=person_id, role="mentor"))
    with pytest.raises(IntegrityError):
        async with db.sessionmaker.begin() as session:
            session.add(models.RoleGrant(person_id=person_id, role="reviewer"))
    with pytest.raises(IntegrityError):
        async with db.sessionmaker.begin() as session:
            session.add(models.RoleGrant(person_id=person_id, role="king"))
    assert await _count(db, models.RoleGrant) == 0


async def test_create_invite_is_audited(db: Database) -> None:
    admin = await _account(db, BIG_ID)
    async with db.sessionmaker.begin() as session:
        await people.create_invites(
            session,
            role=models.Role.REVIEWER,
            now=T0,
            days=3,
            count=2,
            department="纪委",
            created_by=admin,
        )
    async with db.sessionmaker() as session:
        (row,) = await session.scalars(select(models.AuditLog))
    assert row.action == "invite.create"
    assert row.actor_person_id == admin
    assert row.subject_type == "invite_code"
    assert row.detail == {"role": "reviewer", "count": 2}


# --- redeeming ------------------------------------------------------------------------------


async def test_redeem_grants_once_then_reports_used(db: Database) -> None:
    township_id = await _township(db)
    code = await _invite(db, models.Role.TOWNSHIP_OFFICIAL, township_id=township_id)

    # Codes are read out on the phone: case and surrounding blanks do not matter.
    result = await _redeem(db, BIG_ID, f"  {code.lower()} ")
    assert result == people.Redeemed(
        RedeemOutcome.GRANTED, models.Role.TOWNSHIP_OFFICIAL, "青山镇", None
    )

    person_id = await _account(db, BIG_ID)
    invite = await _invite_row(db, code)
    assert invite.used_at == T0
    assert invite.used_by_person_id == person_id
    async with db.sessionmaker() as session:
        (grant,) = await session.scalars(select(models.RoleGrant))
    assert (grant.person_id, grant.role, grant.township_id, grant.invite_id) == (
        person_id,
        "township_official",
        township_id,
        invite.id,
    )

    assert (await _redeem(db, OTHER_ID, code)).outcome == RedeemOutcome.USED
    assert (await _redeem(db, BIG_ID, code)).outcome == RedeemOutcome.USED
    assert await _count(db, models.RoleGrant) == 1
    assert (
        await _count(db, models.InviteFailure, models.InviteFailure.telegram_id == OTHER_ID) == 1
    )
    invite = await _invite_row(db, code)
    assert invite.used_by_person_id == person_id


async def test_redeem_unknown_code(db: Database) -> None:
    await _invite(db)
    result = await _redeem(db, BIG_ID, "ZZZZZZZZZZZZ")
    assert result == people.Redeemed(RedeemOutcome.UNKNOWN)
    assert await _count(db, models.RoleGrant) == 0
    async with db.sessionmaker() as session:
        failure = await session.scalar(select(models.InviteFailure))
    assert failure is not None
    assert (failure.telegram_id, failure.at) == (BIG_ID, T0)


async def test_redeem_expired_code(db: Database) -> None:
    code = await _invite(db, now=T0, days=1)
    result = await _redeem(db, BIG_ID, code, now=T0 + timedelta(days=1, seconds=1))
    assert result.outcome == RedeemOutcome.EXPIRED
    assert (await _invite_row(db, code)).used_at is None
    assert await _count(db, models.RoleGrant) == 0
    # Just before expiry the same code still works.
    result = await _redeem(db, BIG_ID, code, now=T0 + timedelta(days=1, seconds=-1))
    assert result.outcome == RedeemOutcome.GRANTED


async def test_redeem_throttles_after_max_failures_in_window(db: Database) -> None:
    code = await _invite(db)
    for minute in range(MAX_FAILURES):
        wrong = await _redeem(db, BIG_ID, f"WRONG{minute}", now=T0 + timedelta(minutes=minute))
        assert wrong.outcome == RedeemOutcome.UNKNOWN

    # Even the right code is refused, and it stays unspent.
    later = T0 + timedelta(minutes=MAX_FAILURES)
    assert (await _redeem(db, BIG_ID, code, now=later)).outcome == RedeemOutcome.THROTTLED
    assert (await _invite_row(db, code)).used_at is None
    assert await _count(db, models.RoleGrant) == 0

    # Someone else's failures are not mine.
    other = await _redeem(db, OTHER_ID, "WRONGX", now=later)
    assert other.outcome == RedeemOutcome.UNKNOWN

    # Once the first failure has left the window, fewer than MAX_FAILURES remain.
    out_of_window = T0 + WINDOW + timedelta(seconds=1)
    assert (await _redeem(db, BIG_ID, code, now=out_of_window)).outcome == RedeemOutcome.GRANTED


async def test_old_failures_do_not_count(db: Database) -> None:
    await _account(db, BIG_ID)
    async with db.sessionmaker.begin() as session:
        for minutes in range(11, 11 + 2 * MAX_FAILURES):
            session.add(
                models.InviteFailure(telegram_id=BIG_ID, at=T0 - timedelta(minutes=minutes))
            )
        # One fewer than the limit inside the window.
        for seconds in range(MAX_FAILURES - 1):
            session.add(
                models.InviteFailure(telegram_id=BIG_ID, at=T0 - timedelta(seconds=seconds))
            )
    async with db.sessionmaker() as session:
        assert await people.recent_failures(session, BIG_ID, T0, WINDOW) == MAX_FAILURES - 1

    code = await _invite(db)
    assert (await _redeem(db, BIG_ID, code)).outcome == RedeemOutcome.GRANTED


async def test_failures_at_limit_throttle_before_the_code_is_looked_at(db: Database) -> None:
    await _account(db, BIG_ID)
    async with db.sessionmaker.begin() as session:
        for seconds in range(MAX_FAILURES):
            session.add(
                models.InviteFailure(telegram_id=BIG_ID, at=T0 - timedelta(seconds=seconds))
            )
    code = await _invite(db)
    assert (await _redeem(db, BIG_ID, code)).outcome == RedeemOutcome.THROTTLED
    # A throttled attempt is not itself counted as a failure.
    assert await _count(db, models.InviteFailure) == MAX_FAILURES
    assert (await _invite_row(db, code)).used_at is None


async def test_demo_invite_moves_account_to_prepared_person(db: Database) -> None:
    async with db.sessionmaker.begin() as session:
        prepared = models.Person(full_name="王五")
        session.add(prepared)
        await session.flush()
        prepared_id = prepared.id
    own_person = await _account(db, BIG_ID)
    assert own_person != prepared_id
    code = await _invite(db, models.Role.COUNTY_OFFICIAL, for_person_id=prepared_id)

    result = await _redeem(db, BIG_ID, code)
    assert result.outcome == RedeemOutcome.GRANTED

    async with db.sessionmaker() as session:
        account = await session.get(models.TelegramAccount, BIG_ID)
        assert account is not None
        assert account.person_id == prepared_id
        (grant,) = await session.scalars(select(models.RoleGrant))
        assert grant.person_id == prepared_id
        actor = await people.load_actor(session, BIG_ID)
    assert actor is not None
    assert actor.person_id == prepared_id
    assert actor.roles == {models.Role.COUNTY_OFFICIAL}


async def test_redeem_is_audited(db: Database) -> None:
    code = await _invite(db, models.Role.REVIEWER, department="组织部")
    result = await _redeem(db, BIG_ID, code)
    assert result == people.Redeemed(RedeemOutcome.GRANTED, models.Role.REVIEWER, None, "组织部")
    person_id = await _account(db, BIG_ID)
    invite = await _invite_row(db, code)
    async with db.sessionmaker() as session:
        rows = list(await session.scalars(select(models.AuditLog).order_by(models.AuditLog.id)))
    assert [r.action for r in rows] == ["invite.create", "invite.redeem"]
    redeem = rows[1]
    assert (redeem.actor_person_id, redeem.subject_type, redeem.subject_id) == (
        person_id,
        "invite_code",
        invite.id,
    )
    assert redeem.detail == {"role": "reviewer"}


async def test_failed_redeem_is_not_audited_as_redeem(db: Database) -> None:
    await _redeem(db, BIG_ID, "NOPE")
    assert await _count(db, models.AuditLog, models.AuditLog.action == "invite.redeem") == 0


async def test_concurrent_redeems_grant_exactly_once(db: Database) -> None:
    code = await _invite(db, models.Role.ADMIN)
    ids = [BIG_ID, OTHER_ID, 7_000_000_789]
    for telegram_id in ids:
        await _account(db, telegram_id)
    on_sqlite = db.url.startswith("sqlite")
    barrier = asyncio.Barrier(len(ids))

    async def attempt(telegram_id: int) -> RedeemOutcome:
        if on_sqlite:
            # BEGIN IMMEDIATE serializes whole transactions: meet before any of them starts.
            await barrier.wait()
        async with db.sessionmaker.begin() as session:
            account = await session.get(models.TelegramAccount, telegram_id)
            assert account is not None
            if not on_sqlite:
                # All transactions are open before anyone tries to claim the code.
                await barrier.wait()
            result = await people.redeem_invite(
                session, account, code, now=T0, max_failures=MAX_FAILURES, window=WINDOW
            )
        return result.outcome

    outcomes = await asyncio.wait_for(asyncio.gather(*(attempt(i) for i in ids)), timeout=30)
    assert sorted(outcomes) == sorted(
        [RedeemOutcome.GRANTED] + [RedeemOutcome.USED] * (len(ids) - 1)
    )
    winner = ids[outcomes.index(RedeemOutcome.GRANTED)]
    async with db.sessionmaker() as session:
        (grant,) = await session.scalars(select(models.RoleGrant))
        account = await session.get(models.TelegramAccount, winner)
        assert account is not None
        assert grant.person_id == account.person_id
    assert (await _invite_row(db, code)).used_by_person_id == grant.person_id
    assert await _count(db, models.AuditLog, models.AuditLog.action == "invite.redeem") == 1
    assert await _count(db, models.InviteFailure) == len(ids) - 1


# --- loading the actor ----------------------------------------------------------------------


async def test_load_actor_returns_active_grants_with_township_names(db: Database) -> None:
    qingshan = await _township(db, "青山镇")
    baishui = await _township(db, "白水镇")
    person_id = await _account(db, BIG_ID)
    async with db.sessionmaker.begin() as session:
        session.add_all(
            [
                models.RoleGrant(
                    person_id=person_id,
                    role="mentor",
                    township_id=qingshan,
                    mentor_slot="township",
                ),
                models.RoleGrant(
                    person_id=person_id, role="township_official", township_id=baishui
                ),
                models.RoleGrant(person_id=person_id, role="reviewer", department="组织部"),
                models.RoleGrant(person_id=person_id, role="admin", revoked_at=T0),
                models.RoleGrant(
                    person_id=person_id,
                    role="mentor",
                    township_id=baishui,
                    revoked_at=T0 - timedelta(days=1),
                ),
            ]
        )
    async with db.sessionmaker() as session:
        actor = await people.load_actor(session, BIG_ID)
    assert actor is not None
    assert (actor.person_id, actor.telegram_id) == (person_id, BIG_ID)
    assert sorted(actor.grants, key=str) == sorted(
        [
            Grant(models.Role.MENTOR, qingshan, "青山镇", None, "township"),
            Grant(models.Role.TOWNSHIP_OFFICIAL, baishui, "白水镇", None),
            Grant(models.Role.REVIEWER, None, None, "组织部"),
        ],
        key=str,
    )
    assert not actor.has(models.Role.ADMIN)
    assert actor.township_ids(models.Role.MENTOR) == {qingshan}
    assert actor.township_ids(models.Role.TOWNSHIP_OFFICIAL) == {baishui}
    assert actor.departments() == {"组织部"}


async def test_load_actor_without_grants_and_unknown_user(db: Database) -> None:
    person_id = await _account(db, BIG_ID)
    async with db.sessionmaker() as session:
        actor = await people.load_actor(session, BIG_ID)
        assert actor == people.Actor(person_id=person_id, telegram_id=BIG_ID, grants=())
        assert await people.load_actor(session, OTHER_ID) is None


async def test_other_persons_grants_do_not_leak(db: Database) -> None:
    township_id = await _township(db)
    mine = await _account(db, BIG_ID)
    theirs = await _account(db, OTHER_ID)
    async with db.sessionmaker.begin() as session:
        session.add(models.RoleGrant(person_id=theirs, role="mentor", township_id=township_id))
    async with db.sessionmaker() as session:
        actor = await people.load_actor(session, BIG_ID)
        assert actor is not None
        assert actor.person_id == mine
        assert actor.grants == ()


async def test_second_account_can_step_into_a_demo_person(db: Database) -> None:
    """Two people redeeming fresh demo invites for the same prepared person both succeed."""
    from storage.models import Person as PersonModel

    now = datetime.now(UTC)
    async with db.sessionmaker.begin() as session:
        demo = PersonModel(full_name="演示导师")
        session.add(demo)
        await session.flush()
        await geo.import_pairs(session, "示例县", [("青山镇", "青山村")])
        township = await geo.township_by_name(session, "青山镇")
        assert township is not None
        codes = [
            (
                await people.create_invites(
                    session,
                    role=models.Role.MENTOR,
                    now=now,
                    days=7,
                    township_id=township.id,
                    mentor_slot="township",
                    for_person_id=demo.id,
                )
            )[0]
            for _ in range(2)
        ]
        demo_id = demo.id
    for telegram_id, code in zip((8_100_000_001, 8_100_000_002), codes, strict=True):
        async with db.sessionmaker.begin() as session:
            account = await people.ensure_account(session, telegram_id, "zh")
            result = await people.redeem_invite(
                session, account, code, now=now, max_failures=5, window=timedelta(minutes=10)
            )
            assert result.outcome == people.RedeemOutcome.GRANTED
    async with db.sessionmaker() as session:
        second = await people.load_actor(session, 8_100_000_002)
        first = await people.load_actor(session, 8_100_000_001)
    assert second is not None and second.person_id == demo_id and second.has(models.Role.MENTOR)
    assert first is not None and first.person_id != demo_id
