"""One person's chat with the real handlers: input lines become updates, events are printed."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from cryptography.fernet import InvalidToken
from telegram import Update

from bot.fakeapi.html import html_to_text
from bot.fakeapi.markup import Button
from bot.fakeapi.records import Upload
from bot.fakeapi.transport import FakeTransport
from bot.settings import Settings
from bot.shell.personas import Persona, ShellError, prepare_personas
from bot.shell.render import Keyboard, Screen
from storage.crypto import DataKeyError
from storage.db import Database

FAKE_TOKEN = "100000:LOCALSHELLnotarealtokennothingleaves"
BOT_ID = 100000
BOT_USERNAME = "cadre_shell_bot"
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


class LocalTelegram(FakeTransport):
    """The one fake Bot API, set up for the shell: it refuses what Telegram refuses, edits only
    messages it sent, and keeps the photos and documents the bot sends in `out_dir`."""

    def __init__(self, out_dir: Path) -> None:
        super().__init__(
            username=BOT_USERNAME,
            bot_id=BOT_ID,
            known_messages=True,
            out_dir=out_dir,
            first_message_id=1,
        )


class Shell(Screen):
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
        self.keyboard: Keyboard | None = None
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
        code = await prepare_personas(self.database, self.settings, self.persona)
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

        now = datetime.now(UTC)
        async with self.database.sessionmaker.begin() as session:
            if await geo.list_townships(session):
                return False
            await seed.seed_small(session, now=now, days=self.settings.invite_days)
            await seed.seed_files(
                session,
                self.app.bot_data["cipher"],
                now=now,
                tz=self.settings.tz,
                departments=self.settings.department_codes,
            )
        return True

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
            self.transport.uploads[file_id] = Upload(file_id, f"{file_id}.ogg", b"OggS")
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
        self.transport.uploads[file_id] = Upload(file_id, path.name, content)
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
                "message_id": self.transport.receive(self.user_id),
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
