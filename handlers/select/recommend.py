"""/recommend: the public recommends someone; an official's own is organizational."""

from __future__ import annotations

from typing import Any

from handlers.chat.commands import command
from handlers.chat.flow import Flow, Outcome, ReviewScreen, Run
from handlers.chat.kinds import Choice
from handlers.select.identity import (
    Phone,
    free_text,
    key_groups,
    name,
    old_positions,
    township,
    village,
)
from handlers.select.nominate import store
from storage.models import OFFICIAL_ROLES, Role
from storage.rules.vetting import Channel
from storage.scoped import NotAllowed

COMMAND = command("recommend")
_OLD_STEPS = ("full_name", "township_id", "village_id", "phone", "key_group", "reason")


async def official_scope(run: Run) -> frozenset[int] | None:
    """A township official recommends within their own townships only; the public and county
    staff choose from the whole county."""
    actor = await run.actor()
    if actor is None or actor.has(Role.COUNTY_OFFICIAL, Role.ADMIN):
        return None
    return actor.township_ids(Role.TOWNSHIP_OFFICIAL) or None


async def submit(run: Run, answers: dict[str, Any]) -> Outcome:
    """Store a recommendation: an official's is an organization one (组织推荐), in their scope
    only, the public's a mass one (群众举荐)."""
    actor = await run.actor()
    if actor is None or not actor.has(*OFFICIAL_ROLES):
        return await store(run, answers, Channel.MASS)
    scope = await official_scope(run)
    if scope is not None and int(answers["township_id"]) not in scope:
        # A draft from before, or a forged button: another township is not theirs to enter.
        raise NotAllowed
    return await store(run, answers, Channel.ORGANIZATION)


RECOMMEND = Flow(
    name="recommendation",
    command=COMMAND,
    prefix="rec",
    questions=(
        name(),
        township(official_scope),
        village(),
        Phone(optional=True),
        Choice("key_group", key_groups),
        free_text("reason", 500),
    ),
    review=ReviewScreen("form/review"),
    submit=submit,
    version=2,
    upgrade=old_positions(_OLD_STEPS, {}),
)
