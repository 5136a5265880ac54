"""/recommend: the public recommends someone; an official's own is organizational."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from handlers.chat.commands import command
from handlers.chat.flow import Finish, Flow, Outcome, ReviewScreen, Run
from handlers.chat.kinds import Choice
from handlers.chat.screen import Screen
from handlers.select.identity import (
    Phone,
    free_text,
    key_groups,
    name,
    old_positions,
    township,
    village,
)
from handlers.select.nominate import form_of, tell_township
from storage import nominations, people
from storage.models import Role
from storage.nominations import Duplicate
from storage.rules.vetting import Channel

COMMAND = command("recommend")
_OLD_STEPS = ("full_name", "township_id", "village_id", "phone", "key_group", "reason")


async def submit(run: Run, answers: dict[str, Any]) -> Outcome:
    """Store a recommendation; an official's in their own scope is an organization one."""
    try:
        async with run.session() as session:
            account = await people.ensure_account(session, run.chat.user_id, run.chat.language)
            actor = await people.load_actor(session, run.chat.user_id)
            township_id = int(answers["township_id"])
            official = actor is not None and (
                township_id in actor.township_ids(Role.TOWNSHIP_OFFICIAL)
                or actor.has(Role.COUNTY_OFFICIAL, Role.ADMIN)
            )
            channel = Channel.ORGANIZATION if official else Channel.MASS
            nomination = await nominations.create_nomination(
                session,
                run.chat.service("cipher"),
                form_of(answers),
                channel=channel,
                submitted_by=account.person_id,
                person_id=None,
                now=datetime.now(UTC),
            )
            await tell_township(session, run, nomination.id, township_id, channel.value)
    except Duplicate:
        return Finish((Screen("form/duplicate", {"what": "either"}),))
    return Finish((Screen("form/submitted", {"flow": "recommendation"}),))


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
