"""keep the latest talk date on the pairing; indexes for the cadence and summaries

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 19:07:24.433162
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pairing", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_talk_on", sa.Date(), nullable=True))

    # Backfill from the talks already held (the same statement as
    # storage.mentoring.refresh_last_talks), before the indexes, so they are built once.
    op.execute(
        "UPDATE pairing SET last_talk_on = "
        "(SELECT max(talk_log.talk_date) FROM talk_log WHERE talk_log.pairing_id = pairing.id) "
        "WHERE EXISTS (SELECT 1 FROM talk_log WHERE talk_log.pairing_id = pairing.id)"
    )

    with op.batch_alter_table("pairing", schema=None) as batch_op:
        batch_op.drop_index("ix_pairing_nomination")
        batch_op.create_index(
            "ix_pairing_nomination",
            ["nomination_id", "ended_at", "mentor_person_id", "last_talk_on", "assigned_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_pairing_cadence",
            ["last_talk_on", "assigned_at"],
            unique=False,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )

    with op.batch_alter_table("grade_move", schema=None) as batch_op:
        batch_op.create_index(
            "ix_grade_move_year", ["year", "from_grade", "to_grade"], unique=False
        )

    with op.batch_alter_table("nomination", schema=None) as batch_op:
        batch_op.create_index("ix_nomination_person", ["person_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("nomination", schema=None) as batch_op:
        batch_op.drop_index("ix_nomination_person")

    with op.batch_alter_table("grade_move", schema=None) as batch_op:
        batch_op.drop_index("ix_grade_move_year")

    with op.batch_alter_table("pairing", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_pairing_cadence",
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )
        batch_op.drop_index("ix_pairing_nomination")
        batch_op.create_index("ix_pairing_nomination", ["nomination_id", "ended_at"], unique=False)
        batch_op.drop_column("last_talk_on")
