"""One builder for the test county: townships and villages, people with roles, nominations in
given statuses, pairings.

Two levels. On an open session (storage tests and handler tests alike): `townships`,
`person`, `staff`, `nomination_row`, `form_nomination`, `pair`; `township` on a database. On
a running bot (`BotHarness`): `build_county`, `grant`, `nominate` (a nomination moved to its
status by the real storage transitions, with the vetting reviews that go with it) and
`invite_code`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import geo, nominations, people
from storage.crypto import DataCipher
from storage.db import Database
from storage.models import (
    Nomination,
    Pairing,
    Person,
    Role,
    RoleGrant,
    TelegramAccount,
    VettingReview,
)
from storage.nominations import NominationForm
from storage.people import Actor, Grant
from storage.rules.vetting import Channel, Decision
from tests.support.harness import BotHarness

T0 = datetime(2026, 3, 1, 20, 30, tzinfo=UTC)  # 2026-03-02 04:30 in Asia/Shanghai
COUNTY_NAME = "示例县"

# A grant as (role, township id, mentor slot).
RoleSpec = tuple[Role, int | None, str | None]


# --- on an open session -------------------------------------------------------------------


async def townships(
    session: AsyncSession, villages: Iterable[tuple[str, str]], county: str = COUNTY_NAME
) -> dict[str, int]:
    """Import (township, village) pairs; returns township name → id."""
    await geo.import_pairs(session, county, list(villages))
    return {t.name: t.id for t in await geo.list_townships(session)}


async def township(db: Database, name: str = "青山镇") -> int:
    """One township with one village, in its own transaction; returns its id."""
    async with db.sessionmaker.begin() as session:
        await geo.import_pairs(session, COUNTY_NAME, [(name, name.removesuffix("镇") + "村")])
        found = await geo.township_by_name(session, name)
        assert found is not None
        return found.id


async def person(
    session: AsyncSession, name: str | None = None, telegram_id: int | None = None, **account: Any
) -> int:
    """A person row (and a Telegram account when `telegram_id`); returns the person id."""
    row = Person(full_name=name)
    session.add(row)
    await session.flush()
    if telegram_id is not None:
        session.add(TelegramAccount(telegram_id=telegram_id, person_id=row.id, **account))
    return row.id


async def staff(
    session: AsyncSession, telegram_id: int, name: str | None, grants: Iterable[RoleSpec] = ()
) -> int:
    """An account (as the bot makes one) with a name and role grants; returns the person id."""
    account = await people.ensure_account(session, telegram_id, "zh-hans")
    if name is not None:
        row = await session.get_one(Person, account.person_id)
        row.full_name = name
    for role, township_id, slot in grants:
        session.add(
            RoleGrant(
                person_id=account.person_id,
                role=role.value,
                township_id=township_id,
                mentor_slot=slot,
            )
        )
    await session.flush()
    return account.person_id


async def nomination_row(
    session: AsyncSession, township_id: int, name: str, status: str = "in_pool"
) -> Nomination:
    """A bare nomination row in `status`, its person named `name` (no form, no history)."""
    nomination = Nomination(
        person_id=await person(session, name),
        channel="organization",
        status=status,
        township_id=township_id,
        key_group="veteran",
    )
    session.add(nomination)
    await session.flush()
    return nomination


async def form_nomination(
    session: AsyncSession,
    cipher: DataCipher,
    name: str,
    township_id: int,
    status: str = "in_pool",
    *,
    now: datetime,
) -> int:
    """A nomination created by the real storage function, then set to `status` directly."""
    nomination = await nominations.create_nomination(
        session,
        cipher,
        NominationForm(full_name=name, township_id=township_id, key_group="veteran"),
        channel=Channel.ORGANIZATION,
        submitted_by=None,
        person_id=None,
        now=now,
    )
    nomination.status = status
    return nomination.id


async def pair(
    session: AsyncSession, nomination_id: int, mentor_person_id: int, slot: str = "township"
) -> Pairing:
    """A pairing row (no notices, no audit): for tests about what comes after pairing."""
    pairing = Pairing(nomination_id=nomination_id, mentor_person_id=mentor_person_id, slot=slot)
    session.add(pairing)
    await session.flush()
    return pairing


# --- on a running bot ----------------------------------------------------------------------


@dataclass
class County:
    """Geography, staff and nominations of a test county, by name."""

    bot: BotHarness
    towns: dict[str, int] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    staff: Actor | None = None
    reviewers: dict[str, Actor] = field(default_factory=dict)
    serial: int = 0

    @property
    def cipher(self) -> DataCipher:
        return DataCipher(self.bot.settings.require_data_key())


async def grant(
    bot: BotHarness,
    telegram_id: int,
    role: Role | None,
    *,
    township_id: int | None = None,
    department: str | None = None,
    full_name: str | None = None,
) -> int:
    """An account with one role (or none); returns its person id."""
    async with bot.database.sessionmaker.begin() as session:
        account = await people.ensure_account(session, telegram_id, "zh-hans")
        if full_name:
            row = await session.get_one(Person, account.person_id)
            row.full_name = full_name
        if role is not None:
            session.add(
                RoleGrant(
                    person_id=account.person_id,
                    role=role.value,
                    township_id=township_id,
                    department=department,
                )
            )
        return account.person_id


async def invite_code(
    bot: BotHarness, role: Role, township: str | None = None, **scope: Any
) -> str:
    """A fresh invite for `role` (in `township`, by name), for a test to redeem with /start."""
    async with bot.database.sessionmaker.begin() as session:
        if township is not None:
            found = await geo.township_by_name(session, township)
            assert found is not None, township
            scope["township_id"] = found.id
        (code,) = await people.create_invites(
            session, role=role, now=datetime.now(UTC), days=7, **scope
        )
    return str(code)


async def build_county(bot: BotHarness, townships: Sequence[str] = ("青山镇", "木黄镇")) -> County:
    county = County(bot)
    async with bot.database.sessionmaker.begin() as session:
        await geo.import_pairs(session, COUNTY_NAME, [(t, f"{t}一村") for t in townships])
        county.towns = {t.name: t.id for t in await geo.list_townships(session)}
        office = Person(full_name="县委组织部")
        session.add(office)
        await session.flush()
        county.staff = Actor(office.id, 1, (Grant(Role.ADMIN, None, None, None),))
        for department in bot.settings.department_codes:
            reviewer = Person(full_name=f"审核人{department}")
            session.add(reviewer)
            await session.flush()
            county.reviewers[department] = Actor(
                reviewer.id, 2, (Grant(Role.REVIEWER, None, None, department),)
            )
    return county


async def nominate(
    county: County,
    full_name: str,
    township: str = "青山镇",
    *,
    to: str = "in_pool",
    key_group: str = "veteran",
    education: str | None = "college",
    channel: Channel = Channel.SELF,
    person_id: int | None = None,
    submitted_by: int | None = None,
    departments: Sequence[str] | None = None,
    reject_note: str = "有不良记录",
    **form: Any,
) -> int:
    """A nomination moved by the real storage functions to status `to`."""
    county.serial += 1
    assert county.staff is not None
    staff = county.staff
    departments = tuple(departments or county.bot.settings.department_codes)
    async with county.bot.database.sessionmaker.begin() as session:
        nomination = await nominations.create_nomination(
            session,
            county.cipher,
            NominationForm(
                full_name=full_name,
                township_id=county.towns[township],
                key_group=key_group,
                education=education,
                phone=f"139{county.serial:08d}",
                **form,
            ),
            channel=channel,
            submitted_by=submitted_by,
            person_id=person_id,
            now=T0,
        )
        nid = nomination.id
        if to in ("vetting", "in_pool", "rejected", "adjusted"):
            await nominations.send_to_vetting(session, staff, nid, departments=departments, now=T0)
        reviews = {
            r.department: r.id
            for r in await session.scalars(
                select(VettingReview).where(VettingReview.nomination_id == nid)
            )
        }
        if to in ("in_pool", "adjusted"):
            for department in departments:
                await nominations.decide_review(
                    session,
                    county.reviewers[department],
                    reviews[department],
                    decision=Decision.APPROVE,
                    note="无违法违纪记录",
                    departments=departments,
                    now=T0,
                    cipher=county.cipher,
                )
        if to == "rejected":
            await nominations.decide_review(
                session,
                county.reviewers[departments[0]],
                reviews[departments[0]],
                decision=Decision.REJECT,
                note=reject_note,
                departments=departments,
                now=T0,
                cipher=county.cipher,
            )
        if to == "adjusted":
            await nominations.adjust_out(
                session, staff, nid, reason="长期外出", now=T0, cipher=county.cipher
            )
        if to == "declined":
            await nominations.decline(
                session, staff, nid, reason="本人放弃", now=T0, cipher=county.cipher
            )
    county.ids[full_name] = nid
    return nid
