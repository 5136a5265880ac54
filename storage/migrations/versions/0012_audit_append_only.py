"""audit_log: append-only on both engines, denied actions by account, no foreign key

The audit log is evidence: this revision makes the database itself refuse UPDATE and DELETE
on audit_log (a trigger on each engine; on PostgreSQL TRUNCATE too), so neither a bug nor a
hand at the SQL prompt can rewrite it. It keeps ids only, so it needs no link to person:
the foreign key from actor_person_id goes (a cascade from person, or its refusal, would make
erasing a person depend on rewriting the log). actor_telegram_id records who was refused when
the account has no person yet; ix_audit_log_actor serves `cadrebot audit --person/--actor`.

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-06 14:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = "audit_log is append-only"
SQLITE = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END",
)
POSTGRESQL = (
    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege'; END $$",
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_constraint("fk_audit_log_actor_person_id_person", type_="foreignkey")
        batch_op.add_column(sa.Column("actor_telegram_id", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_audit_log_actor", ["actor_person_id"], unique=False)
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL if postgresql else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_log_append_only() CASCADE")
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("DROP TRIGGER audit_log_no_delete")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_actor")
        batch_op.drop_column("actor_telegram_id")
        batch_op.create_foreign_key(
            "fk_audit_log_actor_person_id_person", "person", ["actor_person_id"], ["id"]
        )
