"""/nominate: a person nominates themselves, after two consents, one question at a time."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

from handlers.chat.commands import command
from handlers.chat.flow import Finish, Flow, Outcome, ReviewScreen, Run, Turn
from handlers.chat.kinds import Choice, Confirm, Rule
from handlers.chat.screen import Screen
from handlers.select.identity import (
    IdNumber,
    Phone,
    free_text,
    gender_fits_id,
    key_groups,
    name,
    old_positions,
    phone_rule,
    township,
    village,
)
from storage import completion, nominations, people, reminders, rounds
from storage.nominations import Duplicate, NominationForm
from storage.rules.identity import RuleError, normalize_phone
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
            officials = await reminders.township_official_recipients(
                session, nomination.township_id
            )
            await run.chat.notify(
                session,
                # An official who entered it themselves needs no notice of it.
                [o for o in officials if o[0] != run.chat.user_id],
                "review/notice_new_nomination",
                key=f"nomination-new:{nomination.id}",
                subject=nomination.id,
                channel=channel.value,
            )
    except Duplicate:
        return Finish((Screen("form/duplicate", {"what": "either"}),))
    # An official's organization recommendation is confirmed as theirs, not thanked for.
    flow = {Channel.SELF: "nomination", Channel.ORGANIZATION: "organization"}.get(
        channel, "recommendation"
    )
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
    /nominate shows where the first one stands; between rounds, when the next one opens.

    `/nominate CODE`: the code a township gave for a recommended person's file opens it, with
    its township, village and group filled in (the person may change them on review).
    Completing a file is not a new nomination, so a round's dates do not apply to it."""
    code = args.split()[0] if args.strip() else None
    settings = run.settings
    now = datetime.now(UTC)
    async with run.session() as session:
        account = await people.ensure_account(session, run.chat.user_id, run.chat.language)
        state = await rounds.on(session, run.today())
        held = await rounds.holding(session, account.person_id, state.round_id)
        opened = None
        if code and (held is None or held.status in CLOSED):
            # A code is a secret like a phone: each try spends the account's guessing budget.
            allowed = await people.spend_guess(
                session,
                run.chat.user_id,
                now=now,
                max_failures=settings.invite_max_failures,
                window=timedelta(minutes=settings.invite_failure_window_minutes),
            )
            opened = await completion.open_invite(session, code, now=now) if allowed else None
    if held is not None and held.status not in CLOSED:
        await run.chat.show(Screen("form/already_nominated", {"status": held.status}))
        return None
    if code is None and not state.nominating:
        await run.chat.show(_closed(state))
        return None
    if code is None and held is not None:
        # Closed, in this very round: a later round takes them (the implicit round never
        # ends, so there it is once per person, as before rounds).
        later = state.round_id is not None
        template = "rounds/again_later" if later else "form/already_nominated"
        await run.chat.show(Screen(template, {"status": held.status}))
        return None
    if code is None:
        return {}
    if opened is None:
        await run.chat.show(Screen("form/invite_unknown"))
        return None
    await run.chat.show(Screen("form/invite_opened"))
    return {
        "completes": opened.nomination_id,
        "township_id": opened.township_id,
        "township_name": opened.township_name,
        **({"village_id": opened.village_id} if opened.village_id else {}),
        **({"village_name": opened.village_name} if opened.village_name else {}),
        "key_group": opened.key_group,
    }


async def _own_phone(run: Run, raw: str) -> str | None:
    """The person's mobile. One that a recommendation waiting for its nominee carries opens
    that file for completing, if the person shared it as their own contact (a typed number
    proves nothing) or came with that file's code; nobody is told who recommended them."""
    phone = normalize_phone(raw)
    shared = run.draft.pop("shared_phone", None) == phone
    async with run.session() as session:
        pending = await completion.pending_by_phone(session, run.chat.service("cipher"), phone)
    completes = run.answers.get("completes")
    if pending is None or completes not in (None, pending):
        return await phone_rule(run, raw)
    if completes is None and not shared:
        await run.chat.show(Screen("form/phone_share_own"))
        return None
    # Came with this file's code: the number is simply on it already.
    said = "form/phone_ok" if completes == pending else "form/phone_opens_file"
    run.answers["completes"] = pending
    await run.chat.show(Screen(said, clear_keyboard=True))
    return phone


@dataclass(slots=True)
class OwnPhone(Phone):
    """The nominee's own phone (`_own_phone`); a shared contact is marked as proven."""

    rule: Rule = _own_phone
    own: bool = True

    async def on_contact(self, run: Run, turn: Turn) -> Outcome:
        if turn.own_contact and turn.phone:
            # A number that is no mainland mobile is refused by the rule itself, next.
            with suppress(RuleError):
                run.draft["shared_phone"] = normalize_phone(turn.phone)
        return await Phone.on_contact(self, run, turn)

    async def on_text(self, run: Run, text: str) -> Outcome:
        run.draft.pop("shared_phone", None)
        return await Phone.on_text(self, run, text)


def _consent_values(run: Run) -> dict[str, Any]:
    settings = run.settings
    # The periods the daily purge applies (storage/retention.py), from the settings.
    return {
        "flow": "nomination",
        "file_years": settings.retain_file_years,
        "rejected_days": settings.retain_rejected_days,
        "draft_days": settings.retain_draft_days,
    }


async def complete(run: Run, answers: dict[str, Any]) -> Outcome:
    """The nominee's answers and consents into the recommended file that was opened, and the
    township's officials told it is complete."""
    try:
        async with run.session() as session:
            account = await people.ensure_account(session, run.chat.user_id, run.chat.language)
            nomination = await completion.complete(
                session,
                run.chat.service("cipher"),
                int(answers["completes"]),
                form_of(answers),
                person_id=account.person_id,
                now=datetime.now(UTC),
            )
            await run.chat.notify(
                session,
                await reminders.township_official_recipients(session, nomination.township_id),
                "review/notice_completed",
                key=f"nomination-completed:{nomination.id}",
                subject=nomination.id,
            )
    except nominations.Duplicate:
        return Finish((Screen("form/duplicate", {"what": "either"}),))
    return Finish((Screen("form/submitted", {"flow": "nomination"}),))


async def submit(run: Run, answers: dict[str, Any]) -> Outcome:
    """Store the self-nomination, or complete the recommended file the person opened; the
    person becomes a candidate."""
    consent = bool(answers.get("consent") and answers.get("consent_id"))
    if answers.get("completes") and consent:
        return await complete(run, answers)
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
        OwnPhone(),
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
