"""erasure that finishes the job, retention, ids never reused

- nomination.erased_at: an erased file stays as an anonymous row, so the county's counts hold;
- outbox_message.subject_nomination_id: which file a message names or is about, so erasure
  and retention can cancel pending rows and blank sent ones;
- erasure_event: every running bot drops what it holds in memory for an erased person,
  whichever process erased them (bot/forget.py polls it);
- on SQLite, AUTOINCREMENT on nomination, pairing, vetting_review and training_invite: their
  ids appear in file numbers and outbox idempotency keys, and SQLite without it hands the
  id of a deleted last row to the next one (finding 14). PostgreSQL sequences never reuse.

SQLite cannot add AUTOINCREMENT to a table in place: each table is rebuilt with its own
CREATE TABLE text plus the keyword (SQLite's documented procedure, with foreign keys off as
storage/migrations/env.py sets them), its indexes re-created from their own text. Dropping
a table drops its triggers, and renaming the new table fails while other tables' triggers
name a missing table, so every trigger in the database (the tallies of 0009 and any
revision merged before this one) is saved, dropped, and re-created verbatim afterwards.

Revision ID: 0013
Revises: 0009
Create Date: 2026-12-06 13:50:00
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEVER_REUSED = ("nomination", "pairing", "vetting_review", "training_invite")


def _autoincrement(table: str, create: str) -> str:
    """The table's CREATE TABLE text with `id` as INTEGER PRIMARY KEY AUTOINCREMENT."""
    column = re.compile(r"(\bid INTEGER NOT NULL)(,)")
    constraint = re.compile(rf",?\s*CONSTRAINT pk_{table} PRIMARY KEY \(id\)")
    if not column.search(create) or not constraint.search(create):
        raise RuntimeError(f"unexpected schema for {table}: cannot add AUTOINCREMENT")
    create = constraint.sub("", create, count=1)
    create = column.sub(rf"\1 CONSTRAINT pk_{table} PRIMARY KEY AUTOINCREMENT\2", create, count=1)
    # A table renamed before (an earlier rebuild) has its name quoted.
    renamed, found = re.subn(
        rf'^CREATE TABLE "?{table}"? \(', f"CREATE TABLE _new_{table} (", create
    )
    if found != 1:
        raise RuntimeError(f"unexpected schema for {table}: cannot add AUTOINCREMENT")
    return renamed


def _sqlite_never_reuse() -> None:
    bind = op.get_bind()

    def rows(sql: str, **params: str) -> list[tuple[str, str]]:
        return [(str(a), str(b)) for a, b in bind.execute(sa.text(sql), params).all()]

    triggers = rows("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
    for name, _ in triggers:
        op.execute(f'DROP TRIGGER "{name}"')
    for table in NEVER_REUSED:
        create = bind.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"),
            {"t": table},
        ).scalar_one()
        if "AUTOINCREMENT" in create:
            continue  # upgraded before (a downgrade keeps it: harmless)
        indexes = rows(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t "
            "AND sql IS NOT NULL",
            t=table,
        )
        op.execute(_autoincrement(table, create))
        op.execute(f"INSERT INTO _new_{table} SELECT * FROM {table}")
        op.execute(f"DROP TABLE {table}")
        op.execute(f"ALTER TABLE _new_{table} RENAME TO {table}")
        for _, sql in indexes:
            op.execute(sql)
        # The copy starts the sequence at the highest id left; a row deleted before this
        # upgrade (an erasure by the old code) may have had a higher one, which the audit log
        # still names: start above it, so no id comes back.
        highest = bind.execute(
            sa.text(
                f"SELECT max(v) FROM (SELECT max(id) AS v FROM {table} UNION ALL "
                "SELECT max(subject_id) FROM audit_log WHERE subject_type = :t)"
            ),
            {"t": table},
        ).scalar()
        if highest:
            op.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :t").bindparams(t=table))
            op.execute(
                sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :seq)").bindparams(
                    t=table, seq=int(highest)
                )
            )
    for _, sql in triggers:
        op.execute(sql)


def upgrade() -> None:
    op.add_column("nomination", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "outbox_message", sa.Column("subject_nomination_id", sa.Integer(), nullable=True)
    )
    op.create_index(
        "ix_outbox_message_subject_nomination_id",
        "outbox_message",
        ["subject_nomination_id"],
        unique=False,
    )
    op.create_table(
        "erasure_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_event")),
        # Running bots read events by id > the last one seen: an id reused after the purge
        # deleted the newest event would never be seen.
        sqlite_autoincrement=True,
    )
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_never_reuse()


def downgrade() -> None:
    op.drop_table("erasure_event")
    op.drop_index("ix_outbox_message_subject_nomination_id", table_name="outbox_message")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_column("subject_nomination_id")
    # SQLite (3.35+) drops a column in place, keeping nomination's tally triggers.
    op.execute("ALTER TABLE nomination DROP COLUMN erased_at")
