"""A fictional county at the seed article's scale, built deterministically (fixed seed).

The figures the article reports for 2024, which `cadrebot summary --scope county` over 2024
must show: 754 reserve cadres from the seven key groups, over 70% at 大专 or higher, through
all three channels; 20+ training classes with about 1,800 person-times and 13 integrity-
education visits; "2+1" pairings; 1,600+ talks and 89 resolved difficulties; 35 cadres leading
66 projects worth 5,233万元 that raised collective income by over 200万元; 6 elected into the
two committees; 10+ publicity records. Every row is written with the models directly (no
handlers, no Telegram) in one transaction, so a run either builds the whole county or nothing.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import geo, mentoring
from storage.crypto import DataCipher
from storage.models import (
    Award,
    Difficulty,
    Election,
    GradeMove,
    GradeState,
    Nomination,
    Pairing,
    Person,
    PracticePost,
    Project,
    ProjectLead,
    ProjectReport,
    Publicity,
    RoleGrant,
    StatusChange,
    TalkLog,
    Training,
    TrainingInvite,
    VettingReview,
)
from storage.rules.identity import make_id_number, mask_id, mask_phone
from storage.rules.options import (
    COLLEGE_OR_HIGHER,
    DEFAULT_KEY_GROUPS,
    EDUCATIONS,
    ETHNICITIES,
    POLITICAL_STATUSES,
)
from storage.seed import DATA_DIR

SEED = 2024
YEAR = 2024
DEPARTMENTS = ("police", "discipline", "judicial")

# The article's figures, and the shape of the rest of the pipeline around them.
RESERVE_CADRES = 754
COLLEGE_SHARE = 0.72
ELECTED = 6
CHANNELS = (("self", 420), ("mass", 180), ("organization", 154))
REJECTED_IN_VETTING = 46
DECLINED_BY_TOWNSHIP = 28
STILL_NEW = 12
STILL_IN_VETTING = 9
VILLAGES_PER_TOWNSHIP = 20
TOWNSHIP_MENTORS_PER_TOWNSHIP = 4
TALKS = 1612
DIFFICULTIES_RAISED = 101
DIFFICULTIES_RESOLVED = 89
TRAININGS = 22
TRAINING_PERSON_TIMES = 1800
INTEGRITY_VISITS = 13
INTEGRITY_PER_VISIT = 30
PROJECTS = 66
PROJECT_LEADS = 35
PROJECT_FUNDS_YUAN = 52_330_000
PROJECT_INCOME_YUAN = 2_126_000
PUBLICITY = 12
AWARDS = 15
PRACTICE_POSTS = 120


@dataclass(frozen=True, slots=True)
class ArticleCounts:
    townships: int
    villages: int
    nominations: int
    reserve_cadres: int
    talks: int
    trainings: int
    projects: int


def _at(day: date, hour: int = 10) -> datetime:
    """A moment on a county day (stored as UTC): 10:00 Beijing time is 02:00 UTC."""
    return datetime.combine(day, time(hour - 8 if hour >= 8 else hour), tzinfo=UTC)


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` split into `parts` positive integers that add up exactly."""
    cuts = sorted(rng.sample(range(1, total), parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


async def seed_article(
    session: AsyncSession, cipher: DataCipher, *, now: datetime
) -> ArticleCounts:
    """Build the county; refuses to run twice (the article's county is built once)."""
    if await session.scalar(select(func.count()).select_from(Nomination)):
        raise ValueError("the database already holds nominations; seed an empty database")
    rng = random.Random(SEED)
    data: dict[str, Any] = json.loads((DATA_DIR / "demo_article.json").read_text(encoding="utf-8"))
    pairs, village_names = [], set()
    for township in data["townships"]:
        for _ in range(VILLAGES_PER_TOWNSHIP):
            while True:
                name = rng.choice(data["village_first"]) + rng.choice(data["village_second"])
                if (township, name) not in village_names:
                    break
            village_names.add((township, name))
            pairs.append((township, name + "村"))
    await geo.import_pairs(session, data["county"], pairs)
    townships = {t.name: t.id for t in await geo.list_townships(session)}
    villages_by_township: dict[int, list[int]] = {}
    for township_id in townships.values():
        villages, _ = await geo.list_villages(session, township_id, limit=1000)
        villages_by_township[township_id] = [v.id for v in villages]

    used_names: set[str] = set()

    def person_name() -> str:
        while True:
            name: str = rng.choice(data["surnames"]) + "".join(
                rng.choice(data["given"]) for _ in range(rng.choice((1, 2)))
            )
            if name not in used_names:
                used_names.add(name)
                return name

    # Mentors: township cadres per township, one village party secretary per village.
    async def add_mentor(township_id: int, slot: str) -> int:
        person = Person(full_name=person_name())
        session.add(person)
        await session.flush()
        session.add(
            RoleGrant(
                person_id=person.id,
                role="mentor",
                township_id=township_id,
                mentor_slot=slot,
                granted_at=_at(date(YEAR, 1, 5)),
            )
        )
        return person.id

    township_mentors: dict[int, list[int]] = {}
    village_mentors: dict[int, int] = {}
    for township_id, village_ids in villages_by_township.items():
        for _ in range(TOWNSHIP_MENTORS_PER_TOWNSHIP):
            township_mentors.setdefault(township_id, []).append(
                await add_mentor(township_id, "township")
            )
        for village_id in village_ids:
            village_mentors[village_id] = await add_mentor(township_id, "village")

    # Nominations: the 754 reserve cadres and those who stopped on the way.
    outcomes = (
        ["pool"] * RESERVE_CADRES
        + ["rejected"] * REJECTED_IN_VETTING
        + ["declined"] * DECLINED_BY_TOWNSHIP
        + ["new"] * STILL_NEW
        + ["vetting"] * STILL_IN_VETTING
    )
    rng.shuffle(outcomes)
    channels = [c for c, n in CHANNELS for _ in range(n)]
    extra = len(outcomes) - RESERVE_CADRES
    channels += [rng.choice(("self", "mass", "organization")) for _ in range(extra)]
    pool_channels = iter(rng.sample(channels[:RESERVE_CADRES], RESERVE_CADRES))
    other_channels = iter(channels[RESERVE_CADRES:])
    college_in_pool = round(RESERVE_CADRES * COLLEGE_SHARE)
    pool_education = [rng.choice(COLLEGE_OR_HIGHER) for _ in range(college_in_pool)] + [
        rng.choice([e for e in EDUCATIONS if e not in COLLEGE_OR_HIGHER])
        for _ in range(RESERVE_CADRES - college_in_pool)
    ]
    rng.shuffle(pool_education)
    pool_education_iter = iter(pool_education)
    all_villages = [(t, v) for t, vs in villages_by_township.items() for v in vs]

    cadres: list[Nomination] = []
    for index, outcome in enumerate(outcomes):
        township_id, village_id = rng.choice(all_villages)
        channel = next(pool_channels) if outcome == "pool" else next(other_channels)
        submitted = _at(date(YEAR, 1, 8) + timedelta(days=rng.randrange(70)))
        male = rng.random() < 0.62
        birth = date(1975, 1, 1) + timedelta(days=rng.randrange(365 * 26))
        id_number = make_id_number("520527", birth, index % 500, male)
        phone = f"1{rng.choice('3578')}{index:09d}"
        person = Person(full_name=person_name())
        session.add(person)
        await session.flush()
        nomination = Nomination(
            person_id=person.id,
            channel=channel,
            status={"pool": "in_pool"}.get(outcome, outcome),
            township_id=township_id,
            village_id=village_id,
            gender="male" if male else "female",
            birth_date=birth,
            ethnicity=rng.choice(ETHNICITIES),
            political_status=rng.choice(POLITICAL_STATUSES),
            education=next(pool_education_iter) if outcome == "pool" else rng.choice(EDUCATIONS),
            key_group=DEFAULT_KEY_GROUPS[index % len(DEFAULT_KEY_GROUPS)],
            id_number_enc=cipher.encrypt(id_number),
            id_number_hash=cipher.lookup_hash(id_number),
            id_number_masked=mask_id(id_number),
            phone_enc=cipher.encrypt(phone),
            phone_hash=cipher.lookup_hash(phone),
            phone_masked=mask_phone(phone),
            consent_at=submitted if channel == "self" else None,
            sensitive_consent_at=submitted if channel == "self" else None,
            created_at=submitted,
            status_changed_at=submitted,
        )
        session.add(nomination)
        await session.flush()
        _history(session, cipher, nomination, outcome, submitted, rng)
        if outcome == "pool":
            cadres.append(nomination)
    await session.flush()

    # "2+1": every cadre gets a township cadre and their village's party secretary.
    pairings: list[Pairing] = []
    paired_on = _at(date(YEAR, 4, 15))
    for nomination in cadres:
        assert nomination.village_id is not None
        for slot, mentor in (
            ("township", rng.choice(township_mentors[nomination.township_id])),
            ("village", village_mentors[nomination.village_id]),
        ):
            pairing = Pairing(
                nomination_id=nomination.id,
                mentor_person_id=mentor,
                slot=slot,
                assigned_at=paired_on,
            )
            session.add(pairing)
            pairings.append(pairing)
    await session.flush()

    talks: list[TalkLog] = []
    topics = {k: {"text": "情况良好"} for k in ("thought", "work", "life", "problems")}
    for index in range(TALKS):
        pairing = (
            pairings[index % len(pairings)] if index < len(pairings) else rng.choice(pairings)
        )
        talk = TalkLog(
            pairing_id=pairing.id,
            nomination_id=pairing.nomination_id,
            mentor_person_id=pairing.mentor_person_id,
            talk_date=date(YEAR, 5, 1) + timedelta(days=rng.randrange(200)),
            mode=rng.choice(("face", "phone", "home")),
            topics={},
            topics_enc=mentoring.sealed_json(cipher, topics),
        )
        session.add(talk)
        talks.append(talk)
    await session.flush()
    # Talks added as rows, not through save_talk: the pairings' latest talk dates follow.
    await mentoring.refresh_last_talks(session, [p.id for p in pairings])
    for index, talk in enumerate(rng.sample(talks, DIFFICULTIES_RAISED)):
        raised = _at(talk.talk_date)
        resolved = index < DIFFICULTIES_RESOLVED
        session.add(
            Difficulty(
                nomination_id=talk.nomination_id,
                talk_id=talk.id,
                description="",
                description_enc=cipher.encrypt(
                    "产业启动资金不足" if index % 2 else "家中老人需要照顾"
                ),
                status="resolved" if resolved else "open",
                raised_at=raised,
                resolution_enc=cipher.encrypt("已协调解决") if resolved else None,
                resolved_by_person_id=talk.mentor_person_id if resolved else None,
                resolved_at=raised + timedelta(days=rng.randrange(3, 40)) if resolved else None,
            )
        )

    await _trainings(session, data, cadres, rng)
    await _projects_and_outcomes(session, data, cadres, rng)
    await _posts_and_grades(session, cadres, rng)
    await session.flush()
    return ArticleCounts(
        townships=len(townships),
        villages=len(all_villages),
        nominations=len(outcomes),
        reserve_cadres=len(cadres),
        talks=len(talks),
        trainings=TRAININGS + INTEGRITY_VISITS,
        projects=PROJECTS,
    )


def _history(
    session: AsyncSession,
    cipher: DataCipher,
    nomination: Nomination,
    outcome: str,
    submitted: datetime,
    rng: random.Random,
) -> None:
    """The status changes and department reviews that led to `outcome`."""
    steps: list[tuple[str | None, str, str]] = [(None, "new", f"submit:{nomination.channel}")]
    if outcome == "declined":
        steps.append(("new", "declined", "decline"))
    if outcome in ("pool", "rejected", "vetting"):
        steps.append(("new", "vetting", "send_to_vetting"))
    if outcome == "pool":
        steps.append(("vetting", "in_pool", "vetting_approved"))
    if outcome == "rejected":
        steps.append(("vetting", "rejected", "vetting_rejected"))
    moment = submitted
    for old, new, event in steps:
        session.add(
            StatusChange(
                nomination_id=nomination.id,
                from_status=old,
                to_status=new,
                event=event,
                at=moment,
                reason_enc=(
                    cipher.encrypt("不符合资格条件") if new in ("declined", "rejected") else None
                ),
            )
        )
        moment += timedelta(days=rng.randrange(3, 12))
    if outcome in ("pool", "rejected", "vetting"):
        veto = rng.choice(DEPARTMENTS)
        for department in DEPARTMENTS:
            decided = outcome == "pool" or (outcome == "rejected" and department == veto)
            decision = None
            if decided:
                decision = "reject" if outcome == "rejected" else "approve"
            session.add(
                VettingReview(
                    nomination_id=nomination.id,
                    department=department,
                    decision=decision,
                    requested_at=submitted + timedelta(days=2),
                    decided_at=moment if decided else None,
                    note_enc=cipher.encrypt("无违法违纪记录") if decision == "approve" else None,
                )
            )
    nomination.status_changed_at = moment


async def _trainings(
    session: AsyncSession,
    data: dict[str, Any],
    cadres: list[Nomination],
    rng: random.Random,
) -> None:
    """22 classes adding up to 1,800 person-times, and 13 integrity-education visits."""
    kinds = ["order"] * 14 + ["study_tour"] * 5 + ["competition"] * 3
    attendance = _split(TRAINING_PERSON_TIMES, TRAININGS, rng)
    topics = ("party_building", "industry", "policy_law", "other")
    sessions = [(kind, count) for kind, count in zip(kinds, attendance, strict=True)]
    sessions += [("integrity", INTEGRITY_PER_VISIT) for _ in range(INTEGRITY_VISITS)]
    for number, (kind, attended) in enumerate(sessions):
        starts = _at(date(YEAR, 3, 1) + timedelta(days=number * 8), hour=9)
        titles = data["training_titles"].get(kind, ["廉政教育基地参观"])
        training = Training(
            kind=kind,
            topic="policy_law" if kind == "integrity" else topics[number % len(topics)],
            title=titles[number % len(titles)],
            place="县委党校" if kind != "integrity" else "县廉政教育基地",
            starts_at=starts,
            ends_at=starts + timedelta(hours=4),
            township_id=None,
            checkin_code=f"{number:06d}",
        )
        session.add(training)
        await session.flush()
        invited = rng.sample(cadres, attended + 6)
        for position, cadre in enumerate(invited):
            came = position < attended
            session.add(
                TrainingInvite(
                    training_id=training.id,
                    nomination_id=cadre.id,
                    rsvp="yes" if came else "no",
                    attended_at=starts if came else None,
                    score=float(60 + rng.randrange(40))
                    if came and kind == "competition"
                    else None,
                )
            )


async def _projects_and_outcomes(
    session: AsyncSession, data: dict[str, Any], cadres: list[Nomination], rng: random.Random
) -> None:
    """66 projects worth 5,233万元 led by 35 cadres; income, elections, awards, publicity."""
    leads = rng.sample(cadres, PROJECT_LEADS)
    funds = _split(PROJECT_FUNDS_YUAN // 10_000, PROJECTS, rng)
    income = _split(PROJECT_INCOME_YUAN // 1_000, PROJECTS, rng)
    for number in range(PROJECTS):
        lead = leads[number % PROJECT_LEADS]
        assert lead.village_id is not None
        project = Project(
            village_id=lead.village_id,
            name=f"{data['project_words'][number % len(data['project_words'])]}（{number + 1}号）",
            funds_yuan=funds[number] * 10_000,
            status=("planned", "under_way", "done")[number % 3],
            created_at=_at(date(YEAR, 5, 10)),
        )
        session.add(project)
        await session.flush()
        session.add(ProjectLead(project_id=project.id, nomination_id=lead.id))
        session.add(
            ProjectReport(
                project_id=project.id,
                report_date=date(YEAR, 11, 1) + timedelta(days=number % 50),
                income_yuan=income[number] * 1_000,
            )
        )
    for cadre in rng.sample(cadres, ELECTED):
        cadre.status = "elected"
        session.add(
            StatusChange(
                nomination_id=cadre.id,
                from_status="in_pool",
                to_status="elected",
                event="elect",
                at=_at(date(YEAR, 12, 10)),
            )
        )
        session.add(
            Election(nomination_id=cadre.id, position="村委会委员", elected_on=date(YEAR, 12, 10))
        )
    for number, cadre in enumerate(rng.sample(cadres, AWARDS)):
        session.add(
            Award(
                nomination_id=cadre.id,
                kind="exemplary" if number % 3 == 0 else "award",
                title="优秀村级后备干部",
                awarded_on=date(YEAR, 12, 20),
            )
        )
    for number, cadre in enumerate(rng.sample(cadres, PUBLICITY)):
        session.add(
            Publicity(
                nomination_id=cadre.id,
                outlet=data["outlets"][number % len(data["outlets"])],
                title=f"扎根乡村的后备力量（之{number + 1}）",
                published_on=date(YEAR, 10, 1) + timedelta(days=number * 5),
            )
        )


async def _posts_and_grades(
    session: AsyncSession, cadres: list[Nomination], rng: random.Random
) -> None:
    """Practice posts for some; every cadre on the ladder with a 2024 annual result."""
    for cadre in rng.sample(cadres, PRACTICE_POSTS):
        start = date(YEAR, 6, 1) + timedelta(days=rng.randrange(60))
        session.add(
            PracticePost(
                nomination_id=cadre.id,
                kind=rng.choice(("intern", "grid", "hard_post")),
                title=None,
                start_date=start,
                end_date=start + timedelta(days=180),
            )
        )
    for cadre in cadres:
        result = rng.choices(
            ("excellent", "competent", "basic", "incompetent"), weights=(15, 70, 12, 3)
        )[0]
        to_grade = 2 if result in ("excellent", "competent") else 1
        session.add(
            GradeState(nomination_id=cadre.id, grade=to_grade, years_in_grade=0, subsidy_yuan=200)
        )
        session.add(
            GradeMove(
                nomination_id=cadre.id,
                year=YEAR,
                result=result,
                from_grade=1,
                to_grade=to_grade,
                from_years=0,
                to_years=0,
                subsidy_yuan=200,
                bonus_yuan=1000 if result == "excellent" else 0,
            )
        )
