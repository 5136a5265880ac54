"""The fake Bot API's answers: what Telegram would reply, and a record of what the bot did.

`FakeBotApi.answer(method, params, files)` is the one place that plays Telegram. The tests'
transport and `cadrebot shell` call it in-process (`FakeTransport`), the benches over real
HTTP (`bot.fakeapi.server`). With `strict` (the default) it refuses what Telegram refuses —
invalid HTML, texts over 4096 and captions over 1024 characters, callback_data outside 1–64
bytes, unknown methods, and parameters the Bot API (methods.json) does not have or that lack
a required value — so a test or the shell fails where production would. A bench that times the
bot, not the fake, may pass `strict=False` and count what would have been refused afterwards
with `rejected_sends()`.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
from pathlib import Path
from typing import Any

from bot.fakeapi import commands, spec
from bot.fakeapi.flood import Flood, Windows
from bot.fakeapi.html import CAPTION_LIMIT, LIMIT, description, parse
from bot.fakeapi.markup import Markup, invalid_button, parse_markup
from bot.fakeapi.records import (
    Call,
    Event,
    Part,
    Rejected,
    Sent,
    Stored,
    Upload,
    as_int,
    escape,
    pairs,
)

BOT_ID = 123456
MEDIA = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendVoice": "voice",
    "sendAudio": "audio",
    "sendVideo": "video",
    "sendAnimation": "animation",
}
# Calls a person would not notice: not worth an "other" event in the shell.
QUIET = frozenset(
    {"sendChatAction", "setMyCommands", "deleteMyCommands", "setChatMenuButton"}
    | {"deleteWebhook", "setWebhook", "close", "logOut"}
)
# Faults are meant for what the bot sends, not for its start-up and polling.
_NO_FAULTS = frozenset({"getMe", "deleteWebhook", "getUpdates"})


class FakeBotApi:
    """Telegram's side of the Bot API for one bot, answered in memory; see the module doc."""

    def __init__(
        self,
        *,
        strict: bool = True,
        username: str = "cadre_test_bot",
        bot_id: int = BOT_ID,
        known_messages: bool = False,
        out_dir: Path | None = None,
        flood: Flood | None = None,
        first_message_id: int = 1001,
        log_calls: bool = True,
    ) -> None:
        self.strict = strict
        self.username = username
        self.bot_id = bot_id
        # Refuse to edit or delete a message it never sent. Off for the tests, whose button
        # presses name made-up message ids; on for the shell.
        self.known_messages = known_messages
        # Where uploaded photos and documents are written (the shell's folder), if anywhere.
        self.out_dir = out_dir
        self.flood = flood
        # Keep every call, event and message body (for edits). A long bench turns it off and
        # keeps only `sent`, which its figures need.
        self.log_calls = log_calls
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.events: list[Event] = []
        self.messages: dict[tuple[int, int], Stored] = {}
        # Messages people sent (the shell's input): the bot may delete those too.
        self.received: set[tuple[int, int]] = set()
        self.uploads: dict[str, Upload] = {}
        # Faults to answer with, in order, before answering normally: (status, payload),
        # or an exception to raise (a timeout, a dropped connection).
        self.faults: list[tuple[int, dict[str, Any]] | Exception] = []
        # Chats that blocked the bot: every send to them answers 403.
        self.blocked: set[int] = set()
        # Messages Telegram will no longer edit (older than 48 hours, or deleted).
        self.uneditable = False
        self.sent_at: list[tuple[float, int]] = []
        # True while the outbox drains: what is sent then is a notice, not a reply.
        self.delivering = False
        self.saved = 0
        self.requests = 0
        self.too_many = 0
        self.refused_forbidden = 0
        self._ids = itertools.count(first_message_id)
        self._windows = Windows()

    def _event(self, event: Event) -> None:
        if self.log_calls:
            self.events.append(event)

    def _keep(self, chat_id: int, message_id: int, stored: Stored) -> None:
        if self.log_calls:
            self.messages[(chat_id, message_id)] = stored

    def next_id(self) -> int:
        """Message ids for both sides of the chat, as Telegram numbers a private chat."""
        return next(self._ids)

    def receive(self, chat_id: int) -> int:
        """The id of a message the person sends now (kept: the bot may delete it)."""
        message_id = self.next_id()
        self.received.add((chat_id, message_id))
        return message_id

    # -- the one entry point ---------------------------------------------------------------

    def answer(
        self, method: str, params: dict[str, Any], files: dict[str, tuple[str, bytes]]
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for one Bot API call; `files` maps field → (name, bytes)."""
        self.requests += 1
        if self.log_calls:
            self.calls.append(Call(method, params, {k: v[1] for k, v in files.items()}))
        if self.faults and method not in _NO_FAULTS:
            fault = self.faults.pop(0)
            if isinstance(fault, Exception):
                raise fault
            return fault
        try:
            # Uploaded files are parameters too, as in the multipart request Telegram reads.
            parts = {name: Part(*part) for name, part in files.items()}
            result = self._answer(method, params | parts if parts else params)
        except Rejected as exc:
            if exc.status == 400:
                note = f"{method}: {str(exc).removeprefix('Bad Request: ')}"
                chat_id = as_int(params.get("chat_id"))
                self._event(Event("rejected", chat_id, note=note, notice=self.delivering))
            payload: dict[str, Any] = {
                "ok": False,
                "error_code": exc.status,
                "description": str(exc),
            }
            if exc.parameters:
                payload["parameters"] = exc.parameters
            return exc.status, payload
        return 200, {"ok": True, "result": result}

    def _answer(self, method: str, params: dict[str, Any]) -> Any:
        files = {name: value for name, value in params.items() if isinstance(value, Part)}
        if files:
            params = {name: value for name, value in params.items() if name not in files}
        if self.strict:
            problem = spec.problem(method, params, files)
            if problem is not None:
                raise Rejected(problem[1], problem[0])
        chat_id = as_int(params.get("chat_id"))
        if method == "sendMessage" and chat_id in self.blocked:
            self.refused_forbidden += 1
            raise Rejected("Forbidden: bot was blocked by the user", 403)
        if self.uneditable and method.startswith("editMessage"):
            raise Rejected("Bad Request: message can't be edited")
        if method == "sendMessage":
            self.sent_at.append((time.monotonic(), chat_id))
            return self._send(chat_id, params)
        if method in {"editMessageText", "editMessageCaption"}:
            return self._edit(method, params)
        if method == "editMessageReplyMarkup":
            return self._edit_markup(params)
        if method == "deleteMessage":
            key = (chat_id, as_int(params.get("message_id")))
            if key in self.received:
                self.received.discard(key)  # a person's own message, e.g. one with an ID number
            elif self._stored(params) is not None:
                del self.messages[key]
            self._event(Event("delete", chat_id, key[1]))
            return True
        if method in MEDIA:
            return self._media(method, chat_id, params, files)
        if method == "getMe":
            return {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": "Cadre",
                "username": self.username,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if method == "answerCallbackQuery":
            if params.get("text"):
                self._event(Event("toast", 0, note=str(params["text"])))
            return True
        if method == "getFile":
            return self._file(str(params.get("file_id")))
        if method == "getUpdates":
            return []
        if method in {"setMyCommands", "deleteMyCommands"} and self.strict:
            try:
                commands.check(method, params)
            except commands.InvalidCommands as exc:
                raise Rejected(f"Bad Request: {exc}") from exc
        declared = spec.methods().get(method)
        if declared is not None and declared.returns == ("Boolean",):
            if method not in QUIET:
                self._event(Event("other", chat_id, note=method))
            return True
        raise Rejected(f"Bad Request: method {method} is not faked")

    # -- checks ----------------------------------------------------------------------------

    def _text(self, params: dict[str, Any], key: str, *, required: bool) -> tuple[str, str]:
        """(the text as sent, as HTML), or Rejected as Telegram would."""
        text = str(params.get(key) or "")
        html = text if params.get("parse_mode") == "HTML" else escape(text)
        if not text and not required:
            return text, html
        if self.strict:
            limit = LIMIT if key == "text" else CAPTION_LIMIT
            _shown, _plain, errors = parse(html, limit=limit)
            if errors:
                raise Rejected(f"Bad Request: {description(errors[0])}")
        return text, html

    def _markup(self, params: dict[str, Any]) -> Markup:
        markup = parse_markup(params.get("reply_markup"))
        refused = invalid_button(markup)
        if refused is not None:
            raise Rejected(f"Bad Request: {refused}")
        return markup

    def _pace(self, chat_id: int) -> float:
        now = time.monotonic()
        if self.flood is None:
            return now
        wait = self._windows.wait(self.flood, chat_id, now)
        if wait > 0:
            self.too_many += 1
            retry = max(1, math.ceil(wait))
            raise Rejected(f"Too Many Requests: retry after {retry}", 429, retry_after=retry)
        self._windows.admit(chat_id, now)
        return now

    # -- answers ---------------------------------------------------------------------------

    def _message(self, chat_id: int, message_id: int, **extra: Any) -> dict[str, Any]:
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": "Cadre",
                "username": self.username,
            },
            **extra,
        }

    def _send(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any]:
        text, html = self._text(params, "text", required=True)
        markup = self._markup(params)
        at = self._pace(chat_id)
        message_id = self.next_id()
        inline = markup.inline or []
        self._keep(chat_id, message_id, Stored(html, inline))
        mode = params.get("parse_mode")
        self.sent.append(Sent(chat_id, text, message_id, pairs(inline), at=at, parse_mode=mode))
        self._event(Event("message", chat_id, message_id, html, markup, notice=self.delivering))
        return self._message(chat_id, message_id, text=self._plain(html, text))

    def _plain(self, html: str, text: str) -> str:
        """The text without its markup, as Telegram returns it; as sent when lax (it is quick)."""
        return parse(html)[1] if self.strict and text else text

    def _stored(self, params: dict[str, Any]) -> Stored | None:
        key = (as_int(params.get("chat_id")), as_int(params.get("message_id")))
        stored = self.messages.get(key)
        if stored is None and self.known_messages:
            raise Rejected("Bad Request: message to edit not found")
        return stored

    def _edit(self, method: str, params: dict[str, Any]) -> Any:
        key = "text" if method == "editMessageText" else "caption"
        text, html = self._text(params, key, required=key == "text")
        inline = self._markup(params).inline or []
        stored = self._stored(params)
        if stored is not None:
            if html == stored.html and inline == stored.inline:
                raise Rejected("Bad Request: message is not modified")
            stored.html, stored.inline = html, inline
        chat_id, message_id = as_int(params.get("chat_id")), as_int(params.get("message_id"))
        kind = stored.kind if stored is not None else "text"
        self.sent.append(
            Sent(chat_id, text, message_id, pairs(inline), kind, True, time.monotonic())
        )
        self._event(Event("edit", chat_id, message_id, html, Markup(inline=inline)))
        return self._message(chat_id, message_id, **{key: self._plain(html, text)})

    def _edit_markup(self, params: dict[str, Any]) -> Any:
        inline = self._markup(params).inline or []
        stored = self._stored(params)
        chat_id, message_id = as_int(params.get("chat_id")), as_int(params.get("message_id"))
        if stored is None:
            self._event(Event("markup", chat_id, message_id, markup=Markup(inline=inline)))
            return True
        if inline == stored.inline:
            raise Rejected("Bad Request: message is not modified")
        stored.inline = inline
        self._event(Event("markup", chat_id, message_id, markup=Markup(inline=inline)))
        return self._message(chat_id, message_id, text=parse(stored.html)[1])

    def _media(
        self, method: str, chat_id: int, params: dict[str, Any], files: dict[str, Any]
    ) -> dict[str, Any]:
        kind = MEDIA[method]
        caption, html = self._text(params, "caption", required=False)
        markup = self._markup(params)
        message_id = self.next_id()
        path: Path | None = None
        for name, content in files.values():
            if self.out_dir is None:
                continue
            self.saved += 1
            safe = re.sub(r"[^\w.\-]+", "_", Path(str(name)).name) or kind
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"{self.saved:03d}-{safe}"
            path.write_bytes(content)
        # Sent by file_id or URL: nothing to save.
        note = f"{kind} {params.get(kind)}" if not files else kind
        self._keep(chat_id, message_id, Stored(html, markup.inline or [], kind))
        at = time.monotonic()
        self.sent.append(Sent(chat_id, caption, message_id, kind=kind, at=at))
        event = Event("file", chat_id, message_id, html, markup, path, self.delivering, note)
        self._event(event)
        return self._message(chat_id, message_id, caption=self._plain(html, caption))

    def _file(self, file_id: str) -> dict[str, Any]:
        upload = self.uploads.get(file_id)
        if upload is None:
            raise Rejected("Bad Request: invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": len(upload.content),
            "file_path": f"documents/{file_id}",
        }

    def download(self, path: str) -> tuple[int, bytes]:
        """A file's bytes by the file_path getFile gave (the /file/bot<token>/ URLs)."""
        for upload in self.uploads.values():
            if path == f"documents/{upload.file_id}":
                return 200, upload.content
        return 404, b"Not Found"

    # -- records ---------------------------------------------------------------------------

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [s.text for s in self.sent if chat_id is None or s.chat_id == chat_id]

    def clear(self) -> None:
        self.sent.clear()
        self.calls.clear()

    def take(self) -> list[Event]:
        """The events since the last take (what the shell prints after each input)."""
        events, self.events = self.events, []
        return events

    @property
    def accepted(self) -> list[Sent]:
        """The sendMessage calls that went through (not edits, not files)."""
        return [s for s in self.sent if s.kind == "text" and not s.edited]

    def rejected_sends(self) -> int:
        """How many sent texts Telegram would refuse: `strict=False` checks them afterwards."""
        invalid = 0
        for sent in self.accepted:
            html = sent.text if sent.parse_mode == "HTML" else escape(sent.text)
            invalid += bool(parse(html)[2])
        return invalid


def dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()
