"""End-to-end fixtures: the real `cadrebot run` process against a Bot API emulator over HTTP.

The emulator is telegram-test-api 4.2.1 (npm), started by `server.js` next to this file, which
fills the gaps python-telegram-bot trips over. The tests play the person through the emulator's
client routes (`/sendMessage`, `/sendCommand`, `/sendCallback`, `/getUpdates`,
`/getUpdatesHistory`) and the bot talks to it as it would to api.telegram.org.

Everything here is synchronous (httpx.Client, subprocess) and bounded in time; every process
started here is stopped in a finalizer, and dies with the test run even if pytest is killed.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from cryptography.fernet import Fernet

E2E_DIR = Path(__file__).resolve().parent
PROJECT_DIR = E2E_DIR.parent.parent
BOT_USERNAME = "CadreE2EBot"

NPM_TIMEOUT = 240.0  # seconds; only when node_modules is missing
EMULATOR_START_TIMEOUT = 15.0
EMULATOR_LIFETIME = 3 * 3600  # seconds; a last resort, the emulator exits with the test run
BOT_START_TIMEOUT = 30.0
BOT_STOP_TIMEOUT = 15.0
CLI_TIMEOUT = 60.0
REPLY_TIMEOUT = 10.0
POLL_STEP = 0.05
POLL_INTERVAL = 0.2  # `cadrebot run --poll-interval`: the emulator answers getUpdates at once

# Settings the bot reads from the environment; none may leak in from the developer's shell.
_SETTINGS_ENV = {
    "BOT_TOKEN",
    "BOT_USERNAME",
    "DATABASE_URL",
    "TELEGRAM_API_URL",
    "TIMEZONE",
    "LOCALE",
    "DATA_KEY",
    "POLL_INTERVAL",
    "INVITE_DAYS",
    "INVITE_MAX_FAILURES",
    "INVITE_FAILURE_WINDOW_MINUTES",
    "LOG_LEVEL",
}

# Log files of the processes started here; their tails are attached to a failing test's report.
_LOGS: dict[str, Path] = {}
_tokens = itertools.count(700_001)
_user_ids = itertools.count(5_000_001)


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the test runner dies, however it dies."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _tail(path: Path, lines: int = 80) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for name, path in _LOGS.items():
            report.sections.append((f"{name} log ({path})", _tail(path)))
    return report


def _wait_until(
    condition: Callable[[], bool], timeout: float, what: str, step: float = POLL_STEP
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def _stop_process(process: subprocess.Popen[Any], timeout: float) -> int:
    """SIGTERM, wait at most `timeout`, then SIGKILL. Returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    assert process.returncode is not None
    return process.returncode


# -- the emulator ---------------------------------------------------------------------------


class Emulator:
    """The telegram-test-api process and its person-side HTTP routes."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._http: httpx.Client | None = None

    def start(self) -> None:
        node = shutil.which("node")
        assert node is not None
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                node,
                str(E2E_DIR / "server.js"),
                *("--port", "0", "--bot-username", BOT_USERNAME),
                *("--lifetime", str(EMULATOR_LIFETIME)),
            ],
            cwd=E2E_DIR,
            stdin=subprocess.PIPE,  # the emulator exits when this pipe closes
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        _LOGS["emulator"] = self.log_path

        def ready() -> bool:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"the emulator exited:\n{_tail(self.log_path)}")
            for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("READY "):
                    self.url = line.split()[1]
                    return True
            return False

        _wait_until(ready, EMULATOR_START_TIMEOUT, "the emulator's READY line")
        self._http = httpx.Client(base_url=self.url, timeout=5.0)

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._process is not None:
            if self._process.stdin is not None:
                self._process.stdin.close()
            _stop_process(self._process, timeout=5)
        if self._log is not None:
            self._log.close()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """A person-side call; returns `result`. The emulator answers {ok, result}."""
        assert self._http is not None
        response = self._http.post(path, json=body)
        response.raise_for_status()
        data = response.json()
        assert data.get("ok") is True, f"{path} answered {data}"
        return data["result"]

    def polls(self, token: str) -> int:
        """How many times a bot with this token has called getUpdates (added by server.js)."""
        return int(self.post("/e2e/status", {"token": token})["polls"])

    def history(self, token: str) -> list[dict[str, Any]]:
        """Everything stored for this bot, bot messages (with edits applied) and person updates."""
        return list(self.post("/getUpdatesHistory", {"token": token}))


def _ensure_node_modules() -> None:
    if (E2E_DIR / "node_modules" / "telegram-test-api" / "package.json").is_file():
        return
    npm = shutil.which("npm")
    assert npm is not None
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=E2E_DIR,
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"npm ci failed in {E2E_DIR}:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """telegram-test-api installed from package-lock.json (`npm ci`) if it is not already."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are required for the e2e tests")
        pytest.skip("node/npm not installed: the e2e tests need them")
    _ensure_node_modules()
    return E2E_DIR / "node_modules"


@pytest.fixture(scope="module")
def emulator(node_modules: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator per test module, stopped when the module's tests are done."""
    server = Emulator(tmp_path_factory.mktemp("emulator") / "emulator.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


# -- the bot process ------------------------------------------------------------------------


class BotProcess:
    """`cadrebot run` as a child process pointed at the emulator, restartable."""

    def __init__(self, emulator: Emulator, workdir: Path, token: str) -> None:
        self.emulator = emulator
        self.workdir = workdir
        self.token = token
        self.log_path = workdir / "cadrebot.log"
        self.database_url = f"sqlite:///{workdir / 'e2e.sqlite3'}"
        self.data_key = Fernet.generate_key().decode()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k.upper() not in _SETTINGS_ENV}
        env.update(
            BOT_TOKEN=self.token,
            BOT_USERNAME=BOT_USERNAME,
            DATABASE_URL=self.database_url,
            TELEGRAM_API_URL=self.emulator.url,
            DATA_KEY=self.data_key,
            LOCALE="zh_CN",
            TIMEZONE="Asia/Shanghai",
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
            # The working tree's code, whatever is installed in the venv.
            PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_DIR), env.get("PYTHONPATH")])),
        )
        return env

    @staticmethod
    def command(*args: str) -> list[str]:
        script = Path(sys.executable).with_name("cadrebot")
        if script.is_file():
            return [str(script), *args]
        return [sys.executable, "-m", "bot.cli", *args]

    def run(self, out: IO[bytes], *args: str) -> subprocess.Popen[bytes]:
        """`cadrebot run *args` in the bot's folder and environment, its output to `out`;
        dies with the test process."""
        return subprocess.Popen(
            self.command("run", *args),
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = BOT_START_TIMEOUT) -> None:
        """Start `cadrebot run` and return once it polls the emulator."""
        assert not self.running, "the bot is already running"
        self.starts += 1
        self._log = self.log_path.open("ab")
        self._log.write(f"\n===== cadrebot run, start #{self.starts} =====\n".encode())
        self._log.flush()
        polls_before = self.emulator.polls(self.token)
        self._process = self.run(self._log, "--poll-interval", str(POLL_INTERVAL))
        _LOGS["cadrebot"] = self.log_path

        def polling() -> bool:
            if not self.running:
                raise RuntimeError(f"cadrebot run exited:\n{_tail(self.log_path)}")
            return self.emulator.polls(self.token) > polls_before

        _wait_until(polling, timeout, "cadrebot run to poll the emulator")

    def stop(self, timeout: float = BOT_STOP_TIMEOUT) -> int | None:
        """SIGTERM (PTB's graceful stop: persistence flushed), bounded; returns the exit code."""
        if self._process is None:
            return None
        code = _stop_process(self._process, timeout)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def kill(self) -> None:
        """kill -9: no graceful stop, nothing flushed that was not committed."""
        assert self._process is not None, "the bot is not running"
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(timeout=10)
        self.stop()  # already dead: forgets the process and closes its log

    def restart(self) -> int | None:
        code = self.stop()
        self.start()
        return code

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT) -> str:
        """Run another `cadrebot` command with the bot's environment; returns its stdout."""
        result = subprocess.run(
            self.command(*args),
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, (
            f"cadrebot {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
        return result.stdout


@pytest.fixture(scope="module")
def bot(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    """A running `cadrebot run` with a fresh SQLite database and its own token, per module."""
    token = f"{next(_tokens)}:E2ETOKEN{secrets.token_hex(12)}"
    process = BotProcess(emulator, tmp_path_factory.mktemp("cadrebot"), token)
    try:
        process.start()
        yield process
    finally:
        process.stop()


# -- the person -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BotMessage:
    """One message the bot sent: its text (raw HTML) and inline buttons."""

    message_id: int
    chat_id: int
    text: str
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (label, callback_data)

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> BotMessage:
        message = stored["message"]
        markup = message.get("reply_markup") or {}
        buttons = [
            (button["text"], button.get("callback_data", ""))
            for row in (markup.get("inline_keyboard") or [])
            for button in row
        ]
        return cls(
            message_id=int(stored["messageId"]),
            chat_id=int(message["chat_id"]),
            text=str(message.get("text", "")),
            buttons=buttons,
        )

    def button(self, label: str) -> str:
        """The callback data of the button whose label contains `label`."""
        matches = [data for text, data in self.buttons if label in text]
        assert len(matches) == 1, f"no single button {label!r} in {self.buttons}"
        return matches[0]


class Person:
    """A human in a private chat with the bot, typing and pressing buttons via the emulator."""

    def __init__(
        self, emulator: Emulator, bot: BotProcess, user_id: int, language_code: str = "zh-hans"
    ) -> None:
        self.emulator = emulator
        self.bot = bot
        self.user_id = user_id
        self.language_code = language_code
        self._pending: list[BotMessage] = []

    @property
    def user(self) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "is_bot": False,
            "first_name": f"P{self.user_id}",
            "language_code": self.language_code,
        }

    @property
    def chat(self) -> dict[str, Any]:
        return {"id": self.user_id, "type": "private", "first_name": f"P{self.user_id}"}

    def send(self, text: str) -> None:
        """Type `text`; a leading /command goes through /sendCommand with its entity."""
        body: dict[str, Any] = {
            "botToken": self.bot.token,
            "date": int(time.time()),
            "from": self.user,
            "chat": self.chat,
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
            self.emulator.post("/sendCommand", body)
        else:
            self.emulator.post("/sendMessage", body)

    def press(self, message: BotMessage, data: str) -> None:
        """Press the inline button carrying `data` under the bot's `message`."""
        self.emulator.post(
            "/sendCallback",
            {
                "botToken": self.bot.token,
                "date": int(time.time()),
                "from": self.user,
                "data": data,
                "message": {
                    "message_id": message.message_id,
                    "date": int(time.time()),
                    "chat": self.chat,
                    "from": {
                        "id": int(self.bot.token.split(":")[0]),
                        "is_bot": True,
                        "first_name": "Cadre E2E",
                        "username": BOT_USERNAME,
                    },
                    "text": message.text,
                },
            },
        )

    def receive(self, count: int = 1, timeout: float = REPLY_TIMEOUT) -> list[BotMessage]:
        """Wait (bounded) for the bot's next `count` messages to this chat, oldest first."""

        def enough() -> bool:
            fresh = self.emulator.post(
                "/getUpdates", {"token": self.bot.token, "chatId": self.user_id}
            )
            self._pending.extend(BotMessage.from_stored(item) for item in fresh)
            return len(self._pending) >= count

        try:
            _wait_until(enough, timeout, f"{count} message(s) from the bot to {self.user_id}")
        except TimeoutError as exc:
            got = [m.text for m in self._pending]
            raise AssertionError(f"{exc}; got {got}") from None
        messages, self._pending = self._pending[:count], self._pending[count:]
        return messages

    def ask(self, text: str, count: int = 1, timeout: float = REPLY_TIMEOUT) -> list[BotMessage]:
        """Send `text` and wait for `count` replies."""
        self.send(text)
        return self.receive(count, timeout)

    def edited(self, message: BotMessage, timeout: float = REPLY_TIMEOUT) -> BotMessage:
        """Wait (bounded) until the bot edits `message` in place; returns the new version.

        The emulator reports edits only in /getUpdatesHistory; server.js stamps `editedAt`.
        """
        found: list[BotMessage] = []

        def was_edited() -> bool:
            for item in self.emulator.history(self.bot.token):
                if (
                    "message" in item
                    and item.get("editedAt")
                    and int(item["messageId"]) == message.message_id
                    and str(item["message"].get("chat_id")) == str(self.user_id)
                ):
                    found.append(BotMessage.from_stored(item))
                    return True
            return False

        _wait_until(was_edited, timeout, f"an edit of message {message.message_id}")
        return found[-1]


@pytest.fixture
def person(emulator: Emulator, bot: BotProcess) -> Callable[..., Person]:
    """Make a new person with a fresh user id: `person()` or `person(language_code="en")`."""

    def make(language_code: str = "zh-hans") -> Person:
        return Person(emulator, bot, next(_user_ids), language_code)

    return make
