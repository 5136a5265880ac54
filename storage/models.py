"""Typed SQLAlchemy 2 models. Alembic migrations under storage/migrations track this file."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from storage.rules.vetting import CLOSED

# Stable constraint names so that migrations on SQLite (batch mode) and PostgreSQL agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Row ids that can grow past 2**31 (audit, outbox) are BIGINT on PostgreSQL; SQLite only
# auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _partial(name: str, *columns: str, where: str, unique: bool = False) -> Index:
    """An index of only the rows that match `where`, on both engines (each dialect takes the
    condition under its own keyword)."""
    return Index(
        name, *columns, unique=unique, sqlite_where=text(where), postgresql_where=text(where)
    )


# Column declarations many tables repeat, written once (SQLAlchemy reads the mapped_column
# inside Annotated and copies it into each table).
BigPk = Annotated[int, mapped_column(BigId, primary_key=True)]
NominationRef = Annotated[int, mapped_column(ForeignKey("nomination.id", ondelete="CASCADE"))]
DbNow = Annotated[datetime, mapped_column(server_default=func.now())]
# An optional reference to a person: who created, assigned or recorded the row, when known.
ByPerson = Annotated[int | None, mapped_column(ForeignKey("person.id"))]
# The nomination's township, copied when a row is written by a database trigger (see
# StatusChange.township_id and storage/tally.py).
TownshipCopy = Annotated[int | None, mapped_column(Integer)]
# A Fernet token made with DATA_KEY (storage.crypto); NULL on rows from before migration 0011.
Sealed = Annotated[bytes | None, mapped_column(LargeBinary)]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which keeps no offset) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Role(enum.StrEnum):
    MENTOR = "mentor"
    TOWNSHIP_OFFICIAL = "township_official"
    COUNTY_OFFICIAL = "county_official"
    REVIEWER = "reviewer"
    ADMIN = "admin"


GRANTABLE_ROLES = tuple(r.value for r in Role)
OFFICIAL_ROLES = frozenset({Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.ADMIN})


def _role_check() -> str:
    return "role IN (" + ", ".join(f"'{r}'" for r in GRANTABLE_ROLES) + ")"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
    }


class County(Base):
    __tablename__ = "county"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)


class Township(Base):
    __tablename__ = "township"
    __table_args__ = (UniqueConstraint("county_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    county_id: Mapped[int] = mapped_column(ForeignKey("county.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(40))

    villages: Mapped[list[Village]] = relationship(back_populates="township")


class Village(Base):
    __tablename__ = "village"
    __table_args__ = (UniqueConstraint("township_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    township_id: Mapped[int] = mapped_column(ForeignKey("township.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(40))

    township: Mapped[Township] = relationship(back_populates="villages")


class Person(Base):
    """Someone the county knows of: a user of the bot, a candidate, or both."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    full_name: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[DbNow]


class TelegramAccount(Base):
    """A Telegram user linked to a person. Telegram user ids exceed 32 bits: BIGINT."""

    __tablename__ = "telegram_account"
    __table_args__ = (
        # The few people who blocked the bot (summaries count them per scope).
        _partial(
            "ix_telegram_account_unreachable", "person_id", where="unreachable_at IS NOT NULL"
        ),
        # The few accounts whose "/" menu waits to be published (bot/menu.py polls them).
        _partial("ix_telegram_account_menu_pending", "telegram_id", where="menu_changes > 0"),
    )

    telegram_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), unique=True
    )
    language_code: Mapped[str | None] = mapped_column(String(16))
    # Set by /lang; when empty the Telegram client's language decides.
    locale: Mapped[str | None] = mapped_column(String(8))
    first_seen_at: Mapped[DbNow]
    unreachable_at: Mapped[datetime | None]
    unreachable_reason: Mapped[str | None] = mapped_column(String(200))
    # Changes to the person's roles (or a staff member's /lang) not yet published to their
    # "/" menu. Bumped in the change's own transaction, so a crash before the publish loses
    # nothing; the publisher sets it back to 0 only if no change came in meanwhile.
    menu_changes: Mapped[int] = mapped_column(default=0, server_default="0")

    person: Mapped[Person] = relationship()


class RoleGrant(Base):
    """A role with its scope. Candidates and recommenders need no grant: anyone may act so."""

    __tablename__ = "role_grant"
    __table_args__ = (
        CheckConstraint(_role_check(), name="role_known"),
        CheckConstraint(
            "role NOT IN ('township_official', 'mentor') OR township_id IS NOT NULL",
            name="township_scoped",
        ),
        CheckConstraint("role <> 'reviewer' OR department IS NOT NULL", name="department_set"),
        Index("ix_role_grant_person_active", "person_id", "revoked_at"),
        # "The officials (or mentors) of this township": reminders and pairing look it up.
        Index("ix_role_grant_scope", "role", "township_id", "revoked_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(24))
    township_id: Mapped[int | None] = mapped_column(ForeignKey("township.id"))
    department: Mapped[str | None] = mapped_column(String(24))
    # Mentors only: 'township' (a township cadre) or 'village' (a village party secretary).
    mentor_slot: Mapped[str | None] = mapped_column(String(16))
    granted_at: Mapped[DbNow]
    revoked_at: Mapped[datetime | None]
    invite_id: Mapped[int | None] = mapped_column(ForeignKey("invite_code.id"))


class InviteCode(Base):
    """A single-use, expiring code. Only its SHA-256 is stored: a leaked table grants nothing."""

    __tablename__ = "invite_code"
    __table_args__ = (CheckConstraint(_role_check(), name="role_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(24))
    township_id: Mapped[int | None] = mapped_column(ForeignKey("township.id"))
    department: Mapped[str | None] = mapped_column(String(24))
    mentor_slot: Mapped[str | None] = mapped_column(String(16))
    created_by_person_id: Mapped[ByPerson]
    # Demo invites step the redeemer into a prepared person with a history.
    for_person_id: Mapped[ByPerson]
    created_at: Mapped[DbNow]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_person_id: Mapped[ByPerson]


class InviteFailure(Base):
    """One guess: a wrong invite code typed, or an ID number or phone checked against the
    nominations (storage.people.spend_guess); counted to slow down guessing."""

    __tablename__ = "invite_failure"
    __table_args__ = (Index("ix_invite_failure_who_when", "telegram_id", "at"),)

    id: Mapped[BigPk]
    telegram_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime]


class AuditLog(Base):
    """Who read, changed or was refused what. Append-only; `detail` holds no personal data."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_subject", "subject_type", "subject_id"),
        Index("ix_audit_log_actor", "actor_person_id"),
    )

    id: Mapped[BigPk]
    at: Mapped[DbNow]
    # Ids only, no foreign key: the log outlives what it names, and the database refuses
    # UPDATE and DELETE on it (migration 0012), so no cascade may ever need to touch it.
    actor_person_id: Mapped[int | None]
    # The account that acted, for refusals of people who have no person record yet.
    actor_telegram_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(48))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ConversationState(Base):
    """PTB ConversationHandler state, so that a restart resumes a flow where it stopped."""

    __tablename__ = "conversation_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)


class UserData(Base):
    """PTB user_data (drafts of flows). Encrypted: a draft may hold an ID number."""

    __tablename__ = "user_data"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class DataSecret(Base):
    """A key the stored data depends on, wrapped (Fernet-encrypted) with DATA_KEY.

    Holds the lookup-hash key (name 'lookup'): it must outlive every DATA_KEY, since the hashes
    of ID numbers and phones are computed with it (storage/crypto.py, storage/rekey.py).
    """

    __tablename__ = "data_secret"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[DbNow]


class InboundUpdate(Base):
    """The inbox: every Telegram update, recorded by update_id before it is handled.

    `payload` is the update as Telegram sent it, encrypted with the data key (updates carry
    what people type); it is cleared as soon as the update is handled, in the handler's own
    transaction, and handled rows are pruned by the tick after INBOX_KEEP_DAYS.
    """

    __tablename__ = "inbound_update"
    __table_args__ = (
        # Start-up replays what is still open, in update_id order; the tick prunes by age.
        _partial("ix_inbound_update_open", "update_id", where="handled_at IS NULL"),
        Index("ix_inbound_update_handled", "handled_at"),
    )

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    received_at: Mapped[DbNow]
    handled_at: Mapped[datetime | None]


class QuarantinedState(Base):
    """A persisted user_data or conversation row that could not be read back at start-up.

    Moved here (not deleted) with the reason, so that an operator who finds the old DATA_KEY
    can still look; the person starts clean and is told once (`notified_at`).
    """

    __tablename__ = "quarantined_state"
    # The once-only notice's outbox key carries the id: never reuse one (SQLite).
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[BigPk]
    kind: Mapped[str] = mapped_column(String(20))  # user_data | conversation
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str | None] = mapped_column(String(64))
    key: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(100))
    # The row as it was: a Fernet token for user_data, the JSON text for a conversation.
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    quarantined_at: Mapped[DbNow]
    notified_at: Mapped[datetime | None]


__all__ = [
    "AuditLog",
    "Base",
    "ConversationState",
    "County",
    "DataSecret",
    "InboundUpdate",
    "InviteCode",
    "InviteFailure",
    "Person",
    "QuarantinedState",
    "Role",
    "RoleGrant",
    "TelegramAccount",
    "Township",
    "UserData",
    "Village",
]


# ---------------------------------------------------------------------------------------------
# Select (选): nominations, their history, joint vetting.


class SelectionRound(Base):
    """A selection round (选拔批次) a county official opens: a year or a batch, with dates.

    Nominations made before a county opens its first round have no round (the implicit
    round); see storage/rounds.py for what a round allows.
    """

    __tablename__ = "selection_round"
    __table_args__ = (CheckConstraint("ends_on >= starts_on", name="dates_in_order"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    opened_by_person_id: Mapped[ByPerson]
    created_at: Mapped[DbNow]


# An open nomination holds its person; a closed one (rejected, declined, adjusted out) lets
# them nominate again in a later round. Migration 0015 writes the same condition.
OPEN_NOMINATION = "status NOT IN ({})".format(", ".join(f"'{s}'" for s in sorted(CLOSED)))


class Nomination(Base):
    """One person's entry into the pipeline and the core of their file (一人一档).

    The ID number and phone are encrypted; their keyed hashes are unique among open
    nominations and within one round, so that a second nomination of the same person is
    refused by the database itself, race or not, while a person rejected, declined or
    adjusted out may nominate again in a later round (a round at most once).
    """

    __tablename__ = "nomination"
    __table_args__ = (
        CheckConstraint("channel IN ('self', 'mass', 'organization')", name="channel_known"),
        Index("ix_nomination_township_status", "township_id", "status"),
        Index("ix_nomination_status", "status"),
        # Summaries: the period's nominations, read from the index alone, county-wide and for
        # one township (the stocks come from nomination_tally).
        Index(
            "ix_nomination_created",
            "created_at",
            "township_id",
            "channel",
            "key_group",
            "education",
        ),
        Index(
            "ix_nomination_township_created",
            "township_id",
            "created_at",
            "channel",
            "key_group",
            "education",
        ),
        Index("ix_nomination_status_education", "status", "education", "township_id"),
        # A person's files: erasure, and the summary's unreachable candidates (few people
        # blocked the bot; each is looked up rather than every live nomination scanned).
        Index("ix_nomination_person", "person_id"),
        # One open nomination per person (by ID number, by phone): a new nomination is always
        # open, so two at once lose a race here. "Not twice in one round" is the rule of
        # storage/rounds.py, which only closed nominations can meet.
        _partial("uq_nomination_open_id", "id_number_hash", where=OPEN_NOMINATION, unique=True),
        _partial("uq_nomination_open_phone", "phone_hash", where=OPEN_NOMINATION, unique=True),
        # Ids are never reused (finding 14): a file number (档案编号) and the outbox keys
        # built from it belong to one person for good, even after erasure or retention.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="new")
    township_id: Mapped[int] = mapped_column(ForeignKey("township.id"))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("village.id"))
    gender: Mapped[str | None] = mapped_column(String(8))
    birth_date: Mapped[date | None] = mapped_column(Date)
    ethnicity: Mapped[str | None] = mapped_column(String(16))
    political_status: Mapped[str | None] = mapped_column(String(24))
    education: Mapped[str | None] = mapped_column(String(24))
    key_group: Mapped[str] = mapped_column(String(32))
    specialties: Mapped[str | None] = mapped_column(String(500))
    work_history: Mapped[str | None] = mapped_column(String(1000))
    motivation: Mapped[str | None] = mapped_column(String(1000))
    reason: Mapped[str | None] = mapped_column(String(1000))
    id_number_enc: Mapped[Sealed]
    id_number_hash: Mapped[str | None] = mapped_column(String(64))
    id_number_masked: Mapped[str | None] = mapped_column(String(18))
    phone_enc: Mapped[Sealed]
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    phone_masked: Mapped[str | None] = mapped_column(String(11))
    # Who sent it in. For a mass recommendation this is never shown to the nominee.
    submitted_by_person_id: Mapped[ByPerson]
    # The selection round it belongs to; None: the implicit round (storage/rounds.py).
    round_id: Mapped[int | None] = mapped_column(ForeignKey("selection_round.id"))
    consent_at: Mapped[datetime | None]
    sensitive_consent_at: Mapped[datetime | None]
    created_at: Mapped[DbNow]
    status_changed_at: Mapped[DbNow]
    # Pairings of this nomination not ended (0-2), kept by a trigger on pairing: with it
    # nomination_tally counts the pairings and the cadres paired per township.
    active_pairings: Mapped[int] = mapped_column(server_default="0")
    # When the person's data was erased (storage/erasure.py): the row stays, anonymous, so
    # that the county's counts hold; nothing that names or identifies the person is left.
    erased_at: Mapped[datetime | None]

    person: Mapped[Person] = relationship(foreign_keys=[person_id])
    township: Mapped[Township] = relationship()
    village: Mapped[Village | None] = relationship()


class NomineeInvite(Base):
    """A one-time code with which a recommended person opens their own file to give the two
    consents and the missing fields (storage/completion.py). Only its SHA-256 is stored."""

    __tablename__ = "nominee_invite"

    id: Mapped[int] = mapped_column(primary_key=True)
    nomination_id: Mapped[int] = mapped_column(
        ForeignKey("nomination.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_person_id: Mapped[ByPerson]
    created_at: Mapped[DbNow]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class StatusChange(Base):
    """Every move of a nomination through the pipeline, with who and why."""

    __tablename__ = "status_change"
    __table_args__ = (
        Index("ix_status_change_nomination", "nomination_id", "at"),
        Index("ix_status_change_event", "event", "at"),
        Index("ix_status_change_township", "township_id", "event", "at"),
        # Reasons still in plain text (before migration 0011; see ix_talk_log_plain).
        _partial("ix_status_change_plain", "id", where="reason IS NOT NULL"),
    )

    id: Mapped[BigPk]
    nomination_id: Mapped[NominationRef]
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(24))
    actor_person_id: Mapped[ByPerson]
    # Encrypted in reason_enc: why a person was declined, rejected in vetting (the
    # department's note) or taken out of the pool. `reason` holds rows from before migration
    # 0011 until storage.rekey seals them.
    reason: Mapped[str | None] = mapped_column(String(1000))
    reason_enc: Mapped[Sealed]
    at: Mapped[DbNow]
    # The nomination's township, copied when the row is written (a database trigger fills it
    # from nomination.township_id, which never changes; see storage/tally.py), so that a
    # township's figures are an index range instead of a join to every nomination.
    township_id: Mapped[TownshipCopy]


class VettingReview(Base):
    """One department's part of the joint vetting (资格联审) of one nomination."""

    __tablename__ = "vetting_review"
    __table_args__ = (
        UniqueConstraint("nomination_id", "department"),
        CheckConstraint("decision IS NULL OR decision IN ('approve', 'reject')", name="decision"),
        Index("ix_vetting_review_queue", "department", "decision"),
        Index("ix_vetting_review_decided", "decided_at"),
        # Notes still in plain text (before migration 0011; see TalkLog's ix_talk_log_plain).
        _partial("ix_vetting_review_plain", "id", where="note IS NOT NULL"),
        # Never reused: reminder keys carry the id (see Nomination).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    nomination_id: Mapped[NominationRef]
    department: Mapped[str] = mapped_column(String(24))
    decision: Mapped[str | None] = mapped_column(String(8))
    # Encrypted in note_enc: a police, discipline or judicial department's note may record an
    # offence. `note` holds rows from before migration 0011 until storage.rekey seals them.
    note: Mapped[str | None] = mapped_column(String(1000))
    note_enc: Mapped[Sealed]
    reviewer_person_id: Mapped[ByPerson]
    requested_at: Mapped[DbNow]
    decided_at: Mapped[datetime | None]


# ---------------------------------------------------------------------------------------------
# Cultivate and manage (育、管): 2+1 mentoring, talks, difficulties, trainings, posts, grades.


class Pairing(Base):
    """One mentor of one reserve cadre ("2+1": a township cadre and a village secretary).

    At most one active mentor per slot and cadre; reassignment ends the old row (history).
    """

    __tablename__ = "pairing"
    __table_args__ = (
        CheckConstraint("slot IN ('township', 'village')", name="slot_known"),
        _partial(
            "uq_pairing_active_slot",
            "nomination_id",
            "slot",
            where="ended_at IS NULL",
            unique=True,
        ),
        # A mentor's mentees; with the cadence columns it also covers the overdue count per
        # mentor that summaries group county-wide (read from the index alone).
        Index(
            "ix_pairing_mentor",
            "mentor_person_id",
            "ended_at",
            "in_pool",
            "last_talk_on",
            "assigned_at",
        ),
        # A cadre's pairings with their cadence (dossier, reassignment, and the trigger that
        # recounts nomination.active_pairings), read without visiting the table row.
        Index(
            "ix_pairing_nomination",
            "nomination_id",
            "ended_at",
            "mentor_person_id",
            "last_talk_on",
            "assigned_at",
        ),
        # Talk reminders and summaries ask "active, last talk (else assignment) on or before
        # a day": a range over this index, so their cost follows the pairings due, not all.
        _partial("ix_pairing_cadence", "last_talk_on", "assigned_at", where="ended_at IS NULL"),
        # Overdue pairings per mentor in one township (summaries): active pairings only,
        # read from the index alone.
        Index(
            "ix_pairing_active_township",
            "township_id",
            "mentor_person_id",
            "last_talk_on",
            "assigned_at",
            sqlite_where=text("ended_at IS NULL AND in_pool = 1"),
            postgresql_where=text("ended_at IS NULL AND in_pool"),
        ),
        # Never reused: reminder keys carry the id (see Nomination).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    nomination_id: Mapped[NominationRef]
    mentor_person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    slot: Mapped[str] = mapped_column(String(16))
    assigned_by_person_id: Mapped[ByPerson]
    assigned_at: Mapped[DbNow]
    ended_at: Mapped[datetime | None]
    # The latest talk_date of this pairing's talks (None: no talk yet), kept by every write to
    # talk_log in the same transaction (storage.mentoring.save_talk, refresh_last_talks), so
    # that the cadence never needs a GROUP BY over every talk ever held.
    last_talk_on: Mapped[date | None] = mapped_column(Date)
    township_id: Mapped[TownshipCopy]
    # Whether the cadre is in the pool now, kept by a trigger on nomination's status: an
    # active pairing (ended_at NULL, in_pool) is then a fact of this row alone.
    # A plain "0", not false(): a SQL expression default makes Alembic rebuild the table on
    # SQLite instead of ALTER TABLE ADD COLUMN.
    in_pool: Mapped[bool] = mapped_column(server_default="0")


class TalkLog(Base):
    """A talk (谈心谈话) on the four must-talk topics; each topic is text or a voice file id."""

    __tablename__ = "talk_log"
    __table_args__ = (
        CheckConstraint("mode IN ('face', 'phone', 'home')", name="mode_known"),
        Index("ix_talk_log_pairing_date", "pairing_id", "talk_date"),
        Index("ix_talk_log_nomination", "nomination_id", "talk_date"),
        Index("ix_talk_log_date", "talk_date", "nomination_id"),
        # Rows still in plain text (before migration 0011): found at every start without a
        # scan of every talk, and empty once storage.rekey.seal_plaintext has run.
        _partial("ix_talk_log_plain", "id", where="topics_enc IS NULL"),
    )

    id: Mapped[BigPk]
    pairing_id: Mapped[int] = mapped_column(ForeignKey("pairing.id", ondelete="CASCADE"))
    nomination_id: Mapped[NominationRef]
    mentor_person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    # The official who recorded an older talk on the mentor's behalf (None: the mentor did).
    # An id like the audit log's, without a foreign key: SQLite adds and drops a plain column
    # in place, while a constrained one would rebuild talk_log and drop its tally triggers.
    recorded_by_person_id: Mapped[int | None]
    talk_date: Mapped[date] = mapped_column(Date)
    mode: Mapped[str] = mapped_column(String(8))
    # {"thought"|"work"|"life"|"problems": {"text": str} or {"voice": file_id}}, as JSON
    # encrypted with DATA_KEY in topics_enc: a talk holds a family's health and money. `topics`
    # is the plaintext of rows written before migration 0011 and is `{}` once they are sealed
    # (storage.rekey.seal_plaintext; kept NOT NULL so that SQLite adds the new column in place
    # instead of rebuilding the table, which would drop its tally triggers).
    topics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    topics_enc: Mapped[Sealed]
    created_at: Mapped[DbNow]
    township_id: Mapped[TownshipCopy]


class Difficulty(Base):
    """A practical difficulty (实际困难) raised in a talk, tracked until resolved."""

    __tablename__ = "difficulty"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'resolved')", name="status_known"),
        Index("ix_difficulty_nomination", "nomination_id", "status"),
        Index("ix_difficulty_raised", "raised_at"),
        Index("ix_difficulty_resolved", "resolved_at"),
        Index("ix_difficulty_township", "township_id", "status", "raised_at", "resolved_at"),
        # Rows still in plain text (see TalkLog's ix_talk_log_plain).
        _partial("ix_difficulty_plain", "id", where="description_enc IS NULL"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    nomination_id: Mapped[NominationRef]
    talk_id: Mapped[int | None] = mapped_column(ForeignKey("talk_log.id", ondelete="SET NULL"))
    # The texts are encrypted in the *_enc columns (a difficulty is a family's circumstances:
    # "家中老人需要照顾"); the plain columns hold rows from before migration 0011 until
    # storage.rekey.seal_plaintext empties them ('' and NULL), as for TalkLog.topics.
    description: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(10), default="open")
    raised_at: Mapped[DbNow]
    resolution: Mapped[str | None] = mapped_column(String(500))
    description_enc: Mapped[Sealed]
    resolution_enc: Mapped[Sealed]
    resolved_by_person_id: Mapped[ByPerson]
    resolved_at: Mapped[datetime | None]
    township_id: Mapped[TownshipCopy]


class Training(Base):
    """A training session: 订单式培训, study tour, 擂台比武 competition or 廉政教育 visit."""

    __tablename__ = "training"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('order', 'study_tour', 'competition', 'integrity')", name="kind_known"
        ),
        CheckConstraint(
            "topic IN ('party_building', 'industry', 'policy_law', 'other')", name="topic_known"
        ),
        Index("ix_training_starts", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(100))
    place: Mapped[str] = mapped_column(String(100))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    # None: county-wide (or a chosen list); otherwise the township the audience comes from.
    township_id: Mapped[int | None] = mapped_column(ForeignKey("township.id"))
    organizer_person_id: Mapped[ByPerson]
    checkin_code: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[DbNow]


class TrainingInvite(Base):
    """One invitee of a training: RSVP, attendance and (for competitions) a score."""

    __tablename__ = "training_invite"
    __table_args__ = (
        UniqueConstraint("training_id", "nomination_id"),
        CheckConstraint("rsvp IS NULL OR rsvp IN ('yes', 'no')", name="rsvp_known"),
        Index("ix_training_invite_nomination", "nomination_id"),
        # A township's person-times (summaries): read from the index alone.
        Index("ix_training_invite_township", "training_id", "township_id", "attended_at"),
        # Never reused: invitation keys and RSVP buttons carry the id (see Nomination).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    training_id: Mapped[int] = mapped_column(ForeignKey("training.id", ondelete="CASCADE"))
    nomination_id: Mapped[NominationRef]
    rsvp: Mapped[str | None] = mapped_column(String(4))
    attended_at: Mapped[datetime | None]
    score: Mapped[float | None]
    township_id: Mapped[TownshipCopy]


class PracticePost(Base):
    """实践锻炼: an intern village cadre, grid worker or named hard post, with dates."""

    __tablename__ = "practice_post"
    __table_args__ = (
        CheckConstraint("kind IN ('intern', 'grid', 'hard_post')", name="kind_known"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates_ordered"),
        Index("ix_practice_post_township", "township_id", "kind", "start_date", "end_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    nomination_id: Mapped[NominationRef]
    kind: Mapped[str] = mapped_column(String(12))
    title: Mapped[str | None] = mapped_column(String(100))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    assigned_by_person_id: Mapped[ByPerson]
    created_at: Mapped[DbNow]
    township_id: Mapped[TownshipCopy]


class GradeState(Base):
    """Where a reserve cadre stands on the 13-grade ladder (职级管理)."""

    __tablename__ = "grade_state"

    nomination_id: Mapped[int] = mapped_column(
        ForeignKey("nomination.id", ondelete="CASCADE"), primary_key=True
    )
    grade: Mapped[int]
    years_in_grade: Mapped[int]
    subsidy_yuan: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[DbNow]


class GradeMove(Base):
    """One annual result applied to the ladder: the history of grades."""

    __tablename__ = "grade_move"
    __table_args__ = (
        UniqueConstraint("nomination_id", "year"),
        CheckConstraint(
            "result IN ('excellent', 'competent', 'basic', 'incompetent')", name="result_known"
        ),
        # A summary counts the moves of one year: read from this index alone, county-wide.
        Index("ix_grade_move_year", "year", "from_grade", "to_grade"),
        Index("ix_grade_move_township", "township_id", "year", "from_grade", "to_grade"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    nomination_id: Mapped[NominationRef]
    year: Mapped[int]
    result: Mapped[str] = mapped_column(String(12))
    from_grade: Mapped[int]
    to_grade: Mapped[int]
    from_years: Mapped[int]
    to_years: Mapped[int]
    subsidy_yuan: Mapped[int] = mapped_column(default=0)
    # The one-off award for an excellent year, and the performance pay tied to the result.
    bonus_yuan: Mapped[int] = mapped_column(default=0, server_default="0")
    performance_pay_yuan: Mapped[int | None]
    actor_person_id: Mapped[ByPerson]
    at: Mapped[DbNow]
    township_id: Mapped[TownshipCopy]


# ---------------------------------------------------------------------------------------------
# Delivery: the outbox every proactive message goes through, and summary schedules.


class OutboxMessage(Base):
    """One proactive message, planned in the transaction of the change that caused it.

    `key` is the idempotency key (e.g. ``talk-due:{pairing}:{due date}``): planning the same
    thing twice is a no-op, so a tick that runs twice never sends twice.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed')", name="status_known"),
        Index("ix_outbox_message_due", "status", "not_before"),
        # Claims scan only what is still to send, however long the history of sent rows.
        _partial("ix_outbox_message_open", "id", where="status IN ('pending', 'sending')"),
    )

    id: Mapped[BigPk]
    key: Mapped[str] = mapped_column(String(200), unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(40))
    # Rendered Telegram HTML in the recipient's language, already split to ≤4096 per part.
    parts: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    not_before: Mapped[DbNow]
    claimed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[DbNow]
    # The nomination the message names or is about (None: about nobody in particular), so
    # that erasure and retention can cancel or blank it (storage/erasure.py).
    subject_nomination_id: Mapped[int | None] = mapped_column(Integer, index=True)


class SummarySchedule(Base):
    """When an official gets their push summary; editable in the bot."""

    __tablename__ = "summary_schedule"
    __table_args__ = (
        CheckConstraint("cadence IN ('weekly', 'monthly', 'off')", name="cadence_known"),
    )

    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    cadence: Mapped[str] = mapped_column(String(8))
    # weekly: 0 = Monday … 6 = Sunday; monthly: day of month 1–28.
    day: Mapped[int]
    at_minute: Mapped[int] = mapped_column(default=8 * 60 + 30)
    last_period: Mapped[str | None] = mapped_column(String(16))
    # Key figures as of the last summary sent, so the next one can show the change.
    last_figures: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# ---------------------------------------------------------------------------------------------
# Use (用): hard-post projects and outcomes. Money is kept in whole yuan (BIGINT): shown in
# 万元, never rounded on the way into the database.


class Project(Base):
    """An idle-asset revitalization project (闲置资产盘活) of a village, led by cadres."""

    __tablename__ = "project"
    __table_args__ = (
        CheckConstraint("status IN ('planned', 'under_way', 'done')", name="status_known"),
        CheckConstraint("funds_yuan >= 0", name="funds_positive"),
        Index("ix_project_village", "village_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("village.id"))
    name: Mapped[str] = mapped_column(String(100))
    funds_yuan: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), default="planned")
    created_by_person_id: Mapped[ByPerson]
    created_at: Mapped[DbNow]


class ProjectLead(Base):
    """A reserve cadre leading a project (one project may have several, and vice versa)."""

    __tablename__ = "project_lead"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
    )
    nomination_id: Mapped[int] = mapped_column(
        ForeignKey("nomination.id", ondelete="CASCADE"), primary_key=True
    )


class ProjectReport(Base):
    """A progress report: collective income gained since the last report, with its date."""

    __tablename__ = "project_report"
    __table_args__ = (
        CheckConstraint("income_yuan >= 0", name="income_positive"),
        Index("ix_project_report_project", "project_id", "report_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    reported_by_person_id: Mapped[ByPerson]
    report_date: Mapped[date] = mapped_column(Date)
    income_yuan: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str | None] = mapped_column(String(10))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[DbNow]


class Election(Base):
    """Elected into the village two committees (村两委)."""

    __tablename__ = "election"
    __table_args__ = (
        Index("ix_election_nomination", "nomination_id"),
        Index("ix_election_elected_on", "elected_on", "township_id"),
        Index("ix_election_township", "township_id", "elected_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    nomination_id: Mapped[NominationRef]
    position: Mapped[str] = mapped_column(String(60))
    elected_on: Mapped[date] = mapped_column(Date)
    recorded_by_person_id: Mapped[ByPerson]
    created_at: Mapped[DbNow]
    township_id: Mapped[TownshipCopy]


class Award(Base):
    """An award or an exemplary-cadre recognition."""

    __tablename__ = "award"
    __table_args__ = (CheckConstraint("kind IN ('award', 'exemplary')", name="kind_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    nomination_id: Mapped[NominationRef]
    kind: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(100))
    awarded_on: Mapped[date] = mapped_column(Date)
    recorded_by_person_id: Mapped[ByPerson]


class Publicity(Base):
    """A media report on a cadre (outlet, date, title)."""

    __tablename__ = "publicity"

    id: Mapped[int] = mapped_column(primary_key=True)
    nomination_id: Mapped[int | None] = mapped_column(
        ForeignKey("nomination.id", ondelete="CASCADE")
    )
    outlet: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(200))
    published_on: Mapped[date] = mapped_column(Date)
    recorded_by_person_id: Mapped[ByPerson]


# ---------------------------------------------------------------------------------------------
# Tallies: per-township counters that database triggers keep in the writing transaction (the
# triggers and the recount that checks them are in storage/tally.py and migration 0009).
# Summaries add up a few thousand of these rows instead of grouping millions of facts. A row
# may hold 0 after its last fact went; nothing removes it.


class TalkTally(Base):
    """Talks held per township and talk date."""

    __tablename__ = "talk_tally"

    township_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    talk_date: Mapped[date] = mapped_column(Date, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class CadenceTally(Base):
    """Active pairings (not ended, cadre in the pool) per township and date of their last talk.

    Pairings with no talk yet are not here: the summary reads those few from pairing itself.
    """

    __tablename__ = "cadence_tally"

    township_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_talk_on: Mapped[date] = mapped_column(Date, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class NominationTally(Base):
    """Nominations per township, status, education (college or higher or not) and number of
    active pairings: the status stock, the pool's education share, pairings and cadres paired."""

    __tablename__ = "nomination_tally"

    township_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    college: Mapped[bool] = mapped_column(primary_key=True)
    active_pairings: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


# ---------------------------------------------------------------------------------------------
# Erasure and retention.


class ErasureEvent(Base):
    """A person's data was erased: every running bot drops what it holds in memory for these
    Telegram users (bot/forget.py polls this table), whichever process did the erasure."""

    __tablename__ = "erasure_event"
    # Running bots read events by id > the last one seen: never reuse an id (SQLite).
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[BigPk]
    telegram_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[DbNow]
