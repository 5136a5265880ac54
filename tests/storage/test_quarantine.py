"""Start-up survives persisted rows it cannot read (issue 11, finding 3), on both engines."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import insert, select

from bot.persistence import DatabasePersistence
from storage.crypto import DataCipher
from storage.db import Database
from storage.models import ConversationState, QuarantinedState, UserData

KEY = Fernet.generate_key().decode()
USER = 7_000_000_321
ID_NUMBER = "52010219900307123X"
GOOD = {"nomination": {"answers": {"id_number": ID_NUMBER}, "at": 3}}


async def _store_user_data(db: Database, user_id: int, payload: bytes) -> None:
    async with db.sessionmaker.begin() as session:
        await session.execute(insert(UserData).values(user_id=user_id, payload=payload))


async def _store_state(db: Database, key: str, state: Any, name: str = "nomination") -> None:
    async with db.sessionmaker.begin() as session:
        await session.execute(insert(ConversationState).values(name=name, key=key, state=state))


async def _quarantined(db: Database) -> list[QuarantinedState]:
    async with db.sessionmaker() as session:
        return list((await session.scalars(select(QuarantinedState))).all())


async def _left(db: Database, model: type) -> int:
    async with db.sessionmaker() as session:
        return len((await session.scalars(select(model))).all())


def _encrypted(value: str, key: str = KEY) -> bytes:
    return DataCipher(key).encrypt(value)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not a fernet token", "undecryptable"),
        (_encrypted(json.dumps(GOOD), Fernet.generate_key().decode()), "undecryptable"),
        (_encrypted("{not json"), "not JSON"),
        (_encrypted(json.dumps(["a", "list"])), "not a dict"),
    ],
    ids=["damaged", "another-key", "not-json", "not-a-dict"],
)
async def test_unreadable_user_data_is_quarantined_and_the_rest_loads(
    db: Database, payload: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    await _store_user_data(db, USER, payload)
    await _store_user_data(db, 42, _encrypted(json.dumps(GOOD)))
    await _store_state(db, json.dumps([USER, USER]), {"state": 3})
    await _store_state(db, json.dumps([42, 42]), {"state": 3})
    caplog.set_level(logging.DEBUG, logger="cadrebot")

    persistence = DatabasePersistence(db, KEY)
    assert await persistence.get_user_data() == {42: GOOD}
    # The person whose draft is gone starts clean: their open question goes too.
    assert await persistence.get_conversations("nomination") == {(42, 42): 3}

    rows = await _quarantined(db)
    assert {(r.kind, r.user_id) for r in rows} == {("user_data", USER), ("conversation", USER)}
    assert any(reason in r.reason for r in rows)
    assert all(r.notified_at is None for r in rows)
    assert await _left(db, UserData) == 1 and await _left(db, ConversationState) == 1
    # Nothing a person typed, nor their id, reaches the log.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("cadrebot"))
    assert "quarantined" in ours
    assert ID_NUMBER not in ours and str(USER) not in ours
    # A second start finds nothing more to quarantine.
    again = DatabasePersistence(db, KEY)
    assert await again.get_user_data() == {42: GOOD}
    assert len(await _quarantined(db)) == 2


@pytest.mark.parametrize(
    ("key", "state", "reason"),
    [
        ("not json", {"state": 1}, "malformed key"),
        (json.dumps({"chat": 1}), {"state": 1}, "malformed key"),
        (json.dumps(["a", "b"]), {"state": 1}, "malformed key"),
        (json.dumps([USER, USER]), [1, 2], "not a dict"),
        (json.dumps([USER, USER]), {"step": 1}, "not a dict"),
        (json.dumps([USER, USER]), {"state": {"nested": 1}}, "not an int"),
    ],
    ids=["key-not-json", "key-dict", "key-strings", "state-list", "no-state", "state-dict"],
)
async def test_malformed_conversation_rows_are_quarantined(
    db: Database, key: str, state: Any, reason: str
) -> None:
    await _store_state(db, key, state)
    await _store_state(db, json.dumps([42, 42]), {"state": 2})
    persistence = DatabasePersistence(db, KEY)
    assert await persistence.get_user_data() == {}
    assert await persistence.get_conversations("nomination") == {(42, 42): 2}
    (row,) = await _quarantined(db)
    assert row.kind == "conversation" and reason in row.reason
    assert await _left(db, ConversationState) == 1
