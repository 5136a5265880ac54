"""DatabasePersistence: encrypted user_data and conversation states survive a restart."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import func, select, update

from bot.persistence import DatabasePersistence
from storage.db import Database
from storage.models import ConversationState, QuarantinedState, UserData

KEY = Fernet.generate_key().decode()
USER = 7_000_000_123  # above 2**31
OTHER_USER = 42
ID_NUMBER = "52010219900307123X"
DRAFT = {
    "nomination": {
        "name": "张三",
        "id_number": ID_NUMBER,
        "village": {"township": "青山镇", "name": "石桥村"},
        "answers": ["是", "否", 3, None, True],
    },
    "locale": "zh_CN",
}
CHINESE = ["张三", "青山镇", "石桥村", "是", "否"]


async def _payloads(db: Database) -> dict[int, bytes]:
    async with db.sessionmaker() as session:
        rows = (await session.execute(select(UserData.user_id, UserData.payload))).all()
    return {user_id: bytes(payload) for user_id, payload in rows}


async def test_user_data_round_trips_across_restart(db: Database) -> None:
    persistence = DatabasePersistence(db, KEY)
    assert await persistence.get_user_data() == {}
    await persistence.update_user_data(USER, DRAFT)
    await persistence.update_user_data(OTHER_USER, {"step": 2})

    restarted = DatabasePersistence(db, KEY)
    assert await restarted.get_user_data() == {USER: DRAFT, OTHER_USER: {"step": 2}}

    changed = {**DRAFT, "locale": "en"}
    await restarted.update_user_data(USER, changed)
    assert (await DatabasePersistence(db, KEY).get_user_data())[USER] == changed


async def test_user_data_payload_is_encrypted(db: Database) -> None:
    await DatabasePersistence(db, KEY).update_user_data(USER, DRAFT)
    (payload,) = (await _payloads(db)).values()
    assert ID_NUMBER.encode() not in payload
    for word in CHINESE:
        assert word.encode() not in payload
        assert word.encode("unicode_escape") not in payload
    assert b"nomination" not in payload
    # A Fernet token is what is stored, and the right key opens it.
    assert Fernet(KEY.encode()).decrypt(payload).decode().count(ID_NUMBER) == 1


async def test_user_data_cannot_be_read_with_another_key(db: Database) -> None:
    await DatabasePersistence(db, KEY).update_user_data(USER, DRAFT)
    stranger = DatabasePersistence(db, Fernet.generate_key().decode())
    # Another key reads nothing (and no longer stops start-up: the row is quarantined).
    assert await stranger.get_user_data() == {}
    async with db.sessionmaker() as session:
        kept = await session.scalar(select(QuarantinedState.payload))
    assert kept is not None and ID_NUMBER.encode() not in kept
    with pytest.raises(InvalidToken):
        Fernet(Fernet.generate_key()).decrypt(kept)


async def test_unchanged_user_data_is_not_rewritten(db: Database) -> None:
    await DatabasePersistence(db, KEY).update_user_data(USER, DRAFT)
    before = (await _payloads(db))[USER]

    restarted = DatabasePersistence(db, KEY)
    await restarted.get_user_data()
    await restarted.update_user_data(USER, dict(DRAFT))
    # Fernet tokens carry a fresh IV: identical bytes mean no write happened.
    assert (await _payloads(db))[USER] == before

    await restarted.update_user_data(USER, {**DRAFT, "locale": "en"})
    assert (await _payloads(db))[USER] != before


async def test_empty_user_data_of_a_new_user_is_not_stored(db: Database) -> None:
    persistence = DatabasePersistence(db, KEY)
    await persistence.update_user_data(USER, {})
    assert await _payloads(db) == {}

    # Emptying an existing draft is stored, though: the old draft must not come back.
    await persistence.update_user_data(USER, {"step": 1})
    await persistence.update_user_data(USER, {})
    assert await DatabasePersistence(db, KEY).get_user_data() == {USER: {}}


async def test_drop_user_data(db: Database) -> None:
    persistence = DatabasePersistence(db, KEY)
    await persistence.update_user_data(USER, DRAFT)
    await persistence.update_user_data(OTHER_USER, {"step": 2})
    await persistence.drop_user_data(USER)
    assert set(await _payloads(db)) == {OTHER_USER}
    assert await DatabasePersistence(db, KEY).get_user_data() == {OTHER_USER: {"step": 2}}

    # After a drop, the same draft is written again rather than assumed present.
    await persistence.update_user_data(USER, DRAFT)
    assert (await DatabasePersistence(db, KEY).get_user_data())[USER] == DRAFT


async def test_updated_at_moves_on_rewrite(db: Database) -> None:
    persistence = DatabasePersistence(db, KEY)
    await persistence.update_user_data(USER, {"step": 1})
    old = datetime(2020, 1, 1, tzinfo=UTC)
    async with db.sessionmaker.begin() as session:
        await session.execute(update(UserData).values(updated_at=old))
    await persistence.update_user_data(USER, {"step": 2})
    async with db.sessionmaker() as session:
        assert await session.scalar(select(UserData.updated_at)) > old


async def test_conversations_round_trip_across_restart(db: Database) -> None:
    persistence = DatabasePersistence(db, KEY)
    assert await persistence.get_conversations("nominate") == {}
    await persistence.update_conversation("nominate", (123, 123), 2)
    await persistence.update_conversation("nominate", (USER, USER), "ASK_NAME")
    await persistence.update_conversation("nominate", (-1001234567890, USER, 5), 0)
    await persistence.update_conversation("vetting", (123, 123), "REVIEW")

    restarted = DatabasePersistence(db, KEY)
    nominate = await restarted.get_conversations("nominate")
    assert nominate == {(123, 123): 2, (USER, USER): "ASK_NAME", (-1001234567890, USER, 5): 0}
    assert all(isinstance(key, tuple) for key in nominate)
    assert type(nominate[(123, 123)]) is int
    assert await restarted.get_conversations("vetting") == {(123, 123): "REVIEW"}
    assert await restarted.get_conversations("unknown") == {}

    # A new state replaces the old one in place.
    await restarted.update_conversation("nominate", (123, 123), "CONFIRM")
    assert (await persistence.get_conversations("nominate"))[(123, 123)] == "CONFIRM"
    async with db.sessionmaker() as session:
        rows = await session.scalar(select(func.count()).select_from(ConversationState))
    assert rows == 4


async def test_conversation_ends_with_none(db: Database) -> None:
    persistence = DatabasePersistence(db, KEY)
    await persistence.update_conversation("nominate", (123, 123), 2)
    await persistence.update_conversation("nominate", (456, 456), 3)
    await persistence.update_conversation("vetting", (123, 123), 1)

    await persistence.update_conversation("nominate", (123, 123), None)
    assert await persistence.get_conversations("nominate") == {(456, 456): 3}
    assert await persistence.get_conversations("vetting") == {(123, 123): 1}
    # Ending a conversation that is not stored is harmless.
    await persistence.update_conversation("nominate", (999, 999), None)
    assert await DatabasePersistence(db, KEY).get_conversations("nominate") == {(456, 456): 3}


async def test_unpersisted_stores_stay_empty(db: Database) -> None:
    persistence = DatabasePersistence(db, KEY)
    assert persistence.store_data.user_data
    assert not persistence.store_data.chat_data
    assert not persistence.store_data.bot_data
    assert not persistence.store_data.callback_data
    assert await persistence.get_chat_data() == {}
    assert await persistence.get_bot_data() == {}
    assert await persistence.get_callback_data() is None
