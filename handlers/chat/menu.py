"""Who sees which command: the "/" menu and `/help`, both read from the declarations.

The declarations (`Command`, one `COMMANDS` tuple per flow module) are assembled in `bot/`
and handed to the handlers through `bot_data[COMMANDS_KEY]`; this module only filters and
groups them, so the menu a person sees, the list `/help` shows and the roles a handler lets
through come from one place. No import from `telegram`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from handlers.chat.commands import Command
from storage.models import OFFICIAL_ROLES, Role

# bot_data key of the assembled declarations (bot/app.py puts them there).
COMMANDS_KEY = "commands"

# /help's sections, in order: the commands anyone may run, then one per kind of staff. A
# command lands in the first section whose roles it needs and the person holds (/difficulties,
# for mentors and officials, is with the mentors for a mentor, with the officials otherwise).
HELP_GROUPS: tuple[tuple[str, frozenset[Role]], ...] = (
    ("general", frozenset()),
    ("mentor", frozenset({Role.MENTOR})),
    ("officials", OFFICIAL_ROLES),
    ("vetting", frozenset({Role.REVIEWER})),
)


def menu_for(roles: Iterable[Role], commands: Iterable[Command]) -> list[Command]:
    """The listed commands a person holding `roles` may run, in declaration order, each once."""
    held = frozenset(roles)
    seen: set[str] = set()
    menu = []
    for command in commands:
        if command.listed and command.allowed(held) and command.name not in seen:
            seen.add(command.name)
            menu.append(command)
    return menu


def help_groups(
    roles: Iterable[Role], commands: Iterable[Command]
) -> list[tuple[str, list[Command]]]:
    """`menu_for`, split into /help's sections (empty sections left out)."""
    held = frozenset(roles)
    sections: dict[str, list[Command]] = {name: [] for name, _ in HELP_GROUPS}
    for command in menu_for(held, commands):
        for name, group in HELP_GROUPS:
            if (not command.needs and not group) or (command.needs & group & held):
                sections[name].append(command)
                break
    return [(name, found) for name, found in sections.items() if found]


def declared(bot_data: Mapping[str, Any]) -> tuple[Command, ...]:
    """The assembled declarations (empty when no application put them there)."""
    return tuple(bot_data.get(COMMANDS_KEY, ()))
