"""the lookup-hash key kept wrapped in the database; talk and difficulty texts encrypted

- data_secret: the lookup-hash key, wrapped with DATA_KEY (storage/crypto.py says why it is
  no longer derived from DATA_KEY). It is created by the first process that runs with a
  DATA_KEY (storage.rekey.load_cipher), from the key that made the hashes already stored.
- talk_log.topics_enc, difficulty.description_enc, difficulty.resolution_enc,
  vetting_review.note_enc and status_change.reason_enc: the talk's topics, the difficulty's
  texts, the vetting department's note and the reason of a decline, rejection or adjustment,
  encrypted.

A migration has no DATA_KEY, so it cannot encrypt the rows already there: they stay in the
plain columns, readers accept both, and `cadrebot run` (at start) and `cadrebot rekey` encrypt
them and empty the plain columns (storage.rekey.seal_plaintext). The columns are added with
ALTER TABLE ADD COLUMN, never a batch rebuild: talk_log and difficulty carry the tally
triggers of 0009, which a rebuild on SQLite would drop (status_change too).

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-06 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEALED = (
    ("talk_log", "topics_enc"),
    ("difficulty", "description_enc"),
    ("difficulty", "resolution_enc"),
    ("vetting_review", "note_enc"),
    ("status_change", "reason_enc"),
)

PLAIN_INDEXES = (
    ("talk_log", "topics_enc IS NULL"),
    ("difficulty", "description_enc IS NULL"),
    ("vetting_review", "note IS NOT NULL"),
    ("status_change", "reason IS NOT NULL"),
)


def upgrade() -> None:
    op.create_table(
        "data_secret",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_data_secret")),
    )
    for table, column in SEALED:
        op.add_column(table, sa.Column(column, sa.LargeBinary(), nullable=True))
    # The rows still in plain text, found at start-up without scanning every talk.
    for table, where in PLAIN_INDEXES:
        op.create_index(
            f"ix_{table}_plain",
            table,
            ["id"],
            unique=False,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


def downgrade() -> None:
    # Without DATA_KEY the encrypted texts cannot be put back in the plain columns: going
    # down would destroy them, so it is refused while any exist.
    connection = op.get_bind()
    for table, column in SEALED:
        held = connection.execute(
            sa.text(f"SELECT count(*) FROM {table} WHERE {column} IS NOT NULL")
        ).scalar_one()
        if held:
            raise RuntimeError(
                f"{table}.{column} holds {held} encrypted value(s) that a downgrade would lose"
            )
    for table, _column in PLAIN_INDEXES:
        op.drop_index(f"ix_{table}_plain", table_name=table)
    for table, column in reversed(SEALED):
        # SQLite (3.35+) and PostgreSQL both drop a column in place; no rebuild, no lost
        # triggers.
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.drop_table("data_secret")
