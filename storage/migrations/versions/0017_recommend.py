"""nominee_invite: the code a township gives a recommended person to complete their own file

Revision ID: 0017_recommend
Revises: 0016_past
Create Date: 2026-12-06 22:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0017_recommend"
down_revision: str | None = "0016_past"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nominee_invite",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nomination_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by_person_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            storage.models.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("expires_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_person_id"],
            ["person.id"],
            name=op.f("fk_nominee_invite_created_by_person_id_person"),
        ),
        sa.ForeignKeyConstraint(
            ["nomination_id"],
            ["nomination.id"],
            name=op.f("fk_nominee_invite_nomination_id_nomination"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nominee_invite")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_nominee_invite_code_hash")),
    )
    op.create_index(
        op.f("ix_nominee_invite_nomination_id"), "nominee_invite", ["nomination_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_nominee_invite_nomination_id"), table_name="nominee_invite")
    op.drop_table("nominee_invite")
