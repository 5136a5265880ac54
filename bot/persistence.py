"""PTB persistence on our own tables (not pickle): conversation states and user_data.

user_data holds drafts of flows, which may contain an ID number before it is submitted, so
each payload is encrypted with the data key. bot_data and chat_data are not persisted: shared
services live in bot_data and every domain record lives in its own table.

Inside an update the writes join the update's transaction
(handlers.chat.context.UpdateTransaction), so a draft, a conversation state and the
handler's own rows are committed together.

Start-up never stops on a row it cannot read (another DATA_KEY, a damaged payload, a key or
state that is not what this code writes): the row is moved to `quarantined_state` with its
reason, the person starts clean, and the `restore-notices` planner tells them once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import ConversationDict, ConversationKey

from handlers.chat.context import current_transaction
from storage.crypto import DataCipher, DecryptError
from storage.db import Database, upsert_for
from storage.models import ConversationState, QuarantinedState, UserData

UserDict = dict[Any, Any]

log = logging.getLogger("cadrebot.persistence")


class _Unreadable(Exception):
    """A stored row this code cannot use; the message is the reason (never the content)."""


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
        self._cipher = DataCipher(data_key)
        # Digest of what each user's row holds, so that untouched drafts cost no write.
        self._written: dict[int, bytes] = {}
        # People whose draft was quarantined at start-up: their open conversations go too,
        # since a question without its draft cannot be answered.
        self._started_clean: set[int] = set()

    def _insert(self) -> Callable[..., Any]:
        return upsert_for("sqlite" if self.database.url.startswith("sqlite") else "postgresql")

    async def _write(self, work: Callable[[AsyncSession], Any], done: Callable[[], None]) -> None:
        """In the update's transaction if there is one, else in a transaction of its own."""
        transaction = current_transaction()
        if transaction is not None:
            transaction.writes.append(work)
            transaction.after_commit.append(done)
            return
        async with self.database.sessionmaker.begin() as session:
            await work(session)
        done()

    # -- reading back at start-up, with quarantine -----------------------------------------

    async def _quarantine(self, session: AsyncSession, row: dict[str, Any]) -> None:
        session.add(QuarantinedState(**row))
        await session.flush()
        # The reason and the row's number only: the content may be what a person typed.
        log.warning("quarantined a stored %s row (%s)", row["kind"], row["reason"])

    async def _quarantine_conversation(
        self, session: AsyncSession, name: str, key_text: str, reason: str, value: object
    ) -> None:
        """Move one stored conversation state aside with its reason, and off the table."""
        await self._quarantine(
            session,
            {
                "kind": "conversation",
                "user_id": _user_of(key_text),
                "name": name,
                "key": key_text[:128],
                "reason": reason,
                "payload": json.dumps(value, default=str).encode(),
            },
        )
        await session.execute(
            delete(ConversationState).where(
                ConversationState.name == name, ConversationState.key == key_text
            )
        )

    def _read_user_data(self, payload: bytes) -> UserDict:
        try:
            plain = self._cipher.decrypt(bytes(payload))
        except DecryptError:
            raise _Unreadable("undecryptable: another DATA_KEY or damaged") from None
        try:
            data = json.loads(plain)
        except ValueError:
            raise _Unreadable("not JSON") from None
        if not isinstance(data, dict):
            raise _Unreadable("not a dict")
        return data

    async def get_user_data(self) -> dict[int, UserDict]:
        result: dict[int, UserDict] = {}
        async with self.database.sessionmaker.begin() as session:
            rows = (await session.execute(select(UserData.user_id, UserData.payload))).all()
            for user_id, payload in rows:
                try:
                    data = self._read_user_data(payload)
                except _Unreadable as error:
                    await self._quarantine(
                        session,
                        {
                            "kind": "user_data",
                            "user_id": user_id,
                            "reason": str(error),
                            "payload": bytes(payload),
                        },
                    )
                    await session.execute(delete(UserData).where(UserData.user_id == user_id))
                    self._started_clean.add(user_id)
                    continue
                result[user_id] = data
                self._written[user_id] = _digest(data)
        return result

    async def update_user_data(self, user_id: int, data: UserDict) -> None:
        digest = _digest(data)
        if self._written.get(user_id) == digest:
            return
        if not data and user_id not in self._written:
            return
        payload = self._cipher.encrypt(_dumps(data))
        statement = self._insert()(UserData).values(user_id=user_id, payload=payload)
        statement = statement.on_conflict_do_update(
            index_elements=[UserData.user_id], set_={"payload": payload, "updated_at": func.now()}
        )

        async def work(session: AsyncSession) -> None:
            await session.execute(statement)

        def done() -> None:
            self._written[user_id] = digest

        await self._write(work, done)

    async def drop_user_data(self, user_id: int) -> None:
        async def work(session: AsyncSession) -> None:
            await session.execute(delete(UserData).where(UserData.user_id == user_id))

        def done() -> None:
            self._written.pop(user_id, None)

        await self._write(work, done)

    async def refresh_user_data(self, user_id: int, user_data: UserDict) -> None:
        """Nothing to do: this process is the only writer of a user's draft (one active
        process holds the lock, see bot/standby.py)."""

    async def get_conversations(self, name: str) -> ConversationDict:
        result: ConversationDict = {}
        async with self.database.sessionmaker.begin() as session:
            rows = (
                await session.execute(
                    select(ConversationState.key, ConversationState.state).where(
                        ConversationState.name == name
                    )
                )
            ).all()
            for key_text, value in rows:
                user_id = _user_of(key_text)
                try:
                    key = _read_key(key_text)
                    state = _read_state(value)
                    if user_id in self._started_clean:
                        raise _Unreadable("draft quarantined")
                except _Unreadable as error:
                    await self._quarantine_conversation(session, name, key_text, str(error), value)
                    continue
                result[key] = state
        return result

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        key_text = json.dumps(list(key))

        async def work(session: AsyncSession) -> None:
            if new_state is None:
                await session.execute(
                    delete(ConversationState).where(
                        ConversationState.name == name, ConversationState.key == key_text
                    )
                )
                return
            value = {"state": new_state}
            statement = self._insert()(ConversationState).values(
                name=name, key=key_text, state=value
            )
            statement = statement.on_conflict_do_update(
                index_elements=[ConversationState.name, ConversationState.key],
                set_={"state": value},
            )
            await session.execute(statement)

        await self._write(work, lambda: None)

    async def quarantine_state(
        self, name: str, key: ConversationKey, state: object, reason: str
    ) -> None:
        """Move one loaded conversation state aside (its flow cannot continue from it)."""
        async with self.database.sessionmaker.begin() as session:
            await self._quarantine_conversation(
                session, name, json.dumps(list(key)), reason, {"state": state}
            )

    async def stored_state(self, user_id: int) -> tuple[UserDict, dict[tuple[str, str], object]]:
        """What the database holds for one person: their user_data and their conversation
        states by (conversation name, key text). Read to bring memory back in line after a
        commit that failed (CadreApp.process_update)."""
        async with self.database.sessionmaker() as session:
            payload = await session.scalar(
                select(UserData.payload).where(UserData.user_id == user_id)
            )
            rows = (
                await session.execute(
                    select(
                        ConversationState.name, ConversationState.key, ConversationState.state
                    ).where(
                        or_(
                            ConversationState.key == json.dumps([user_id, user_id]),
                            ConversationState.key.like(f"%, {user_id}]"),
                        )
                    )
                )
            ).all()
        data: UserDict = {}
        if payload is not None:
            try:
                data = self._read_user_data(payload)
            except _Unreadable:
                data = {}
        states = {
            (name, key): state.get("state") if isinstance(state, dict) else None
            for name, key, state in rows
        }
        return data, states

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


def _dumps(data: UserDict) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def _digest(data: UserDict) -> bytes:
    return hashlib.sha256(_dumps(data).encode()).digest()


def _read_key(key_text: str) -> tuple[int, ...]:
    try:
        key = json.loads(key_text)
    except ValueError:
        raise _Unreadable("malformed key: not JSON") from None
    if (
        not isinstance(key, list)
        or not key
        or not all(isinstance(part, int) and not isinstance(part, bool) for part in key)
    ):
        raise _Unreadable("malformed key: not a list of ids")
    return tuple(key)


def _read_state(value: Any) -> object:
    if not isinstance(value, dict) or "state" not in value:
        raise _Unreadable("state is not a dict with a state")
    state = value["state"]
    # The flows' states are ints (step indexes and a few named states) or strings.
    if state is not None and (isinstance(state, bool) or not isinstance(state, int | str)):
        raise _Unreadable("state is not an int or a string")
    return state


def _user_of(key_text: str) -> int | None:
    """The user in a (chat, user) key, when it can be read at all (for the notice)."""
    try:
        key = json.loads(key_text)
    except ValueError:
        return None
    last = key[-1] if isinstance(key, list) and key else None
    return last if isinstance(last, int) and not isinstance(last, bool) else None
