"""`cadrebot shell`: a whole nomination through a subprocess's stdin; its pieces in-process."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest

from bot.fakeapi.html import convert_html, html_to_text
from bot.fakeapi.markup import Button, Markup, parse_markup
from bot.fakeapi.records import Event
from bot.settings import DEFAULT_DATABASE_URL, Settings, SettingsError
from bot.shell.command import OWN_DATABASE_URL, shell_settings
from bot.shell.personas import ShellError, resolve_persona
from bot.shell.render import number_buttons
from bot.shell.repl import FAKE_TOKEN, LocalTelegram, Shell
from storage.rules.identity import make_id_number
from tests.support.commands import run_text

ID_NUMBER = make_id_number("520221", date(1990, 3, 7), 12, male=True)
TIMEOUT = 120


def shell_command() -> list[str]:
    """`cadrebot shell` once bot/cli.py registers it; `python -m bot.shell` until then."""
    from bot.cli import _parser

    registered = any(
        isinstance(action, argparse._SubParsersAction) and "shell" in action.choices
        for action in _parser()._actions
    )
    if not registered:
        return [sys.executable, "-m", "bot.shell"]
    script = Path(sys.executable).with_name("cadrebot")
    if script.is_file():
        return [str(script), "shell"]
    return [sys.executable, "-m", "bot.cli", "shell"]


def run_shell(
    tmp_path: Path, stdin: str, *args: str, data_key: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shell.sqlite3'}",
        "PYTHONIOENCODING": "utf-8",
        "NO_COLOR": "1",
    }
    if data_key is not None:
        env["DATA_KEY"] = data_key
    return run_text([*shell_command(), *args], cwd=tmp_path, env=env, input=stdin, timeout=TIMEOUT)


def test_whole_nomination_through_stdin(tmp_path: Path) -> None:
    lines = [
        "/nominate",
        "1",  # 同意
        "1",  # 同意 (ID number)
        "张三",
        "1",  # 男
        ID_NUMBER,
        "13812345678",
        "1",  # 汉族
        "1",  # 中共党员
        "3",  # 大专
        "1",  # 青山镇
        "2",  # 石门村
        "3",  # 返乡大学毕业生
        "电商运营",
        "在外务工五年",
        "建设家乡",
        "14",  # ✅ 确认提交, after the 13 edit buttons
    ]
    result = run_shell(tmp_path, "\n".join(lines) + "\n", data_key=Fernet.generate_key().decode())
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "seeded the small demo county" in out
    assert "[1] 同意  [2] 不同意" in out
    assert "[1] 男  [2] 女" in out
    assert "请核对报名信息" in out and "[14] ✅ 确认提交" in out
    assert ID_NUMBER not in out.split("> " + ID_NUMBER)[1]  # the bot shows it masked only
    assert "报名已提交" in out
    # The outbox was drained: the township official's notice is printed with its recipient.
    assert "→ to 青山镇 official 演示镇干部: " in out
    # DATA_KEY came from the environment: no key file was written.
    assert not (tmp_path / "data" / "shell.key").exists()


def test_draft_survives_between_sessions_with_the_shell_key(tmp_path: Path) -> None:
    first = run_shell(tmp_path, "/nominate\n1\n1\n王五\n")
    assert first.returncode == 0, first.stderr
    assert "（2/13）" in first.stdout
    key = tmp_path / "data" / "shell.key"
    assert key.is_file() and key.stat().st_mode & 0o077 == 0
    # A new process: no buttons are known yet, so "1" is text; the form asks again, resumed.
    second = run_shell(tmp_path, "1\n1\n")
    assert second.returncode == 0, second.stderr
    assert "（2/13）" in second.stdout and "（3/13）" in second.stdout
    assert "seeded" not in second.stdout


def test_logging_in_as_a_demo_role(tmp_path: Path) -> None:
    result = run_shell(
        tmp_path,
        "!contact\n!voice\n/start\n",
        "--as",
        "mentor",
        data_key=Fernet.generate_key().decode(),
    )
    assert result.returncode == 0, result.stderr
    assert "you are 演示导师 (mentor), Telegram user 900004" in result.stdout
    assert "邀请码有效" in result.stdout and "/mentees" in result.stdout
    assert "no share-contact button is shown" in result.stdout


@pytest.mark.parametrize(
    ("persona", "commands", "expected"),
    [
        ("mentor", ["/mentees"], ["田秀芬 · 青山镇 石门村", "已逾期", "杨光明", "天后到期"]),
        ("reviewer", ["/vetting"], ["吴建国 · 青山镇 · 公安"]),
        (
            "township_official",
            ["/review", "/difficulties"],
            ["冉小燕 · 青山镇 · 个人自荐", "杨光明 · 青山镇 青山村", "合作社缺少冷库"],
        ),
    ],
)
def test_each_demo_role_lands_on_work_waiting(
    tmp_path: Path, persona: str, commands: list[str], expected: list[str]
) -> None:
    """`--as mentor` used to open on "您目前没有结对的后备干部": the county the shell seeds
    has files for every demo role."""
    stdin = "\n".join(commands) + "\n"
    result = run_shell(tmp_path, stdin, "--as", persona, data_key=Fernet.generate_key().decode())
    assert result.returncode == 0, result.stderr
    assert "seeded the small demo county" in result.stdout
    for fragment in expected:
        assert fragment in result.stdout, (fragment, result.stdout)
    assert "没有结对" not in result.stdout


def test_the_shell_on_a_county_seeded_by_the_cli(tmp_path: Path) -> None:
    """`cadrebot seed --demo`, then `cadrebot shell --as mentor` on the same database: the
    shell seeds nothing more and the mentor's mentees are the seed's."""
    key = Fernet.generate_key().decode()
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'shell.sqlite3'}", "DATA_KEY": key}
    cadrebot = [*shell_command()[:-1], "seed", "--demo"]  # `cadrebot seed`, not `shell`
    seeded = run_text(cadrebot, cwd=tmp_path, env=env, input="", timeout=TIMEOUT)
    assert seeded.returncode == 0, seeded.stderr
    result = run_shell(tmp_path, "/mentees\n", "--as", "mentor", data_key=key)
    assert result.returncode == 0, result.stderr
    assert "seeded" not in result.stdout
    assert "田秀芬" in result.stdout and "杨光明" in result.stdout


# -- in-process pieces ------------------------------------------------------------------------


def test_html_to_text_strips_tags_and_unescapes() -> None:
    html = '<b>张三</b> &lt;3 &amp; <i>ok</i> &quot;x&quot; <a href="https://e.org">site</a>'
    assert html_to_text(html) == '张三 <3 & ok "x" site (https://e.org)'
    assert html_to_text("<blockquote>a\nb</blockquote>") == "│ a\n│ b"
    assert html_to_text('<span class="tg-spoiler">s</span><code>c</code>') == "sc"


def test_bold_is_ansi_only_with_color() -> None:
    assert html_to_text("<b>a<b>b</b>c</b>d", color=True) == "\x1b[1mabc\x1b[22md"
    assert html_to_text("<b>a</b>", color=False) == "a"


@pytest.mark.parametrize(
    "html",
    ["<p>x</p>", "<b>x", "x</b>", "a & b", "<span>x</span>", "   ", "&nbsp;x", "x" * 4097],
)
def test_html_telegram_would_reject(html: str) -> None:
    assert convert_html(html)[1]


def test_buttons_are_numbered_across_rows() -> None:
    rows = [
        [Button("同意", "a"), Button("不同意", "b")],
        [Button("返回", "c")],
        [Button("网页", url="https://e.org")],
    ]
    lines, flat = number_buttons(rows)
    assert lines == ["[1] 同意  [2] 不同意", "[3] 返回", "[4] 网页 ↗ https://e.org"]
    assert [b.data for b in flat] == ["a", "b", "c", None]


def test_markup_kinds() -> None:
    inline = InlineKeyboardMarkup([[InlineKeyboardButton("是", callback_data="y")]])
    assert parse_markup(inline.to_json()).inline == [[Button("是", "y")]]
    contact = {"keyboard": [[{"text": "📱", "request_contact": True}]], "one_time_keyboard": True}
    markup = parse_markup(contact)
    assert markup.keyboard is not None and markup.keyboard[0][0].request_contact
    assert markup.one_time
    assert parse_markup({"remove_keyboard": True}).remove_keyboard


def test_personas() -> None:
    assert resolve_persona("township_official", None).user_id == 900003
    assert resolve_persona("演示导师", None).key == "mentor"
    assert resolve_persona("candidate", 42).user_id == 42
    assert resolve_persona("new", None).spec is None
    with pytest.raises(ShellError):
        resolve_persona("boss", None)


def bare_settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type,call-arg]


def test_settings_keep_drafts_readable_and_share_the_bots_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    key_file = tmp_path / "data" / "shell.key"
    settings = shell_settings(bare_settings(), key_file)
    # The database every other command uses (issue 11, finding 19), unless asked otherwise.
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///data/cadrebot.sqlite3"
    apart = shell_settings(bare_settings(), key_file, own_database=True)
    assert apart.database_url == OWN_DATABASE_URL == "sqlite:///data/shell.sqlite3"
    assert settings.require_token() == FAKE_TOKEN
    again = shell_settings(bare_settings(), key_file)
    assert again.require_data_key() == settings.require_data_key() == key_file.read_text().strip()
    key = Fernet.generate_key().decode()
    url = f"sqlite:///{tmp_path / 'mine.sqlite3'}"
    own = shell_settings(bare_settings(data_key=key, database_url=url), key_file)
    assert own.require_data_key() == key and own.database_url == url
    with pytest.raises(SettingsError, match="DATA_KEY"):
        shell_settings(bare_settings(data_key="nope"), key_file)


async def test_transport_saves_documents_and_rejects_like_telegram(tmp_path: Path) -> None:
    transport = LocalTelegram(tmp_path / "out")
    bot = Bot(FAKE_TOKEN, request=transport, get_updates_request=transport)
    async with bot:
        await bot.send_document(
            7, InputFile(b"PK\x03\x04", filename="名册 2024.xlsx"), caption="<b>导出</b>"
        )
        with pytest.raises(BadRequest, match="parse entities"):
            await bot.send_message(7, "<p>x</p>", parse_mode="HTML")
        with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
            markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])
            await bot.send_message(7, "x", reply_markup=markup)
        sent = await bot.send_message(7, "a", parse_mode="HTML")
        await bot.edit_message_text("b", chat_id=7, message_id=sent.message_id)
        with pytest.raises(BadRequest, match="not modified"):
            await bot.edit_message_text("b", chat_id=7, message_id=sent.message_id)
    events = transport.take()
    (saved,) = [e for e in events if e.kind == "file"]
    assert saved.path is not None and saved.path.read_bytes() == b"PK\x03\x04"
    assert saved.path.parent == tmp_path / "out" and saved.path.name.endswith(".xlsx")
    assert [e.kind for e in events] == [
        "file",
        "rejected",
        "rejected",
        "message",
        "edit",
        "rejected",
    ]


async def test_printing_numbers_the_last_buttons_and_marks_edits(tmp_path: Path) -> None:
    out = io.StringIO()
    persona = resolve_persona("candidate", 5)
    settings = shell_settings(bare_settings(data_key=Fernet.generate_key().decode()))
    shell = Shell(
        settings,
        persona,
        language_code="zh-hans",
        out_dir=tmp_path,
        out=out,
        color=False,
        echo=False,
    )
    consent = Markup(
        inline=[[Button("同意", "ok:1"), Button("不同意", "ok:0")], [Button("返回", "b")]]
    )
    contact = parse_markup(
        {"keyboard": [[{"text": "📱 发送我的手机号", "request_contact": True}]]}
    )
    await shell._print(
        [
            Event("message", 5, 10, "<b>告知</b>\n是否同意？", consent),
            Event("edit", 5, 11, "第 2 页 &amp; 更多"),
            Event("file", 5, 12, "<i>名册</i>", path=tmp_path / "001-x.xlsx", note="document"),
            Event("message", 5, 13, "请输入手机号", contact),
        ]
    )
    assert out.getvalue().splitlines() == [
        "< 告知",
        "  是否同意？",
        "  [1] 同意  [2] 不同意",
        "  [3] 返回",
        "< (edited) 第 2 页 & 更多",
        f"< [document saved to {tmp_path / '001-x.xlsx'}]",
        "  名册",
        "< 请输入手机号",
        "  keyboard: [📱 发送我的手机号] → !contact",
    ]
    assert [b.data for b in shell.buttons] == ["ok:1", "ok:0", "b"]
    assert shell.buttons_message_id == 10 and shell.keyboard is not None
    # The bot takes the keyboard off that message: numbers are text again.
    await shell._print([Event("markup", 5, 10, markup=Markup(inline=[]))])
    assert shell.buttons == []


def test_the_shell_refuses_a_database_a_bot_is_running_on(tmp_path: Path) -> None:
    """Found from outside: beside `cadrebot run` the shell delivered the outbox to its
    stand-in, and real people never got their notices."""
    from bot.standby import SqliteLock

    running = SqliteLock(tmp_path / "shell.sqlite3")  # what `cadrebot run` holds
    running.acquire()
    try:
        result = run_shell(tmp_path, "/start\n")
    finally:
        running.release()
    assert result.returncode == 1
    assert "already running on this database" in result.stderr
    assert "--own-database" in result.stderr
    assert "欢迎" not in result.stdout
    # With the bot stopped, the same shell runs.
    assert run_shell(tmp_path, "/start\n").returncode == 0
