"""the "/" menu per staff member: which accounts' menus wait to be published

telegram_account.menu_changes counts the role changes (and staff /lang choices) not yet
published to the person's per-chat command menu (bot/menu.py); it is bumped in the grant's
own transaction and set back to 0 after a successful setMyCommands. Accounts of people who
hold a role today start at 1, so the first start after this revision gives each staff
member their menu once; later starts publish only what changed.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 16:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("telegram_account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("menu_changes", sa.Integer(), server_default="0", nullable=False)
        )
    op.execute(
        "UPDATE telegram_account SET menu_changes = 1 WHERE EXISTS (SELECT 1 FROM role_grant "
        "WHERE role_grant.person_id = telegram_account.person_id "
        "AND role_grant.revoked_at IS NULL)"
    )
    with op.batch_alter_table("telegram_account", schema=None) as batch_op:
        batch_op.create_index(
            "ix_telegram_account_menu_pending",
            ["telegram_id"],
            unique=False,
            sqlite_where=sa.text("menu_changes > 0"),
            postgresql_where=sa.text("menu_changes > 0"),
        )


def downgrade() -> None:
    op.drop_index(
        "ix_telegram_account_menu_pending",
        table_name="telegram_account",
        sqlite_where=sa.text("menu_changes > 0"),
        postgresql_where=sa.text("menu_changes > 0"),
    )
    # ALTER TABLE … DROP COLUMN, also on SQLite (3.35+): a batch rebuild of the table would
    # have to save and restore the triggers that name it (see 0013).
    op.drop_column("telegram_account", "menu_changes")
