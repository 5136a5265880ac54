"""inbox of Telegram updates; quarantine for persisted state that cannot be read back

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 13:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = storage.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbound_update",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column(
            "received_at", _WHEN, server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False
        ),
        sa.Column("handled_at", _WHEN, nullable=True),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_inbound_update")),
    )
    with op.batch_alter_table("inbound_update", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbound_update_open",
            ["update_id"],
            unique=False,
            sqlite_where=sa.text("handled_at IS NULL"),
            postgresql_where=sa.text("handled_at IS NULL"),
        )
        batch_op.create_index("ix_inbound_update_handled", ["handled_at"], unique=False)

    op.create_table(
        "quarantined_state",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=True),
        sa.Column("key", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column(
            "quarantined_at", _WHEN, server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False
        ),
        sa.Column("notified_at", _WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_state")),
        # The once-only notice's outbox key carries the id: never reused.
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("quarantined_state")
    with op.batch_alter_table("inbound_update", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_update_handled")
        batch_op.drop_index("ix_inbound_update_open")
    op.drop_table("inbound_update")
