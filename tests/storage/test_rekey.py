"""Key rotation (issue 11, finding 4) and talk texts encrypted at rest (finding 18), on SQLite
and PostgreSQL: DATA_KEY=new,old keeps old data readable and duplicates found, `rekey` moves
every value to the new key (and can be stopped and run again), and the old key can then go."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from cryptography.fernet import Fernet
from openpyxl import load_workbook
from sqlalchemy import LargeBinary, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.oversight.export import workbook_labels
from storage import export, mentoring, nominations, tally
from storage.crypto import DataCipher, DataKeyError, LookupKeyMissing
from storage.db import Database
from storage.export import ExportScope
from storage.migrate import alembic_config
from storage.models import (
    Base,
    DataSecret,
    Difficulty,
    Nomination,
    Pairing,
    Person,
    StatusChange,
    TalkLog,
    UserData,
    VettingReview,
)
from storage.nominations import Duplicate, NominationForm
from storage.rekey import ENCRYPTED_COLUMNS, NOT_REKEYED, load_cipher, rekey, seal_plaintext
from storage.rules.identity import make_id_number
from storage.rules.vetting import Channel
from templates import build_environment
from tests.support.county import legacy_rows, pair
from tests.support.county import township as _township

NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
IDS = [make_id_number("520221", date(1980 + i, 3, 7), 10 + i, male=i % 2 == 0) for i in range(7)]
PHONES = [f"1380000{i:04d}" for i in range(7)]
TOPICS = {
    "thought": {"text": "思想稳定"},
    "work": {"voice": "VOICE-1"},
    "life": {"text": "母亲住院，家里缺钱"},
    "problems": {"text": "缺少启动资金"},
}


async def _cipher(db: Database, data_key: str) -> DataCipher:
    async with db.sessionmaker.begin() as session:
        return await load_cipher(session, data_key)


async def _nominate(db: Database, cipher: DataCipher, township_id: int, i: int) -> int:
    async with db.sessionmaker.begin() as session:
        nomination = await nominations.create_nomination(
            session,
            cipher,
            NominationForm(
                full_name=f"候选人{i}",
                township_id=township_id,
                key_group="veteran",
                id_number=IDS[i],
                phone=PHONES[i],
            ),
            channel=Channel.ORGANIZATION,
            submitted_by=None,
            person_id=None,
            now=NOW,
        )
        return nomination.id


async def _is_duplicate(db: Database, cipher: DataCipher, i: int) -> tuple[bool, bool]:
    async with db.sessionmaker() as session:
        by_id = await nominations.is_duplicate(session, cipher, id_number=IDS[i], phone=None)
        by_phone = await nominations.is_duplicate(session, cipher, id_number=None, phone=PHONES[i])
    return by_id, by_phone


async def _add_talk(session: AsyncSession, nomination_id: int, **values: object) -> TalkLog:
    """A pairing and a talk as rows (the mentor is a bare person)."""
    mentor = Person(full_name="导师")
    session.add(mentor)
    await session.flush()
    pairing = await pair(session, nomination_id, mentor.id, assigned_at=NOW - timedelta(days=10))
    talk = TalkLog(
        pairing_id=pairing.id,
        nomination_id=nomination_id,
        mentor_person_id=mentor.id,
        talk_date=date(2026, 3, 1),
        mode="home",
        **values,
    )
    session.add(talk)
    await session.flush()
    return talk


async def _values(db: Database) -> dict[str, list[bytes]]:
    """Every stored encrypted value, per column of the registry."""
    found: dict[str, list[bytes]] = {}
    async with db.engine.connect() as connection:
        for spec in ENCRYPTED_COLUMNS:
            table = Base.metadata.tables[spec.table]
            column = table.c[spec.column]
            rows = await connection.execute(select(column).where(column.is_not(None)))
            found[spec.label] = [token for (token,) in rows]
    return found


def test_the_registry_lists_every_encrypted_column() -> None:
    """A LargeBinary column left out of ENCRYPTED_COLUMNS would stay under the old key."""
    binary = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.c
        if isinstance(column.type, LargeBinary)
    }
    assert binary == {spec.label for spec in ENCRYPTED_COLUMNS} | set(NOT_REKEYED)


def test_several_keys_encrypt_with_the_first_and_decrypt_with_any() -> None:
    old = DataCipher(OLD)
    both = DataCipher(f"{NEW}, {OLD}")
    token = old.encrypt("520221199003071234")
    assert both.decrypt(token) == "520221199003071234"
    assert not both.is_current(token)
    fresh = both.rotate(token)
    assert both.is_current(fresh) and DataCipher(NEW).decrypt(fresh) == "520221199003071234"
    assert DataCipher(NEW).decrypt(both.encrypt("x")) == "x"
    # Which key would the hash use? None without the database's lookup key.
    with pytest.raises(LookupKeyMissing):
        both.lookup_hash("x")
    assert both.with_lookup_key(b"k" * 32).lookup_hash("x") == DataCipher(
        OLD, b"k" * 32
    ).lookup_hash("x")
    for bad in (f"{OLD},{OLD}", f"{OLD},nope", f"{OLD},"):
        with pytest.raises(DataKeyError, match="key 2 of DATA_KEY") as exc:
            DataCipher(bad)
        assert OLD not in str(exc.value)


async def test_rotation_with_live_data(db: Database) -> None:
    township_id = await _township(db)
    # A database from before rotation: hashes made with the HKDF key of the one DATA_KEY,
    # and no lookup key stored yet.
    legacy = DataCipher(OLD)
    old_ids = [await _nominate(db, legacy, township_id, i) for i in range(3)]
    async with db.sessionmaker.begin() as session:
        session.add(
            UserData(user_id=42, payload=legacy.fernet.encrypt(b'{"draft": 1}'), updated_at=NOW)
        )
        await _add_talk(session, old_ids[0], topics=TOPICS)
    assert (await _values(db))["data_secret.wrapped"] == []

    # Rotation starts: the new key in front. The first load finds which key made the hashes.
    rotating = await _cipher(db, f"{NEW},{OLD}")
    assert rotating.lookup_hash(IDS[0]) == legacy.lookup_hash(IDS[0])
    async with db.sessionmaker() as session:
        first = await session.get(Nomination, old_ids[0])
        assert first is not None and first.id_number_enc is not None
        assert rotating.decrypt(first.id_number_enc) == IDS[0]
    assert await _is_duplicate(db, rotating, 1) == (True, True)
    with pytest.raises(Duplicate):
        await _nominate(db, rotating, township_id, 2)
    new_id = await _nominate(db, rotating, township_id, 3)
    async with db.sessionmaker.begin() as session:
        await _add_talk(
            session, new_id, topics={}, topics_enc=mentoring.sealed_json(rotating, TOPICS)
        )
        session.add(
            Difficulty(
                nomination_id=new_id,
                description="",
                description_enc=rotating.encrypt("家中老人需要照顾"),
            )
        )

    report = await rekey(db, rotating, batch_size=2)
    async with db.sessionmaker() as session:
        # Re-encryption is not an edit: a draft keeps its age (retention counts from it).
        assert await session.scalar(select(UserData.updated_at)) == NOW
    counts = {c.label: (c.rotated, c.current, c.unreadable) for c in report.columns}
    assert counts == {
        "data_secret.wrapped": (0, 1, 0),  # wrapped with the new key when first stored
        "inbound_update.payload": (0, 0, 0),  # no update waiting to be handled
        "nomination.id_number_enc": (3, 1, 0),
        "nomination.phone_enc": (3, 1, 0),
        "user_data.payload": (1, 0, 0),
        # The plain talk was sealed with the new key first, the other written with it.
        "talk_log.topics_enc": (0, 2, 0),
        "difficulty.description_enc": (0, 1, 0),
        "difficulty.resolution_enc": (0, 0, 0),
        "vetting_review.note_enc": (0, 0, 0),
        "status_change.reason_enc": (0, 0, 0),
    }
    assert [(s.label, s.sealed) for s in report.sealed] == [
        ("talk_log.topics", 1),
        ("difficulty.description", 0),
        ("vetting_review.note", 0),
        ("status_change.reason", 0),
    ]
    # The part rotated while the old key was still listed: now every value opens with the
    # new key alone, and a second run finds nothing to do.
    new_only = DataCipher(NEW)
    for label, tokens in (await _values(db)).items():
        for token in tokens:
            assert new_only.is_current(token), label
    again = await rekey(db, rotating)
    assert all(c.rotated == 0 and c.unreadable == 0 for c in again.columns)

    # The old key is removed: everything still readable, duplicates still found.
    after = await _cipher(db, NEW)
    for i in (0, 1, 3):
        assert await _is_duplicate(db, after, i) == (True, True)
    with pytest.raises(Duplicate):
        await _nominate(db, after, township_id, 0)
    async with db.sessionmaker() as session:
        rows = (
            await session.execute(select(Nomination.id_number_enc, Nomination.phone_enc))
        ).all()
        assert sorted(after.decrypt(i) for i, _ in rows if i) == sorted(
            IDS[i] for i in (0, 1, 2, 3)
        )
        assert sorted(after.decrypt(p) for _, p in rows if p) == sorted(
            PHONES[i] for i in range(4)
        )
        payload = await session.scalar(select(UserData.payload))
        assert payload is not None and after.fernet.decrypt(payload) == b'{"draft": 1}'
        section = await mentoring.dossier_section(session, old_ids[0], cipher=after)
        assert section.talks[0].topics[2].text == "母亲住院，家里缺钱"
    # The old key alone no longer opens this database: one line, not a silent miss.
    with pytest.raises(DataKeyError, match="DATA_KEY"):
        await _cipher(db, OLD)
    # Nor does a stranger's key.
    with pytest.raises(DataKeyError):
        await _cipher(db, Fernet.generate_key().decode())


async def test_a_fresh_database_stores_the_lookup_key_of_its_key(db: Database) -> None:
    cipher = await _cipher(db, NEW)
    assert cipher.lookup_hash(IDS[0]) == DataCipher(NEW).lookup_hash(IDS[0])
    async with db.sessionmaker() as session:
        wrapped = await session.scalar(select(DataSecret.wrapped))
    assert wrapped is not None and DataCipher(NEW).is_current(wrapped)
    # A database whose ID numbers were made with another key is refused, not re-keyed.
    township_id = await _township(db)
    async with db.sessionmaker.begin() as session:
        await session.execute(text("DELETE FROM data_secret"))
    await _nominate(db, DataCipher(OLD), township_id, 0)
    with pytest.raises(DataKeyError, match="ID numbers"):
        await _cipher(db, NEW)


async def test_rekey_interrupted_then_run_again_finishes(db: Database) -> None:
    township_id = await _township(db)
    legacy = await _cipher(db, OLD)
    for i in range(5):
        await _nominate(db, legacy, township_id, i)
    rotating = await _cipher(db, f"{NEW},{OLD}")

    class Crash(Exception):
        pass

    async def crash_in_the_second_batch(label: str, rows: int) -> None:
        if label == "nomination.id_number_enc":
            raise Crash

    with pytest.raises(Crash):
        await rekey(db, rotating, batch_size=2, after_batch=crash_in_the_second_batch)
    new_only = DataCipher(NEW)
    half = (await _values(db))["nomination.id_number_enc"]
    assert sum(new_only.is_current(t) for t in half) == 2  # the first batch was committed
    # A crash inside a batch: its transaction is rolled back, nothing half-written.
    original = rotating.rotate
    calls = 0

    def fail_on_the_third(token: bytes) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Crash
        return original(token)

    rotating.rotate = fail_on_the_third  # type: ignore[method-assign]
    with pytest.raises(Crash):
        await rekey(db, rotating, batch_size=2)
    rotating.rotate = original  # type: ignore[method-assign]

    report = await rekey(db, rotating, batch_size=2)
    counts = {c.label: (c.rotated + c.current, c.unreadable) for c in report.columns}
    assert counts["nomination.id_number_enc"] == (5, 0)
    assert counts["nomination.phone_enc"] == (5, 0)
    for label, tokens in (await _values(db)).items():
        assert all(new_only.is_current(t) for t in tokens), label
    after = await _cipher(db, NEW)
    assert [await _is_duplicate(db, after, i) for i in range(5)] == [(True, True)] * 5


async def test_rekey_counts_a_value_no_key_opens(db: Database) -> None:
    rotating = await _cipher(db, f"{NEW},{OLD}")
    stranger = DataCipher(Fernet.generate_key().decode())
    async with db.sessionmaker.begin() as session:
        session.add(UserData(user_id=7, payload=stranger.fernet.encrypt(b"{}")))
    report = await rekey(db, rotating)
    assert report.unreadable == 1
    (payload,) = (await _values(db))["user_data.payload"]
    assert stranger.fernet.decrypt(payload) == b"{}"  # left as it was


# --- talk texts (finding 18) ------------------------------------------------------------------


async def test_plain_talks_and_difficulties_are_read_then_sealed(db: Database) -> None:
    township_id = await _township(db)
    cipher = await _cipher(db, NEW)
    nomination_id = await _nominate(db, cipher, township_id, 0)
    async with db.sessionmaker.begin() as session:
        talk = await _add_talk(session, nomination_id, topics=TOPICS)  # as before 0011
        session.add_all(
            [
                Difficulty(
                    nomination_id=nomination_id, talk_id=talk.id, description="家中老人需要照顾"
                ),
                Difficulty(
                    nomination_id=nomination_id,
                    description="缺少启动资金",
                    status="resolved",
                    resolution="已协调贷款",
                    resolved_at=NOW,
                ),
            ]
        )

    async def read() -> tuple[list[str | None], list[tuple[str, str | None]]]:
        async with db.sessionmaker() as session:
            section = await mentoring.dossier_section(session, nomination_id, cipher=cipher)
        return (
            [t.text for t in section.talks[0].topics],
            [(d.description, d.resolution) for d in section.difficulties],
        )

    before = await read()
    assert before == (
        ["思想稳定", None, "母亲住院，家里缺钱", "缺少启动资金"],
        [("家中老人需要照顾", None), ("缺少启动资金", "已协调贷款")],
    )
    sealed = await seal_plaintext(db, cipher, batch_size=1)
    assert [(s.label, s.sealed) for s in sealed] == [
        ("talk_log.topics", 1),
        ("difficulty.description", 2),
        ("vetting_review.note", 0),
        ("status_change.reason", 0),
    ]
    assert await read() == before
    async with db.engine.connect() as connection:
        raw = (await connection.execute(text("SELECT topics, topics_enc FROM talk_log"))).one()
        plain = raw[0] if isinstance(raw[0], dict) else json.loads(raw[0])
        assert plain == {} and "母亲".encode() not in bytes(raw[1])
        texts = (
            await connection.execute(
                text("SELECT description, resolution, description_enc FROM difficulty")
            )
        ).all()
        assert [(d, r) for d, r, _ in texts] == [("", None), ("", None)]
        assert all(e is not None for _, _, e in texts)
    assert [s.sealed for s in await seal_plaintext(db, cipher)] == [0, 0, 0, 0]
    # The county's workbook shows the texts, opened with DATA_KEY.
    buffer = io.BytesIO()
    async with db.sessionmaker.begin() as session:
        await export.write_workbook(
            session,
            ExportScope(),
            buffer,
            locale_labels=workbook_labels(build_environment(), "zh_CN"),
            tz=UTC,
            cipher=cipher,
        )
    book = load_workbook(io.BytesIO(buffer.getvalue()), read_only=True)
    cells = {
        str(value)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
        for value in row
    }
    book.close()
    assert {"母亲住院，家里缺钱", "家中老人需要照顾", "已协调贷款"} <= cells


async def test_upgrade_to_0011_with_data_keeps_the_triggers_and_seals_later(
    db: Database,
) -> None:
    """Rows from before 0011 stay readable; the first start with DATA_KEY encrypts them;
    talk_log's tally triggers survive the migration (no table rebuild)."""
    await db.close()
    config = alembic_config(db.url, schema=db.schema)
    await asyncio.to_thread(command.downgrade, config, "0009")
    at = datetime(2026, 3, 1, tzinfo=UTC)
    legacy = DataCipher(OLD)
    # Talks of the one pairing (mentor 2 with nomination 1); each adds its date and mode.
    talk = {"pairing_id": 1, "nomination_id": 1, "mentor_person_id": 2, "topics": TOPICS}
    # Core inserts naming only columns that exist at 0009.
    async with db.engine.begin() as connection:
        await legacy_rows(
            connection,
            at,
            2,
            id_number_enc=legacy.encrypt(IDS[0]),
            id_number_hash=legacy.lookup_hash(IDS[0]),
        )
        await connection.execute(
            insert(Pairing.__table__).values(
                id=1, nomination_id=1, mentor_person_id=2, slot="township", assigned_at=at
            )
        )
        talk_id = await connection.scalar(
            insert(TalkLog.__table__)
            .values(**talk, talk_date=date(2026, 3, 1), mode="face")
            .returning(TalkLog.__table__.c.id)
        )
        await connection.execute(
            insert(Difficulty.__table__).values(
                nomination_id=1, talk_id=talk_id, description="母亲住院", status="open"
            )
        )
        await connection.execute(
            insert(VettingReview.__table__).values(
                nomination_id=1, department="judicial", decision="approve", note="曾有交通违法记录"
            )
        )
        await connection.execute(
            insert(StatusChange.__table__).values(
                nomination_id=1,
                from_status="in_pool",
                to_status="adjusted",
                event="adjust_out",
                reason="长期外出务工",
                at=at,
            )
        )
    await db.close()
    await asyncio.to_thread(command.upgrade, config, "head")

    # The tally triggers still fire on talk_log: a talk added now is counted.
    async with db.engine.begin() as connection:
        await connection.execute(
            insert(TalkLog.__table__).values(**talk, talk_date=date(2026, 3, 2), mode="phone")
        )
        assert await tally.verify(connection) == []
        held = await connection.scalar(text("SELECT sum(n) FROM talk_tally"))
        assert held == 2
    # Rotating at the same time as upgrading: the lookup key is still the old one's.
    cipher = await _cipher(db, f"{NEW},{OLD}")
    assert await _is_duplicate(db, cipher, 0) == (True, False)
    assert [s.sealed for s in await seal_plaintext(db, cipher)] == [2, 1, 1, 1]
    async with db.sessionmaker() as session:
        section = await mentoring.dossier_section(session, 1, cipher=cipher)
    assert [t.topics[2].text for t in section.talks] == ["母亲住院，家里缺钱"] * 2
    assert [d.description for d in section.difficulties] == ["母亲住院"]
    async with db.sessionmaker() as session:
        review = await session.scalar(select(VettingReview))
    assert review is not None and review.note is None and review.note_enc is not None
    assert cipher.decrypt(review.note_enc) == "曾有交通违法记录"
    async with db.sessionmaker() as session:
        change = await session.scalar(select(StatusChange))
    assert change is not None and change.reason is None and change.reason_enc is not None
    assert cipher.decrypt(change.reason_enc) == "长期外出务工"
    # Going down would destroy the encrypted texts: refused.
    await db.close()
    with pytest.raises(RuntimeError, match="would lose"):
        await asyncio.to_thread(command.downgrade, config, "0009")
