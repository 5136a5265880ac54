"""Key rotation: the stored lookup-hash key, re-encryption of every encrypted column, and the
sealing of texts stored in plain before migration 0011.

Rotating DATA_KEY (README, "Operating"): put a new key in front (`DATA_KEY=new,old`), restart,
run `cadrebot rekey`, then remove the old key. Every encrypted column is listed once, in
ENCRYPTED_COLUMNS; a new encrypted column must be added there or `rekey` leaves it under the
old key (tests/storage/test_rekey.py checks the list against the models' LargeBinary columns).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from storage.crypto import DataCipher, DataKeyError, DecryptError, lookup_hash_with
from storage.db import Database, upsert
from storage.mentoring import sealed_json
from storage.models import (
    Base,
    DataSecret,
    Difficulty,
    Nomination,
    StatusChange,
    TalkLog,
    VettingReview,
)

LOOKUP_SECRET = "lookup"
DEFAULT_BATCH = 500


@dataclass(frozen=True, slots=True)
class EncryptedColumn:
    """A column of Fernet tokens made with DATA_KEY, and its table's one-column primary key."""

    table: str
    key: str
    column: str

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"


# Every column that holds values encrypted with DATA_KEY. Add new ones here.
ENCRYPTED_COLUMNS: list[EncryptedColumn] = [
    EncryptedColumn("data_secret", "name", "wrapped"),
    EncryptedColumn("nomination", "id", "id_number_enc"),
    EncryptedColumn("nomination", "id", "phone_enc"),
    EncryptedColumn("user_data", "user_id", "payload"),
    EncryptedColumn("talk_log", "id", "topics_enc"),
    EncryptedColumn("difficulty", "id", "description_enc"),
    EncryptedColumn("difficulty", "id", "resolution_enc"),
    EncryptedColumn("vetting_review", "id", "note_enc"),
    EncryptedColumn("status_change", "id", "reason_enc"),
    # NULL once the update is handled: only updates waiting to be handled are re-encrypted.
    EncryptedColumn("inbound_update", "update_id", "payload"),
]

# Encrypted columns rekey leaves alone, and why.
NOT_REKEYED: dict[str, str] = {
    # A token no key of DATA_KEY opened at start-up, kept as it was for an operator who finds
    # the old key; re-encrypting it is impossible by definition.
    "quarantined_state.payload": "held because no current key opens it",
}


# ---------------------------------------------------------------------------------------------
# The lookup-hash key.
#
# Why in the database and not a LOOKUP_KEY setting: the hashes are part of the data, so the
# key travels with the data (a restored backup brings the key its hashes were made with), an
# operator rotating DATA_KEY has nothing else to keep in step, and an existing database keeps
# its hashes without anyone copying a derived key into .env. The row is wrapped with DATA_KEY,
# so a copy of the database alone gives neither the data nor the hashes' key.


async def load_cipher(session: AsyncSession, data_key: str) -> DataCipher:
    """The cipher for DATA_KEY with the database's lookup key, stored on first use.

    DataKeyError (one line for the operator) when DATA_KEY is malformed, or none of its keys
    opens the stored lookup key or the stored ID numbers: that is the wrong DATA_KEY, and
    running with it would make every stored value unreadable and miss every duplicate.
    """
    base = DataCipher(data_key)
    wrapped = await _stored_lookup(session)
    if wrapped is None:
        lookup = await _lookup_key_in_use(session, base)
        insert = upsert(session)
        await session.execute(
            insert(DataSecret)
            .values(name=LOOKUP_SECRET, wrapped=base.encrypt_bytes(lookup))
            .on_conflict_do_nothing(index_elements=[DataSecret.name])
        )
        wrapped = await _stored_lookup(session)  # another process may have been first
        assert wrapped is not None
    try:
        lookup = base.decrypt_bytes(wrapped)
    except DecryptError:
        raise DataKeyError(
            "no key in DATA_KEY opens this database's data: set the key it was written with "
            "(to rotate, put the new key in front: DATA_KEY=new,old)"
        ) from None
    return base.with_lookup_key(lookup)


async def _stored_lookup(session: AsyncSession) -> bytes | None:
    return await session.scalar(select(DataSecret.wrapped).where(DataSecret.name == LOOKUP_SECRET))


async def _lookup_key_in_use(session: AsyncSession, base: DataCipher) -> bytes:
    """The HKDF key of whichever DATA_KEY key made the hashes already stored (a database from
    before rotation existed), found by hashing a few stored values again; for a database
    with none yet, the newest key's."""
    samples: list[tuple[bytes, str]] = []
    for enc, digest in (
        (Nomination.id_number_enc, Nomination.id_number_hash),
        (Nomination.phone_enc, Nomination.phone_hash),
    ):
        rows = await session.execute(
            select(enc, digest).where(enc.is_not(None), digest.is_not(None)).limit(5)
        )
        samples.extend(
            (token, hashed) for token, hashed in rows if token is not None and hashed is not None
        )
    if not samples:
        return base.derived_lookup_keys[0]
    for token, hashed in samples:
        try:
            value = base.decrypt(token)
        except DecryptError:
            continue
        for candidate in base.derived_lookup_keys:
            if lookup_hash_with(candidate, value) == hashed:
                return candidate
    raise DataKeyError(
        "no key in DATA_KEY made the ID numbers stored in this database: set the key they "
        "were written with (to rotate, put the new key in front: DATA_KEY=new,old)"
    )


# ---------------------------------------------------------------------------------------------
# Re-encryption.


@dataclass(slots=True)
class ColumnCount:
    label: str
    rotated: int = 0
    current: int = 0
    unreadable: int = 0


@dataclass(slots=True)
class SealCount:
    label: str
    sealed: int = 0


@dataclass(slots=True)
class RekeyReport:
    columns: list[ColumnCount] = field(default_factory=list)
    sealed: list[SealCount] = field(default_factory=list)

    @property
    def unreadable(self) -> int:
        return sum(c.unreadable for c in self.columns)


AfterBatch = Callable[[str, int], Awaitable[None]]


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


async def rekey(
    database: Database,
    cipher: DataCipher,
    *,
    columns: Sequence[EncryptedColumn] | None = None,
    batch_size: int = DEFAULT_BATCH,
    after_batch: AfterBatch | None = None,
) -> RekeyReport:
    """Seal plaintext texts, then re-encrypt every value that the newest key does not open.

    Each batch is its own transaction, and values already under the newest key are skipped:
    a run that stops half-way (a crash, Ctrl-C) leaves every value readable with DATA_KEY,
    and running it again finishes the job. A value is replaced only if it is still the one
    read, so a write by the running bot in between is kept.
    """
    report = RekeyReport(sealed=await seal_plaintext(database, cipher, batch_size=batch_size))
    for spec in ENCRYPTED_COLUMNS if columns is None else columns:
        report.columns.append(await _rekey_column(database, cipher, spec, batch_size, after_batch))
    return report


async def _rekey_column(
    database: Database,
    cipher: DataCipher,
    spec: EncryptedColumn,
    batch_size: int,
    after_batch: AfterBatch | None,
) -> ColumnCount:
    table = _table(spec.table)
    key, column = table.c[spec.key], table.c[spec.column]
    # Re-encryption is not an edit: columns stamped on update keep their value.
    keep = {c.name: c for c in table.c if c.onupdate is not None}
    count = ColumnCount(spec.label)
    last: Any = None
    while True:
        async with database.sessionmaker.begin() as session:
            query = select(key, column).where(column.is_not(None)).order_by(key).limit(batch_size)
            if last is not None:
                query = query.where(key > last)
            rows = (await session.execute(query)).all()
            for row_key, token in rows:
                if cipher.is_current(token):
                    count.current += 1
                    continue
                try:
                    fresh = cipher.rotate(token)
                except DecryptError:
                    count.unreadable += 1
                    continue
                changed = await session.execute(
                    update(table)
                    .where(key == row_key, column == token)
                    .values({column.name: fresh, **keep})
                )
                if changed.rowcount:  # type: ignore[attr-defined]
                    count.rotated += 1
                else:  # rewritten meanwhile, by a writer that used the newest key
                    count.current += 1
        if not rows:
            return count
        last = rows[-1][0]
        if after_batch is not None:
            await after_batch(spec.label, len(rows))


# ---------------------------------------------------------------------------------------------
# Texts stored in plain before migration 0011.


async def seal_plaintext(
    database: Database, cipher: DataCipher, *, batch_size: int = DEFAULT_BATCH
) -> list[SealCount]:
    """Encrypt talk topics, difficulty texts, vetting notes and status-change reasons still in
    their plain columns, and empty those.

    Run at every start of the bot and by `cadrebot rekey`; a no-op (one probe of a partial
    index per table) once everything is sealed. Batches commit one by one, so it can be stopped.
    """
    talks = SealCount("talk_log.topics")
    while True:
        async with database.sessionmaker.begin() as session:
            rows = (
                await session.execute(
                    select(TalkLog.id, TalkLog.topics)
                    .where(TalkLog.topics_enc.is_(None))
                    .order_by(TalkLog.id)
                    .limit(batch_size)
                )
            ).all()
            for talk_id, topics in rows:
                changed = await session.execute(
                    update(TalkLog)
                    .where(TalkLog.id == talk_id, TalkLog.topics_enc.is_(None))
                    .values(topics_enc=sealed_json(cipher, topics), topics={})
                )
                talks.sealed += changed.rowcount  # type: ignore[attr-defined]
        if len(rows) < batch_size:
            break
    difficulties = SealCount("difficulty.description")
    while True:
        async with database.sessionmaker.begin() as session:
            found = (
                await session.execute(
                    select(Difficulty.id, Difficulty.description, Difficulty.resolution)
                    .where(Difficulty.description_enc.is_(None))
                    .order_by(Difficulty.id)
                    .limit(batch_size)
                )
            ).all()
            for difficulty_id, description, resolution in found:
                changed = await session.execute(
                    update(Difficulty)
                    .where(Difficulty.id == difficulty_id, Difficulty.description_enc.is_(None))
                    .values(
                        description_enc=cipher.encrypt(description),
                        description="",
                        resolution_enc=(
                            cipher.encrypt(resolution) if resolution is not None else None
                        ),
                        resolution=None,
                    )
                )
                difficulties.sealed += changed.rowcount  # type: ignore[attr-defined]
        if len(found) < batch_size:
            break
    notes = await _seal_text(
        database, cipher, VettingReview, VettingReview.note, "note_enc", batch_size
    )
    reasons = await _seal_text(
        database, cipher, StatusChange, StatusChange.reason, "reason_enc", batch_size
    )
    return [talks, difficulties, notes, reasons]


async def _seal_text(
    database: Database,
    cipher: DataCipher,
    model: type[VettingReview] | type[StatusChange],
    plain: InstrumentedAttribute[str | None],
    sealed: str,
    batch_size: int,
) -> SealCount:
    """Move one nullable text column into its encrypted twin, batch by batch."""
    count = SealCount(f"{model.__tablename__}.{plain.key}")
    while True:
        async with database.sessionmaker.begin() as session:
            rows = (
                await session.execute(
                    select(model.id, plain)
                    .where(plain.is_not(None))
                    .order_by(model.id)
                    .limit(batch_size)
                )
            ).all()
            for row_id, text in rows:
                if text is None:  # for the type checker: the query asked for texts
                    continue
                changed = await session.execute(
                    update(model)
                    .where(model.id == row_id, plain.is_not(None))
                    .values({sealed: cipher.encrypt(text), plain.key: None})
                )
                count.sealed += changed.rowcount  # type: ignore[attr-defined]
        if len(rows) < batch_size:
            return count
