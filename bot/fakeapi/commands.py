"""What Telegram accepts in setMyCommands and deleteMyCommands (Bot API 10.1, api.json):
BotCommand.command 1-32 characters of [a-z0-9_], description 1-256 characters, at most 100
commands, a known BotCommandScope (chat scopes with their chat_id), a two-letter
language_code. The fake Bot API answers anything else with a 400, as Telegram would."""

from __future__ import annotations

import json
import re
from typing import Any

COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
LANGUAGE_RE = re.compile(r"[a-z]{2}")
SCOPES = {
    "default": (),
    "all_private_chats": (),
    "all_group_chats": (),
    "all_chat_administrators": (),
    "chat": ("chat_id",),
    "chat_administrators": ("chat_id",),
    "chat_member": ("chat_id", "user_id"),
}


class InvalidCommands(ValueError):
    pass


def _decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def check(method: str, params: dict[str, Any]) -> None:
    """Raise InvalidCommands with Telegram's kind of description for an invalid request."""
    allowed = {"scope", "language_code"} | ({"commands"} if method == "setMyCommands" else set())
    if set(params) - allowed:
        raise InvalidCommands(f"unknown parameters {sorted(set(params) - allowed)}")
    if method == "setMyCommands":
        commands = _decoded(params.get("commands"))
        if not isinstance(commands, list) or len(commands) > 100:
            raise InvalidCommands("commands must be a list of at most 100")
        names = [c.get("command") for c in commands]
        if len(set(names)) != len(names):
            raise InvalidCommands("BOT_COMMAND_DUPLICATE")
        for entry in commands:
            if set(entry) != {"command", "description"}:
                raise InvalidCommands(f"BotCommand fields {sorted(entry)}")
            if not COMMAND_RE.fullmatch(str(entry["command"])):
                raise InvalidCommands("BOT_COMMAND_INVALID")
            if not 1 <= len(str(entry["description"])) <= 256:
                raise InvalidCommands("BOT_COMMAND_DESCRIPTION_INVALID")
    scope = _decoded(params.get("scope"))
    if scope is not None:
        kind = scope.get("type")
        if kind not in SCOPES or set(scope) != {"type", *SCOPES[kind]}:
            raise InvalidCommands(f"BotCommandScope {scope}")
    language = params.get("language_code")
    if language is not None and not LANGUAGE_RE.fullmatch(str(language)):
        raise InvalidCommands("language_code must be two letters")
