"""A fake Bot API at PTB's transport layer: records calls and answers like Telegram would.

Like the real servers it rejects invalid HTML, texts over 4096 characters and callback_data
over 64 bytes, so a handler test fails where Telegram would fail in production.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from telegram.request import BaseRequest, RequestData

from tests.support import bot_commands
from tests.support.telegram_html import TelegramHTMLError, check

BOT_ID = 123456
BOT_USERNAME = "cadre_test_bot"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    # Uploaded files (a photo, a document) by field name: their bytes.
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Sent:
    """A message the bot sent or edited, as a person would see it."""

    chat_id: int
    text: str
    message_id: int
    buttons: list[list[tuple[str, str]]] = field(default_factory=list)
    kind: str = "text"
    edited: bool = False

    def button(self, label_part: str) -> str:
        """callback_data of the first button whose label contains `label_part`."""
        for row in self.buttons:
            for label, data in row:
                if label_part in label:
                    return data
        raise AssertionError(f"no button {label_part!r} in {self.buttons}")

    @property
    def labels(self) -> list[str]:
        return [label for row in self.buttons for label, _ in row]


class FakeTelegram(BaseRequest):
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self._next_message_id = 1000
        # Faults to answer with, in order, before answering normally: (status, payload),
        # or an exception to raise (a timeout, a dropped connection).
        self.faults: list[tuple[int, dict[str, Any]] | Exception] = []
        # Chats that blocked the bot: every send to them answers 403.
        self.blocked: set[int] = set()
        # Messages Telegram will no longer edit (older than 48 hours, or deleted).
        self.uneditable = False
        self.sent_at: list[tuple[float, int]] = []

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        api_method = url.rsplit("/", 1)[-1]
        params: dict[str, Any] = dict(request_data.parameters) if request_data else {}
        files: dict[str, bytes] = {}
        if request_data is not None and request_data.contains_files:
            files = {name: part[1] for name, part in (request_data.multipart_data or {}).items()}
        self.calls.append(Call(api_method, params, files))
        if self.faults and api_method not in {"getMe", "deleteWebhook", "getUpdates"}:
            fault = self.faults.pop(0)
            if isinstance(fault, Exception):
                raise fault
            status, payload = fault
            return status, json.dumps(payload).encode()
        if api_method == "sendMessage" and int(params.get("chat_id", 0)) in self.blocked:
            payload = {
                "ok": False,
                "error_code": 403,
                "description": "Forbidden: bot was blocked by the user",
            }
            return 403, json.dumps(payload).encode()
        if self.uneditable and api_method.startswith("editMessage"):
            payload = {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message can't be edited",
            }
            return 400, json.dumps(payload).encode()
        if api_method == "sendMessage":
            self.sent_at.append((time.monotonic(), int(params["chat_id"])))
        try:
            result = self._answer(api_method, params)
        except TelegramHTMLError as exc:
            return 400, json.dumps(
                {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}
            ).encode()
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def _message(self, chat_id: int, **extra: Any) -> dict[str, Any]:
        self._next_message_id += 1
        return {
            "message_id": self._next_message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Cadre"},
            **extra,
        }

    def _buttons(self, params: dict[str, Any]) -> list[list[tuple[str, str]]]:
        markup = params.get("reply_markup")
        if isinstance(markup, str):
            markup = json.loads(markup)
        if not markup or "inline_keyboard" not in markup:
            return []
        rows = []
        for row in markup["inline_keyboard"]:
            cells = []
            for button in row:
                data = button.get("callback_data", button.get("url", ""))
                if len(data.encode()) > 64:
                    raise TelegramHTMLError("BUTTON_DATA_INVALID")
                cells.append((button["text"], data))
            rows.append(cells)
        return rows

    def _answer(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Cadre",
                "username": BOT_USERNAME,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if method == "sendMessage":
            text = str(params["text"])
            if params.get("parse_mode") == "HTML":
                check(text)
            elif len(text) > 4096:
                raise TelegramHTMLError("Message is too long")
            message = self._message(int(params["chat_id"]), text=text)
            self.sent.append(
                Sent(int(params["chat_id"]), text, message["message_id"], self._buttons(params))
            )
            return message
        if method == "editMessageText":
            text = str(params["text"])
            if params.get("parse_mode") == "HTML":
                check(text)
            chat_id = int(params["chat_id"])
            message_id = int(params["message_id"])
            self.sent.append(Sent(chat_id, text, message_id, self._buttons(params), edited=True))
            return self._message(chat_id, text=text) | {"message_id": message_id}
        if method == "editMessageReplyMarkup":
            return True
        if method in {"sendDocument", "sendPhoto"}:
            caption = str(params.get("caption", ""))
            if caption and params.get("parse_mode") == "HTML":
                check(caption)
            kind = "document" if method == "sendDocument" else "photo"
            message = self._message(int(params["chat_id"]), caption=caption)
            chat_id = int(params["chat_id"])
            self.sent.append(Sent(chat_id, caption, message["message_id"], kind=kind))
            return message
        if method == "getUpdates":
            return []
        if method in {"setMyCommands", "deleteMyCommands"}:
            try:
                bot_commands.check(method, params)
            except bot_commands.InvalidCommands as exc:
                raise TelegramHTMLError(str(exc)) from exc
            return True
        if method in {
            "answerCallbackQuery",
            "deleteWebhook",
            "setWebhook",
            "deleteMessage",
            "sendChatAction",
        }:
            return True
        raise TelegramHTMLError(f"method {method} is not faked")

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [s.text for s in self.sent if chat_id is None or s.chat_id == chat_id]

    def clear(self) -> None:
        self.sent.clear()
        self.calls.clear()
