"""Retention: what the consent text promises to delete, deleted when its time is up.

The consent text (templates/*/form/consent) renders the same settings this module applies:
- a file, RETAIN_FILE_YEARS after its cadre left the pool (adjusted out);
- a declined or rejected file, RETAIN_REJECTED_DAYS after that decision;
- an unfinished draft (user_data), RETAIN_DRAFT_DAYS after it was last touched, with the
  conversation states of that user (a running bot forgets them too: storage.erasure);
- the text of delivered (or failed) messages, RETAIN_OUTBOX_DAYS after they were planned.

A file is deleted the way erasure deletes it (storage/erasure.py): everything that names or
describes the person goes, the anonymous row and its counted facts stay, so the county's
past figures do not change when an old file expires. Elected cadres' files stay: they are in
office and still managed (grades, outcomes). Each purge writes one audit row with counts and
ids only; `cadrebot purge --dry-run` shows the same plan without applying it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import String, cast, delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit, erasure
from storage.models import (
    AuditLog,
    ConversationState,
    ErasureEvent,
    Nomination,
    OutboxMessage,
    Person,
    QuarantinedState,
    RoleGrant,
    UserData,
)
from storage.rules.vetting import Status

# What the rows of a purge hold after it: an erasure event is needed only until every
# running bot has read it (they poll every second).
EVENT_DAYS = 1
_BLANK = json.dumps(erasure.BLANK_BODY)


@dataclass(frozen=True, slots=True)
class Policy:
    file_years: int = 3
    rejected_days: int = 365
    draft_days: int = 30
    outbox_days: int = 90


@dataclass(slots=True)
class Plan:
    """What a purge deletes: ids only (file numbers, Telegram user ids, outbox rows)."""

    files: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    drafts: list[int] = field(default_factory=list)
    outbox: list[int] = field(default_factory=list)
    # Rows set aside at start-up as unreadable (drafts, form states): kept as long as a draft.
    quarantined: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return (
            len(self.files)
            + len(self.rejected)
            + len(self.drafts)
            + len(self.outbox)
            + len(self.quarantined)
        )

    def counts(self) -> dict[str, int]:
        return {
            "files": len(self.files),
            "rejected": len(self.rejected),
            "drafts": len(self.drafts),
            "outbox": len(self.outbox),
            "quarantined": len(self.quarantined),
        }


def _years_before(now: datetime, years: int) -> datetime:
    try:
        return now.replace(year=now.year - years)
    except ValueError:  # 29 February
        return now.replace(year=now.year - years, day=28)


async def plan(session: AsyncSession, policy: Policy, now: datetime) -> Plan:
    """What is past its time at `now`."""
    live = Nomination.erased_at.is_(None)
    files = await session.scalars(
        select(Nomination.id)
        .where(
            live,
            Nomination.status == Status.ADJUSTED.value,
            Nomination.status_changed_at < _years_before(now, policy.file_years),
        )
        .order_by(Nomination.id)
    )
    rejected = await session.scalars(
        select(Nomination.id)
        .where(
            live,
            Nomination.status.in_((Status.DECLINED.value, Status.REJECTED.value)),
            Nomination.status_changed_at < now - timedelta(days=policy.rejected_days),
        )
        .order_by(Nomination.id)
    )
    stale = list(
        await session.scalars(
            select(UserData.user_id)
            .where(UserData.updated_at < now - timedelta(days=policy.draft_days))
            .order_by(UserData.user_id)
        )
    )
    drafts = await _with_open_form(session, stale)
    outbox = await session.scalars(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status.in_(("sent", "failed")),
            OutboxMessage.created_at < now - timedelta(days=policy.outbox_days),
            cast(OutboxMessage.parts, String) != _BLANK,
        )
        .order_by(OutboxMessage.id)
    )
    quarantined = await session.scalars(
        select(QuarantinedState.id)
        .where(QuarantinedState.quarantined_at < now - timedelta(days=policy.draft_days))
        .order_by(QuarantinedState.id)
    )
    return Plan(list(files), list(rejected), drafts, list(outbox), list(quarantined))


async def _with_open_form(session: AsyncSession, telegram_ids: list[int]) -> list[int]:
    """Those of the users who have a form open (a conversation state): their user_data is an
    unfinished draft. A row with no open form holds only settings such as the /lang choice,
    which must outlive any retention period."""
    found: set[int] = set()
    for start in range(0, len(telegram_ids), 200):
        chunk = telegram_ids[start : start + 200]
        keys = await session.scalars(
            select(ConversationState.key).where(
                or_(*(erasure.conversation_keys_of(t) for t in chunk))
            )
        )
        for key in keys:
            found.update(int(part) for part in json.loads(key) if int(part) in chunk)
    return sorted(found)


async def _forget_names(session: AsyncSession, nominations: list[int]) -> None:
    """Blank the names of the people behind these files who have nothing else on file and
    no role (a recommender or official keeps their name)."""
    owners = select(Nomination.person_id).where(Nomination.id.in_(nominations))
    other_file = exists().where(
        Nomination.person_id == Person.id,
        Nomination.erased_at.is_(None),
        Nomination.id.not_in(nominations),
    )
    role = exists().where(RoleGrant.person_id == Person.id, RoleGrant.revoked_at.is_(None))
    await session.execute(
        update(Person)
        .where(Person.id.in_(owners), ~other_file, ~role)
        .values(full_name=None)
        .execution_options(synchronize_session=False)
    )


async def purge(session: AsyncSession, policy: Policy, now: datetime, *, day: int) -> Plan:
    """Apply the plan at `now`, in the caller's transaction, and audit it under `day`
    (YYYYMMDD in the county's time zone) with counts and file numbers only."""
    # Old events first: the ones this purge adds must stay until every bot has read them.
    await session.execute(
        delete(ErasureEvent).where(ErasureEvent.at < now - timedelta(days=EVENT_DAYS))
    )
    due = await plan(session, policy, now)
    expired = due.files + due.rejected
    for start in range(0, len(expired), 500):
        chunk = expired[start : start + 500]
        await _forget_names(session, chunk)
        await erasure.anonymize_nominations(session, chunk, now=now)
        await erasure.clear_outbox(session, chunk, [], now=now)
    for start in range(0, len(due.drafts), 500):
        await erasure.forget_sessions(session, due.drafts[start : start + 500], now=now)
    for start in range(0, len(due.outbox), 500):
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(due.outbox[start : start + 500]))
            .values(parts=erasure.BLANK_BODY)
        )
    for start in range(0, len(due.quarantined), 500):
        await session.execute(
            delete(QuarantinedState).where(
                QuarantinedState.id.in_(due.quarantined[start : start + 500])
            )
        )
    await audit.record(
        session,
        None,
        "retention.purge",
        "retention",
        day,
        **due.counts(),
        nominations=expired,
    )
    return due


async def purged_on(session: AsyncSession, day: int) -> bool:
    """Whether a purge ran on this day (YYYYMMDD): the daily planner runs it once."""
    found = await session.scalar(
        select(AuditLog.id)
        .where(
            AuditLog.subject_type == "retention",
            AuditLog.subject_id == day,
            AuditLog.action == "retention.purge",
        )
        .limit(1)
    )
    return found is not None
