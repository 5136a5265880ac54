"""Trainings (育): sessions, their audience, RSVPs, attendance, competition scores, counts.

Scope, deny by default:
- who may organize: township officials (audience from their townships), county officials and
  admins (county-wide or any township);
- who may manage a session (check-in list, scores): `manageable_trainings`, i.e. county
  officials and admins for every session, township officials for sessions of their townships
  and the ones they organized;
- who may answer an invitation or check in with the code: the invitee themself, that is the
  person who owns the invited nomination.

Functions take a session and never commit. Times are aware UTC datetimes; converting to and
from the county's time zone happens at the edges (`parse_starts_at`, the templates).

Counting definitions (the summaries quote these numbers):
- a session counts in a period [since, until) when it *starts* in it; `until` is required so
  that a caller asking "held so far" passes now and future sessions stay out;
- person-times (人次) = invites with attendance recorded (attended_at set);
- a township official's figures cover the invitees of their townships only: a county-wide
  session counts for a township when one of its reserve cadres was invited;
- per township = the township of the attendee's nomination.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    distinct,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit, cadres
from storage.cadres import CadreRow
from storage.models import (
    Nomination,
    Person,
    Role,
    TelegramAccount,
    Township,
    Training,
    TrainingInvite,
)
from storage.nominations import manageable_by
from storage.people import CODE_ALPHABET, Actor
from storage.rules.identity import RuleError, clean_text
from storage.rules.vetting import Status
from storage.scoped import NotAllowed, one_or_refuse, page, row_or_refuse, with_names

KINDS = ("order", "study_tour", "competition", "integrity")
TOPICS = ("party_building", "industry", "policy_law", "other")
# Duration buttons → hours; a "day" is a working day, so that the check-in window closes
# that evening and not at the next morning. A session of several days (a study tour to
# Zhejiang or Jiangsu) ends with the working day of its last day.
DURATIONS: dict[str, int] = {
    "2h": 2,
    "4h": 4,
    **{f"{days}d": 24 * (days - 1) + 8 for days in (1, 2, 3, 5, 7)},
}
Audience = Literal["county", "township", "people"]
AUDIENCES: tuple[Audience, ...] = ("county", "township", "people")

TITLE_MIN, TITLE_MAX = 2, 100
PLACE_MIN, PLACE_MAX = 2, 100
CHECKIN_LENGTH = 6
# Attendees arrive early; the code works from half an hour before the start to the end.
CHECKIN_EARLY = timedelta(minutes=30)
# A date further ahead than this is a typo (2062 for 2026), not a plan.
MAX_AHEAD = timedelta(days=366)
# A session held in the past may be recorded afterwards (last month's class), but not one so
# old that the date is more likely a typo (2025 for 2026) than a record.
MAX_BEHIND = timedelta(days=366)
CHECKIN_PATTERN = rf"^\s*[{CODE_ALPHABET}]{{{CHECKIN_LENGTH}}}\s*$"

_TIME_RE = re.compile(
    r"^(?:(?P<year>\d{4})\s*[-/.年]\s*)?(?P<month>\d{1,2})\s*[-/.月]\s*(?P<day>\d{1,2})\s*日?"
    r"\s+(?P<hour>\d{1,2})\s*[:：点]\s*(?P<minute>\d{2})\s*分?$"
)
_SCORE_RE = re.compile(r"^(?:100(?:\.0)?|\d{1,2}(?:\.\d)?)$")


class TrainingClosed(Exception):
    """The action's time is over (RSVP after the start) or not yet come (early check-in)."""


class EmptyAudience(Exception):
    """The chosen audience holds no reserve cadre in the pool: nobody would be invited."""


class AudienceChanged(NotAllowed):
    """A chosen person is not (or no longer) in the actor's pool: adjusted out, or forged."""


# ---------------------------------------------------------------------------------------------
# Plain rules: no SQL, no Telegram.


def _plain(raw: str) -> str:
    # NFKC maps the full-width digits, letters and colon a Chinese IME types to ASCII.
    return unicodedata.normalize("NFKC", raw).strip()


def parse_starts_at(raw: str, *, now: datetime, tz: tzinfo) -> datetime:
    """'YYYY-MM-DD HH:MM' or 'M-D HH:MM' in the county's time zone → aware UTC.

    Codes: time.format (not a date and time), time.date (no such day or time), time.old
    (more than a year ago), time.far (more than a year ahead). A past moment is a session
    being recorded after it was held. 'M-D' means this year, never moved to the next.
    """
    match = _TIME_RE.match(_plain(raw))
    if match is None:
        raise RuleError("time.format")
    local_now = now.astimezone(tz)
    year = int(match["year"]) if match["year"] else local_now.year
    try:
        local = datetime(
            year,
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            tzinfo=tz,
        )
    except ValueError:
        raise RuleError("time.date") from None
    starts = local.astimezone(UTC)
    check_starts(starts, now=now)
    return starts


def check_starts(starts: datetime, *, now: datetime) -> None:
    """RuleError time.old / time.far unless `starts` is within a year either side of now."""
    if starts < now - MAX_BEHIND:
        raise RuleError("time.old")
    if starts > now + MAX_AHEAD:
        raise RuleError("time.far")


def clean_line(raw: str, *, min_len: int, max_len: int) -> str:
    """A title or place: cleaned free text on one line. Codes as `clean_text`."""
    text = " ".join(clean_text(raw, max_len=10 * max_len, min_len=0).split())
    if not min_len <= len(text) <= max_len:
        raise RuleError("text.length", {"min": min_len, "max": max_len})
    return text


def parse_score(raw: str) -> float:
    """A competition score: 0–100 with at most one decimal. Codes: score.format, score.range."""
    text = _plain(raw).replace("，", ".").replace(",", ".")
    if not re.fullmatch(r"-?\d+(?:\.\d+)?", text):
        raise RuleError("score.format")
    if not _SCORE_RE.match(text):
        raise RuleError("score.range")
    return round(float(text), 1)


def new_checkin_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CHECKIN_LENGTH))


def normalize_code(raw: str) -> str | None:
    """The check-in code a person typed, upper-cased; None when it cannot be one."""
    text = _plain(raw).upper()
    if len(text) != CHECKIN_LENGTH or any(c not in CODE_ALPHABET for c in text):
        return None
    return text


def checkin_window(training: Training) -> tuple[datetime, datetime]:
    return training.starts_at - CHECKIN_EARLY, training.ends_at


def can_organize(actor: Actor | None) -> bool:
    return actor is not None and (
        actor.has(Role.ADMIN, Role.COUNTY_OFFICIAL)
        or bool(actor.township_ids(Role.TOWNSHIP_OFFICIAL))
    )


def is_county_level(actor: Actor) -> bool:
    return actor.has(Role.ADMIN, Role.COUNTY_OFFICIAL)


def manageable_trainings(actor: Actor) -> ColumnElement[bool]:
    """Sessions an official may manage. Deny by default: no official role, no rows."""
    if is_county_level(actor):
        return true()
    townships = actor.township_ids(Role.TOWNSHIP_OFFICIAL)
    if not townships:
        return false()
    return or_(
        Training.township_id.in_(townships), Training.organizer_person_id == actor.person_id
    )


# ---------------------------------------------------------------------------------------------
# Creating a session.


@dataclass(frozen=True, slots=True)
class TrainingDraft:
    kind: str
    topic: str
    title: str
    place: str
    starts_at: datetime
    duration: str
    audience: Audience
    township_id: int | None = None
    nomination_ids: tuple[int, ...] = ()

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(hours=DURATIONS[self.duration])


@dataclass(frozen=True, slots=True)
class Invitation:
    """One invitee to tell, in their language."""

    invite_id: int
    telegram_id: int
    language: str | None


@dataclass(frozen=True, slots=True)
class CreatedTraining:
    training: Training
    invited: int
    invitations: list[Invitation]


# A cadre of the pool an organizer may invite one by one.
PoolPick = CadreRow


def _pool(actor: Actor) -> ColumnElement[bool]:
    return cadres.managed(actor, (Status.IN_POOL.value,))


async def audience_townships(session: AsyncSession, actor: Actor) -> list[Township]:
    """Townships whose pool the actor may invite: all for the county, else their own."""
    query = select(Township).order_by(Township.id)
    if not is_county_level(actor):
        query = query.where(Township.id.in_(actor.township_ids(Role.TOWNSHIP_OFFICIAL)))
    return list(await session.scalars(query))


async def pickable_pool(
    session: AsyncSession, actor: Actor, *, offset: int = 0, limit: int = 8
) -> tuple[list[PoolPick], int]:
    """Reserve cadres in the pool that the actor may invite one by one, by township and name."""
    if not can_organize(actor):
        return [], 0
    return await cadres.page(session, _pool(actor), offset=offset, limit=limit)


async def picked_pool(session: AsyncSession, actor: Actor, ids: Sequence[int]) -> list[PoolPick]:
    """The chosen invitees that are in the actor's pool, by name; others are left out."""
    if not can_organize(actor):
        return []
    return await cadres.some(session, _pool(actor), ids)


def _audience_where(actor: Actor, draft: TrainingDraft) -> tuple[ColumnElement[bool], int | None]:
    """The invitees' condition and the session's township; NotAllowed outside the scope."""
    if draft.audience == "county":
        if not is_county_level(actor):
            raise NotAllowed
        return _pool(actor), None
    if draft.audience == "township":
        township_id = draft.township_id
        if township_id is None or not (
            is_county_level(actor) or township_id in actor.township_ids(Role.TOWNSHIP_OFFICIAL)
        ):
            raise NotAllowed
        return and_(_pool(actor), Nomination.township_id == township_id), township_id
    if draft.audience == "people" and draft.nomination_ids:
        return and_(_pool(actor), Nomination.id.in_(draft.nomination_ids)), None
    raise NotAllowed


async def create_training(
    session: AsyncSession, actor: Actor, draft: TrainingDraft, *, now: datetime
) -> CreatedTraining:
    """Store a session and one invite per reserve cadre of its audience.

    Raises NotAllowed (not an organizer, audience outside the scope), AudienceChanged (a
    chosen person not in the actor's pool), RuleError (time.old, time.far), EmptyAudience.
    Returns whom to send the invitation to: the invitees with a Telegram account, none for
    a session that has already started (it is being recorded: nobody can answer or come any
    more, and the organizer marks who came on the check-in list).
    """
    if not can_organize(actor):
        raise NotAllowed
    if draft.kind not in KINDS or draft.topic not in TOPICS or draft.duration not in DURATIONS:
        raise NotAllowed
    check_starts(draft.starts_at, now=now)
    for text, low, high in (
        (draft.title, TITLE_MIN, TITLE_MAX),
        (draft.place, PLACE_MIN, PLACE_MAX),
    ):
        if not low <= len(text) <= high:
            raise RuleError("text.length", {"min": low, "max": high})
    where, township_id = _audience_where(actor, draft)
    invited, lowest, highest = (
        await session.execute(
            select(
                func.count(), func.min(Nomination.township_id), func.max(Nomination.township_id)
            )
            .select_from(Nomination)
            .where(where)
        )
    ).one()
    if draft.audience == "people":
        if invited != len(set(draft.nomination_ids)):
            raise AudienceChanged
        if not is_county_level(actor) and lowest == highest:
            # A township official's list from one township is that township's session.
            township_id = lowest
    if invited == 0:
        raise EmptyAudience
    training = Training(
        kind=draft.kind,
        topic=draft.topic,
        title=draft.title,
        place=draft.place,
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
        township_id=township_id,
        organizer_person_id=actor.person_id,
        checkin_code=await _unused_code(session, now),
        created_at=now,
    )
    session.add(training)
    await session.flush()
    await session.execute(
        insert(TrainingInvite).from_select(
            ["training_id", "nomination_id"],
            select(literal(training.id), Nomination.id).where(where).order_by(Nomination.id),
        )
    )
    # A session already started is being recorded: nobody is invited to it any more.
    invitations = await _reachable(session, training.id) if draft.starts_at > now else []
    await audit.record(
        session,
        actor.person_id,
        "training.create",
        "training",
        training.id,
        kind=draft.kind,
        audience=draft.audience,
        invited=invited,
    )
    return CreatedTraining(training, int(invited), invitations)


async def _reachable(session: AsyncSession, training_id: int) -> list[Invitation]:
    """The session's invitees with a Telegram account, in their language."""
    rows = await session.execute(
        select(
            TrainingInvite.id,
            TelegramAccount.telegram_id,
            func.coalesce(TelegramAccount.locale, TelegramAccount.language_code),
        )
        .join(Nomination, Nomination.id == TrainingInvite.nomination_id)
        .join(TelegramAccount, TelegramAccount.person_id == Nomination.person_id)
        .where(TrainingInvite.training_id == training_id)
        .order_by(TrainingInvite.id)
    )
    return [Invitation(*row) for row in rows.all()]


async def _unused_code(session: AsyncSession, now: datetime) -> str:
    """A code that no session open now, to come, or ended within a day uses.

    So a code sent during a check-in window names one session only.
    """
    for _ in range(20):
        code = new_checkin_code()
        taken = await session.scalar(
            select(func.count())
            .select_from(Training)
            .where(Training.checkin_code == code, Training.ends_at >= now - timedelta(days=1))
        )
        if not taken:
            return code
    raise RuntimeError("no free check-in code after 20 tries")  # 31**6 codes: unreachable


# ---------------------------------------------------------------------------------------------
# The invitee: invitation, RSVP, check-in by code.


@dataclass(frozen=True, slots=True)
class InviteView:
    invite: TrainingInvite
    training: Training


def _own_invite(actor: Actor, invite_id: int) -> Select[TrainingInvite, Training]:
    return (
        select(TrainingInvite, Training)
        .join(Training, Training.id == TrainingInvite.training_id)
        .join(Nomination, Nomination.id == TrainingInvite.nomination_id)
        .where(TrainingInvite.id == invite_id, Nomination.person_id == actor.person_id)
    )


async def own_invitation(session: AsyncSession, actor: Actor, invite_id: int) -> InviteView:
    """An invitation as its invitee sees it; NotAllowed for anyone else."""
    invite, training = await row_or_refuse(session, _own_invite(actor, invite_id))
    return InviteView(invite, training)


async def answer_rsvp(
    session: AsyncSession,
    actor: Actor,
    invite_id: int,
    answer: Literal["yes", "no"],
    *,
    now: datetime,
) -> InviteView:
    """The invitee answers (or changes the answer) until the session starts."""
    invite, training = await row_or_refuse(
        session, _own_invite(actor, invite_id).with_for_update(of=TrainingInvite)
    )
    if now >= training.starts_at:
        raise TrainingClosed
    if invite.rsvp != answer:
        invite.rsvp = answer
        await audit.record(
            session, actor.person_id, "training.rsvp", "training_invite", invite.id, rsvp=answer
        )
    return InviteView(invite, training)


@dataclass(frozen=True, slots=True)
class MyTraining:
    invite_id: int
    training_id: int
    kind: str
    topic: str
    title: str
    place: str
    starts_at: datetime
    ends_at: datetime
    rsvp: str | None
    attended: bool


async def my_trainings(
    session: AsyncSession, actor: Actor, *, now: datetime, limit: int = 10
) -> list[MyTraining]:
    """The actor's own invitations: the ones not over yet first, then the latest past ones."""
    rows = (
        await session.execute(
            select(TrainingInvite, Training)
            .join(Training, Training.id == TrainingInvite.training_id)
            .join(Nomination, Nomination.id == TrainingInvite.nomination_id)
            .where(Nomination.person_id == actor.person_id)
            .order_by((Training.ends_at < now), Training.starts_at.desc(), Training.id.desc())
            .limit(limit)
        )
    ).all()
    return [
        MyTraining(
            i.id,
            t.id,
            t.kind,
            t.topic,
            t.title,
            t.place,
            t.starts_at,
            t.ends_at,
            i.rsvp,
            i.attended_at is not None,
        )
        for i, t in rows
    ]


CheckinOutcome = Literal["checked_in", "already", "not_open", "closed"]


@dataclass(frozen=True, slots=True)
class CheckinResult:
    outcome: CheckinOutcome
    training: Training
    opens_at: datetime
    closes_at: datetime


async def check_in_by_code(
    session: AsyncSession, actor: Actor, code: str, *, now: datetime
) -> CheckinResult | None:
    """Record the actor's attendance at the session whose check-in code they sent.

    None when the code is no code of a session the actor is invited to: the text was meant
    for someone else (another flow), not a wrong code. Outside the window nothing is stored.
    """
    normalized = normalize_code(code)
    if normalized is None:
        return None
    rows = (
        await session.execute(
            select(TrainingInvite, Training)
            .join(Training, Training.id == TrainingInvite.training_id)
            .join(Nomination, Nomination.id == TrainingInvite.nomination_id)
            .where(Nomination.person_id == actor.person_id, Training.checkin_code == normalized)
            .order_by(Training.starts_at.desc())
            .with_for_update(of=TrainingInvite)
        )
    ).all()
    if not rows:
        return None

    # Codes are unique among sessions not over yet; an old session may share one. Prefer
    # the open session, then the next one, then the latest past one.
    def closeness(row: tuple[TrainingInvite, Training]) -> tuple[int, float]:
        opens, closes = checkin_window(row[1])
        if opens <= now <= closes:
            return 0, 0.0
        if now < opens:
            return 1, (opens - now).total_seconds()
        return 2, (now - closes).total_seconds()

    invite, training = min(((i, t) for i, t in rows), key=closeness)
    opens, closes = checkin_window(training)
    if now < opens:
        return CheckinResult("not_open", training, opens, closes)
    if now > closes:
        return CheckinResult("closed", training, opens, closes)
    if invite.attended_at is not None:
        return CheckinResult("already", training, opens, closes)
    invite.attended_at = now
    await audit.record(
        session, actor.person_id, "training.checkin", "training_invite", invite.id, by="code"
    )
    return CheckinResult("checked_in", training, opens, closes)


# ---------------------------------------------------------------------------------------------
# The organizer: sessions, check-in list, attendance, scores, ranking.


@dataclass(frozen=True, slots=True)
class TrainingItem:
    id: int
    kind: str
    topic: str
    title: str
    starts_at: datetime
    invited: int
    attended: int


async def list_trainings(
    session: AsyncSession, actor: Actor, *, offset: int = 0, limit: int = 8
) -> tuple[list[TrainingItem], int]:
    """Sessions the actor may manage, latest start first, with invited and attended counts."""
    where = manageable_trainings(actor)
    heading = (Training.id, Training.kind, Training.topic, Training.title, Training.starts_at)
    rows, total = await page(
        session,
        select(*heading, func.count(TrainingInvite.id), func.count(TrainingInvite.attended_at))
        .outerjoin(TrainingInvite, TrainingInvite.training_id == Training.id)
        .where(where)
        .group_by(*heading)
        .order_by(Training.starts_at.desc(), Training.id.desc()),
        select(func.count()).select_from(Training).where(where),
        offset=offset,
        limit=limit,
    )
    return [TrainingItem(*row) for row in rows], total


@dataclass(frozen=True, slots=True)
class TrainingView:
    training: Training
    township: str | None
    invited: int
    yes: int
    no: int
    attended: int
    scored: int


async def training_view(session: AsyncSession, actor: Actor, training_id: int) -> TrainingView:
    """One session with its RSVP and attendance figures; NotAllowed outside the scope."""
    training = await _managed_training(session, actor, training_id)
    counts = (
        await session.execute(
            select(
                func.count(TrainingInvite.id),
                func.count(TrainingInvite.rsvp).filter(TrainingInvite.rsvp == "yes"),
                func.count(TrainingInvite.rsvp).filter(TrainingInvite.rsvp == "no"),
                func.count(TrainingInvite.attended_at),
                func.count(TrainingInvite.score),
            ).where(TrainingInvite.training_id == training.id)
        )
    ).one()
    township = await session.get(Township, training.township_id) if training.township_id else None
    return TrainingView(training, township.name if township else None, *map(int, counts))


async def _managed_training(session: AsyncSession, actor: Actor, training_id: int) -> Training:
    return await one_or_refuse(
        session, select(Training).where(Training.id == training_id, manageable_trainings(actor))
    )


@dataclass(frozen=True, slots=True)
class InviteeRow:
    invite_id: int
    nomination_id: int
    full_name: str
    township: str
    rsvp: str | None
    attended: bool
    score: float | None


@dataclass(frozen=True, slots=True)
class InviteePage:
    training: Training
    rows: list[InviteeRow]
    total: int


async def invitees(
    session: AsyncSession,
    actor: Actor,
    training_id: int,
    *,
    attended_only: bool = False,
    offset: int = 0,
    limit: int = 8,
) -> InviteePage:
    """A page of a session's invitees (or attendees), by township and name."""
    training = await _managed_training(session, actor, training_id)
    where = [TrainingInvite.training_id == training.id]
    if attended_only:
        where.append(TrainingInvite.attended_at.is_not(None))
    rows, total = await page(
        session,
        with_names(
            select(
                TrainingInvite.id,
                TrainingInvite.nomination_id,
                Person.full_name,
                Township.name,
                TrainingInvite.rsvp,
                TrainingInvite.attended_at,
                TrainingInvite.score,
            ).join(Nomination, Nomination.id == TrainingInvite.nomination_id)
        )
        .where(*where)
        .order_by(Township.id, Person.full_name, TrainingInvite.id),
        select(func.count()).select_from(TrainingInvite).where(*where),
        offset=offset,
        limit=limit,
    )
    items = [
        InviteeRow(i, n, name or "", t, rsvp, attended is not None, score)
        for i, n, name, t, rsvp, attended, score in rows
    ]
    return InviteePage(training, items, total)


async def _managed_invite(
    session: AsyncSession, actor: Actor, invite_id: int
) -> tuple[TrainingInvite, Training]:
    invite, training = await row_or_refuse(
        session,
        select(TrainingInvite, Training)
        .join(Training, Training.id == TrainingInvite.training_id)
        .where(TrainingInvite.id == invite_id, manageable_trainings(actor))
        .with_for_update(of=TrainingInvite),
    )
    return invite, training


async def toggle_attendance(
    session: AsyncSession, actor: Actor, invite_id: int, *, now: datetime
) -> Training:
    """Tick or untick one invitee on the check-in list, from when the check-in opens."""
    invite, training = await _managed_invite(session, actor, invite_id)
    if now < checkin_window(training)[0]:
        raise TrainingClosed
    invite.attended_at = None if invite.attended_at is not None else now
    if invite.attended_at is None:
        invite.score = None  # a score belongs to someone who competed
    await audit.record(
        session,
        actor.person_id,
        "training.attendance",
        "training_invite",
        invite.id,
        attended=invite.attended_at is not None,
    )
    return training


@dataclass(frozen=True, slots=True)
class ScoreTarget:
    invite_id: int
    training_id: int
    full_name: str
    score: float | None


async def score_target(session: AsyncSession, actor: Actor, invite_id: int) -> ScoreTarget:
    """The attendee of a competition the actor may score; NotAllowed otherwise."""
    invite, training_id, name = await row_or_refuse(
        session,
        select(TrainingInvite, Training.id, Person.full_name)
        .join(Training, Training.id == TrainingInvite.training_id)
        .join(Nomination, Nomination.id == TrainingInvite.nomination_id)
        .join(Person, Person.id == Nomination.person_id)
        .where(
            TrainingInvite.id == invite_id,
            TrainingInvite.attended_at.is_not(None),
            Training.kind == "competition",
            manageable_trainings(actor),
        ),
    )
    return ScoreTarget(invite.id, training_id, name or "", invite.score)


async def set_score(session: AsyncSession, actor: Actor, invite_id: int, score: float) -> Training:
    """Record a competition score (0–100, one decimal) of an attendee."""
    if not 0 <= score <= 100:
        raise RuleError("score.range")
    invite, training = await _managed_invite(session, actor, invite_id)
    if training.kind != "competition" or invite.attended_at is None:
        raise NotAllowed
    invite.score = round(score, 1)
    await audit.record(session, actor.person_id, "training.score", "training_invite", invite.id)
    return training


@dataclass(frozen=True, slots=True)
class RankRow:
    rank: int
    full_name: str
    township: str
    score: float


def _ranked(training_ids: ColumnElement[bool]) -> Select[int, int, int]:
    """Competition ranks: equal scores share a rank, the next rank skips (1, 1, 3)."""
    return select(
        TrainingInvite.id.label("invite_id"),
        func.rank()
        .over(partition_by=TrainingInvite.training_id, order_by=TrainingInvite.score.desc())
        .label("rank"),
        func.count().over(partition_by=TrainingInvite.training_id).label("ranked"),
    ).where(
        training_ids, TrainingInvite.score.is_not(None), TrainingInvite.attended_at.is_not(None)
    )


async def ranking(
    session: AsyncSession, actor: Actor, training_id: int
) -> tuple[Training, list[RankRow]]:
    """A competition's ranking of the scored attendees."""
    training = await _managed_training(session, actor, training_id)
    ranked = _ranked(TrainingInvite.training_id == training.id).subquery()
    rows = (
        await session.execute(
            with_names(
                select(ranked.c.rank, Person.full_name, Township.name, TrainingInvite.score)
                .join(TrainingInvite, TrainingInvite.id == ranked.c.invite_id)
                .join(Nomination, Nomination.id == TrainingInvite.nomination_id)
            ).order_by(ranked.c.rank, Person.full_name, TrainingInvite.id)
        )
    ).all()
    return training, [RankRow(int(r), n or "", t, float(s)) for r, n, t, s in rows]


# ---------------------------------------------------------------------------------------------
# Counting (GROUP BY in SQL).


@dataclass(frozen=True, slots=True)
class GroupCount:
    """Sessions and person-times of one group (kind, topic, or kind and topic)."""

    kind: str | None
    topic: str | None
    sessions: int
    person_times: int


@dataclass(frozen=True, slots=True)
class TownshipCount:
    """Per township of the attendees; township_id None is the county (or scope) total."""

    township_id: int | None
    township: str | None
    sessions: int
    person_times: int


def _period(since: datetime | None, until: datetime) -> ColumnElement[bool]:
    clauses = [Training.starts_at < until]
    if since is not None:
        clauses.append(Training.starts_at >= since)
    return and_(*clauses)


def _counted(actor: Actor) -> ColumnElement[bool]:
    """Which invite rows a figure may count: all for the county, the township's for others.

    For county officials the condition is TRUE, so that (with the outer joins) sessions
    without any invitee still count as sessions.
    """
    if not can_organize(actor):
        return false()
    # The invite's own copy of its nominee's township: no join per invite.
    return manageable_by(actor, TrainingInvite.township_id)


def _joined(*columns: Any) -> Select[Any]:
    return (
        select(*columns)
        .select_from(Training)
        .outerjoin(TrainingInvite, TrainingInvite.training_id == Training.id)
        .outerjoin(Nomination, Nomination.id == TrainingInvite.nomination_id)
    )


async def _grouped(
    session: AsyncSession,
    actor: Actor,
    by: Sequence[Literal["kind", "topic"]],
    *,
    since: datetime | None,
    until: datetime,
) -> list[GroupCount]:
    keys = [getattr(Training, name) for name in by]
    rows = (
        await session.execute(
            _joined(
                *keys,
                func.count(distinct(Training.id)),
                func.count(TrainingInvite.attended_at),
            )
            .where(_period(since, until), _counted(actor))
            .group_by(*keys)
            .order_by(*keys)
        )
    ).all()
    result = []
    for row in rows:
        values = dict(zip(by, row[: len(by)], strict=True))
        result.append(
            GroupCount(values.get("kind"), values.get("topic"), int(row[-2]), int(row[-1]))
        )
    return result


async def counts_by_kind_topic(
    session: AsyncSession, actor: Actor, *, until: datetime, since: datetime | None = None
) -> list[GroupCount]:
    """Sessions and person-times per (kind, topic) started in [since, until)."""
    return await _grouped(session, actor, ("kind", "topic"), since=since, until=until)


async def counts_by_kind(
    session: AsyncSession, actor: Actor, *, until: datetime, since: datetime | None = None
) -> list[GroupCount]:
    return await _grouped(session, actor, ("kind",), since=since, until=until)


async def counts_by_topic(
    session: AsyncSession, actor: Actor, *, until: datetime, since: datetime | None = None
) -> list[GroupCount]:
    return await _grouped(session, actor, ("topic",), since=since, until=until)


async def counts_by_township(
    session: AsyncSession, actor: Actor, *, until: datetime, since: datetime | None = None
) -> tuple[list[TownshipCount], TownshipCount]:
    """Per attendee township: sessions with an attendee from it and its person-times; and
    the total of the scope: sessions held (attended or not) and all person-times."""
    rows = (
        await session.execute(
            select(
                Nomination.township_id,
                Township.name,
                func.count(distinct(TrainingInvite.training_id)),
                func.count(TrainingInvite.id),
            )
            .select_from(TrainingInvite)
            .join(Training, Training.id == TrainingInvite.training_id)
            .join(Nomination, Nomination.id == TrainingInvite.nomination_id)
            .join(Township, Township.id == Nomination.township_id)
            .where(_period(since, until), _counted(actor), TrainingInvite.attended_at.is_not(None))
            .group_by(Nomination.township_id, Township.name)
            .order_by(Nomination.township_id)
        )
    ).all()
    total = (
        await session.execute(
            _joined(
                func.count(distinct(Training.id)), func.count(TrainingInvite.attended_at)
            ).where(_period(since, until), _counted(actor))
        )
    ).one()
    return (
        [TownshipCount(t, name, int(s), int(p)) for t, name, s, p in rows],
        TownshipCount(None, None, int(total[0] or 0), int(total[1] or 0)),
    )


async def integrity_visits(
    session: AsyncSession, actor: Actor, *, until: datetime, since: datetime | None = None
) -> int:
    """廉政教育 visits held: sessions of kind integrity started in [since, until)."""
    count = await session.scalar(
        _joined(func.count(distinct(Training.id))).where(
            _period(since, until), _counted(actor), Training.kind == "integrity"
        )
    )
    return int(count or 0)


# ---------------------------------------------------------------------------------------------
# For the dossier (一人一档) and for reminders.


@dataclass(frozen=True, slots=True)
class DossierTraining:
    training_id: int
    kind: str
    topic: str
    title: str
    place: str
    starts_at: datetime  # in the `tz` given to dossier_section
    rsvp: str | None
    attended: bool
    score: float | None
    rank: int | None
    ranked: int | None  # how many attendees were ranked in that competition


@dataclass(frozen=True, slots=True)
class TrainingSection:
    """The trainings part of one person's file."""

    invited: int
    attended: int
    competitions: int
    items: list[DossierTraining] = field(default_factory=list)


async def dossier_section(
    session: AsyncSession, nomination_id: int, *, tz: tzinfo = UTC
) -> TrainingSection:
    """Trainings invited to and attended, competition scores and ranks, latest first.

    Start times are given in `tz` (pass the county's, Asia/Shanghai) for display. No scope
    check here: the dossier's caller has checked that the actor may read the file.
    """
    own = select(TrainingInvite.training_id).where(TrainingInvite.nomination_id == nomination_id)
    ranked = _ranked(TrainingInvite.training_id.in_(own)).subquery()
    rows = (
        await session.execute(
            select(TrainingInvite, Training, ranked.c.rank, ranked.c.ranked)
            .join(Training, Training.id == TrainingInvite.training_id)
            .outerjoin(ranked, ranked.c.invite_id == TrainingInvite.id)
            .where(TrainingInvite.nomination_id == nomination_id)
            .order_by(Training.starts_at.desc(), Training.id.desc())
        )
    ).all()
    totals = (
        await session.execute(
            select(
                func.count(TrainingInvite.id),
                func.count(TrainingInvite.attended_at),
                func.count(TrainingInvite.score),
            ).where(TrainingInvite.nomination_id == nomination_id)
        )
    ).one()
    items = [
        DossierTraining(
            t.id,
            t.kind,
            t.topic,
            t.title,
            t.place,
            t.starts_at.astimezone(tz),
            i.rsvp,
            i.attended_at is not None,
            i.score,
            int(rank) if rank is not None else None,
            int(count) if count is not None else None,
        )
        for i, t, rank, count in rows
    ]
    return TrainingSection(int(totals[0]), int(totals[1]), int(totals[2]), items)


@dataclass(frozen=True, slots=True)
class Invitee:
    invite_id: int
    nomination_id: int
    telegram_id: int
    language: str | None
    rsvp: str | None


@dataclass(frozen=True, slots=True)
class UpcomingTraining:
    id: int
    kind: str
    topic: str
    title: str
    place: str
    starts_at: datetime
    ends_at: datetime
    invitees: tuple[Invitee, ...]


async def starting_between(
    session: AsyncSession, start: datetime, end: datetime
) -> list[UpcomingTraining]:
    """Sessions starting in [start, end) with their invitees to remind, in one query.

    Invitees to remind: a Telegram account, and an RSVP that is not 'no' (yes, or no answer
    yet). Sessions with nobody to remind are left out.
    """
    rows = (
        await session.execute(
            select(
                Training.id,
                Training.kind,
                Training.topic,
                Training.title,
                Training.place,
                Training.starts_at,
                Training.ends_at,
                TrainingInvite.id,
                TrainingInvite.nomination_id,
                TelegramAccount.telegram_id,
                func.coalesce(TelegramAccount.locale, TelegramAccount.language_code),
                TrainingInvite.rsvp,
            )
            .join(TrainingInvite, TrainingInvite.training_id == Training.id)
            .join(Nomination, Nomination.id == TrainingInvite.nomination_id)
            .join(TelegramAccount, TelegramAccount.person_id == Nomination.person_id)
            .where(
                Training.starts_at >= start,
                Training.starts_at < end,
                or_(TrainingInvite.rsvp.is_(None), TrainingInvite.rsvp != "no"),
            )
            .order_by(Training.starts_at, Training.id, TrainingInvite.id)
        )
    ).all()
    heads: dict[int, tuple[int, str, str, str, str, datetime, datetime]] = {}
    people: dict[int, list[Invitee]] = {}
    for row in rows:
        heads.setdefault(row[0], tuple(row[:7]))  # type: ignore[arg-type]
        people.setdefault(row[0], []).append(
            Invitee(row[7], row[8], int(row[9]), row[10], row[11])
        )
    return [UpcomingTraining(*head, invitees=tuple(people[key])) for key, head in heads.items()]
