"""Menus and lists outside a flow (/pool, /trainings, a page of a queue): one screen per
command or button, declared with `@screen`.

The decorator does, once for every screen: read the acting person and their roles on every
update (deny by default: a refusal is audited and said), map "not allowed" and "expired" to
their replies, and show what the screen returns. A screen returns `Screen`s; it imports nothing
from `telegram` (handlers/chat/tg.py turns a `Menu` into handlers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from handlers.chat.acting import REFUSALS, refusal
from handlers.chat.codec import AnyOf, Button
from handlers.chat.commands import Command
from handlers.chat.flow import Chat, InChat, Turn, actor_of, admitted
from handlers.chat.screen import Screen
from storage.models import Role
from storage.people import Actor


class Refused(Exception):
    """Not allowed: audited, and the person is told so. `subject`: what was asked for, when
    the input alone does not name it (``/dossier 12`` names file 12 only in its text)."""

    def __init__(self, subject: tuple[str, int] | None = None) -> None:
        super().__init__(subject)
        self.subject = subject


class Expired(Exception):
    """The thing a button points at is gone or changed: "this button has expired" (as
    storage's Stale and IllegalTransition are answered)."""


class Act(InChat):
    """One command or button press outside a flow: who, with what arguments or fields."""

    def __init__(
        self,
        chat: Chat,
        actor: Actor | None,
        *,
        args: str = "",
        values: tuple[Any, ...] = (),
        button: Button | None = None,
        turn: Turn | None = None,
    ) -> None:
        self.chat = chat
        self._actor = actor
        self.args = args
        self.values = values
        self.button = button  # the shape that matched, for a screen that takes several
        self.turn = turn  # what was sent, for a screen opened by a file

    @property
    def actor(self) -> Actor:
        """The acting person (a screen that needs a role always has one)."""
        if self._actor is None:
            raise Refused
        return self._actor

    @property
    def maybe_actor(self) -> Actor | None:
        return self._actor

    @property
    def pressed(self) -> bool:
        return self.button is not None


@dataclass(frozen=True, slots=True)
class Upload:
    """The files that open a screen outside any flow: by name ending or declared type."""

    extensions: tuple[str, ...]
    mime_types: tuple[str, ...] = ()


Shown = Screen | Sequence[Screen] | None
ScreenFn = Callable[[Act], Awaitable[Shown]]


@dataclass(frozen=True, slots=True)
class Menu:
    """A screen with what opens it: a command, buttons, or both."""

    fn: ScreenFn
    command: Command | None
    button: Button | AnyOf | None
    needs: frozenset[Role]
    # Load the actor even when no role is needed (a screen that shows one's own file).
    actor: bool
    upload: Upload | None = None

    @property
    def name(self) -> str:
        return getattr(self.fn, "__name__", "screen")


def screen(
    *,
    command: Command | None = None,
    button: Button | AnyOf | None = None,
    needs: frozenset[Role] | None = None,
    actor: bool = False,
    upload: Upload | None = None,
) -> Callable[[ScreenFn], Menu]:
    """Declare a screen: opened by `command`, `button` and/or an `upload` (a file sent
    outside any flow), allowed to `needs` (default: the command's roles; empty: anyone)."""

    def declare(fn: ScreenFn) -> Menu:
        roles = needs if needs is not None else (command.needs if command else frozenset())
        return Menu(fn, command, button, roles, actor or bool(roles), upload)

    return declare


async def show(
    menu: Menu,
    chat: Chat,
    *,
    args: str = "",
    values: tuple[Any, ...] = (),
    button: Button | None = None,
    turn: Turn | None = None,
) -> None:
    """Run one screen for one update: the actor, the role check, the errors, the reply."""
    actor = await actor_of(chat) if menu.actor else None
    if not await admitted(chat, menu.needs, actor):
        return
    act = Act(chat, actor, args=args, values=values, button=button, turn=turn)
    try:
        shown = await menu.fn(act)
    except Refused as refused:
        await chat.deny(refused.subject)
        return
    except (*REFUSALS, Expired) as error:
        await refusal(act, error)
        return
    screens = (shown,) if isinstance(shown, Screen) else tuple(shown or ())
    for item in screens:
        await chat.show(item)
