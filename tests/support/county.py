"""One builder for the test county: townships and villages, people with roles, nominations in
given statuses, pairings.

Two levels. On an open session (storage tests and handler tests alike): `townships`,
`person`, `officials`, `staff`, `nomination_row`, `four_cadres`, `form_nomination`,
`new_nomination`, `pair`, `grade_move` (a row to add); `township` and `loaded_actor` on a
database; `legacy_rows` on a connection at an old migration revision. On
a running bot (`BotHarness`): `build_county`, `grant`, `nominate` (a nomination moved to its
status by the real storage transitions, with the vetting reviews that go with it) and
`invite_code`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage import geo, mentoring, nominations, people
from storage.crypto import DataCipher
from storage.db import Database
from storage.models import County as CountyRow
from storage.models import (
    GradeMove,
    Nomination,
    Pairing,
    Person,
    Role,
    RoleGrant,
    TelegramAccount,
    Township,
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


async def loaded_actor(db: Database, telegram_id: int) -> Actor:
    """The actor the bot would load for `telegram_id`, who must have an account."""
    async with db.sessionmaker() as session:
        actor = await people.load_actor(session, telegram_id)
    assert actor is not None
    return actor


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


async def officials(session: AsyncSession, a: int, b: int) -> tuple[Actor, Actor, Actor, Actor]:
    """Township officials of `a` and of `b`, a county official and someone with no role, as
    actors with Telegram ids 1 to 4."""

    def grant(role: Role, township: int | None = None) -> tuple[Grant, ...]:
        return (Grant(role, township, None, None),)

    return (
        Actor(await person(session), 1, grant(Role.TOWNSHIP_OFFICIAL, a)),
        Actor(await person(session), 2, grant(Role.TOWNSHIP_OFFICIAL, b)),
        Actor(await person(session), 3, grant(Role.COUNTY_OFFICIAL)),
        Actor(await person(session), 4, ()),
    )


async def four_cadres(
    session: AsyncSession, a: int, b: int
) -> tuple[Nomination, Nomination, Nomination, Nomination]:
    """张三 and 李四 in the pool of township `a`, 王五 in `b`'s, and 赵六 in `a` still new."""
    return (
        await nomination_row(session, a, "张三"),
        await nomination_row(session, a, "李四"),
        await nomination_row(session, b, "王五"),
        await nomination_row(session, a, "赵六", status="new"),
    )


def grade_move(
    nomination_id: int,
    year: int,
    result: str,
    grades: tuple[int, int],
    years: tuple[int, int],
    **amounts: Any,
) -> GradeMove:
    """A ladder move row: `grades` and `years` (in grade) as (from, to); `amounts` adds
    subsidy_yuan, bonus_yuan, at."""
    return GradeMove(
        nomination_id=nomination_id,
        year=year,
        result=result,
        from_grade=grades[0],
        to_grade=grades[1],
        from_years=years[0],
        to_years=years[1],
        **amounts,
    )


async def staff(
    session: AsyncSession,
    telegram_id: int,
    name: str | None,
    grants: Iterable[RoleSpec] = (),
    department: str | None = None,
) -> int:
    """An account (as the bot makes one) with a name and role grants (a reviewer's in
    `department`); returns the person id."""
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
                department=department,
            )
        )
    await session.flush()
    return account.person_id


async def nomination_row(
    session: AsyncSession,
    township_id: int,
    name: str,
    status: str = "in_pool",
    channel: str = "organization",
    **values: Any,
) -> Nomination:
    """A bare nomination row in `status`, its person named `name` (no form, no history);
    `values` sets more columns (education=)."""
    nomination = Nomination(
        person_id=await person(session, name),
        channel=channel,
        status=status,
        township_id=township_id,
        key_group="veteran",
        **values,
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
    channel: Channel = Channel.ORGANIZATION,
    person_id: int | None = None,
    submitted_by: int | None = None,
    **form: Any,
) -> int:
    """A nomination created by the real storage function, then set to `status` directly.

    `person_id` is whom it is about (None: a new person); `form` adds fields (`phone=`)."""
    nomination = await nominations.create_nomination(
        session,
        cipher,
        NominationForm(full_name=name, township_id=township_id, key_group="veteran", **form),
        channel=channel,
        submitted_by=submitted_by,
        person_id=person_id,
        now=now,
    )
    nomination.status = status
    return nomination.id


async def new_nomination(
    session: AsyncSession,
    name: str,
    *,
    now: datetime,
    channel: Channel = Channel.MASS,
    person_id: int | None = None,
    **form: Any,
) -> int:
    """A new nomination in 青山镇 of a one-village county, under a throwaway data key; with
    `person_id`, that person submitted it about themselves."""
    township_id = (await townships(session, [("青山镇", "青山村")]))["青山镇"]
    cipher = DataCipher(Fernet.generate_key().decode())
    form.update(channel=channel, person_id=person_id, submitted_by=person_id)
    return await form_nomination(session, cipher, name, township_id, "new", now=now, **form)


async def pair(
    session: AsyncSession,
    nomination_id: int,
    mentor_person_id: int,
    slot: str = "township",
    **values: Any,
) -> Pairing:
    """A pairing row (no notices, no audit): for tests about what comes after pairing.
    `values` sets more columns (assigned_at=, ended_at=)."""
    pairing = Pairing(
        nomination_id=nomination_id, mentor_person_id=mentor_person_id, slot=slot, **values
    )
    session.add(pairing)
    await session.flush()
    return pairing


async def legacy_rows(
    connection: AsyncConnection, at: datetime, people_count: int, **nomination: Any
) -> None:
    """Core inserts for migration tests, naming only columns old revisions have: county 1,
    township 1 青山镇, persons 1..`people_count` named 人i, and nomination 1 (person 1, in the
    pool, created and changed `at`; `nomination` adds columns)."""
    await connection.execute(insert(CountyRow).values(id=1, name=COUNTY_NAME))
    await connection.execute(insert(Township).values(id=1, county_id=1, name="青山镇"))
    await connection.execute(
        insert(Person),
        [{"id": i, "full_name": f"人{i}"} for i in range(1, people_count + 1)],
    )
    row: dict[str, Any] = {"id": 1, "person_id": 1, "township_id": 1, "channel": "organization"}
    row |= {"status": "in_pool", "key_group": "veteran", "created_at": at, "status_changed_at": at}
    await connection.execute(insert(Nomination).values(**row, **nomination))


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
    grants: list[RoleSpec] = [] if role is None else [(role, township_id, None)]
    async with bot.database.sessionmaker.begin() as session:
        return await staff(session, telegram_id, full_name or None, grants, department)


async def invite_code(
    bot: BotHarness, role: Role, township: str | None = None, *, days: int = 7, **scope: Any
) -> str:
    """A fresh invite for `role` (in `township`, by name), for a test to redeem with /start."""
    async with bot.database.sessionmaker.begin() as session:
        if township is not None:
            found = await geo.township_by_name(session, township)
            assert found is not None, township
            scope["township_id"] = found.id
        (code,) = await people.create_invites(
            session, role=role, now=datetime.now(UTC), days=days, **scope
        )
    return str(code)


async def role_invite(bot: BotHarness, role: Role, *, days: int = 7, **scope: Any) -> str:
    """An invite for `role` with the scope it needs: a township official or a mentor
    (township slot) in 青山镇, imported if the test has no geography yet; a reviewer for the
    police unless `scope` names a department."""
    township = None
    if role in (Role.TOWNSHIP_OFFICIAL, Role.MENTOR):
        township = "青山镇"
        async with bot.database.sessionmaker.begin() as session:
            if await geo.township_by_name(session, township) is None:
                await geo.import_pairs(session, COUNTY_NAME, [(township, "青山村")])
    if role == Role.MENTOR:
        scope["mentor_slot"] = "township"
    if role == Role.REVIEWER:
        scope.setdefault("department", "police")
    return await invite_code(bot, role, township, days=days, **scope)


async def saved_talk(
    bot: BotHarness,
    telegram_id: int,
    pairing_id: int,
    *,
    mode: str,
    text: str,
    difficulties: list[str],
) -> None:
    """A talk saved in storage (not through /talk) by `telegram_id`'s account, dated today
    in the bot's zone, every topic answered `text`."""
    assert bot.app is not None
    tz = bot.settings.tz
    talk = mentoring.TalkInput(
        talk_date=datetime.now(tz).date(),
        mode=mode,
        topics={topic: {"text": text} for topic in mentoring.TALK_TOPICS},
        difficulties=difficulties,
    )
    async with bot.database.sessionmaker.begin() as session:
        actor = await people.load_actor(session, telegram_id)
        assert actor is not None
        await mentoring.save_talk(
            session,
            actor,
            pairing_id,
            talk,
            cipher=bot.app.bot_data["cipher"],
            now=datetime.now(UTC),
            tz=tz,
        )


async def build_county(bot: BotHarness, names: Sequence[str] = ("青山镇", "木黄镇")) -> County:
    county = County(bot)
    async with bot.database.sessionmaker.begin() as session:
        county.towns = await townships(session, [(t, f"{t}一村") for t in names])
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
