"""Settings: defaults, environment and `.env`, and one-line errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import DEFAULT_DATABASE_URL, Settings, SettingsError, load_settings

TOKEN = "123456:TESTTOKENabcdefghijklmnopqrstuvwxyz"
NAMES = [name.upper() for name in Settings.model_fields]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting from the developer's shell, and an empty cwd so no stray `.env` is read."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults() -> None:
    settings = load_settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.database_url.startswith("sqlite:///data/")
    assert settings.sqlite_path() == Path("data/cadrebot.sqlite3")
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert settings.timezone == "Asia/Shanghai"
    assert str(settings.tz) == "Asia/Shanghai"
    assert settings.locale == "zh_CN"
    assert settings.bot_token is None
    assert settings.data_key is None
    assert settings.poll_interval == 0.0
    assert settings.invite_days == 7
    assert settings.log_level == "INFO"


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("BOT_USERNAME", "cadre_test_bot")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/cadre")
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:8081/")
    monkeypatch.setenv("TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("LOCALE", "en")
    monkeypatch.setenv("POLL_INTERVAL", "2.5")
    monkeypatch.setenv("INVITE_DAYS", "30")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    settings = load_settings()
    assert settings.require_token() == TOKEN
    assert settings.bot_username == "cadre_test_bot"
    assert settings.database_url == "postgresql://u:p@db:5432/cadre"
    assert settings.sqlite_path() is None
    assert settings.telegram_api_url == "http://127.0.0.1:8081"  # trailing slash dropped
    assert settings.timezone == "Europe/Berlin"
    assert settings.locale == "en"
    assert settings.poll_interval == 2.5
    assert settings.invite_days == 30
    assert settings.log_level == "DEBUG"


def test_token_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    settings = load_settings()
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings.bot_token)


def test_env_file_in_cwd_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"BOT_TOKEN={TOKEN}\nLOCALE=en\nTIMEZONE=Asia/Urumqi\n# a comment\n", encoding="utf-8"
    )
    settings = load_settings()
    assert settings.require_token() == TOKEN
    assert settings.locale == "en"
    assert settings.timezone == "Asia/Urumqi"


def test_environment_beats_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LOCALE=en\n", encoding="utf-8")
    monkeypatch.setenv("LOCALE", "zh_CN")
    assert load_settings().locale == "zh_CN"


def test_env_file_can_be_turned_off(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LOCALE=en\n", encoding="utf-8")
    assert load_settings(_env_file=None).locale == "zh_CN"


def test_unknown_variables_in_env_file_are_ignored(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SOMETHING_ELSE=1\nLOCALE=en\n", encoding="utf-8")
    assert load_settings().locale == "en"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TIMEZONE", "Mars/Base"),
        ("TIMEZONE", "../../etc/passwd"),
        ("LOCALE", "fr"),
        ("DATABASE_URL", "mysql://x"),
        ("BOT_TOKEN", "abc"),
        ("BOT_TOKEN", "123456:short"),
        ("BOT_USERNAME", "1bad name"),
        ("TELEGRAM_API_URL", "ftp://example.org"),
        ("POLL_INTERVAL", "-1"),
        ("POLL_INTERVAL", "soon"),
        ("INVITE_DAYS", "0"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_malformed_value_raises_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert name in message
    assert "\n" not in message
    assert message.startswith(f"setting {name} is invalid: ")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_malformed_value_in_env_file_is_reported_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TIMEZONE=Mars/Base\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="TIMEZONE"):
        load_settings()


def test_a_bad_token_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", "not-a-token-SECRET")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "SECRET" not in str(caught.value)


def test_missing_token_and_key_are_settings_errors() -> None:
    settings = load_settings()
    with pytest.raises(SettingsError, match="BOT_TOKEN"):
        settings.require_token()
    with pytest.raises(SettingsError, match="DATA_KEY"):
        settings.require_data_key()


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///data/x.sqlite3", Path("data/x.sqlite3")),
        ("sqlite+aiosqlite:////abs/x.db", Path("/abs/x.db")),
        ("sqlite:///:memory:", None),
        ("postgresql+asyncpg://h/db", None),
    ],
)
def test_sqlite_path(url: str, path: Path | None) -> None:
    assert load_settings(database_url=url).sqlite_path() == path


def test_an_empty_token_in_env_file_reads_as_not_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`make run` writes `BOT_TOKEN=`; the operator is told to set it, not that it is bad."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    (tmp_path / ".env").write_text("BOT_TOKEN=\nDATA_KEY=\n", encoding="utf-8")
    settings = load_settings()
    assert settings.bot_token is None and settings.data_key is None
    with pytest.raises(SettingsError, match="BOT_TOKEN is not set"):
        settings.require_token()
