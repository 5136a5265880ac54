"""/training: an official creates a session, one question at a time, then reviews it; saving
stores the session with its invitations and an optional check-in code, and queues the
invitations (with RSVP buttons) in the outbox.

The same conversation ("training") takes a competition score typed after ``tr:sc:<invite>``
(scores.py): a person is in one of the two, and the draft says which.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.acting import acting
from handlers.chat.commands import command
from handlers.chat.flow import Entry, Finish, Flow, Goto, Outcome, ReviewScreen, Run, Texts
from handlers.chat.kinds import Rule, Text
from handlers.chat.screen import Screen
from handlers.cultivate.invites import rsvp_buttons
from handlers.cultivate.scores import SCORE_PRESS, Score, start_score
from handlers.cultivate.training_kinds import (
    Audience,
    Option,
    People,
    creating,
    valid_picks,
)
from handlers.cultivate.training_values import local, session_values
from storage import trainings
from storage.models import OFFICIAL_ROLES, Training
from storage.rules.identity import RuleError
from storage.trainings import (
    DURATIONS,
    KINDS,
    TOPICS,
    AudienceChanged,
    EmptyAudience,
    TrainingDraft,
)

# The officials who organize trainings (storage.trainings.can_organize); scoring is theirs too.
COMMAND = command("training", *OFFICIAL_ROLES)
# Where the conversation before the flow engine stood (its state ints: 0… in this order, 20
# a score being typed) → the question now.
_OLD_STATES = ("kind", "topic", "title", "starts", "duration", "place", "audience", "people")
_OLD_AT = {**dict(enumerate((*_OLD_STATES, "review"))), 20: "score"}
# The answers the review shows as they are.
_AS_IS = ("kind", "topic", "title", "place", "duration", "audience")


def _line(low: int, high: int) -> Rule:
    """One line of text (a title, a place) between `low` and `high` characters."""
    return lambda run, raw: trainings.clean_line(raw, min_len=low, max_len=high)


def _starts(run: Run, raw: str) -> str:
    return trainings.parse_starts_at(raw, now=datetime.now(UTC), tz=run.settings.tz).isoformat()


def _current(key: str) -> Callable[[Run], dict[str, Any]]:
    """The answer so far, shown when it is being changed from the review."""

    def values(run: Run) -> dict[str, Any]:
        editing = bool(run.draft.get("editing"))
        return {"editing": editing, "current": run.answers.get(key, "")}

    return values


def _example(run: Run) -> dict[str, Any]:
    tomorrow = datetime.now(run.settings.tz) + timedelta(days=1)
    return {"example": tomorrow.replace(hour=9, minute=0, second=0, microsecond=0)}


async def _review_values(run: Run) -> dict[str, Any]:
    """The review as it was: names of the chosen people read again (who left is dropped)."""
    answers = run.answers
    names: list[str] = []
    if answers.get("audience") == "people":
        actor = await run.actor()
        if actor is not None:
            async with run.session() as session:
                names = [p.full_name for p in await valid_picks(session, actor, run)]
    starts = answers.get("starts")
    return {
        **{key: answers.get(key, "") for key in _AS_IS},
        "starts": local(datetime.fromisoformat(starts), run.settings.tz) if starts else None,
        "township": answers.get("township_name", ""),
        "people": names,
    }


def _draft_of(run: Run, answers: dict[str, Any]) -> TrainingDraft:
    people = answers["audience"] == "people"
    return TrainingDraft(
        kind=answers["kind"],
        topic=answers["topic"],
        title=answers["title"],
        place=answers["place"],
        starts_at=datetime.fromisoformat(answers["starts"]),
        duration=answers["duration"],
        audience=answers["audience"],
        township_id=answers.get("township_id"),
        nomination_ids=tuple(int(n) for n in run.draft.get("picked", [])) if people else (),
    )


async def plan_invitations(
    session: AsyncSession, run: Run, training: Training, invitations: list[trainings.Invitation]
) -> int:
    """Queue each invitee's invitation in their language, with RSVP buttons (the outbox).

    Returns how many were queued; the dispatcher sends them within Telegram's limits and
    marks people who blocked the bot as unreachable, without holding up the organizer.
    """
    queued = 0
    values = session_values(training, run.settings.tz)
    for invitation in invitations:
        queued += await run.chat.notify(
            session,
            [(invitation.telegram_id, invitation.language)],
            "trainings/invitation",
            key=f"training-invite:{invitation.invite_id}",
            buttons=rsvp_buttons(invitation.invite_id),
            rsvp=None,
            **values,
        )
    return queued


async def submit(run: Run, answers: dict[str, Any]) -> Outcome:
    """Store the session, its invites and check-in code; then queue the invitations."""
    try:
        actor = await acting(run)
        async with run.session() as session:
            created = await trainings.create_training(
                session, actor, _draft_of(run, answers), now=datetime.now(UTC)
            )
            # Queued with the session it announces: sent by the dispatcher within limits.
            delivered = await plan_invitations(session, run, created.training, created.invitations)
    except RuleError as error:
        run.draft["editing"] = True
        said = {"code": error.code, "params": error.params or {}}
        return Goto("starts", say="trainings/invalid", values=said)
    except AudienceChanged:
        run.draft["editing"] = True
        return Goto("people", say="trainings/audience_changed")
    except EmptyAudience:
        run.draft["editing"] = True
        return Goto("audience", say="trainings/empty_audience")
    values: dict[str, Any] = {
        "code": created.training.checkin_code,
        "invited": created.invited,
        "reachable": len(created.invitations),
        "delivered": delivered,
        **session_values(created.training, run.settings.tz),
    }
    return Finish((Screen("trainings/saved", values),))


def upgrade(draft: dict[str, Any], state: int | None) -> dict[str, Any]:
    """A draft of the conversation before the flow engine: its "at" a state int (20: a score
    being typed, with the invite beside the answers), "starts_at" now "starts"."""
    answers = dict(draft.get("answers") or {})
    if "starts_at" in answers:
        answers["starts"] = answers.pop("starts_at")
    at = draft.get("at", state)
    position = _OLD_AT.get(at) if isinstance(at, int) else None
    picked = [int(n) for n in draft.get("picked") or []]
    if position == "score" or draft.get("invite_id") is not None:
        answers, position = {"invite_id": int(draft.get("invite_id") or 0)}, "score"
    elif position == "review" and answers.get("audience") == "people" and picked:
        answers["people"] = len(picked)
    upgraded: dict[str, Any] = {
        "answers": answers,
        "at": position,
        "editing": bool(draft.get("editing")),
        "picked": picked,
        "page": int(draft.get("page") or 0),
    }
    return upgraded


def _text(key: str, rule: Rule, **more: Any) -> Text:
    return Text(
        key,
        rule,
        template=f"trainings/ask_{key}",
        invalid="trainings/invalid",
        when=creating,
        **more,
    )


TRAINING = Flow(
    name="training",
    command=COMMAND,
    prefix="tc",
    questions=(
        Option("kind", "k", KINDS),
        Option("topic", "o", TOPICS),
        _text("title", _line(trainings.TITLE_MIN, trainings.TITLE_MAX), values=_current("title")),
        _text("starts", _starts, values=_example),
        Option("duration", "d", tuple(DURATIONS)),
        _text("place", _line(trainings.PLACE_MIN, trainings.PLACE_MAX), values=_current("place")),
        Audience(),
        People(),
        Score(),
    ),
    review=ReviewScreen.labelled("trainings/review", "training", values=_review_values),
    submit=submit,
    entries=(Entry(SCORE_PRESS, start_score),),
    texts=Texts(busy="trainings/busy", use_buttons="trainings/use_buttons"),
    version=2,
    upgrade=upgrade,
    legacy_states=(20,),
)
