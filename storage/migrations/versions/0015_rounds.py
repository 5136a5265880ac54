"""selection rounds and re-entry

- selection_round: a year or a batch a county official opens, with its dates;
- nomination.round_id: the round a nomination belongs to (NULL: the implicit round of a
  county that has opened none);
- the keyed hashes of the ID number and the phone are unique among open nominations only
  (partial unique indexes), no longer for good: a person rejected, declined or adjusted out
  may nominate again in a later round.

SQLite cannot drop a table's UNIQUE constraint in place: the table is rebuilt from its own
CREATE TABLE text without them (as 0013 does, saving and re-creating every trigger, the
table's indexes and its AUTOINCREMENT sequence). The downgrade refuses while two nominations
share a hash, since the old constraints could not hold.

Revision ID: 0015_rounds
Revises: 0014
Create Date: 2026-12-06 23:00:00
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_rounds"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status NOT IN ('adjusted', 'declined', 'rejected')"
UNIQUES = {
    "id_number_hash": "uq_nomination_id_number_hash",
    "phone_hash": "uq_nomination_phone_hash",
}
PARTIALS = {"id_number_hash": "uq_nomination_open_id", "phone_hash": "uq_nomination_open_phone"}
ROUND_FK = "fk_nomination_round_id_selection_round"


def _sqlite_rebuild(change_create: object, columns: str = "*") -> None:
    """Rebuild nomination with `change_create(create_sql) -> new create_sql`, keeping its rows,
    its indexes, every trigger of the database and its AUTOINCREMENT sequence."""
    bind = op.get_bind()

    def rows(sql: str, **params: str) -> list[tuple[str, str]]:
        return [(str(a), str(b)) for a, b in bind.execute(sa.text(sql), params).all()]

    triggers = rows("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
    for name, _ in triggers:
        op.execute(f'DROP TRIGGER "{name}"')
    create = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'nomination'")
    ).scalar_one()
    indexes = rows(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'nomination' "
        "AND sql IS NOT NULL"
    )
    sequence = bind.execute(
        sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'nomination'")
    ).scalar()
    renamed, found = re.subn(
        r'^CREATE TABLE "?nomination"? \(', "CREATE TABLE _new_nomination (", str(create)
    )
    if found != 1:
        raise RuntimeError("unexpected schema for nomination")
    op.execute(change_create(renamed))  # type: ignore[operator]
    op.execute(f"INSERT INTO _new_nomination SELECT {columns} FROM nomination")
    op.execute("DROP TABLE nomination")
    op.execute("ALTER TABLE _new_nomination RENAME TO nomination")
    for _, sql in indexes:
        op.execute(sql)
    if sequence is not None:
        # The copy restarts the sequence at the highest id left: ids are never reused (0013).
        op.execute("DELETE FROM sqlite_sequence WHERE name = 'nomination'")
        op.execute(
            sa.text(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('nomination', :seq)"
            ).bindparams(seq=int(sequence))
        )
    for _, sql in triggers:
        op.execute(sql)


def _without_uniques(create: str) -> str:
    for name in UNIQUES.values():
        create, found = re.subn(rf",\s*CONSTRAINT {name} UNIQUE \(\w+\)", "", create)
        if found != 1:
            raise RuntimeError(f"unexpected schema for nomination: {name}")
    return create


def upgrade() -> None:
    op.create_table(
        "selection_round",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("opened_by_person_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint("ends_on >= starts_on", name=op.f("ck_selection_round_dates_in_order")),
        sa.ForeignKeyConstraint(
            ["opened_by_person_id"],
            ["person.id"],
            name=op.f("fk_selection_round_opened_by_person_id_person"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_selection_round")),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"ALTER TABLE nomination ADD COLUMN round_id INTEGER CONSTRAINT {ROUND_FK} "
            "REFERENCES selection_round (id)"
        )
        _sqlite_rebuild(_without_uniques)
    else:
        op.add_column("nomination", sa.Column("round_id", sa.Integer(), nullable=True))
        op.create_foreign_key(ROUND_FK, "nomination", "selection_round", ["round_id"], ["id"])
        for name in UNIQUES.values():
            op.drop_constraint(name, "nomination", type_="unique")
    for column, name in PARTIALS.items():
        op.create_index(
            name,
            "nomination",
            [column],
            unique=True,
            sqlite_where=sa.text(OPEN),
            postgresql_where=sa.text(OPEN),
        )


def downgrade() -> None:
    bind = op.get_bind()
    for column in UNIQUES:
        shared = bind.execute(
            sa.text(
                f"SELECT count(*) FROM (SELECT {column} FROM nomination WHERE {column} IS NOT "
                f"NULL GROUP BY {column} HAVING count(*) > 1) AS twice"
            )
        ).scalar()
        if shared:
            raise RuntimeError(
                f"{shared} people nominated in more than one round: cannot go below 0015"
            )
    for name in PARTIALS.values():
        op.drop_index(name, table_name="nomination")
    if bind.dialect.name == "sqlite":
        names = [
            str(row[1]) for row in bind.execute(sa.text("PRAGMA table_info(nomination)")).all()
        ]
        kept = ", ".join(n for n in names if n != "round_id")

        def restore(create: str) -> str:
            create, found = re.subn(
                rf",\s*round_id INTEGER CONSTRAINT {ROUND_FK} REFERENCES selection_round \(id\)",
                "",
                create,
            )
            if found != 1:
                raise RuntimeError("unexpected schema for nomination: round_id")
            uniques = "".join(
                f", \n\tCONSTRAINT {name} UNIQUE ({column})" for column, name in UNIQUES.items()
            )
            return re.sub(r"\)\s*$", uniques + "\n)", create.rstrip())

        _sqlite_rebuild(restore, kept)
    else:
        for column, name in UNIQUES.items():
            op.create_unique_constraint(name, "nomination", [column])
        op.drop_constraint(ROUND_FK, "nomination", type_="foreignkey")
        op.drop_column("nomination", "round_id")
    op.drop_table("selection_round")
