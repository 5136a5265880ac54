"""/name: people who joined by invite record their own name, once (a candidate's comes from
their nomination). The name is checked with the nomination form's rule."""

from __future__ import annotations

from typing import Any

from handlers.chat.acting import said
from handlers.chat.commands import command
from handlers.chat.flow import Finish, Flow, Outcome, Run, Texts
from handlers.chat.kinds import Text
from handlers.chat.screen import Screen
from storage import people
from storage.rules.identity import RuleError, normalize_name

COMMAND = command("name")


async def begin(run: Run, args: str) -> dict[str, Any] | None:
    """/name NAME records it at once; /name alone asks, unless a name is on file already."""
    if args:
        try:
            name = normalize_name(args)
        except RuleError as error:
            # Said as the question would say it; the question is then asked.
            await run.chat.show(Screen("form/invalid", said(error)))
            return {}
        await run.chat.show(await _record(run, name))
        return None
    async with run.session() as session:
        account = await people.ensure_account(session, run.chat.user_id, run.chat.language)
        on_file = await people.own_name(session, account.person_id)
    if on_file is not None:
        await run.chat.show(Screen("start/name_on_file", {"full_name": on_file}))
        return None
    return {}


async def _record(run: Run, name: str) -> Screen:
    async with run.session() as session:
        account = await people.ensure_account(session, run.chat.user_id, run.chat.language)
        on_file = await people.record_own_name(session, account.person_id, name)
    if on_file == name:
        return Screen("start/name_saved", {"full_name": name})
    # Someone (their nomination) put a name on file first: it is not replaced.
    return Screen("start/name_on_file", {"full_name": on_file or ""})


async def submit(run: Run, answers: dict[str, Any]) -> Outcome:
    return Finish((await _record(run, str(answers["full_name"])),))


NAME = Flow(
    name="name",
    command=COMMAND,
    prefix="nm",
    start=begin,
    questions=(
        Text("full_name", lambda run, raw: normalize_name(raw), template="start/name_ask"),
    ),
    submit=submit,
    texts=Texts(busy="start/name_busy"),
    # Before the flow engine: no draft, state 0 waited for the name, the question 0 now.
)
