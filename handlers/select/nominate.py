"""/nominate: a person nominates themselves, after two consents, one question at a time."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, date, datetime
from typing import Any

from handlers.chat.commands import command
from handlers.chat.flow import Finish, Flow, Outcome, ReviewScreen, Run
from handlers.chat.kinds import Choice, Confirm
from handlers.chat.screen import Screen
from handlers.select.identity import (
    IdNumber,
    Phone,
    free_text,
    gender_fits_id,
    key_groups,
    name,
    old_positions,
    township,
    village,
)
from storage import nominations, people, reminders, rounds
from storage.nominations import Duplicate, NominationForm
from storage.rules.options import EDUCATIONS, ETHNICITIES, GENDERS, POLITICAL_STATUSES
from storage.rules.vetting import CLOSED, Channel

COMMAND = command("nominate")
# The steps of the form before the flow engine, in order: a draft open at deploy keeps its place.
_OLD_STEPS = (
    "full_name",
    "gender",
    "id_number",
    "phone",
    "ethnicity",
    "political_status",
    "education",
    "township_id",
    "village_id",
    "key_group",
    "specialties",
    "work_history",
    "motivation",
)


def form_of(answers: dict[str, Any]) -> NominationForm:
    """The form the answers fill in: each field under its own key, the ids and the birth date
    read back from the draft's JSON."""
    kept = {f.name: answers.get(f.name) for f in fields(NominationForm) if f.name != "extra"}
    birth, village = answers.get("birth_date"), answers.get("village_id")
    converted = {
        "full_name": answers["full_name"],
        "township_id": int(answers["township_id"]),
        "key_group": answers["key_group"],
        "village_id": int(village) if village else None,
        "birth_date": date.fromisoformat(birth) if birth else None,
    }
    return NominationForm(**{**kept, **converted})


async def store(
    run: Run, answers: dict[str, Any], channel: Channel, *, consent: bool = False
) -> Outcome:
    """Store the form as a nomination (a self-nomination's nominee is the person's own
    account) and queue "a new nomination is waiting" for the township's officials in the same
    transaction; a duplicate is said instead."""
    try:
        async with run.session() as session:
            state = await rounds.on(session, run.today())
            if channel == Channel.SELF and not state.nominating:
                # The round closed while the form was being filled in.
                return Finish((_closed(state),))
            account = await people.ensure_account(session, run.chat.user_id, run.chat.language)
            nomination = await nominations.create_nomination(
                session,
                run.chat.service("cipher"),
                form_of(answers),
                channel=channel,
                submitted_by=account.person_id,
                person_id=account.person_id if channel == Channel.SELF else None,
                now=datetime.now(UTC),
                consent=consent,
                round_id=state.round_id,
            )
            await run.chat.notify(
                session,
                await reminders.township_official_recipients(session, nomination.township_id),
                "review/notice_new_nomination",
                key=f"nomination-new:{nomination.id}",
                subject=nomination.id,
                channel=channel.value,
            )
    except Duplicate:
        return Finish((Screen("form/duplicate", {"what": "either"}),))
    flow = "nomination" if channel == Channel.SELF else "recommendation"
    return Finish((Screen("form/submitted", {"flow": flow}),))


def _closed(state: rounds.Rounds) -> Screen:
    """No round is open: when the next one opens, if one is set."""
    upcoming = state.upcoming
    if upcoming is None:
        return Screen("rounds/closed", {"upcoming": None})
    shown = {"name": upcoming.name, "starts_on": upcoming.starts_on.isoformat()}
    return Screen("rounds/closed", {"upcoming": shown})


async def one_per_person(run: Run, args: str) -> dict[str, Any] | None:
    """One open nomination per person, and one per round (storage/rounds.py): a second
    /nominate shows where the first one stands; between rounds, when the next one opens."""
    async with run.session() as session:
        account = await people.ensure_account(session, run.chat.user_id, run.chat.language)
        state = await rounds.on(session, run.today())
        held = await rounds.holding(session, account.person_id, state.round_id)
    if held is not None and held.status not in CLOSED:
        await run.chat.show(Screen("form/already_nominated", {"status": held.status}))
        return None
    if not state.nominating:
        await run.chat.show(_closed(state))
        return None
    if held is not None:
        # Closed, in this very round: a later round takes them (the implicit round never
        # ends, so there it is once per person, as before rounds).
        later = state.round_id is not None
        template = "rounds/again_later" if later else "form/already_nominated"
        await run.chat.show(Screen(template, {"status": held.status}))
        return None
    return {}


def _consent_values(run: Run) -> dict[str, Any]:
    settings = run.settings
    # The periods the daily purge applies (storage/retention.py), from the settings.
    return {
        "flow": "nomination",
        "file_years": settings.retain_file_years,
        "rejected_days": settings.retain_rejected_days,
        "draft_days": settings.retain_draft_days,
    }


async def submit(run: Run, answers: dict[str, Any]) -> Outcome:
    """Store the self-nomination; the person becomes a candidate."""
    consent = bool(answers.get("consent") and answers.get("consent_id"))
    return await store(run, answers, Channel.SELF, consent=consent)


NOMINATE = Flow(
    name="nomination",
    command=COMMAND,
    prefix="nom",
    start=one_per_person,
    questions=(
        Confirm("consent", "ok", "form/consent", declined="form/declined", values=_consent_values),
        # The ID number is sensitive personal data: its own, separate consent (PIPL art. 29).
        Confirm("consent_id", "id", "form/consent_id", declined="form/declined"),
        name(),
        Choice("gender", GENDERS, check=gender_fits_id),
        IdNumber(),
        Phone(own=True),
        Choice("ethnicity", ETHNICITIES),
        Choice("political_status", POLITICAL_STATUSES),
        Choice("education", EDUCATIONS),
        township(),
        village(),
        Choice("key_group", key_groups),
        free_text("specialties", 200),
        free_text("work_history", 500),
        free_text("motivation", 500),
    ),
    review=ReviewScreen("form/review"),
    submit=submit,
    version=2,
    upgrade=old_positions(_OLD_STEPS, {101: "consent", 102: "consent_id"}, consent=True),
    legacy_states=(101, 102),
)
