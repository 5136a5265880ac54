"""Readmitting an adjusted-out person to the pool: a reason, then a confirmation.

The file's "readmit" button (``ra:a:<id>``, shown to officials who manage the file while its
status is adjusted out) asks why; the reason is shown back with submit (``ra:ok``) or cancel
(``ra:no``), and only the submit acts. Scope and status are checked at the start and again in
the storage call at the end (another official may have acted in between). People rejected in
vetting or declined are not readmitted: they nominate again in a later round and are vetted
again (storage/rounds.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.acting import as_actor
from handlers.chat.codec import ID, Button
from handlers.chat.commands import command
from handlers.chat.flow import Entry, Finish, Flow, Outcome, Run, Texts
from handlers.chat.kinds import Text
from handlers.chat.screen import Screen
from handlers.manage.adjust import REASON_MAX, REASON_MIN
from handlers.manage.kinds import Decide
from storage import figures, nominations
from storage.models import OFFICIAL_ROLES
from storage.nominations import Duplicate
from storage.people import Actor
from storage.rules.identity import clean_text
from storage.rules.vetting import IllegalTransition, Status

# Opened from the file's button only (by_command=False): the command is the roles it needs,
# the pool's (/pool is where an official finds the file).
COMMAND = command("pool", *OFFICIAL_ROLES)
READMIT = Button("ra", "a", ID)


async def start_readmit(run: Run, values: tuple[Any, ...]) -> dict[str, Any] | None:
    """Begin with the person the button names, if the official may still readmit them."""
    (nomination_id,) = values
    managed = await as_actor(run, partial(figures.managed_nomination, nomination_id=nomination_id))
    if managed is None:
        await run.chat.deny()
        return None
    if managed.status != Status.ADJUSTED.value:
        await run.chat.show(Screen("readmit/not_adjusted", {"full_name": managed.full_name}))
        return None
    return {"nomination_id": managed.id, "full_name": managed.full_name}


def _reason(run: Run, raw: str) -> str:
    return clean_text(raw, min_len=REASON_MIN, max_len=REASON_MAX)


def _about(run: Run) -> dict[str, Any]:
    return {"full_name": run.answers.get("full_name", ""), "reason": run.answers.get("reason")}


async def readmit(run: Run, answers: dict[str, Any]) -> Outcome:
    """Back into the pool with the reason given; the history keeps it and who did it."""
    values = {"full_name": answers.get("full_name", "")}

    async def store(session: AsyncSession, actor: Actor) -> None:
        await nominations.readmit(
            session,
            actor,
            int(answers["nomination_id"]),
            reason=str(answers["reason"]),
            now=datetime.now(UTC),
            cipher=run.chat.service("cipher"),
        )

    try:
        await as_actor(run, store)
    except IllegalTransition:
        # Someone else readmitted them first: nothing changes twice.
        return Finish((Screen("readmit/not_adjusted", values),))
    except Duplicate:
        return Finish((Screen("readmit/has_open", values),))
    return Finish((Screen("readmit/done", values),))


READMIT_FLOW = Flow(
    name="readmit",
    command=COMMAND,
    prefix="ra",
    by_command=False,
    entries=(Entry(READMIT, start_readmit),),
    questions=(
        Text(
            "reason",
            _reason,
            template="readmit/ask_reason",
            editable=False,
            values=lambda run: {
                "full_name": run.answers.get("full_name", ""),
                "min_len": REASON_MIN,
                "max_len": REASON_MAX,
            },
        ),
        Decide(
            "confirm",
            "readmit/confirm",
            _about,
            tag="no",
            label="cancel",
            otherwise=lambda run: Finish((Screen("dossier/kept"),)),
        ),
    ),
    submit=readmit,
    texts=Texts(busy="readmit/busy"),
)
