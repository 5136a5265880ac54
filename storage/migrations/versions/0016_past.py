"""talk_log.recorded_by_person_id: a talk recorded by an official on a mentor's behalf

A talk older than the mentor's window (30 days) is recorded by an official afterwards; the row
keeps who typed it, and the dossier marks it. A plain nullable column, no foreign key: SQLite
adds and drops it in place (3.35+), where a batch rebuild of talk_log would drop its tally
triggers (see 0009).

Revision ID: 0016_past
Revises: 0015_rounds
Create Date: 2026-12-06 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_past"
down_revision: str | None = "0015_rounds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("talk_log", sa.Column("recorded_by_person_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("talk_log", "recorded_by_person_id")
