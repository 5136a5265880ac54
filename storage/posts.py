"""Practice posts (实践锻炼): intern village cadre, grid worker or a named hard post, with dates.

Assignments are scoped by `manageable_by` (a township official assigns in their own township
only) and audited. A post is active on a day when it has started and not yet ended; a post
with no end date is open-ended. Functions take a session and never commit.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import cadres, scoped
from storage.cadres import CadreRow
from storage.models import Nomination, PracticePost, Township
from storage.nominations import visible_to
from storage.people import Actor
from storage.rules.identity import RuleError, clean_text
from storage.rules.vetting import Status
from storage.scoped import count_when

POST_KINDS = ("intern", "grid", "hard_post")
# Only reserve cadres in the pool are sent to practice posts.
POST_STATUSES = (Status.IN_POOL.value,)
TITLE_MAX = 100
EARLIEST_DATE = date(2000, 1, 1)
# Posts may be entered ahead of time, up to about a year.
FUTURE_DAYS = 366

_DATE_PARTS = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_DATE_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def parse_date(raw: str, *, today: date) -> date:
    """A date as people type it: 2025-03-01, 2025/3/1, 2025.3.1, 2025年3月1日 or 20250301.

    RuleError `date.format` (not a date), `date.invalid` (no such day), `date.range` (before
    2000 or more than a year ahead; params min, max).
    """
    text = unicodedata.normalize("NFKC", raw).strip()
    match = _DATE_PARTS.match(text) or _DATE_COMPACT.match(text)
    if match is None:
        raise RuleError("date.format")
    year, month, day = (int(part) for part in match.groups())
    try:
        value = date(year, month, day)
    except ValueError:
        raise RuleError("date.invalid") from None
    latest = today + timedelta(days=FUTURE_DAYS)
    if not EARLIEST_DATE <= value <= latest:
        raise RuleError(
            "date.range", {"min": EARLIEST_DATE.isoformat(), "max": latest.isoformat()}
        )
    return value


def check_dates(start: date, end: date | None) -> None:
    """An end date, when given, is on or after the start (RuleError `date.order`)."""
    if end is not None and end < start:
        raise RuleError("date.order", {"start": start.isoformat()})


def clean_title(raw: str) -> str:
    """A hard post's name on one line: RuleError `text.length` / `text.chars` like free text."""
    return " ".join(clean_text(raw, max_len=TITLE_MAX).split())


@dataclass(frozen=True, slots=True)
class PostRow:
    id: int
    kind: str
    title: str | None
    start_date: date
    end_date: date | None
    # On the `today` given to the query; None when no day was given.
    active: bool | None = None


def _active_on(today: date) -> ColumnElement[bool]:
    return and_(
        PracticePost.start_date <= today,
        or_(PracticePost.end_date.is_(None), PracticePost.end_date >= today),
    )


def _row(post: PracticePost, today: date | None) -> PostRow:
    active = None
    if today is not None:
        active = post.start_date <= today and (post.end_date is None or post.end_date >= today)
    return PostRow(post.id, post.kind, post.title, post.start_date, post.end_date, active)


async def posts_of(
    session: AsyncSession, nomination_id: int, *, today: date | None = None
) -> list[PostRow]:
    """One cadre's posts, latest start first. Unscoped: the caller has checked the file's scope
    (`dossier_section` does)."""
    posts = await session.scalars(
        select(PracticePost)
        .where(PracticePost.nomination_id == nomination_id)
        .order_by(PracticePost.start_date.desc(), PracticePost.id.desc())
    )
    return [_row(p, today) for p in posts]


@dataclass(frozen=True, slots=True)
class PostSection:
    """The practice-posts part of a dossier."""

    posts: list[PostRow] = field(default_factory=list)

    @property
    def active(self) -> int:
        return sum(1 for p in self.posts if p.active)


async def dossier_section(
    session: AsyncSession, actor: Actor, nomination_id: int, *, today: date
) -> PostSection:
    """Scoped like the dossier (`visible_to`): NotAllowed otherwise. Not audited here: the
    dossier read that includes it is."""
    await scoped.one_or_refuse(
        session, select(Nomination.id).where(Nomination.id == nomination_id, visible_to(actor))
    )
    return PostSection(await posts_of(session, nomination_id, today=today))


# A cadre an official may send to a practice post.
Assignee = CadreRow
# Reserve cadres in the actor's scope, by township and name (deny by default): a page of
# them, the one a pressed button names, the nomination locked for the assignment.
_ASSIGNABLE = cadres.Picker(POST_STATUSES)
assignable = _ASSIGNABLE.page
assignee = _ASSIGNABLE.one


async def assign_post(
    session: AsyncSession,
    actor: Actor,
    nomination_id: int,
    *,
    kind: str,
    title: str | None,
    start_date: date,
    end_date: date | None,
    now: datetime,
) -> PracticePost:
    """Record a practice post. NotAllowed outside scope; RuleError for bad kind, title or dates.

    Only a hard post carries a title (its name); the other kinds are fully named by the kind.
    """
    if kind not in POST_KINDS:
        raise RuleError("post.kind")
    if kind == "hard_post":
        if title is None:
            raise RuleError("text.length", {"min": 1, "max": TITLE_MAX})
        title = clean_title(title)
    else:
        title = None
    check_dates(start_date, end_date)
    nomination = await _ASSIGNABLE.locked(session, actor, nomination_id)
    post = PracticePost(
        nomination_id=nomination.id,
        kind=kind,
        title=title,
        start_date=start_date,
        end_date=end_date,
        assigned_by_person_id=actor.person_id,
        created_at=now,
    )
    return await scoped.added(
        session, post, actor.person_id, "post.assign", nomination_id=nomination.id, kind=kind
    )


@dataclass(frozen=True, slots=True)
class PostCounts:
    """Practice posts of one township: all recorded, and active on the given day."""

    township_id: int
    township: str
    total: int = 0
    active: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    active_by_kind: dict[str, int] = field(default_factory=dict)


async def post_counts(
    session: AsyncSession, *, today: date, township_id: int | None = None
) -> list[PostCounts]:
    """Posts per township (total and active today), from one GROUP BY township, kind query.

    The caller decides who may see which township (pass `township_id` to restrict).
    """
    query = (
        # The post carries its nomination's township (kept by a trigger, storage/tally.py):
        # one township is a range of ix_practice_post_township, with no join per post.
        select(
            PracticePost.township_id,
            Township.name,
            PracticePost.kind,
            func.count(),
            count_when(_active_on(today)),
        )
        .join(Township, Township.id == PracticePost.township_id)
        .group_by(PracticePost.township_id, Township.name, PracticePost.kind)
        .order_by(PracticePost.township_id, PracticePost.kind)
    )
    if township_id is not None:
        query = query.where(PracticePost.township_id == township_id)
    folded: dict[int, PostCounts] = {}
    for township, name, kind, total, active in (await session.execute(query)).all():
        # Joined to its township: never None here, whatever the column allows.
        tid = int(township)  # type: ignore[arg-type]
        counts = folded.setdefault(tid, PostCounts(tid, name))
        counts.by_kind[kind] = int(total)
        counts.active_by_kind[kind] = int(active)
    return [
        PostCounts(
            c.township_id,
            c.township,
            sum(c.by_kind.values()),
            sum(c.active_by_kind.values()),
            c.by_kind,
            c.active_by_kind,
        )
        for c in folded.values()
    ]
