"""township on fact rows, tallies kept by triggers

Summaries at a million nominations (issue 5) read per-township counters instead of grouping
millions of rows, and a township's figures are index ranges instead of a join to every
nomination. This revision:
- copies the nomination's township onto status_change, pairing, talk_log, difficulty,
  practice_post, grade_move, election and training_invite (it never changes on a
  nomination);
- keeps on pairing whether its cadre is in the pool (in_pool), and on nomination how many of
  its pairings are active (active_pairings);
- adds talk_tally, cadence_tally and nomination_tally;
- fills all of it from the rows already there, then creates the triggers that keep it in
  every writing transaction from now on (storage/tally.py describes them and checks them).

The trigger text is frozen here, as a migration must be; a later change to a tally is a new
revision that replaces the trigger. On SQLite, a batch operation that recreates one of these
tables drops its triggers: such a revision must create them again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 21:25:22.316722
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tables whose rows belong to one nomination and now carry its township.
SCOPED = (
    "status_change",
    "pairing",
    "talk_log",
    "difficulty",
    "practice_post",
    "grade_move",
    "election",
    "training_invite",
)
# storage.rules.options.COLLEGE_OR_HIGHER when this revision was written.
COLLEGE = "('college', 'bachelor', 'postgraduate')"
ACTIVE = "ended_at IS NULL AND in_pool = TRUE"

# SQLite probes nomination's primary key per row; PostgreSQL joins (a correlated subquery
# per row takes minutes over millions of talks there).
FILL_SQLITE = tuple(
    f"UPDATE {table} SET township_id = "
    f"(SELECT nomination.township_id FROM nomination WHERE nomination.id = {table}.nomination_id)"
    for table in SCOPED
)
FILL_POSTGRESQL = tuple(
    f"UPDATE {table} SET township_id = nomination.township_id FROM nomination "
    f"WHERE nomination.id = {table}.nomination_id"
    for table in SCOPED
)
BACKFILL = (
    "UPDATE pairing SET in_pool = TRUE WHERE nomination_id IN "
    "(SELECT id FROM nomination WHERE status = 'in_pool')",
    "UPDATE nomination SET active_pairings = (SELECT count(*) FROM pairing "
    "WHERE pairing.nomination_id = nomination.id AND pairing.ended_at IS NULL) "
    "WHERE id IN (SELECT nomination_id FROM pairing WHERE ended_at IS NULL)",
    "INSERT INTO talk_tally (township_id, talk_date, n) "
    "SELECT township_id, talk_date, count(*) FROM talk_log "
    "WHERE township_id IS NOT NULL GROUP BY township_id, talk_date",
    "INSERT INTO cadence_tally (township_id, last_talk_on, n) "
    "SELECT township_id, last_talk_on, count(*) FROM pairing "
    f"WHERE {ACTIVE} AND township_id IS NOT NULL AND last_talk_on IS NOT NULL "
    "GROUP BY township_id, last_talk_on",
    "INSERT INTO nomination_tally (township_id, status, college, active_pairings, n) "
    f"SELECT township_id, status, COALESCE(education IN {COLLEGE}, FALSE), active_pairings, "
    f"count(*) FROM nomination GROUP BY township_id, status, "
    f"COALESCE(education IN {COLLEGE}, FALSE), active_pairings",
)


def _bump(table: str, keys: dict[str, str], n: int, when: str, *, postgresql: bool) -> str:
    """An upsert adding `n` to the tally row of `keys` (column: expression) when `when`."""
    columns = ", ".join(keys)
    if postgresql:
        return (
            f"IF {when} THEN INSERT INTO {table} AS t ({columns}, n) "
            f"VALUES ({', '.join(keys.values())}, {n}) "
            f"ON CONFLICT ({columns}) DO UPDATE SET n = t.n + excluded.n; END IF;"
        )
    return (
        f"INSERT INTO {table} ({columns}, n) SELECT {', '.join(keys.values())}, {n} "
        f"WHERE {when} ON CONFLICT ({columns}) DO UPDATE SET n = n + excluded.n;"
    )


def _talk(row: str, n: int, *, postgresql: bool) -> str:
    keys = {"township_id": f"{row}.township_id", "talk_date": f"{row}.talk_date"}
    return _bump("talk_tally", keys, n, f"{row}.township_id IS NOT NULL", postgresql=postgresql)


def _cadence(row: str, n: int, *, postgresql: bool) -> str:
    keys = {"township_id": f"{row}.township_id", "last_talk_on": f"{row}.last_talk_on"}
    when = (
        f"{row}.township_id IS NOT NULL AND {row}.ended_at IS NULL AND {row}.in_pool "
        f"AND {row}.last_talk_on IS NOT NULL"
    )
    return _bump("cadence_tally", keys, n, when, postgresql=postgresql)


def _nomination_key(row: str) -> dict[str, str]:
    return {
        "township_id": f"{row}.township_id",
        "status": f"{row}.status",
        "college": f"COALESCE({row}.education IN {COLLEGE}, FALSE)",
        "active_pairings": f"{row}.active_pairings",
    }


def _nomination(row: str, n: int, *, postgresql: bool) -> str:
    return _bump("nomination_tally", _nomination_key(row), n, "TRUE", postgresql=postgresql)


def _active_pairings(nomination: str) -> str:
    """Recount a nomination's active pairings: idempotent, so the order in which row
    triggers fire (at once on SQLite, at the end of the statement on PostgreSQL) is moot."""
    count = (
        f"(SELECT count(*) FROM pairing WHERE pairing.nomination_id = {nomination} "
        "AND pairing.ended_at IS NULL)"
    )
    return (
        f"UPDATE nomination SET active_pairings = {count} "
        f"WHERE id = {nomination} AND active_pairings <> {count};"
    )


POOL_SYNC = (
    "UPDATE pairing SET in_pool = (NEW.status = 'in_pool') "
    "WHERE nomination_id = NEW.id AND in_pool <> (NEW.status = 'in_pool');"
)
TALK_CHANGED = "OLD.township_id IS NOT NEW.township_id OR OLD.talk_date IS NOT NEW.talk_date"
PAIRING_CHANGED = (
    "OLD.township_id IS NOT NEW.township_id OR OLD.last_talk_on IS NOT NEW.last_talk_on "
    "OR OLD.ended_at IS NOT NEW.ended_at OR OLD.in_pool IS NOT NEW.in_pool"
)
PAIRING_ENDED = (
    "(OLD.ended_at IS NULL) <> (NEW.ended_at IS NULL) OR OLD.nomination_id <> NEW.nomination_id"
)
NOMINATION_CHANGED = (
    "OLD.township_id IS NOT NEW.township_id OR OLD.status IS NOT NEW.status "
    "OR OLD.education IS NOT NEW.education OR OLD.active_pairings IS NOT NEW.active_pairings"
)


def _sqlite_triggers() -> list[str]:
    fill = "(SELECT township_id FROM nomination WHERE id = NEW.nomination_id)"
    triggers = [
        f"CREATE TRIGGER {table}_township AFTER INSERT ON {table} "
        f"WHEN NEW.township_id IS NULL BEGIN "
        f"UPDATE {table} SET township_id = {fill} WHERE id = NEW.id; END"
        for table in SCOPED
        if table not in {"talk_log", "pairing"}
    ]
    sqlite = {"postgresql": False}
    triggers += [
        # The talk counts as inserted; filling its township is then an update that moves it.
        "CREATE TRIGGER talk_log_insert AFTER INSERT ON talk_log BEGIN "
        f"{_talk('NEW', 1, **sqlite)} "
        f"UPDATE talk_log SET township_id = {fill} "
        "WHERE id = NEW.id AND NEW.township_id IS NULL; END",
        f"CREATE TRIGGER talk_log_update AFTER UPDATE ON talk_log WHEN {TALK_CHANGED} BEGIN "
        f"{_talk('OLD', -1, **sqlite)} {_talk('NEW', 1, **sqlite)} END",
        f"CREATE TRIGGER talk_log_delete AFTER DELETE ON talk_log BEGIN "
        f"{_talk('OLD', -1, **sqlite)} END",
        "CREATE TRIGGER pairing_insert AFTER INSERT ON pairing BEGIN "
        f"{_cadence('NEW', 1, **sqlite)} "
        f"UPDATE pairing SET township_id = {fill}, in_pool = "
        "(SELECT status = 'in_pool' FROM nomination WHERE id = NEW.nomination_id) "
        f"WHERE id = NEW.id; {_active_pairings('NEW.nomination_id')} END",
        f"CREATE TRIGGER pairing_update AFTER UPDATE ON pairing WHEN {PAIRING_CHANGED} BEGIN "
        f"{_cadence('OLD', -1, **sqlite)} {_cadence('NEW', 1, **sqlite)} END",
        f"CREATE TRIGGER pairing_ended AFTER UPDATE ON pairing WHEN {PAIRING_ENDED} BEGIN "
        f"{_active_pairings('OLD.nomination_id')} {_active_pairings('NEW.nomination_id')} END",
        "CREATE TRIGGER pairing_delete AFTER DELETE ON pairing BEGIN "
        f"{_cadence('OLD', -1, **sqlite)} {_active_pairings('OLD.nomination_id')} END",
        "CREATE TRIGGER nomination_insert AFTER INSERT ON nomination BEGIN "
        f"{_nomination('NEW', 1, **sqlite)} END",
        f"CREATE TRIGGER nomination_update AFTER UPDATE ON nomination WHEN {NOMINATION_CHANGED} "
        f"BEGIN {_nomination('OLD', -1, **sqlite)} {_nomination('NEW', 1, **sqlite)} END",
        "CREATE TRIGGER nomination_pool AFTER UPDATE ON nomination "
        f"WHEN OLD.status IS NOT NEW.status BEGIN {POOL_SYNC} END",
        "CREATE TRIGGER nomination_delete AFTER DELETE ON nomination BEGIN "
        f"{_nomination('OLD', -1, **sqlite)} END",
    ]
    return triggers


def _pg_function(name: str, body: str) -> str:
    # search_path FROM CURRENT: the function finds this schema's tables whoever calls it.
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql "
        f"SET search_path FROM CURRENT AS $$ BEGIN {body} END $$"
    )


def _pg_on_change(
    body_old: str, body_new: str, key: Callable[[str], Sequence[str]] | None = None
) -> str:
    """OLD's part, then NEW's; for an update whose NEW key sorts first, NEW's part first.

    Two transactions that move counts between the same two tally rows in opposite
    directions would otherwise lock them in opposite orders and deadlock; in key order they
    queue. `key` gives the tally key's expressions for a row. (SQLite has one writer.)"""
    both = f"{body_old} {body_new}"
    if key is not None:
        old_key, new_key = ", ".join(key("OLD")), ", ".join(key("NEW"))
        both = (
            f"IF ROW({new_key}) < ROW({old_key}) THEN {body_new} {body_old} "
            f"ELSE {body_old} {body_new} END IF;"
        )
    return (
        f"IF TG_OP = 'INSERT' THEN {body_new} ELSIF TG_OP = 'DELETE' THEN {body_old} "
        f"ELSE {both} END IF; RETURN NULL;"
    )


def _postgresql_triggers() -> list[str]:
    pg = {"postgresql": True}
    distinct = {
        "talk": TALK_CHANGED,
        "pairing": PAIRING_CHANGED,
        "nomination": NOMINATION_CHANGED,
    }
    distinct = {k: v.replace(" IS NOT ", " IS DISTINCT FROM ") for k, v in distinct.items()}
    statements = [
        _pg_function(
            "fill_township",
            "IF NEW.township_id IS NULL THEN SELECT township_id INTO NEW.township_id "
            "FROM nomination WHERE id = NEW.nomination_id; END IF; RETURN NEW;",
        ),
        _pg_function(
            "fill_pairing",
            "SELECT township_id, status = 'in_pool' INTO NEW.township_id, NEW.in_pool "
            "FROM nomination WHERE id = NEW.nomination_id; RETURN NEW;",
        ),
        _pg_function(
            "talk_tally_apply",
            _pg_on_change(
                _talk("OLD", -1, **pg),
                _talk("NEW", 1, **pg),
                lambda row: (f"{row}.township_id", f"{row}.talk_date"),
            ),
        ),
        _pg_function(
            "cadence_tally_apply",
            _pg_on_change(
                _cadence("OLD", -1, **pg),
                _cadence("NEW", 1, **pg),
                lambda row: (f"{row}.township_id", f"{row}.last_talk_on"),
            ),
        ),
        _pg_function(
            "active_pairings_apply",
            _pg_on_change(
                _active_pairings("OLD.nomination_id"), _active_pairings("NEW.nomination_id")
            ),
        ),
        _pg_function(
            "nomination_tally_apply",
            _pg_on_change(
                _nomination("OLD", -1, **pg),
                _nomination("NEW", 1, **pg),
                lambda row: tuple(_nomination_key(row).values()),
            ),
        ),
        _pg_function("nomination_pool_apply", f"{POOL_SYNC} RETURN NULL;"),
    ]
    for table in SCOPED:
        function = "fill_pairing" if table == "pairing" else "fill_township"
        statements.append(
            f"CREATE TRIGGER {table}_township BEFORE INSERT ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()"
        )
    for table, function, when in (
        ("talk_log", "talk_tally_apply", distinct["talk"]),
        ("pairing", "cadence_tally_apply", distinct["pairing"]),
        ("pairing", "active_pairings_apply", PAIRING_ENDED),
        ("nomination", "nomination_tally_apply", distinct["nomination"]),
    ):
        statements += [
            f"CREATE TRIGGER {function}_row AFTER INSERT OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()",
            f"CREATE TRIGGER {function}_update AFTER UPDATE ON {table} "
            f"FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION {function}()",
        ]
    statements.append(
        "CREATE TRIGGER nomination_pool AFTER UPDATE ON nomination FOR EACH ROW "
        "WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION nomination_pool_apply()"
    )
    return statements


PG_FUNCTIONS = (
    "fill_township",
    "fill_pairing",
    "talk_tally_apply",
    "cadence_tally_apply",
    "active_pairings_apply",
    "nomination_tally_apply",
    "nomination_pool_apply",
)
SQLITE_TRIGGERS = (
    *(f"{t}_township" for t in SCOPED if t not in {"talk_log", "pairing"}),
    "talk_log_insert",
    "talk_log_update",
    "talk_log_delete",
    "pairing_insert",
    "pairing_update",
    "pairing_ended",
    "pairing_delete",
    "nomination_insert",
    "nomination_update",
    "nomination_pool",
    "nomination_delete",
)


def upgrade() -> None:
    op.create_table(
        "cadence_tally",
        sa.Column("township_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_talk_on", sa.Date(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("township_id", "last_talk_on", name=op.f("pk_cadence_tally")),
    )
    op.create_table(
        "nomination_tally",
        sa.Column("township_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("college", sa.Boolean(), nullable=False),
        sa.Column("active_pairings", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "township_id",
            "status",
            "college",
            "active_pairings",
            name=op.f("pk_nomination_tally"),
        ),
    )
    op.create_table(
        "talk_tally",
        sa.Column("township_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("talk_date", sa.Date(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("township_id", "talk_date", name=op.f("pk_talk_tally")),
    )
    for table in SCOPED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("township_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("pairing", schema=None) as batch_op:
        batch_op.add_column(sa.Column("in_pool", sa.Boolean(), server_default="0", nullable=False))
    with op.batch_alter_table("nomination", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("active_pairings", sa.Integer(), server_default="0", nullable=False)
        )

    # Fill before the indexes (built once) and before the triggers (which would count twice).
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in (*(FILL_POSTGRESQL if postgresql else FILL_SQLITE), *BACKFILL):
        op.execute(statement)

    with op.batch_alter_table("difficulty", schema=None) as batch_op:
        batch_op.create_index(
            "ix_difficulty_township",
            ["township_id", "status", "raised_at", "resolved_at"],
            unique=False,
        )
    with op.batch_alter_table("election", schema=None) as batch_op:
        batch_op.create_index(
            "ix_election_elected_on", ["elected_on", "township_id"], unique=False
        )
        batch_op.create_index("ix_election_township", ["township_id", "elected_on"], unique=False)
    with op.batch_alter_table("grade_move", schema=None) as batch_op:
        batch_op.create_index(
            "ix_grade_move_township",
            ["township_id", "year", "from_grade", "to_grade"],
            unique=False,
        )
    with op.batch_alter_table("nomination", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nomination_created"))
        batch_op.create_index(
            "ix_nomination_created",
            ["created_at", "township_id", "channel", "key_group", "education"],
            unique=False,
        )
        batch_op.create_index(
            "ix_nomination_township_created",
            ["township_id", "created_at", "channel", "key_group", "education"],
            unique=False,
        )
    with op.batch_alter_table("pairing", schema=None) as batch_op:
        batch_op.drop_index("ix_pairing_mentor")
        batch_op.create_index(
            "ix_pairing_mentor",
            ["mentor_person_id", "ended_at", "in_pool", "last_talk_on", "assigned_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_pairing_active_township",
            ["township_id", "mentor_person_id", "last_talk_on", "assigned_at"],
            unique=False,
            sqlite_where=sa.text("ended_at IS NULL AND in_pool = 1"),
            postgresql_where=sa.text("ended_at IS NULL AND in_pool"),
        )
    with op.batch_alter_table("training_invite", schema=None) as batch_op:
        batch_op.create_index(
            "ix_training_invite_township",
            ["training_id", "township_id", "attended_at"],
            unique=False,
        )
    with op.batch_alter_table("telegram_account", schema=None) as batch_op:
        batch_op.create_index(
            "ix_telegram_account_unreachable",
            ["person_id"],
            unique=False,
            sqlite_where=sa.text("unreachable_at IS NOT NULL"),
            postgresql_where=sa.text("unreachable_at IS NOT NULL"),
        )
    with op.batch_alter_table("practice_post", schema=None) as batch_op:
        batch_op.create_index(
            "ix_practice_post_township",
            ["township_id", "kind", "start_date", "end_date"],
            unique=False,
        )
    with op.batch_alter_table("status_change", schema=None) as batch_op:
        batch_op.create_index(
            "ix_status_change_township", ["township_id", "event", "at"], unique=False
        )

    for statement in _postgresql_triggers() if postgresql else _sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for function in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION {function}() CASCADE")
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {trigger}")

    with op.batch_alter_table("status_change", schema=None) as batch_op:
        batch_op.drop_index("ix_status_change_township")
    with op.batch_alter_table("training_invite", schema=None) as batch_op:
        batch_op.drop_index("ix_training_invite_township")
    with op.batch_alter_table("telegram_account", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_telegram_account_unreachable",
            sqlite_where=sa.text("unreachable_at IS NOT NULL"),
            postgresql_where=sa.text("unreachable_at IS NOT NULL"),
        )
    with op.batch_alter_table("practice_post", schema=None) as batch_op:
        batch_op.drop_index("ix_practice_post_township")
    with op.batch_alter_table("pairing", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_pairing_active_township",
            sqlite_where=sa.text("ended_at IS NULL AND in_pool = 1"),
            postgresql_where=sa.text("ended_at IS NULL AND in_pool"),
        )
        batch_op.drop_index("ix_pairing_mentor")
        batch_op.create_index("ix_pairing_mentor", ["mentor_person_id", "ended_at"], unique=False)
        batch_op.drop_column("in_pool")
    with op.batch_alter_table("nomination", schema=None) as batch_op:
        batch_op.drop_index("ix_nomination_township_created")
        batch_op.drop_index("ix_nomination_created")
        batch_op.create_index(batch_op.f("ix_nomination_created"), ["created_at"], unique=False)
        batch_op.drop_column("active_pairings")
    with op.batch_alter_table("grade_move", schema=None) as batch_op:
        batch_op.drop_index("ix_grade_move_township")
    with op.batch_alter_table("election", schema=None) as batch_op:
        batch_op.drop_index("ix_election_township")
        batch_op.drop_index("ix_election_elected_on")
    with op.batch_alter_table("difficulty", schema=None) as batch_op:
        batch_op.drop_index("ix_difficulty_township")
    for table in reversed(SCOPED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("township_id")

    op.drop_table("talk_tally")
    op.drop_table("nomination_tally")
    op.drop_table("cadence_tally")
