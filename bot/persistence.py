"""PTB persistence on our own tables (not pickle): conversation states and user_data.

user_data holds drafts of flows, which may contain an ID number before it is submitted, so
each payload is encrypted with the data key. bot_data and chat_data are not persisted: shared
services live in bot_data and every domain record lives in its own table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import ConversationDict, ConversationKey

from storage.crypto import DataCipher
from storage.db import Database
from storage.models import ConversationState, UserData

UserDict = dict[Any, Any]


class DatabasePersistence(BasePersistence[UserDict, dict[Any, Any], dict[Any, Any]]):
    """Stores conversation states and encrypted user_data in the application's database."""

    def __init__(self, database: Database, data_key: str, update_interval: float = 60) -> None:
        super().__init__(
            store_data=PersistenceInput(
                bot_data=False, chat_data=False, user_data=True, callback_data=False
            ),
            update_interval=update_interval,
        )
        self.database = database
        # Every key of DATA_KEY (newest first) opens a draft; new drafts use the newest.
        self._fernet = DataCipher(data_key).fernet
        # Digest of what each user's row holds, so that untouched drafts cost no write.
        self._written: dict[int, bytes] = {}

    def _insert(self) -> Callable[..., Any]:
        return sqlite_insert if self.database.url.startswith("sqlite") else pg_insert

    async def get_user_data(self) -> dict[int, UserDict]:
        async with self.database.sessionmaker() as session:
            rows = (await session.execute(select(UserData.user_id, UserData.payload))).all()
        result: dict[int, UserDict] = {}
        for user_id, payload in rows:
            plain = self._fernet.decrypt(payload)
            result[user_id] = json.loads(plain)
            self._written[user_id] = hashlib.sha256(plain).digest()
        return result

    async def update_user_data(self, user_id: int, data: UserDict) -> None:
        plain = json.dumps(data, ensure_ascii=False, sort_keys=True).encode()
        digest = hashlib.sha256(plain).digest()
        if self._written.get(user_id) == digest:
            return
        if not data and user_id not in self._written:
            return
        payload = self._fernet.encrypt(plain)
        insert = self._insert()
        statement = insert(UserData).values(user_id=user_id, payload=payload)
        statement = statement.on_conflict_do_update(
            index_elements=[UserData.user_id], set_={"payload": payload, "updated_at": func.now()}
        )
        async with self.database.sessionmaker.begin() as session:
            await session.execute(statement)
        self._written[user_id] = digest

    async def drop_user_data(self, user_id: int) -> None:
        async with self.database.sessionmaker.begin() as session:
            await session.execute(delete(UserData).where(UserData.user_id == user_id))
        self._written.pop(user_id, None)

    async def refresh_user_data(self, user_id: int, user_data: UserDict) -> None:
        """Nothing to do: this process is the only writer of a user's draft."""

    async def get_conversations(self, name: str) -> ConversationDict:
        async with self.database.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(ConversationState.key, ConversationState.state).where(
                        ConversationState.name == name
                    )
                )
            ).all()
        return {tuple(json.loads(key)): state["state"] for key, state in rows}

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        key_text = json.dumps(list(key))
        async with self.database.sessionmaker.begin() as session:
            if new_state is None:
                await session.execute(
                    delete(ConversationState).where(
                        ConversationState.name == name, ConversationState.key == key_text
                    )
                )
                return
            insert = self._insert()
            value = {"state": new_state}
            statement = insert(ConversationState).values(name=name, key=key_text, state=value)
            statement = statement.on_conflict_do_update(
                index_elements=[ConversationState.name, ConversationState.key],
                set_={"state": value},
            )
            await session.execute(statement)

    # Not persisted (see the module docstring); PTB still requires the methods.
    async def get_chat_data(self) -> dict[int, dict[Any, Any]]:
        return {}

    async def get_bot_data(self) -> dict[Any, Any]:
        return {}

    async def get_callback_data(self) -> None:
        return None

    async def update_chat_data(self, chat_id: int, data: dict[Any, Any]) -> None:
        return None

    async def update_bot_data(self, data: dict[Any, Any]) -> None:
        return None

    async def update_callback_data(self, data: Any) -> None:
        return None

    async def drop_chat_data(self, chat_id: int) -> None:
        return None

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[Any, Any]) -> None:
        return None

    async def refresh_bot_data(self, bot_data: dict[Any, Any]) -> None:
        return None

    async def flush(self) -> None:
        return None
