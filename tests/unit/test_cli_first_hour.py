"""`cadrebot` for a newcomer and an operator (issue 11, findings 17 and 19): one-line errors
for bad geography and an unreachable Bot API, shared databases, links without BOT_USERNAME,
and `db upgrade` saying what it did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.settings import Settings
from tests.conftest import PG_URL, _pg_run
from tests.support.commands import run_text
from tests.unit.test_cli import cli, one_line, workdir, write_csv  # noqa: F401 - fixture

TOKEN = "123456:E2ETOKENabcdefghijklmnopqrstuv"
_SETTINGS = {name.upper() for name in Settings.model_fields}
CADREBOT = Path(sys.executable).parent / "cadrebot"


def _cadrebot(
    cwd: Path, env: dict[str, str], *args: str, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The installed `cadrebot` command, its output captured as UTF-8 text."""
    return run_text([str(CADREBOT), *args], cwd=cwd, env=env, input=input, timeout=timeout)


# -- geo import (finding 17) ----------------------------------------------------------------


def test_geo_import_refuses_a_long_township_naming_the_line(
    workdir: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    long_name = "镇" * 51
    path = write_csv(
        workdir / "geo.csv", f"township,village\n青山镇,青山村\n{long_name},某村\n木黄镇,木黄村\n"
    )
    assert cli("geo", "import", str(path), "--county", "示例县") == 1
    out, err = capsys.readouterr()
    line = one_line(err)
    assert out == "" and f"{path}:3: township is 51 characters long (at most 40)" in line
    assert "Traceback" not in err and "Error" not in line
    # Nothing was imported.
    good = write_csv(workdir / "good.csv", "青山镇,青山村\n")
    assert cli("geo", "import", str(good), "--county", "示例县") == 0
    assert one_line(capsys.readouterr().out) == "imported 1 townships and 1 villages"


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ("青山镇,\u3000\u200b\u3000", "village is blank"),
        ("\u200b,青山村", "township is blank"),
        ("青山\u200b镇,青山村", "invisible"),
        (f"青山镇,{'村' * 41}", "village is 41 characters"),
    ],
)
def test_geo_import_refuses_blank_or_odd_names(
    workdir: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    row: str,
    why: str,
) -> None:
    path = write_csv(workdir / "geo.csv", f"青山镇,青山村\n{row}\n")
    assert cli("geo", "import", str(path), "--county", "示例县") == 1
    line = one_line(capsys.readouterr().err)
    assert f"{path}:2: " in line and why in line


def test_geo_import_refuses_a_long_county(
    workdir: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_csv(workdir / "geo.csv", "青山镇,青山村\n")
    assert cli("geo", "import", str(path), "--county", "县" * 41) == 1
    assert "--county: county is 41 characters" in one_line(capsys.readouterr().err)


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    """A database of its own on the test PostgreSQL, for a command that migrates it."""
    name = f"cli_{uuid.uuid4().hex[:12]}"
    _pg_run(f"CREATE DATABASE {name}")
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _pg_run(f"DROP DATABASE {name} WITH (FORCE)")


def test_geo_import_on_postgresql_is_one_line_not_a_dbapi_error(
    workdir: Path,  # noqa: F811
    pg_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_database_url)
    path = write_csv(workdir / "geo.csv", f"青山镇,青山村\n{'镇' * 51},某村\n")
    assert cli("geo", "import", str(path), "--county", "示例县") == 1
    line = one_line(capsys.readouterr().err)
    assert f"{path}:2: township is 51 characters" in line and "DBAPIError" not in line


# -- offline start (finding 17) -------------------------------------------------------------


def _offline_env(folder: Path, api_url: str) -> dict[str, str]:
    return {
        "TELEGRAM_API_URL": api_url,
        "BOT_TOKEN": TOKEN,
        "DATA_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": f"sqlite:///{folder / 'run.sqlite3'}",
    }


def test_run_with_the_bot_api_unreachable_is_one_line_and_exit_1(
    workdir: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in _offline_env(workdir, "http://127.0.0.1:1").items():
        monkeypatch.setenv(name, value)
    assert cli("run") == 1
    out, err = capsys.readouterr()
    line = one_line(err)
    assert out == "" and "cannot reach the Bot API at http://127.0.0.1:1" in line
    assert "TELEGRAM_API_URL" in line and TOKEN not in line


def test_offline_cadrebot_run_process_prints_one_line(workdir: Path) -> None:  # noqa: F811
    """The real process, as an operator starts it: one line on stderr, status 1, quickly."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in _SETTINGS}
    env |= _offline_env(workdir, "http://127.0.0.1:1")
    done = _cadrebot(workdir, env, "run", timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "cannot reach the Bot API" in one_line(done.stderr)


class _Refusing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.dumps({"ok": False, "error_code": 401, "description": "Unauthorized"})
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_run_with_a_refused_token_is_one_line_and_exit_2(
    workdir: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        for name, value in _offline_env(workdir, url).items():
            monkeypatch.setenv(name, value)
        assert cli("run") == 2
    finally:
        server.shutdown()
        server.server_close()
    line = one_line(capsys.readouterr().err)
    assert "BOT_TOKEN was refused" in line and TOKEN not in line


# -- a newcomer's first hour (finding 19) ---------------------------------------------------


def test_db_upgrade_from_an_older_revision_names_both(
    workdir: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    from alembic.script import ScriptDirectory

    from storage import migrate

    url = f"sqlite:///{workdir / 'cli.sqlite3'}"
    migrate.upgrade(url, revision="0008")
    head = ScriptDirectory.from_config(migrate.alembic_config(url)).get_current_head()
    assert cli("db", "upgrade") == 0
    assert one_line(capsys.readouterr().out) == f"database migrated from 0008 to {head}"


def test_seed_demo_without_username_prints_placeholder_links(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATA_KEY", Fernet.generate_key().decode())  # the demo's files
    assert cli("seed", "--demo") == 0
    out, err = capsys.readouterr()
    lines = out.strip().split("\n")
    assert len(lines) == 5
    for line in lines:
        _role, code, link = line.split()
        assert link == f"https://t.me/<your_bot>?start={code}"
    note = one_line(err)
    assert "BOT_USERNAME is not set" in note and "<your_bot>" in note


def test_article_seed_without_username_works(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's `cadrebot seed --demo --scale article` on a clone with only a DATA_KEY."""
    monkeypatch.setenv("DATA_KEY", Fernet.generate_key().decode())
    assert cli("seed", "--demo", "--scale", "article") == 0
    out, err = capsys.readouterr()
    assert out.startswith("county built: ") and "https://t.me/<your_bot>?start=" in out
    assert "BOT_USERNAME" in one_line(err)


def test_invite_when_telegram_cannot_be_asked_prints_placeholder_links(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:1")
    assert cli("invite", "--role", "admin") == 0
    out, err = capsys.readouterr()
    assert "https://t.me/<your_bot>?start=" in one_line(out)
    note = one_line(err)
    assert "could not be asked from Telegram" in note and TOKEN not in note


def _newcomer_env() -> dict[str, str]:
    """A terminal on a fresh clone: none of the bot's settings set."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in _SETTINGS}
    return env | {"PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"}


def test_an_invite_from_the_cli_works_in_the_shell(tmp_path: Path) -> None:
    """`cadrebot invite` then `cadrebot shell --as new`, both with the defaults: one database,
    so the code is granted (it was "邀请码无效" while the shell kept data/shell.sqlite3)."""
    env = _newcomer_env()
    invite = _cadrebot(tmp_path, env, "invite", "--role", "county_official")
    assert invite.returncode == 0, invite.stderr
    code = invite.stdout.split()[0]
    shell = _cadrebot(tmp_path, env, "shell", "--as", "new", input=f"/start {code}\n")
    assert shell.returncode == 0, shell.stderr
    assert "database sqlite:///data/cadrebot.sqlite3" in shell.stdout
    assert "邀请码有效" in shell.stdout and "邀请码无效" not in shell.stdout
    # The demo county was seeded into the empty database, and the key note was shown.
    assert "seeded the small demo county" in shell.stdout
    assert "DATA_KEY is not set" in shell.stdout
    assert not (tmp_path / "data" / "shell.sqlite3").exists()
    # Asked otherwise, the shell keeps to its own file, where that code means nothing.
    apart = _cadrebot(
        tmp_path,
        env,
        "shell",
        "--as",
        "new",
        "--own-database",
        "--user-id",
        "777",
        input=f"/start {code}\n",
    )
    assert apart.returncode == 0, apart.stderr
    assert "database sqlite:///data/shell.sqlite3" in apart.stdout
    assert "邀请码无效" in apart.stdout and "DATA_KEY is not set" not in apart.stdout
