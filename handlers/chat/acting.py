"""A flow's storage work done as the acting person, and the answers to its refusals.

Storage raises NotAllowed (not the person's to act on: a forged or outdated button, or an
account erased meanwhile), Stale (gone or resolved since its button was drawn) or
IllegalTransition (moved on meanwhile). The engine answers those raised out of a flow's
entry, questions or submit once for all flows (`refusal`), and `@screen` does for screens: not
allowed is audited and said, the others are "this button has expired". A flow that answers a
refusal as "expired", so as not to tell whether the record exists, uses `scoped`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.flow import Finish, InChat, Run
from handlers.chat.screen import Screen
from storage.people import Actor
from storage.rules.identity import RuleError
from storage.rules.vetting import IllegalTransition
from storage.scoped import NotAllowed, Stale

T = TypeVar("T")

# What a refusal raised by storage is (`refusal` answers them).
REFUSALS = (NotAllowed, Stale, IllegalTransition)
STALE_BUTTON = Screen("common/stale_button")
# The flow ends: what was chosen is no longer the person's to act on, or is gone.
EXPIRED = Finish((STALE_BUTTON,))


async def refusal(run: InChat, error: Exception) -> None:
    """Answer a subject that is not the person's (denied and audited) or is gone or moved
    on ("this button has expired")."""
    if isinstance(error, NotAllowed):
        await run.chat.deny()
    else:
        await run.chat.show(STALE_BUTTON)


async def acting(run: Run) -> Actor:
    """The person acting; NotAllowed when there is none (an account erased meanwhile)."""
    actor = await run.actor()
    if actor is None:
        raise NotAllowed
    return actor


async def as_actor(run: Run, work: Callable[[AsyncSession, Actor], Awaitable[T]]) -> T:
    """`work` for the person acting, in a block of the update's transaction; its refusals
    are raised on (the engine answers them)."""
    actor = await acting(run)
    async with run.session() as session:
        return await work(session, actor)


async def scoped(run: Run, work: Callable[[AsyncSession, Actor], Awaitable[T]]) -> T | None:
    """`work` as `as_actor` runs it; None when storage refuses it as out of the person's
    scope (a forged or outdated button: audited, and the caller says it expired)."""
    try:
        return await as_actor(run, work)
    except NotAllowed:
        await run.chat.audit_denial()
        return None


def said(error: RuleError) -> dict[str, Any]:
    """What a refused rule says, as the "invalid" templates read it."""
    return {"code": error.code, "params": error.params or {}}
