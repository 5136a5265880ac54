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
from storage.models import Role
from storage.rules.vetting import Channel

COMMAND = command("recommend")
_OLD_STEPS = ("full_name", "township_id", "village_id", "phone", "key_group", "reason")


async def submit(run: Run, answers: dict[str, Any]) -> Outcome:
    """Store a recommendation; an official's in their own scope is an organization one."""
    actor = await run.actor()
    official = actor is not None and (
        int(answers["township_id"]) in actor.township_ids(Role.TOWNSHIP_OFFICIAL)
        or actor.has(Role.COUNTY_OFFICIAL, Role.ADMIN)
    )
    return await store(run, answers, Channel.ORGANIZATION if official else Channel.MASS)


RECOMMEND = Flow(
    name="recommendation",
    command=COMMAND,
    prefix="rec",
    questions=(
        name(),
        township(),
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
