"""Drive a real Application through `process_update`, with the fake at the transport."""

from __future__ import annotations

import itertools
import time
from typing import Any, TypeVar

from sqlalchemy import func, select
from telegram import Update

from bot.app import CadreApp, build_application
from bot.delivery import Dispatcher, Limits
from bot.fakeapi.records import Sent
from bot.fakeapi.transport import FakeTransport
from bot.settings import Settings
from storage import outbox
from storage.db import Database

_update_ids = itertools.count(1)
Row = TypeVar("Row")


class BotHarness:
    """A chat with the bot: send text, commands, contacts and stickers; press buttons."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.fake = FakeTransport()
        self.app: CadreApp | None = None
        # Deliver queued notices right after each update, as the running bot's drain job
        # would within a second: a step's results then include the notices it caused.
        self.auto_drain = False

    async def start(self) -> None:
        self.app = build_application(
            self.settings,
            request=self.fake,
            get_updates_request=self.fake,
            database=Database(self.database.url, schema=self.database.schema),
        )
        await self.app.initialize()
        assert self.app.post_init is not None
        await self.app.post_init(self.app)

    async def stop(self) -> None:
        """Shut down like a stopping process: final persistence flush, services closed."""
        assert self.app is not None
        await self.app.update_persistence()
        await self.app.shutdown()
        assert self.app.post_shutdown is not None
        await self.app.post_shutdown(self.app)
        self.app = None

    async def drain(self) -> list[Sent]:
        """Deliver what the outbox holds (as the scheduler's job would); returns it."""
        assert self.app is not None
        before = len(self.fake.sent)
        # Tests need no pacing: the dispatcher's pacing has tests of its own.
        fast = Limits(per_second=10_000, per_chat_seconds=0.0, retry_base_seconds=0.01)
        await Dispatcher(self.app.bot_data["database"], self.app.bot, limits=fast).drain()
        return self.fake.sent[before:]

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def _user(self, user_id: int, language_code: str) -> dict[str, Any]:
        return {
            "id": user_id,
            "is_bot": False,
            "first_name": f"U{user_id}",
            "language_code": language_code,
        }

    async def _process(self, payload: dict[str, Any]) -> list[Sent]:
        assert self.app is not None
        before = len(self.fake.sent)
        update = Update.de_json(payload, self.app.bot)
        await self.app.process_update(update)
        if self.auto_drain:
            await self.drain()
        return self.fake.sent[before:]

    def _message_payload(
        self, user_id: int, language_code: str, chat_type: str = "private", **fields: Any
    ) -> dict[str, Any]:
        chat_id = user_id if chat_type == "private" else -100_000 - user_id
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type != "private":
            chat["title"] = "group"
        return {
            "update_id": next(_update_ids),
            "message": {
                "message_id": next(_update_ids),
                "date": int(time.time()),
                "chat": chat,
                "from": self._user(user_id, language_code),
                **fields,
            },
        }

    async def send(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str = "zh-hans",
        chat_type: str = "private",
    ) -> list[Sent]:
        """A person types `text`; returns what the bot sent back."""
        fields: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            fields["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        payload = self._message_payload(user_id, language_code, chat_type, **fields)
        return await self._process(payload)

    async def send_contact(
        self, user_id: int, phone: str, *, own: bool = True, language_code: str = "zh-hans"
    ) -> list[Sent]:
        contact = {"phone_number": phone, "first_name": "X", "user_id": user_id if own else 1}
        payload = self._message_payload(user_id, language_code, contact=contact)
        return await self._process(payload)

    async def send_sticker(self, user_id: int, *, language_code: str = "zh-hans") -> list[Sent]:
        sticker = {
            "file_id": "CAAC",
            "file_unique_id": "u1",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "type": "regular",
        }
        payload = self._message_payload(user_id, language_code, sticker=sticker)
        return await self._process(payload)

    async def send_voice(self, user_id: int, *, language_code: str = "zh-hans") -> list[Sent]:
        voice = {"file_id": "VOICE1", "file_unique_id": "v1", "duration": 3}
        payload = self._message_payload(user_id, language_code, voice=voice)
        return await self._process(payload)

    async def press(
        self, user_id: int, data: str, *, message_id: int = 1, language_code: str = "zh-hans"
    ) -> list[Sent]:
        """A person presses an inline button carrying `data`."""
        payload = {
            "update_id": next(_update_ids),
            "callback_query": {
                "id": str(next(_update_ids)),
                "from": self._user(user_id, language_code),
                "chat_instance": "ci",
                "data": data,
                "message": {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": {"id": user_id, "type": "private"},
                    "from": {"id": 1, "is_bot": True, "first_name": "Cadre"},
                    "text": "…",
                },
            },
        }
        return await self._process(payload)


async def count(bot: BotHarness, model: type, *where: Any) -> int:
    """Rows of `model` (matching `where`) in the bot's database."""
    async with bot.database.sessionmaker() as session:
        query = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
        return int(await session.scalar(query) or 0)


async def assert_cancel_keeps(
    bot: BotHarness, user: int, button: str, model: type, rows: int
) -> None:
    """/cancel ends `user`'s flow with `model` still at `rows` rows, and the flow's `button`
    pressed afterwards is stale and changes nothing."""
    (cancelled,) = await bot.send(user, "/cancel")
    assert "已退出" in cancelled.text
    assert await count(bot, model) == rows
    stale = await bot.press(user, button)
    assert "已失效" in stale[0].text
    assert await count(bot, model) == rows


async def drain_round(dispatcher: Dispatcher) -> dict[str, int] | None:
    """One drain(); the outbox's counts by status while a row is still pending or sending
    (waiting out a retry's backoff: it needs another round), else None."""
    await dispatcher.drain()
    async with dispatcher.database.sessionmaker() as session:
        counts = await outbox.counts(session)
    return counts if counts.get("pending") or counts.get("sending") else None


async def first_row(bot: BotHarness, model: type[Row]) -> Row:
    """The first row of `model` in the bot's database; there must be one."""
    async with bot.database.sessionmaker() as session:
        row = await session.scalar(select(model))
    assert row is not None, model
    return row


async def assert_refused(bot: BotHarness, user: int, command: str) -> None:
    """`user` may not use `command`: one reply, saying so."""
    (refused,) = await bot.send(user, command)
    assert "没有权限" in refused.text, (user, command)
