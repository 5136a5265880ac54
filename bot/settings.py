"""Settings read from the environment and `.env` (names are part of the contract in SPEC)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.crypto import DataKeyError, parse_keys
from storage.rules.options import DEFAULT_KEY_GROUPS

DEFAULT_DEPARTMENTS = ("police", "discipline", "judicial")

TOKEN_RE = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,}$")
DEFAULT_DATABASE_URL = "sqlite:///data/cadrebot.sqlite3"


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line meant for the operator."""


class Settings(BaseSettings):
    """Every knob of the bot. Only `BOT_TOKEN` is required, and only by `cadrebot run`."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
    bot_username: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
    database_url: str = DEFAULT_DATABASE_URL
    telegram_api_url: str = "https://api.telegram.org"
    timezone: str = "Asia/Shanghai"
    locale: Literal["zh_CN", "en"] = "zh_CN"
    # Fernet key (urlsafe base64, 32 bytes) for personal data at rest; `make run` writes one
    # into `.env` on first start so a newcomer never runs with a shared key. Several keys,
    # comma-separated and newest first, while rotating (storage/rekey.py).
    data_key: SecretStr | None = None
    poll_interval: float = Field(default=0.0, ge=0.0, le=60.0)
    invite_days: int = Field(default=7, ge=1, le=365)
    invite_max_failures: int = Field(default=5, ge=1, le=100)
    invite_failure_window_minutes: int = Field(default=10, ge=1, le=1440)
    # Comma-separated codes; labels live in the templates' label table.
    key_groups: str = ",".join(DEFAULT_KEY_GROUPS)
    vetting_departments: str = ",".join(DEFAULT_DEPARTMENTS)
    min_age: int = Field(default=18, ge=16, le=70)
    max_age: int = Field(default=60, ge=18, le=80)
    # Delivery and schedules.
    send_rate: float = Field(default=30.0, gt=0, le=1000)
    drain_seconds: float = Field(default=1.0, gt=0, le=60)
    tick_seconds: float = Field(default=30.0, ge=1, le=3600)
    talk_every_days: int = Field(default=30, ge=1, le=365)
    talk_soon_days: int = Field(default=7, ge=0, le=60)
    vetting_remind_days: int = Field(default=3, ge=1, le=60)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Retention (the consent text renders these numbers): a file is deleted this many years
    # after its cadre left the pool; declined and rejected files, unfinished drafts, and the
    # text of delivered messages after these many days. A daily purge applies them.
    retain_file_years: int = Field(default=3, ge=1, le=30)
    retain_rejected_days: int = Field(default=365, ge=1, le=3650)
    retain_draft_days: int = Field(default=30, ge=1, le=3650)
    retain_outbox_days: int = Field(default=90, ge=1, le=3650)

    @field_validator("telegram_api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL such as https://api.telegram.org")
        return value.rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("is not a known IANA time zone such as Asia/Shanghai") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not re.match(r"^(sqlite(\+aiosqlite)?|postgres(ql)?(\+asyncpg)?)://", value):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("bot_token", "data_key", "bot_username", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `make run` writes `BOT_TOKEN=` into .env: an empty value means "not set yet".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("bot_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not TOKEN_RE.match(value.get_secret_value()):
            raise ValueError("does not look like a token from @BotFather (digits:letters)")
        return value

    @field_validator("key_groups", "vetting_departments")
    @classmethod
    def _check_codes(cls, value: str) -> str:
        # Order kept, repeats dropped: a department listed twice would be vetted twice.
        codes = list(dict.fromkeys(c.strip() for c in value.split(",") if c.strip()))
        if not codes or not all(re.fullmatch(r"[a-z][a-z0-9_]{1,23}", c) for c in codes):
            raise ValueError("must be a comma-separated list of lower-case codes")
        return ",".join(codes)

    @model_validator(mode="after")
    def _check_ages(self) -> Settings:
        if self.min_age > self.max_age:
            raise ValueError("MIN_AGE must not be above MAX_AGE")
        return self

    @property
    def key_group_codes(self) -> tuple[str, ...]:
        return tuple(self.key_groups.split(","))

    @property
    def department_codes(self) -> tuple[str, ...]:
        return tuple(self.vetting_departments.split(","))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def require_token(self) -> str:
        if self.bot_token is None:
            raise SettingsError(
                "BOT_TOKEN is not set: get one from @BotFather and put BOT_TOKEN=... in .env"
            )
        return self.bot_token.get_secret_value()

    def require_data_key(self) -> str:
        """DATA_KEY: one Fernet key, or several comma-separated, newest first (rotation)."""
        if self.data_key is None:
            raise SettingsError(
                "DATA_KEY is not set: generate one with `cadrebot keygen` and put it in .env"
            )
        key = self.data_key.get_secret_value()
        try:
            parse_keys(key)
        except DataKeyError as exc:
            raise SettingsError(str(exc)) from None
        return key

    def sqlite_path(self) -> Path | None:
        """The SQLite file behind DATABASE_URL, or None for other databases and :memory:."""
        match = re.match(r"^sqlite(\+aiosqlite)?:///(.+)$", self.database_url)
        if not match or match.group(2) == ":memory:":
            return None
        return Path(match.group(2))


def load_settings(**overrides: object) -> Settings:
    """Read settings; turn any validation failure into one operator-readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if not first["loc"]:
            raise SettingsError(f"settings are inconsistent: {message}") from None
        name = str(first["loc"][0]).upper()
        raise SettingsError(f"setting {name} is invalid: {message}") from None
