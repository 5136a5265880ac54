"""`cadrebot shell`: chat with the real handlers in a terminal, with no token and no network.

The application is the one `cadrebot run` builds (`build_application`), with Telegram's HTTP
transport replaced by `LocalTelegram`, which answers the Bot API calls in-process and keeps
what the bot sends so it can be printed as terminal text. Each input line becomes an Update
fed to `app.process_update`; then the outbox is drained so notices to other people show too.

Input: `/command args` is a command; a number alone presses that inline button of the last
keyboard shown; `!contact`, `!voice`, `!sticker`, `!photo`, `!file PATH`, `!drain`, `!tick`,
`!say TEXT`, `!buttons`, `!whoami`, `!help`, `!quit` (or end of input); anything else is text.

Without DATA_KEY in the environment or `.env` a key is generated once and kept in
`./data/shell.key`, so drafts survive between shell sessions on the same database. The shell
uses the database every other command uses (DATABASE_URL, by default
`./data/cadrebot.sqlite3`), so an invite printed by `cadrebot invite` can be redeemed in it;
`--own-database` keeps its fake users apart in `./data/shell.sqlite3`. An empty database gets
the small demo county, and the demo people are linked to fixed fake Telegram ids.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TextIO

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr
from sqlalchemy import select
from telegram import Update
from telegram.request import BaseRequest, RequestData

from bot import logs
from bot.settings import Settings, SettingsError, load_settings
from storage import migrate
from storage.crypto import DataKeyError, parse_keys
from storage.db import Database
from storage.models import Person, Role, TelegramAccount

FAKE_TOKEN = "100000:LOCALSHELLnotarealtokennothingleaves"
BOT_ID = 100000
BOT_USERNAME = "cadre_shell_bot"
DEFAULT_KEY_FILE = Path("data/shell.key")
# With --own-database: the fake users stay out of the database the other commands use.
OWN_DATABASE_URL = "sqlite:///data/shell.sqlite3"
DEFAULT_OUT_DIR = Path("data/shell-out")
LANGUAGE_CODES = {"zh": "zh-hans", "en": "en"}
# Stable fake Telegram ids: the same persona is the same user in every session.
PERSONA_IDS: dict[str, int] = {
    Role.ADMIN.value: 900001,
    Role.COUNTY_OFFICIAL.value: 900002,
    Role.TOWNSHIP_OFFICIAL.value: 900003,
    Role.MENTOR.value: 900004,
    Role.REVIEWER.value: 900005,
    "candidate": 900100,
}
MESSAGE_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
HELP = """\
  /command args   a command, e.g. /start, /nominate, /cancel
  3               press button [3] of the last keyboard shown
  !contact [NUM]  share your phone contact (when the bot shows the share button)
  !voice !sticker !photo   send a voice message, a sticker, a photo
  !file PATH      send a file as a document (e.g. a CSV for /results)
  !say TEXT       send TEXT as it is (a number, or text starting with / or !)
  !drain          deliver queued notices now (done after every input anyway)
  !tick           run the scheduler's planners once (reminders, summaries), then drain
  !buttons        show the current buttons again     !whoami  who you are
  !quit           leave (end of input does too)
  anything else   sent as text"""

log = logging.getLogger("cadrebot.shell")


class ShellError(Exception):
    """A problem the operator can fix; the message is the one line we print."""


# -- Telegram HTML to terminal text ---------------------------------------------------------

ALLOWED_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a"}
    | {"code", "pre", "blockquote", "tg-emoji", "tg-time"}
)
_STYLES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strike",
    "strike": "strike",
    "del": "strike",
}
_ANSI = {
    "bold": ("1", "22"),
    "italic": ("3", "23"),
    "underline": ("4", "24"),
    "strike": ("9", "29"),
}
_BARE_AMP = re.compile(r"&(?!(?:lt|gt|amp|quot|#\d{1,7}|#x[0-9a-fA-F]{1,6});)")


class _Converter(HTMLParser):
    def __init__(self, color: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.color = color
        self.out: list[str] = []
        self.stack: list[tuple[str, dict[str, str | None], int]] = []
        self.depth: dict[str, int] = {}
        self.errors: list[str] = []

    def _style(self, name: str, on: bool) -> None:
        count = self.depth.get(name, 0) + (1 if on else -1)
        self.depth[name] = count
        if self.color and ((on and count == 1) or (not on and count == 0)):
            self.out.append(f"\x1b[{_ANSI[name][0 if on else 1]}m")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag not in ALLOWED_TAGS:
            self.errors.append(f"unsupported start tag {tag!r}")
        elif tag == "span" and values.get("class") != "tg-spoiler":
            self.errors.append("a span needs class tg-spoiler")
        if tag in _STYLES:
            self._style(_STYLES[tag], True)
        self.stack.append((tag, values, len(self.out)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"unmatched end tag {tag!r}")
            return
        _tag, values, start = self.stack.pop()
        if tag in _STYLES:
            self._style(_STYLES[tag], False)
        elif tag == "a":
            href = values.get("href") or ""
            shown = "".join(self.out[start:])
            if href and href not in shown:
                self.out.append(f" ({href})")
        elif tag == "blockquote":
            quoted = "".join(self.out[start:]).strip("\n")
            self.out[start:] = ["\n".join(f"│ {line}" for line in quoted.split("\n"))]

    def handle_data(self, data: str) -> None:
        self.out.append(data)


def convert_html(html: str, *, color: bool = False) -> tuple[str, list[str]]:
    """Telegram HTML as terminal text, and what Telegram would reject in it (empty: fine)."""
    converter = _Converter(color)
    converter.feed(html)
    converter.close()
    errors = list(converter.errors)
    if converter.stack:
        errors.append(f"unclosed tags {[tag for tag, _v, _s in converter.stack]}")
    if _BARE_AMP.search(html):
        errors.append("an unescaped '&'")
    text = "".join(converter.out)
    plain = re.sub(r"\x1b\[\d+m", "", text) if color else text
    if not plain.strip():
        errors.append("message text is empty")
    elif len(plain.encode("utf-16-le")) // 2 > MESSAGE_LIMIT:
        errors.append("message is too long")
    return text, errors


def html_to_text(html: str, *, color: bool = False) -> str:
    """Strip Telegram's tags and unescape entities; bold/italic/… as ANSI when `color`."""
    return convert_html(html, color=color)[0]


# -- buttons --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    data: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyKey:
    label: str
    request_contact: bool = False


@dataclass(frozen=True, slots=True)
class Markup:
    """What a reply_markup asked for: inline buttons, a reply keyboard, or removing it."""

    inline: list[list[Button]] | None = None
    keyboard: list[list[ReplyKey]] | None = None
    one_time: bool = False
    remove_keyboard: bool = False


def parse_markup(raw: object) -> Markup:
    """Read the reply_markup parameter as the Bot API receives it (JSON text or a dict)."""
    if isinstance(raw, str):
        raw = json.loads(raw)
    if not isinstance(raw, dict):
        return Markup()
    if "inline_keyboard" in raw:
        rows = [
            [
                Button(
                    str(b.get("text", "")),
                    data=b.get("callback_data"),
                    url=b.get("url") or b.get("login_url", {}).get("url"),
                )
                for b in row
            ]
            for row in raw["inline_keyboard"]
        ]
        return Markup(inline=rows)
    if "keyboard" in raw:
        keys = [
            [
                ReplyKey(k, False)
                if isinstance(k, str)
                else ReplyKey(str(k.get("text", "")), bool(k.get("request_contact")))
                for k in row
            ]
            for row in raw["keyboard"]
        ]
        return Markup(keyboard=keys, one_time=bool(raw.get("one_time_keyboard")))
    if raw.get("remove_keyboard"):
        return Markup(remove_keyboard=True)
    return Markup()


def number_buttons(rows: Sequence[Sequence[Button]]) -> tuple[list[str], list[Button]]:
    """Rows as `[1] Yes  [2] No` lines (numbering runs across rows) and the flat list."""
    lines: list[str] = []
    flat: list[Button] = []
    for row in rows:
        cells = []
        for button in row:
            flat.append(button)
            suffix = f" ↗ {button.url}" if button.url and not button.data else ""
            cells.append(f"[{len(flat)}] {button.label}{suffix}")
        if cells:
            lines.append("  ".join(cells))
    return lines, flat


# -- the local transport --------------------------------------------------------------------


@dataclass
class Event:
    """Something the bot did that a person would see."""

    kind: str  # message, edit, markup, delete, file, toast, rejected, other
    chat_id: int
    message_id: int = 0
    html: str = ""
    markup: Markup = field(default_factory=Markup)
    path: Path | None = None
    notice: bool = False
    note: str = ""


@dataclass
class _Stored:
    html: str
    inline: list[list[Button]]
    kind: str = "text"


@dataclass
class _Upload:
    file_id: str
    name: str
    content: bytes


class _Rejected(Exception):
    """Telegram would answer 400 with this description."""


class LocalTelegram(BaseRequest):
    """The Bot API, answered in this process: records what the bot sends, as Telegram would.

    Like Telegram it refuses invalid HTML, over-long texts and callback_data over 64 bytes,
    so the shell shows the failure that production would have.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.events: list[Event] = []
        self.messages: dict[tuple[int, int], _Stored] = {}
        self.uploads: dict[str, _Upload] = {}
        self.saved = 0
        # True while the outbox drains: what is sent then is a notice, not a reply.
        self.delivering = False
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        """Message ids for both sides of the chat, as Telegram numbers a private chat."""
        return next(self._ids)

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
        if "/file/bot" in url:
            return self._download(url)
        api_method = url.rsplit("/", 1)[-1]
        params: dict[str, Any] = dict(request_data.parameters) if request_data else {}
        files: dict[str, Any] = (
            dict(request_data.multipart_data)
            if request_data is not None and request_data.contains_files
            else {}
        )
        try:
            result = self._answer(api_method, params, files)
        except _Rejected as exc:
            chat_id = _int(params.get("chat_id"))
            self.events.append(
                Event("rejected", chat_id, note=f"{api_method}: {exc}", notice=self.delivering)
            )
            payload = {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}
            return 400, json.dumps(payload).encode()
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def _download(self, url: str) -> tuple[int, bytes]:
        path = url.split("/file/bot", 1)[1].split("/", 1)[-1]
        for upload in self.uploads.values():
            if path == f"documents/{upload.file_id}":
                return 200, upload.content
        return 404, b"Not Found"

    # -- answers ---------------------------------------------------------------------------

    def _message(self, chat_id: int, message_id: int, **extra: Any) -> dict[str, Any]:
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "You"},
            "from": {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Cadre",
                "username": BOT_USERNAME,
            },
            **extra,
        }

    def _markup(self, params: dict[str, Any]) -> Markup:
        markup = parse_markup(params.get("reply_markup"))
        for row in markup.inline or []:
            for button in row:
                if button.data is not None and len(button.data.encode()) > CALLBACK_DATA_LIMIT:
                    raise _Rejected("BUTTON_DATA_INVALID")
        return markup

    def _check(self, params: dict[str, Any], key: str, *, required: bool) -> str:
        text = str(params.get(key) or "")
        if not text and not required:
            return text
        if params.get("parse_mode") == "HTML":
            _plain, errors = convert_html(text)
            if errors:
                first = errors[0]
                raise _Rejected(
                    first if first.startswith("message") else f"can't parse entities: {first}"
                )
        elif not text.strip():
            raise _Rejected("message text is empty")
        elif len(text) > MESSAGE_LIMIT:
            raise _Rejected("message is too long")
        return text if params.get("parse_mode") == "HTML" else _escape(text)

    def _stored(self, params: dict[str, Any]) -> tuple[int, int, _Stored]:
        chat_id, message_id = _int(params.get("chat_id")), _int(params.get("message_id"))
        stored = self.messages.get((chat_id, message_id))
        if stored is None:
            raise _Rejected("message to edit not found")
        return chat_id, message_id, stored

    def _answer(self, method: str, params: dict[str, Any], files: dict[str, Any]) -> Any:
        if method == "getMe":
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Cadre",
                "username": BOT_USERNAME,
                "can_join_groups": False,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if method == "sendMessage":
            html = self._check(params, "text", required=True)
            markup = self._markup(params)
            chat_id, message_id = _int(params.get("chat_id")), self.next_id()
            self.messages[(chat_id, message_id)] = _Stored(html, markup.inline or [])
            self.events.append(
                Event("message", chat_id, message_id, html, markup, notice=self.delivering)
            )
            return self._message(chat_id, message_id, text=html_to_text(html))
        if method in {"editMessageText", "editMessageCaption"}:
            key = "text" if method == "editMessageText" else "caption"
            html = self._check(params, key, required=key == "text")
            markup = self._markup(params)
            chat_id, message_id, stored = self._stored(params)
            inline = markup.inline or []
            if html == stored.html and inline == stored.inline:
                raise _Rejected("message is not modified")
            stored.html, stored.inline = html, inline
            self.events.append(Event("edit", chat_id, message_id, html, Markup(inline=inline)))
            return self._message(chat_id, message_id, **{key: html_to_text(html)})
        if method == "editMessageReplyMarkup":
            chat_id, message_id, stored = self._stored(params)
            inline = self._markup(params).inline or []
            if inline == stored.inline:
                raise _Rejected("message is not modified")
            stored.inline = inline
            self.events.append(Event("markup", chat_id, message_id, markup=Markup(inline=inline)))
            return self._message(chat_id, message_id, text=html_to_text(stored.html))
        if method == "deleteMessage":
            chat_id, message_id, _stored = self._stored(params)
            del self.messages[(chat_id, message_id)]
            self.events.append(Event("delete", chat_id, message_id))
            return True
        if method in _MEDIA:
            return self._media(method, params, files)
        if method == "answerCallbackQuery":
            if params.get("text"):
                self.events.append(Event("toast", 0, note=str(params["text"])))
            return True
        if method == "getFile":
            file_id = str(params.get("file_id"))
            upload = self.uploads.get(file_id)
            if upload is None:
                raise _Rejected("invalid file_id")
            return {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "file_size": len(upload.content),
                "file_path": f"documents/{file_id}",
            }
        if method == "getUpdates":
            return []
        if method not in _QUIET:
            self.events.append(Event("other", _int(params.get("chat_id")), note=method))
        return True

    def _media(self, method: str, params: dict[str, Any], files: dict[str, Any]) -> Any:
        kind = _MEDIA[method]
        caption = self._check(params, "caption", required=False)
        markup = self._markup(params)
        chat_id, message_id = _int(params.get("chat_id")), self.next_id()
        path: Path | None = None
        for name, content, _mime in files.values():
            data = content if isinstance(content, bytes) else content.read()
            self.saved += 1
            safe = re.sub(r"[^\w.\-]+", "_", Path(str(name)).name) or kind
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"{self.saved:03d}-{safe}"
            path.write_bytes(data)
        # Sent by file_id or URL: nothing to save.
        note = f"{kind} {params.get(kind)}" if path is None else kind
        self.messages[(chat_id, message_id)] = _Stored(caption, markup.inline or [], kind)
        self.events.append(
            Event(
                "file",
                chat_id,
                message_id,
                caption,
                markup,
                path=path,
                notice=self.delivering,
                note=note,
            )
        )
        return self._message(chat_id, message_id, caption=html_to_text(caption))

    def take(self) -> list[Event]:
        events, self.events = self.events, []
        return events


_MEDIA = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendVoice": "voice",
    "sendAudio": "audio",
    "sendVideo": "video",
    "sendAnimation": "animation",
}
_QUIET = frozenset(
    {
        "sendChatAction",
        "setMyCommands",
        "deleteMyCommands",
        "setChatMenuButton",
        "deleteWebhook",
        "setWebhook",
        "close",
        "logOut",
    }
)


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- personas -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Persona:
    key: str  # a role value, "candidate" or "new"
    user_id: int
    spec: dict[str, Any] | None = None  # the demo person of demo_small.json, for roles


def demo_people() -> dict[str, dict[str, Any]]:
    from storage.seed import DATA_DIR

    data = json.loads((DATA_DIR / "demo_small.json").read_text(encoding="utf-8"))
    return dict(data["people"])


def resolve_persona(name: str, user_id: int | None) -> Persona:
    """`--as`: a role, a demo person's name, `candidate` or `new`."""
    people = demo_people()
    wanted = name.strip()
    key = wanted.lower().replace("-", "_")
    if key not in people and key not in ("candidate", "new"):
        by_name = [role for role, spec in people.items() if spec.get("name") == wanted]
        if not by_name:
            choices = ", ".join([*people, "candidate", "new"])
            raise ShellError(f"unknown --as {name!r}: use one of {choices} or a demo name")
        key = by_name[0]
    if user_id is None and key == "new":
        user_id = 7_000_000_000 + secrets.randbelow(1_000_000_000)
    elif user_id is None:
        user_id = PERSONA_IDS[key]
    if user_id <= 0 or user_id >= 2**52:
        raise ShellError("--user-id must be a positive Telegram user id")
    return Persona(key, user_id, people.get(key))


async def _persona_invite(
    session: Any, spec: dict[str, Any], role: Role, person_id: int, settings: Settings
) -> str:
    """A fresh single-use invite that steps its redeemer into the demo person."""
    from storage import geo, people

    township_id = None
    if "township" in spec:
        township = await geo.township_by_name(session, spec["township"])
        if township is None:
            raise ShellError(f"the demo township {spec['township']} is missing from the database")
        township_id = township.id
    (code,) = await people.create_invites(
        session,
        role=role,
        now=datetime.now(UTC),
        days=settings.invite_days,
        township_id=township_id,
        department=spec.get("department"),
        mentor_slot=spec.get("mentor_slot"),
        for_person_id=person_id,
    )
    return str(code)


# -- the shell ------------------------------------------------------------------------------


@dataclass
class _Keyboard:
    rows: list[list[ReplyKey]]
    one_time: bool


class Shell:
    """One person's chat with the bot, printed to `out`."""

    def __init__(
        self,
        settings: Settings,
        persona: Persona,
        *,
        language_code: str,
        out_dir: Path,
        out: TextIO,
        color: bool,
        echo: bool,
    ) -> None:
        self.settings = settings
        self.persona = persona
        self.user_id = persona.user_id
        self.language_code = language_code
        self.out = out
        self.color = color
        self.echo = echo
        self.transport = LocalTelegram(out_dir)
        self.database = Database(settings.database_url)
        self.app: Any = None
        self._started = False
        self.dispatcher: Any = None
        self.buttons: list[Button] = []
        self.buttons_message_id = 0
        self.keyboard: _Keyboard | None = None
        self._updates = itertools.count(1)
        self._uploads = itertools.count(1)
        # Said in the banner when drafts are encrypted with the shell's own key file.
        self.key_note: str | None = None

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        from bot.app import build_application
        from bot.delivery import Dispatcher, Limits

        self.app = build_application(
            self.settings,
            request=self.transport,
            get_updates_request=self.transport,
            database=self.database,
        )
        try:
            await self.app.initialize()
        except InvalidToken:
            raise ShellError(
                "DATA_KEY does not open the drafts stored in DATABASE_URL: "
                "set the DATA_KEY they were written with, or use another DATABASE_URL"
            ) from None
        try:
            await self.app.post_init(self.app)
        except DataKeyError as exc:
            raise ShellError(str(exc)) from None
        self._started = True
        # The inbox remembers every update_id handled: a new session continues the numbering.
        from storage import inbox

        async with self.database.sessionmaker() as session:
            self._updates = itertools.count(await inbox.next_update_id(session))
        # No pacing here: the shell delivers at once what the drain job would within seconds.
        fast = Limits(per_second=10_000, per_chat_seconds=0.0, retry_base_seconds=0.01)
        self.dispatcher = Dispatcher(self.database, self.app.bot, limits=fast)
        seeded = await self._seed_if_empty()
        code = await self._prepare_personas()
        self._banner(seeded)
        if code is not None:
            self._say(f"(logging in as the demo {self.persona.key}: /start {code})")
            login = f"/start {code}"
            await self._message({"text": login, "entities": _command_entity(login)})
            await self._after()

    async def stop(self) -> None:
        """Flush drafts and close, like a stopping bot; safe after a failed start."""
        app, started, self.app, self._started = self.app, self._started, None, False
        try:
            if app is not None and started:
                await app.update_persistence()
                await app.shutdown()
                await app.post_shutdown(app)
        finally:
            await self.database.close()

    async def _seed_if_empty(self) -> bool:
        from storage import geo, seed

        async with self.database.sessionmaker.begin() as session:
            if await geo.list_townships(session):
                return False
            await seed.seed_small(session, now=datetime.now(UTC), days=self.settings.invite_days)
        return True

    async def _prepare_personas(self) -> str | None:
        """Link unclaimed demo people to their stable ids; return the code for our persona.

        The other demo people are linked quietly (so that notices to, say, the township
        official have someone to reach). Our own persona gets a fresh invite that the shell
        redeems through the real `/start CODE` handler, unless we already speak for it.
        """
        from storage import people

        own_code: str | None = None
        window = timedelta(minutes=self.settings.invite_failure_window_minutes)
        async with self.database.sessionmaker.begin() as session:
            for role_name, spec in demo_people().items():
                role = Role(role_name)
                person = await session.scalar(
                    select(Person).where(Person.full_name == spec["name"])
                )
                ours = self.persona.key == role_name
                if person is None:
                    if ours:
                        raise ShellError(
                            f"this database has no demo {role_name} ({spec['name']}): "
                            "run `cadrebot seed --demo`, or `cadrebot shell --own-database`"
                        )
                    continue
                if ours:
                    actor = await people.load_actor(session, self.user_id)
                    if actor is None or actor.person_id != person.id or role not in actor.roles:
                        own_code = await _persona_invite(
                            session, spec, role, person.id, self.settings
                        )
                    continue
                holder = await session.scalar(
                    select(TelegramAccount.telegram_id).where(
                        TelegramAccount.person_id == person.id
                    )
                )
                stable = PERSONA_IDS[role_name]
                if holder is not None or stable == self.user_id:
                    continue
                code = await _persona_invite(session, spec, role, person.id, self.settings)
                account = await people.ensure_account(session, stable, LANGUAGE_CODES["zh"])
                await people.redeem_invite(
                    session,
                    account,
                    code,
                    now=datetime.now(UTC),
                    max_failures=self.settings.invite_max_failures,
                    window=window,
                )
        return own_code

    def _banner(self, seeded: bool) -> None:
        self._say(f"cadrebot shell · database {self.settings.database_url}")
        if seeded:
            self._say("(the database had no county: seeded the small demo county)")
        if self.key_note:
            self._say(self.key_note)
        spec = self.persona.spec
        who = f"{spec['name']} ({self.persona.key})" if spec else self.persona.key
        self._say(f"you are {who}, Telegram user {self.user_id} · !help lists the commands")

    # -- input -----------------------------------------------------------------------------

    async def handle(self, line: str) -> bool:
        """Act on one input line; False when the shell should end."""
        line = line.rstrip("\r\n")
        stripped = line.strip()
        if not stripped:
            return True
        if self.echo:
            self._say(f"> {stripped}", style="1")
        if stripped in ("!quit", "!exit", "!q"):
            return False
        if stripped.startswith("!"):
            await self._bang(stripped)
        elif stripped.isdigit() and self.buttons:
            await self._press(int(stripped))
        elif stripped.startswith("/"):
            await self._message({"text": stripped, "entities": _command_entity(stripped)})
        else:
            await self._message({"text": stripped})
        await self._after()
        return True

    async def _bang(self, line: str) -> None:
        command, _, rest = line.partition(" ")
        rest = rest.strip()
        if command == "!contact":
            await self._contact(rest)
        elif command == "!voice":
            file_id = f"voice-{next(self._uploads)}"
            # A few bytes behind the file id, should a handler download the recording.
            self.transport.uploads[file_id] = _Upload(file_id, f"{file_id}.ogg", b"OggS")
            voice = {"file_id": file_id, "file_unique_id": file_id, "duration": 3}
            await self._message({"voice": voice})
        elif command == "!sticker":
            await self._message(
                {
                    "sticker": {
                        "file_id": "sticker-1",
                        "file_unique_id": "sticker-1",
                        "width": 512,
                        "height": 512,
                        "is_animated": False,
                        "is_video": False,
                        "type": "regular",
                    }
                }
            )
        elif command == "!photo":
            size = {"file_id": "photo-1", "file_unique_id": "photo-1", "width": 800}
            await self._message({"photo": [size | {"height": 600}]})
        elif command == "!file":
            await self._file(rest)
        elif command == "!say":
            if rest:
                entities = _command_entity(rest) if rest.startswith("/") else None
                await self._message({"text": rest, **({"entities": entities} if entities else {})})
        elif command in ("!drain", "!tick"):
            if command == "!tick":
                await self._tick()
            # _after drains
        elif command == "!buttons":
            self._show_current_buttons()
        elif command == "!whoami":
            self._banner(False)
        elif command == "!help":
            self._say(HELP)
        else:
            self._say(f"(unknown {command}; !help lists the commands, !say sends text as is)")

    async def _contact(self, number: str) -> None:
        shows_button = self.keyboard is not None and any(
            key.request_contact for row in self.keyboard.rows for key in row
        )
        if not shows_button:
            self._say("(no share-contact button is shown; the bot offers one when it asks)")
            return
        phone = number or demo_phone(self.user_id)
        contact = {"phone_number": phone, "first_name": "Demo", "user_id": self.user_id}
        if self.keyboard is not None and self.keyboard.one_time:
            self.keyboard = None
        await self._message({"contact": contact})

    async def _file(self, name: str) -> None:
        upload = read_upload(name)
        if upload is None:
            self._say(f"(no such file: {name or '?'})")
            return
        path, content = upload
        file_id = f"file-{next(self._uploads)}"
        self.transport.uploads[file_id] = _Upload(file_id, path.name, content)
        mime = "text/csv" if path.suffix.lower() == ".csv" else "application/octet-stream"
        document = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_name": path.name,
            "mime_type": mime,
            "file_size": len(content),
        }
        await self._message({"document": document})

    async def _tick(self) -> None:
        from bot import scheduler
        from handlers.chat.context import CadreContext

        await scheduler.tick(CadreContext(self.app))

    def _user(self) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "is_bot": False,
            "first_name": "Demo",
            "language_code": self.language_code,
        }

    async def _message(self, fields: dict[str, Any]) -> None:
        payload = {
            "update_id": next(self._updates),
            "message": {
                "message_id": self.transport.next_id(),
                "date": int(time.time()),
                "chat": {"id": self.user_id, "type": "private", "first_name": "Demo"},
                "from": self._user(),
                **fields,
            },
        }
        await self.app.process_update(Update.de_json(payload, self.app.bot))

    async def _press(self, number: int) -> None:
        if not 1 <= number <= len(self.buttons):
            self._say(f"(no button {number}: the buttons are 1–{len(self.buttons)})")
            return
        button = self.buttons[number - 1]
        if button.data is None:
            self._say(f"(opens {button.url})")
            return
        stored = self.transport.messages.get((self.user_id, self.buttons_message_id))
        payload = {
            "update_id": next(self._updates),
            "callback_query": {
                "id": str(next(self._updates)),
                "from": self._user(),
                "chat_instance": f"shell-{self.user_id}",
                "data": button.data,
                "message": {
                    "message_id": self.buttons_message_id,
                    "date": int(time.time()),
                    "chat": {"id": self.user_id, "type": "private", "first_name": "Demo"},
                    "from": {"id": BOT_ID, "is_bot": True, "first_name": "Cadre"},
                    "text": html_to_text(stored.html) if stored and stored.html else "…",
                },
            },
        }
        await self.app.process_update(Update.de_json(payload, self.app.bot))

    async def _after(self) -> None:
        """Drain the outbox as the running bot's job would, then print what happened."""
        self.transport.delivering = True
        try:
            await self.dispatcher.drain(deadline=time.monotonic() + 10)
        finally:
            self.transport.delivering = False
        await self._print(self.transport.take())

    # -- output ----------------------------------------------------------------------------

    def _say(self, text: str, *, style: str = "2") -> None:
        if self.color:
            text = f"\x1b[{style}m{text}\x1b[0m"
        print(text, file=self.out, flush=True)

    async def _labels(self, chat_ids: set[int]) -> dict[int, str]:
        from storage import people

        labels: dict[int, str] = {}
        async with self.database.sessionmaker() as session:
            for chat_id in chat_ids:
                actor = await people.load_actor(session, chat_id)
                if actor is None:
                    labels[chat_id] = f"user {chat_id}"
                    continue
                name = await session.scalar(
                    select(Person.full_name).where(Person.id == actor.person_id)
                )
                roles = [grant_label(g.role, g.township_name, g.department) for g in actor.grants]
                words = ", ".join(dict.fromkeys(roles)) or "user"
                labels[chat_id] = f"{words} {name or chat_id}"
        return labels

    async def _print(self, events: list[Event]) -> None:
        others = {e.chat_id for e in events if e.chat_id not in (self.user_id, 0)}
        labels = await self._labels(others) if others else {}
        for event in events:
            mine = event.chat_id in (self.user_id, 0)
            if event.kind == "toast":
                self._say(f"  ({event.note})")
            elif event.kind == "rejected":
                self._say(f"!! Telegram would reject {event.note}", style="31")
            elif event.kind == "other":
                self._say(f"(the bot called {event.note}; the shell does not simulate it)")
            elif event.kind == "delete":
                if mine and event.message_id == self.buttons_message_id:
                    self.buttons = []
                self._say("(the bot deleted a message)")
            elif event.kind == "markup":
                if mine:
                    self._track_buttons(event)
                    if event.markup.inline:
                        self._say("(buttons changed)")
                        self._emit_buttons(event.markup.inline, numbered=True)
            else:
                self._emit(event, mine, labels.get(event.chat_id, ""))

    def _emit(self, event: Event, mine: bool, label: str) -> None:
        prefix = ("< (notice) " if event.notice else "< ") if mine else f"→ to {label}: "
        if event.kind == "edit":
            prefix += "(edited) "
        body = html_to_text(event.html, color=self.color)
        if event.kind == "file":
            where = f"saved to {event.path}" if event.path else "not saved"
            body = f"[{event.note} {where}]" + (f"\n{body}" if body.strip() else "")
        lines = body.split("\n")
        print(prefix + lines[0], file=self.out)
        for line in lines[1:]:
            print(f"  {line}" if line else "", file=self.out)
        if mine:
            self._track_buttons(event)
            self._track_keyboard(event.markup)
        if event.markup.inline:
            self._emit_buttons(event.markup.inline, numbered=mine)
        if mine and event.markup.keyboard:
            keys = [
                f"[{key.label}]" + (" → !contact" if key.request_contact else "")
                for row in event.markup.keyboard
                for key in row
            ]
            self._say("  keyboard: " + "  ".join(keys))
        self.out.flush()

    def _emit_buttons(self, rows: list[list[Button]], *, numbered: bool) -> None:
        if numbered:
            lines, _flat = number_buttons(rows)
        else:
            lines = ["  ".join(f"[{b.label}]" for b in row) for row in rows]
        for line in lines:
            print(f"  {line}", file=self.out)

    def _track_buttons(self, event: Event) -> None:
        inline = event.markup.inline
        if inline:
            self.buttons = number_buttons(inline)[1]
            self.buttons_message_id = event.message_id
        elif event.kind in ("edit", "markup") and event.message_id == self.buttons_message_id:
            self.buttons = []

    def _track_keyboard(self, markup: Markup) -> None:
        if markup.keyboard is not None:
            self.keyboard = _Keyboard(markup.keyboard, markup.one_time)
        elif markup.remove_keyboard:
            self.keyboard = None

    def _show_current_buttons(self) -> None:
        if not self.buttons:
            self._say("(no buttons are shown)")
            return
        for index, button in enumerate(self.buttons, start=1):
            self._say(f"  [{index}] {button.label}")


def grant_label(role: Role, township: str | None, department: str | None) -> str:
    """How a recipient is named in `→ to …` lines: `<township> official`, `police reviewer`."""
    if role == Role.TOWNSHIP_OFFICIAL:
        return f"{township or '?'} official"
    if role == Role.MENTOR:
        return f"{township or '?'} mentor"
    if role == Role.REVIEWER:
        return f"{department or '?'} reviewer"
    if role == Role.COUNTY_OFFICIAL:
        return "county official"
    return str(role.value)


def read_upload(name: str) -> tuple[Path, bytes] | None:
    """The file `!file NAME` sends, or None if there is no such file."""
    path = Path(name).expanduser()
    if not name or not path.is_file():
        return None
    return path, path.read_bytes()


def demo_phone(user_id: int) -> str:
    """A valid mainland mobile number of the fake user's own, for `!contact`."""
    return f"138{user_id % 100_000_000:08d}"


def _command_entity(text: str) -> list[dict[str, Any]]:
    command = text.split()[0]
    return [{"type": "bot_command", "offset": 0, "length": len(command.encode("utf-16-le")) // 2}]


# -- command line ---------------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `shell` on the `cadrebot` sub-command parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "shell",
        help="chat with the real handlers in this terminal (no token, no network)",
        description=(
            "Chat with the bot's real handlers in the terminal. Lines starting with / are "
            "commands, a number presses that button, !help lists the rest."
        ),
    )
    parser.add_argument(
        "--as",
        dest="persona",
        default="candidate",
        metavar="ROLE_OR_NAME",
        help="admin, county_official, township_official, mentor, reviewer (or a demo "
        "person's name), candidate (default), or new for a fresh user",
    )
    parser.add_argument("--user-id", type=int, help="the fake Telegram user id to act as")
    parser.add_argument("--lang", choices=sorted(LANGUAGE_CODES), default="zh")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help=f"folder for photos and documents the bot sends (default {DEFAULT_OUT_DIR}/)",
    )
    parser.add_argument("--verbose", action="store_true", help="show the bot's INFO log lines")
    parser.add_argument(
        "--own-database",
        action="store_true",
        help=f"use {OWN_DATABASE_URL.removeprefix('sqlite:///')} instead of DATABASE_URL "
        "(the database `cadrebot invite` and the bot use)",
    )
    return parser


def load_or_create_key(path: Path) -> str:
    """The shell's own DATA_KEY, created once (mode 0600) so drafts outlive a session."""
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another shell made it first
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


def shell_settings(
    settings: Settings, key_file: Path = DEFAULT_KEY_FILE, *, own_database: bool = False
) -> Settings:
    """The operator's settings with a throwaway token, a DATA_KEY (theirs or the shell's),
    and their database (DATABASE_URL or its default) unless `own_database`."""
    if settings.data_key is not None:
        key = settings.data_key.get_secret_value()
    else:
        key = load_or_create_key(key_file)
    try:
        parse_keys(key)
    except DataKeyError:
        source = "DATA_KEY" if settings.data_key is not None else str(key_file)
        raise SettingsError(
            f"{source} is not a valid key: `cadrebot keygen` prints a new one"
        ) from None
    database_url = OWN_DATABASE_URL if own_database else settings.database_url
    return settings.model_copy(
        update={
            "database_url": database_url,
            "bot_token": SecretStr(FAKE_TOKEN),
            "bot_username": BOT_USERNAME,
            "data_key": SecretStr(key),
        }
    )


def _read_line(interactive: bool) -> str:
    if interactive:
        return input("› ")
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`cadrebot shell`: migrate, seed the demo if empty, then chat until !quit or EOF."""
    if not args.verbose:
        # One log line per update would bury the chat; warnings and errors still show.
        for name in ("cadrebot", "telegram", "apscheduler", "alembic", "httpx"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        persona = resolve_persona(args.persona, args.user_id)
        own_key = settings.data_key is None
        settings = shell_settings(settings, own_database=args.own_database)
        try:
            migrate.upgrade(settings.database_url)
        except OSError as exc:
            raise ShellError(f"cannot reach the database: {exc}") from None
        except Exception as exc:
            if type(exc).__name__ in {"OperationalError", "InvalidCatalogNameError"}:
                raise ShellError(f"cannot reach the database: {type(exc).__name__}") from None
            raise
    except ShellError as exc:
        print(f"cadrebot: {exc}", file=sys.stderr)
        return 1
    # The shell is an active process too: it delivers the outbox to its stand-in Telegram.
    # Beside a running bot it would take real people's messages, so it refuses, and while it
    # runs a `cadrebot run` waits (PostgreSQL) or refuses (SQLite) as it would for any other.
    from bot.standby import AlreadyRunning, PostgresLock, SqliteLock, sqlite_path

    path = sqlite_path(settings.database_url)
    file_lock = SqliteLock(path) if path is not None else None
    db_lock = PostgresLock(settings.database_url) if path is None else None
    busy = (
        "a cadrebot is already running on this database: the shell would deliver its "
        "messages; stop it, or use `cadrebot shell --own-database`"
    )
    try:
        if file_lock is not None:
            file_lock.acquire()
    except AlreadyRunning:
        print(f"cadrebot: {busy}", file=sys.stderr)
        return 1
    # PostgreSQL's lock lives on a connection of the shell's own event loop.
    with asyncio.Runner() as runner:
        try:
            if db_lock is not None and not runner.run(db_lock.try_acquire()):
                print(f"cadrebot: {busy}", file=sys.stderr)
                return 1
            return _run_shell(runner, args, settings, persona, own_key)
        finally:
            if file_lock is not None:
                file_lock.release()
            if db_lock is not None:
                runner.run(db_lock.release())


def _run_shell(
    runner: asyncio.Runner,
    args: argparse.Namespace,
    settings: Settings,
    persona: Persona,
    own_key: bool,
) -> int:
    interactive = sys.stdin.isatty()
    if interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 - line editing and history for input()
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    shell = Shell(
        settings,
        persona,
        language_code=LANGUAGE_CODES[args.lang],
        out_dir=args.out,
        out=sys.stdout,
        color=color,
        echo=not interactive,
    )
    if own_key and not args.own_database:
        # The bot shares this database and needs the same key to read what the shell stored.
        shell.key_note = (
            f"(DATA_KEY is not set: drafts here are encrypted with {DEFAULT_KEY_FILE}; "
            f"put DATA_KEY=<the key in {DEFAULT_KEY_FILE}> into .env so that `cadrebot run` "
            "reads them too)"
        )
    try:
        runner.run(shell.start())
        return _chat(runner, shell, interactive)
    except ShellError as exc:
        print(f"cadrebot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print()
        return 130
    finally:
        runner.run(shell.stop())


def _chat(runner: asyncio.Runner, shell: Shell, interactive: bool) -> int:
    """Read lines until !quit or end of input; 1 if the shell itself failed on one."""
    code = 0
    while True:
        try:
            line = _read_line(interactive)
        except EOFError:
            if interactive:
                print()
            return code
        try:
            if not runner.run(shell.handle(line)):
                return code
        except (ShellError, KeyboardInterrupt):
            raise
        except Exception as exc:
            # A fault of the shell, not of a handler (PTB's error handler gets those): say so
            # in one line, keep chatting, and end with status 1.
            log.info("input failed", exc_info=exc)
            print(f"cadrebot: shell failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            code = 1


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bot.shell`: the same as `cadrebot shell`, for before it is registered."""
    parser = argparse.ArgumentParser(prog="cadrebot")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["shell", *(sys.argv[1:] if argv is None else argv)])
    try:
        settings = load_settings()
        logs.configure(settings.log_level)
        return run(args, settings)
    except SettingsError as exc:
        print(f"cadrebot: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
