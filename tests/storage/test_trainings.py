"""Trainings storage on SQLite and PostgreSQL: audience scope, RSVP, check-in, scores, counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import geo, trainings
from storage.db import Database
from storage.models import (
    AuditLog,
    Role,
    TelegramAccount,
    Training,
    TrainingInvite,
)
from storage.nominations import NotAllowed
from storage.people import CODE_ALPHABET, Actor, Grant
from storage.rules.identity import RuleError
from storage.trainings import (
    AudienceChanged,
    EmptyAudience,
    TrainingClosed,
    TrainingDraft,
)
from tests.support.county import nomination_row, townships
from tests.support.county import person as _person

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
START = T0 + timedelta(days=2)
NOBODY = Actor(0, 0, ())


@dataclass
class World:
    db: Database
    towns: dict[str, int] = field(default_factory=dict)
    cadres: dict[str, int] = field(default_factory=dict)  # name → nomination id
    persons: dict[str, int] = field(default_factory=dict)  # name → person id
    telegram: dict[str, int] = field(default_factory=dict)  # name → telegram id
    county: Actor = NOBODY
    qingshan: Actor = NOBODY
    muhuang: Actor = NOBODY
    mentor: Actor = NOBODY

    def cadre(self, name: str) -> Actor:
        """The reserve cadre as an actor with no role: what a candidate is."""
        return Actor(self.persons[name], self.telegram.get(name, 0), ())


@pytest.fixture
async def world(db: Database) -> World:
    """Two townships; five reserve cadres in the pool, one new nomination, officials."""
    w = World(db)
    async with db.sessionmaker.begin() as session:
        w.towns = await townships(session, [("青山镇", "一村"), ("木黄镇", "二村")])
        cadres = [
            ("张一", "青山镇", "in_pool", 9001),
            ("张二", "青山镇", "in_pool", 9002),
            ("张三", "青山镇", "in_pool", None),  # no Telegram account
            ("李四", "木黄镇", "in_pool", 9004),
            ("李五", "木黄镇", "in_pool", 9005),
            ("王新", "青山镇", "new", 9006),  # not in the pool: never invited
        ]
        for name, town, status, telegram_id in cadres:
            nomination = await nomination_row(session, w.towns[town], name, status, "self")
            w.persons[name] = nomination.person_id
            w.cadres[name] = nomination.id
            if telegram_id is not None:
                w.telegram[name] = telegram_id
                session.add(
                    TelegramAccount(
                        telegram_id=telegram_id,
                        person_id=nomination.person_id,
                        language_code="en" if name == "李五" else "zh-hans",
                    )
                )
        qs, mh = w.towns["青山镇"], w.towns["木黄镇"]
        w.county = Actor(
            await _person(session, "县干部"), 1, (Grant(Role.COUNTY_OFFICIAL, None, None, None),)
        )
        w.qingshan = Actor(
            await _person(session, "青山干部"),
            2,
            (Grant(Role.TOWNSHIP_OFFICIAL, qs, "青山镇", None),),
        )
        w.muhuang = Actor(
            await _person(session, "木黄干部"),
            3,
            (Grant(Role.TOWNSHIP_OFFICIAL, mh, "木黄镇", None),),
        )
        w.mentor = Actor(
            await _person(session, "导师"), 4, (Grant(Role.MENTOR, qs, "青山镇", None, "village"),)
        )
    return w


def draft(**overrides: Any) -> TrainingDraft:
    values: dict[str, Any] = {
        "kind": "order",
        "topic": "industry",
        "title": "茶叶种植培训",
        "place": "青山镇会议室",
        "starts_at": START,
        "duration": "2h",
        "audience": "county",
    }
    values.update(overrides)
    return TrainingDraft(**values)


async def create(
    w: World, actor: Actor, now: datetime = T0, **overrides: Any
) -> trainings.CreatedTraining:
    async with w.db.sessionmaker.begin() as session:
        return await trainings.create_training(session, actor, draft(**overrides), now=now)


async def invited_names(w: World, training_id: int) -> set[str]:
    by_id = {v: k for k, v in w.cadres.items()}
    async with w.db.sessionmaker() as session:
        ids = await session.scalars(
            select(TrainingInvite.nomination_id).where(TrainingInvite.training_id == training_id)
        )
        return {by_id[i] for i in ids}


async def invite_of(
    w: World, training_id: int, name: str, session: AsyncSession | None = None
) -> int:
    """The invite id; pass the open session when inside a write transaction (SQLite locks)."""
    query = select(TrainingInvite.id).where(
        TrainingInvite.training_id == training_id,
        TrainingInvite.nomination_id == w.cadres[name],
    )
    if session is None:
        async with w.db.sessionmaker() as own:
            invite_id = await own.scalar(query)
    else:
        invite_id = await session.scalar(query)
    assert invite_id is not None
    return invite_id


async def count(w: World, model: type) -> int:
    async with w.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


# --- plain rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "local"),
    [
        ("2026-03-05 09:30", datetime(2026, 3, 5, 9, 30)),
        ("3-5 9:30", datetime(2026, 3, 5, 9, 30)),
        ("2026/3/5 14:00", datetime(2026, 3, 5, 14, 0)),
        ("３月５日 ０９：３０", datetime(2026, 3, 5, 9, 30)),  # full-width, as an IME types it
        ("  12-31 23:59 ", datetime(2026, 12, 31, 23, 59)),
        # A session already held, recorded afterwards: a minute before T0, last December,
        # and a year back to the day.
        ("3-2 08:59", datetime(2026, 3, 2, 8, 59)),
        ("2025-12-01 09:00", datetime(2025, 12, 1, 9, 0)),
        ("2025-03-01 09:00", datetime(2025, 3, 1, 9, 0)),
    ],
)
def test_parse_starts_at_reads_shanghai_time(raw: str, local: datetime) -> None:
    parsed = trainings.parse_starts_at(raw, now=T0, tz=SHANGHAI)
    assert parsed.tzinfo is not None
    assert parsed == local.replace(tzinfo=SHANGHAI).astimezone(UTC)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("明天上午", "time.format"),
        ("2026-03-05", "time.format"),
        ("9:30", "time.format"),
        ("2-30 09:00", "time.date"),
        ("3-5 25:00", "time.date"),
        ("2025-03-01 08:59", "time.old"),  # a year and a day before T0 in Shanghai
        ("2028-01-01 09:00", "time.far"),
    ],
)
def test_parse_starts_at_refuses(raw: str, code: str) -> None:
    with pytest.raises(RuleError) as caught:
        trainings.parse_starts_at(raw, now=T0, tz=SHANGHAI)
    assert caught.value.code == code


def test_parse_score_and_text_rules() -> None:
    assert trainings.parse_score("87.5") == 87.5
    assert trainings.parse_score("１００") == 100.0
    assert trainings.parse_score("0") == 0.0
    for raw, code in [
        ("abc", "score.format"),
        ("", "score.format"),
        ("100.5", "score.range"),
        ("101", "score.range"),
        ("-1", "score.range"),
        ("87.55", "score.range"),
    ]:
        with pytest.raises(RuleError) as caught:
            trainings.parse_score(raw)
        assert caught.value.code == code, raw
    assert trainings.clean_line("  茶叶\n种植  ", min_len=2, max_len=100) == "茶叶 种植"
    with pytest.raises(RuleError):
        trainings.clean_line("茶", min_len=2, max_len=100)
    with pytest.raises(RuleError):
        trainings.clean_line("茶" * 101, min_len=2, max_len=100)


def test_checkin_codes() -> None:
    codes = {trainings.new_checkin_code() for _ in range(200)}
    assert len(codes) > 190
    for code in codes:
        assert len(code) == 6 and set(code) <= set(CODE_ALPHABET)
        assert trainings.normalize_code(f" {code.lower()} ") == code
    assert trainings.normalize_code("ABCDE1") is None  # 1 is not in the alphabet
    assert trainings.normalize_code("ABCDEFG") is None


# --- creation and audience scope ------------------------------------------------------------


async def test_township_official_invites_their_township_pool(world: World) -> None:
    created = await create(
        world, world.qingshan, audience="township", township_id=world.towns["青山镇"]
    )
    training = created.training
    assert training.township_id == world.towns["青山镇"]
    assert training.organizer_person_id == world.qingshan.person_id
    assert training.ends_at - training.starts_at == timedelta(hours=2)
    assert len(training.checkin_code) == 6 and set(training.checkin_code) <= set(CODE_ALPHABET)
    assert created.invited == 3
    assert await invited_names(world, training.id) == {"张一", "张二", "张三"}
    # Only invitees with a Telegram account get a message, each in their own language.
    assert sorted(i.telegram_id for i in created.invitations) == [9001, 9002]
    async with world.db.sessionmaker() as session:
        audit = await session.scalar(select(AuditLog).where(AuditLog.action == "training.create"))
    assert audit is not None and audit.detail["invited"] == 3


async def test_county_official_invites_the_county_or_any_township(world: World) -> None:
    county = await create(world, world.county, audience="county", duration="1d")
    assert county.training.township_id is None
    assert county.training.ends_at - county.training.starts_at == timedelta(hours=8)
    assert await invited_names(world, county.training.id) == {
        "张一",
        "张二",
        "张三",
        "李四",
        "李五",
    }
    languages = {i.telegram_id: i.language for i in county.invitations}
    assert languages == {9001: "zh-hans", 9002: "zh-hans", 9004: "zh-hans", 9005: "en"}
    muhuang = await create(
        world, world.county, audience="township", township_id=world.towns["木黄镇"]
    )
    assert await invited_names(world, muhuang.training.id) == {"李四", "李五"}
    assert county.training.checkin_code != muhuang.training.checkin_code


async def test_chosen_people_within_scope(world: World) -> None:
    picked = (world.cadres["张一"], world.cadres["张三"])
    created = await create(world, world.qingshan, audience="people", nomination_ids=picked)
    assert await invited_names(world, created.training.id) == {"张一", "张三"}
    # A township official's list from their one township is that township's session.
    assert created.training.township_id == world.towns["青山镇"]
    mixed = (world.cadres["张一"], world.cadres["李四"])
    across = await create(world, world.county, audience="people", nomination_ids=mixed)
    assert across.training.township_id is None
    assert await invited_names(world, across.training.id) == {"张一", "李四"}


@pytest.mark.parametrize(
    ("who", "overrides", "error"),
    [
        ("qingshan", {"audience": "county"}, NotAllowed),
        ("qingshan", {"audience": "township", "township": "木黄镇"}, NotAllowed),
        ("qingshan", {"audience": "people", "picked": ("张一", "李四")}, AudienceChanged),
        ("qingshan", {"audience": "people", "picked": ("王新",)}, AudienceChanged),
        ("qingshan", {"audience": "people", "picked": ()}, NotAllowed),
        ("mentor", {"audience": "township", "township": "青山镇"}, NotAllowed),
        ("cadre", {"audience": "township", "township": "青山镇"}, NotAllowed),
        ("county", {"kind": "party"}, NotAllowed),
        ("county", {"starts_at": T0 - timedelta(days=367)}, RuleError),
        ("county", {"title": "茶"}, RuleError),
        ("county", {"place": "镇" * 101}, RuleError),
    ],
)
async def test_creation_is_refused_outside_the_scope(
    world: World, who: str, overrides: dict[str, Any], error: type[Exception]
) -> None:
    actor = world.cadre("张一") if who == "cadre" else getattr(world, who)
    values = dict(overrides)
    if "township" in values:
        values["township_id"] = world.towns[str(values.pop("township"))]
    if "picked" in values:
        values["nomination_ids"] = tuple(world.cadres[n] for n in values.pop("picked"))
    with pytest.raises(error):
        await create(world, actor, **values)
    assert await count(world, Training) == 0
    assert await count(world, TrainingInvite) == 0


async def test_empty_audience_stores_nothing(world: World) -> None:
    async with world.db.sessionmaker.begin() as session:
        await geo.import_pairs(session, "示例县", [("合水镇", "三村")])
        empty = await geo.township_by_name(session, "合水镇")
    assert empty is not None
    with pytest.raises(EmptyAudience):
        await create(world, world.county, audience="township", township_id=empty.id)
    assert await count(world, Training) == 0


async def test_pickable_pool_is_scoped_and_paged(world: World) -> None:
    async with world.db.sessionmaker() as session:
        mine, total = await trainings.pickable_pool(session, world.qingshan, limit=2)
        assert total == 3 and len(mine) == 2
        rest, _ = await trainings.pickable_pool(session, world.qingshan, offset=2, limit=2)
        assert {p.full_name for p in mine + rest} == {"张一", "张二", "张三"}
        _, county_total = await trainings.pickable_pool(session, world.county)
        assert county_total == 5
        assert await trainings.pickable_pool(session, world.mentor) == ([], 0)
        picks = await trainings.picked_pool(
            session,
            world.qingshan,
            [world.cadres["张一"], world.cadres["李四"]],
        )
        assert [p.full_name for p in picks] == ["张一"]


# --- RSVP -----------------------------------------------------------------------------------


async def test_rsvp_only_by_the_invitee_until_the_start(world: World) -> None:
    created = await create(world, world.county, audience="county")
    training = created.training
    invite_id = await invite_of(world, training.id, "张一")
    async with world.db.sessionmaker.begin() as session:
        view = await trainings.answer_rsvp(session, world.cadre("张一"), invite_id, "yes", now=T0)
        assert view.invite.rsvp == "yes"
    # Changing the answer is allowed until the start.
    async with world.db.sessionmaker.begin() as session:
        view = await trainings.answer_rsvp(
            session,
            world.cadre("张一"),
            invite_id,
            "no",
            now=training.starts_at - timedelta(seconds=1),
        )
        assert view.invite.rsvp == "no"
    for other in (world.cadre("张二"), world.county, world.qingshan):
        async with world.db.sessionmaker.begin() as session:
            with pytest.raises(NotAllowed):
                await trainings.answer_rsvp(session, other, invite_id, "yes", now=T0)
            with pytest.raises(NotAllowed):
                await trainings.own_invitation(session, other, invite_id)
    async with world.db.sessionmaker.begin() as session:
        with pytest.raises(TrainingClosed):
            await trainings.answer_rsvp(
                session, world.cadre("张一"), invite_id, "yes", now=training.starts_at
            )
    async with world.db.sessionmaker() as session:
        invite = await session.get_one(TrainingInvite, invite_id)
        assert invite.rsvp == "no"
        mine = await trainings.my_trainings(session, world.cadre("张一"), now=T0)
    assert [(m.title, m.rsvp) for m in mine] == [("茶叶种植培训", "no")]


# --- check-in -------------------------------------------------------------------------------


async def test_check_in_by_code_only_inside_the_window(world: World) -> None:
    created = await create(world, world.county, audience="county", duration="4h")
    training = created.training
    code = training.checkin_code
    opens = training.starts_at - timedelta(minutes=30)
    closes = training.ends_at
    cadre = world.cadre("张一")

    async def check(actor: Actor, text: str, now: datetime) -> trainings.CheckinResult | None:
        async with world.db.sessionmaker.begin() as session:
            return await trainings.check_in_by_code(session, actor, text, now=now)

    early = await check(cadre, code, opens - timedelta(seconds=1))
    assert early is not None and early.outcome == "not_open"
    assert (early.opens_at, early.closes_at) == (opens, closes)
    assert await attended(world, training.id) == set()
    first = await check(cadre, f" {code.lower()} ", opens)
    assert first is not None and first.outcome == "checked_in"
    again = await check(cadre, code, closes)
    assert again is not None and again.outcome == "already"
    late = await check(world.cadre("李四"), code, closes + timedelta(seconds=1))
    assert late is not None and late.outcome == "closed"
    assert await attended(world, training.id) == {"张一"}
    # Not invited, not a code of theirs, or no code at all: not for this flow.
    assert await check(world.cadre("王新"), code, opens) is None
    assert await check(world.county, code, opens) is None
    other = "".join(c for c in CODE_ALPHABET if c not in code)[:6]
    assert await check(cadre, other, opens) is None
    assert await check(cadre, "hello!", opens) is None


async def attended(w: World, training_id: int) -> set[str]:
    by_id = {v: k for k, v in w.cadres.items()}
    async with w.db.sessionmaker() as session:
        ids = await session.scalars(
            select(TrainingInvite.nomination_id).where(
                TrainingInvite.training_id == training_id, TrainingInvite.attended_at.is_not(None)
            )
        )
        return {by_id[i] for i in ids}


async def test_attendance_toggling_by_officials_in_scope(world: World) -> None:
    created = await create(
        world, world.qingshan, audience="township", township_id=world.towns["青山镇"]
    )
    training = created.training
    invite_id = await invite_of(world, training.id, "张二")
    during = training.starts_at + timedelta(minutes=5)
    for official in (world.qingshan, world.county):
        async with world.db.sessionmaker.begin() as session:
            await trainings.toggle_attendance(session, official, invite_id, now=during)
        assert await attended(world, training.id) == (
            {"张二"} if official is world.qingshan else set()
        )
    async with world.db.sessionmaker.begin() as session:
        await trainings.toggle_attendance(session, world.county, invite_id, now=during)
    for outsider in (world.muhuang, world.mentor, world.cadre("张二")):
        async with world.db.sessionmaker.begin() as session:
            with pytest.raises(NotAllowed):
                await trainings.toggle_attendance(session, outsider, invite_id, now=during)
            with pytest.raises(NotAllowed):
                await trainings.invitees(session, outsider, training.id)
    async with world.db.sessionmaker.begin() as session:
        with pytest.raises(TrainingClosed):
            await trainings.toggle_attendance(
                session,
                world.qingshan,
                invite_id,
                now=training.starts_at - timedelta(minutes=31),
            )
    assert await attended(world, training.id) == {"张二"}
    async with world.db.sessionmaker() as session:
        page = await trainings.invitees(session, world.qingshan, training.id, limit=2)
        assert page.total == 3 and len(page.rows) == 2
        view = await trainings.training_view(session, world.qingshan, training.id)
        assert (view.invited, view.attended, view.township) == (3, 1, "青山镇")
        listed, total = await trainings.list_trainings(session, world.muhuang)
        assert (listed, total) == ([], 0)
        listed, total = await trainings.list_trainings(session, world.county)
        assert total == 1 and (listed[0].invited, listed[0].attended) == (3, 1)


async def test_a_past_study_tour_is_recorded_and_its_roster_marked(world: World) -> None:
    """Last month's five-day study tour: stored with its audience and no invitation to send;
    the organizer marks attendance afterwards; it counts in its month; nobody is reminded."""
    held = T0 - timedelta(days=30)
    created = await create(
        world,
        world.qingshan,
        kind="study_tour",
        place="浙江省安吉县余村",
        starts_at=held,
        duration="5d",
        audience="township",
        township_id=world.towns["青山镇"],
    )
    training = created.training
    assert created.invited == 3 and created.invitations == []
    # Five working days: from the start to 17:00 (start + 8 h) of the fifth day.
    assert training.ends_at == held + timedelta(days=4, hours=8)
    for name in ("张一", "张三"):
        invite_id = await invite_of(world, training.id, name)
        async with world.db.sessionmaker.begin() as session:
            await trainings.toggle_attendance(session, world.qingshan, invite_id, now=T0)
    assert await attended(world, training.id) == {"张一", "张三"}
    async with world.db.sessionmaker() as session:
        by_kind = await trainings.counts_by_kind(
            session, world.qingshan, since=held - timedelta(days=1), until=T0
        )
        assert [(g.kind, g.sessions, g.person_times) for g in by_kind] == [("study_tour", 1, 2)]
        assert await trainings.starting_between(session, held, T0) != []
        assert await trainings.starting_between(session, T0, T0 + timedelta(days=1)) == []
    # The invitee cannot answer a session that has started.
    async with world.db.sessionmaker.begin() as session:
        with pytest.raises(TrainingClosed):
            await trainings.answer_rsvp(
                session, world.cadre("张一"), await invite_of(world, training.id, "张一", session),
                "yes", now=T0,
            )  # fmt: skip


@pytest.mark.parametrize(
    ("starts_at", "code"),
    [(T0 - timedelta(days=367), "time.old"), (T0 + timedelta(days=367), "time.far")],
)
async def test_a_session_more_than_a_year_away_is_refused(
    world: World, starts_at: datetime, code: str
) -> None:
    with pytest.raises(RuleError) as caught:
        await create(world, world.county, starts_at=starts_at)
    assert caught.value.code == code
    assert await count(world, Training) == 0


# --- competitions ---------------------------------------------------------------------------


async def test_scores_and_ranking_share_ranks_on_ties(world: World) -> None:
    created = await create(world, world.county, audience="county", kind="competition")
    training = created.training
    during = training.starts_at
    scores = {"张一": 90.0, "张二": 85.5, "李四": 90.0, "李五": 70.0}
    async with world.db.sessionmaker.begin() as session:
        for name in [*scores, "张三"]:
            invite_id = await invite_of(world, training.id, name, session)
            await trainings.toggle_attendance(session, world.county, invite_id, now=during)
    async with world.db.sessionmaker.begin() as session:
        for name, score in scores.items():
            invite_id = await invite_of(world, training.id, name, session)
            target = await trainings.score_target(session, world.county, invite_id)
            assert target.full_name == name and target.score is None
            await trainings.set_score(session, world.county, invite_id, score)
    async with world.db.sessionmaker() as session:
        _, ranks = await trainings.ranking(session, world.county, training.id)
    assert [(r.rank, r.score) for r in ranks] == [(1, 90.0), (1, 90.0), (3, 85.5), (4, 70.0)]
    assert {r.full_name for r in ranks[:2]} == {"张一", "李四"}
    assert [r.full_name for r in ranks[2:]] == ["张二", "李五"]
    # The township official sees the county session only if they organized it: they did not.
    async with world.db.sessionmaker() as session:
        with pytest.raises(NotAllowed):
            await trainings.ranking(session, world.qingshan, training.id)
    # A score needs an attendee of a competition, and an official in scope.
    absent = await invite_of(world, training.id, "张三")
    async with world.db.sessionmaker.begin() as session:
        await trainings.toggle_attendance(session, world.county, absent, now=during)
    async with world.db.sessionmaker.begin() as session:
        with pytest.raises(NotAllowed):
            await trainings.set_score(session, world.county, absent, 50)
        with pytest.raises(NotAllowed):
            await trainings.score_target(session, world.county, absent)
        with pytest.raises(NotAllowed):
            await trainings.set_score(
                session, world.muhuang, await invite_of(world, training.id, "李四", session), 50
            )
        with pytest.raises(RuleError):
            await trainings.set_score(session, world.county, absent, 101)
    plain = await create(world, world.county, audience="county", kind="order")
    plain_invite = await invite_of(world, plain.training.id, "张一")
    async with world.db.sessionmaker.begin() as session:
        await trainings.toggle_attendance(
            session, world.county, plain_invite, now=plain.training.starts_at
        )
    async with world.db.sessionmaker.begin() as session:
        with pytest.raises(NotAllowed):
            await trainings.set_score(session, world.county, plain_invite, 80)
    # The dossier shows the person's part.
    async with world.db.sessionmaker() as session:
        section = await trainings.dossier_section(session, world.cadres["李四"], tz=SHANGHAI)
        absent_section = await trainings.dossier_section(session, world.cadres["张三"])
    assert (section.invited, section.attended, section.competitions) == (2, 1, 1)
    competition = next(i for i in section.items if i.kind == "competition")
    assert (competition.score, competition.rank, competition.ranked) == (90.0, 1, 4)
    assert competition.starts_at == training.starts_at  # the same instant, shown in Shanghai
    assert competition.starts_at.utcoffset() == timedelta(hours=8)
    other = next(i for i in section.items if i.kind == "order")
    assert (other.attended, other.score, other.rank) == (False, None, None)
    assert (absent_section.invited, absent_section.attended) == (2, 0)


# --- counting -------------------------------------------------------------------------------


async def _attend(w: World, training: Training, *names: str) -> None:
    async with w.db.sessionmaker.begin() as session:
        for name in names:
            invite_id = await invite_of(w, training.id, name, session)
            await trainings.toggle_attendance(session, w.county, invite_id, now=training.starts_at)


async def test_person_time_counts_per_kind_topic_township_and_county(world: World) -> None:
    qs, mh = world.towns["青山镇"], world.towns["木黄镇"]
    a = (
        await create(world, world.county, audience="county", kind="order", topic="industry")
    ).training
    b = (
        await create(
            world,
            world.qingshan,
            audience="township",
            township_id=qs,
            kind="order",
            topic="industry",
        )
    ).training
    c = (
        await create(
            world,
            world.county,
            audience="township",
            township_id=mh,
            kind="integrity",
            topic="party_building",
        )
    ).training
    d = (
        await create(
            world,
            world.county,
            audience="county",
            kind="integrity",
            topic="party_building",
            starts_at=START + timedelta(days=40),
        )
    ).training
    await create(
        world,
        world.muhuang,
        audience="township",
        township_id=mh,
        kind="competition",
        topic="other",
    )
    await _attend(world, a, "张一", "张二", "李四")
    await _attend(world, b, "张一", "张三")
    await _attend(world, c, "李四", "李五")
    await _attend(world, d, "张一")
    # The competition: nobody attended; it still counts as a session held.
    until = START + timedelta(days=60)

    async with world.db.sessionmaker() as session:
        pairs = await trainings.counts_by_kind_topic(session, world.county, until=until)
        kinds = await trainings.counts_by_kind(session, world.county, until=until)
        topics = await trainings.counts_by_topic(session, world.county, until=until)
        towns, total = await trainings.counts_by_township(session, world.county, until=until)
        visits = await trainings.integrity_visits(session, world.county, until=until)
        # The period: sessions starting in [since, until) only; d starts 40 days later.
        early_pairs = await trainings.counts_by_kind_topic(
            session,
            world.county,
            since=START,
            until=START + timedelta(days=1),
        )
        early_visits = await trainings.integrity_visits(
            session,
            world.county,
            since=START,
            until=START + timedelta(days=1),
        )
        before = await trainings.counts_by_township(session, world.county, until=START)
        # A township official's figures: their township's invitees only.
        qs_pairs = await trainings.counts_by_kind_topic(session, world.qingshan, until=until)
        qs_towns, qs_total = await trainings.counts_by_township(
            session, world.qingshan, until=until
        )
        qs_visits = await trainings.integrity_visits(session, world.qingshan, until=until)
        mentor = await trainings.counts_by_kind_topic(session, world.mentor, until=until)

    def table(
        rows: list[trainings.GroupCount],
    ) -> dict[tuple[str | None, str | None], tuple[int, int]]:
        return {(r.kind, r.topic): (r.sessions, r.person_times) for r in rows}

    assert table(pairs) == {
        ("competition", "other"): (1, 0),
        ("integrity", "party_building"): (2, 3),
        ("order", "industry"): (2, 5),
    }
    assert table(kinds) == {
        ("competition", None): (1, 0),
        ("integrity", None): (2, 3),
        ("order", None): (2, 5),
    }
    assert table(topics) == {
        (None, "industry"): (2, 5),
        (None, "other"): (1, 0),
        (None, "party_building"): (2, 3),
    }
    assert [(t.township, t.sessions, t.person_times) for t in towns] == [
        ("青山镇", 3, 5),
        ("木黄镇", 2, 3),
    ]
    assert (total.township_id, total.sessions, total.person_times) == (None, 5, 8)
    assert visits == 2
    assert table(early_pairs) == {
        ("competition", "other"): (1, 0),
        ("integrity", "party_building"): (1, 2),
        ("order", "industry"): (2, 5),
    }
    assert early_visits == 1
    assert before == ([], trainings.TownshipCount(None, None, 0, 0))
    # 青山镇's cadres were invited to a, b and d (c and e were 木黄镇's only).
    assert table(qs_pairs) == {
        ("integrity", "party_building"): (1, 1),
        ("order", "industry"): (2, 4),
    }
    assert [(t.township_id, t.sessions, t.person_times) for t in qs_towns] == [(qs, 3, 5)]
    assert (qs_total.sessions, qs_total.person_times) == (3, 5)
    assert qs_visits == 1
    assert mentor == []


# --- reminders ------------------------------------------------------------------------------


async def test_starting_between_lists_invitees_to_remind(world: World) -> None:
    first = (await create(world, world.county, audience="county")).training
    later = (
        await create(
            world,
            world.county,
            audience="township",
            township_id=world.towns["木黄镇"],
            starts_at=START + timedelta(hours=3),
        )
    ).training
    outside = await create(
        world, world.county, audience="county", starts_at=START + timedelta(days=1)
    )
    async with world.db.sessionmaker.begin() as session:
        for name, answer in (("张二", "no"), ("李四", "yes")):
            await trainings.answer_rsvp(
                session,
                world.cadre(name),
                await invite_of(world, first.id, name, session),
                answer,
                now=T0,
            )
    async with world.db.sessionmaker() as session:
        due = await trainings.starting_between(
            session, START, START + timedelta(hours=3, seconds=1)
        )
        none = await trainings.starting_between(
            session, START + timedelta(seconds=1), START + timedelta(hours=3)
        )
    assert [t.id for t in due] == [first.id, later.id]
    assert outside.training.id not in {t.id for t in due}
    # 张二 said no; 张三 has no Telegram account; the others are reminded.
    reminded = sorted((i.telegram_id, i.rsvp, i.language) for i in due[0].invitees)
    assert reminded == [(9001, None, "zh-hans"), (9004, "yes", "zh-hans"), (9005, None, "en")]
    assert sorted(i.telegram_id for i in due[1].invitees) == [9004, 9005]
    assert none == []
