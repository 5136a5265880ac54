"""/training: an official creates a session, one question at a time, then reviews it; saving
stores the session with its invitations and an optional check-in code, and queues the
invitations (with RSVP buttons) in the outbox. A session that has already started (last
month's class, recorded afterwards) is stored with its invitees and no invitation; the saved
screen opens its check-in list, where the organizer marks who came.

The same conversation ("training") takes a competition score typed after ``tr:sc:<invite>``
(scores.py): a person is in one of the two, and the draft says which. The questions the common
kinds do not cover are here: a choice under its own short tag (``tc:k:<kind>``, the data the
buttons carried before the flow engine), the audience within the official's scope, and the
chosen people of the pool, paged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.acting import acting, said
from handlers.chat.codec import ID, Button
from handlers.chat.commands import command
from handlers.chat.flow import (
    Answer,
    Entry,
    Finish,
    Flow,
    Goto,
    Outcome,
    Question,
    Reask,
    ReviewScreen,
    Run,
    Texts,
)
from handlers.chat.kinds import Choice, Rule, Text
from handlers.chat.paged import Toggled
from handlers.chat.screen import Btn, Rows, Screen, rows_of
from handlers.cultivate.attendance import CHECKIN_LIST
from handlers.cultivate.invites import rsvp_buttons
from handlers.cultivate.scores import SCORE_PRESS, Score, start_score
from handlers.cultivate.training_values import local, session_values
from storage import trainings
from storage.models import OFFICIAL_ROLES, Training
from storage.people import Actor
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
# A save the audience refused: the question to ask again, then back to the review.
_SENT_BACK = {
    AudienceChanged: ("people", "trainings/audience_changed"),
    EmptyAudience: ("audience", "trainings/empty_audience"),
}
# The answers the review shows as they are.
_AS_IS = ("kind", "topic", "title", "place", "duration", "audience")


def creating(run: Run) -> bool:
    """Asked only while creating a session (the same conversation also takes a score)."""
    return "invite_id" not in run.answers


def _editing(run: Run) -> dict[str, Any]:
    return {"editing": bool(run.draft.get("editing"))}


# Named as the class it was, so that /training's declaration reads as before.
def Option(key: str, tag: str, codes: Sequence[str]) -> Choice:
    """One of a few codes as ``<prefix>:<tag>:<code>``, labelled ``training.<key>.<code>``."""
    return Choice(
        key,
        codes,
        template=f"trainings/ask_{key}",
        when=creating,
        tag=tag,
        labels=f"training.{key}",
        values=_editing,
    )


@dataclass(slots=True)
class Audience(Question):
    """The county (county officials), one township of their scope, or chosen people:
    ``tc:a:c``, ``tc:a:t:<township>``, ``tc:a:p``. Storage checks the scope again on save."""

    key: str = "audience"
    when: Callable[[Run], bool] | None = creating

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "a", "c"), Button(prefix, "a", "t", ID), Button(prefix, "a", "p"))

    async def ask(self, run: Run, page: int) -> Screen:
        actor = await acting(run)
        county = trainings.is_county_level(actor)
        buttons: list[Btn] = []
        if county:
            buttons.append(Btn(run.label("training.audience.county"), f"{run.prefix}:a:c"))
        async with run.session() as session:
            for township in await trainings.audience_townships(session, actor):
                buttons.append(Btn(township.name, f"{run.prefix}:a:t:{township.id}"))
        buttons.append(Btn(run.label("training.audience.people"), f"{run.prefix}:a:p"))
        return Screen("trainings/ask_audience", {"county": county}, rows_of(buttons, 2))

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        actor = await acting(run)
        which = button.parts[2]
        if which == "c" and trainings.is_county_level(actor):
            run.answers.update(township_id=None, township_name="")
            return Answer("county")
        if which == "t":
            async with run.session() as session:
                allowed = {
                    t.id: t.name for t in await trainings.audience_townships(session, actor)
                }
            township_id = int(values[0])
            if township_id in allowed:
                run.answers.update(township_id=township_id, township_name=allowed[township_id])
                return Answer("township")
        elif which == "p":
            run.answers.update(township_id=None, township_name="")
            # Chosen again: the people are asked again, from the first page, picks kept.
            run.answers.pop("people", None)
            run.draft["page"] = 0
            return Answer("people")
        # Outside the official's scope (a forged button): refused, audited, asked again.
        await run.chat.deny()
        return Reask()

    def shown(self, run: Run) -> str | None:
        return None


async def valid_picks(session: AsyncSession, actor: Actor, run: Run) -> list[trainings.PoolPick]:
    """The chosen people, dropping any who left the pool (or the scope) since being picked."""
    picked = [int(n) for n in run.draft.get("picked", [])]
    picks = await trainings.picked_pool(session, actor, picked)
    valid = {p.nomination_id for p in picks}
    run.draft["picked"] = [n for n in picked if n in valid]
    return picks


def choosing_people(run: Run) -> bool:
    return creating(run) and run.answers.get("audience") == "people"


@dataclass(slots=True)
class People(Toggled):
    """Reserve cadres of the official's pool, toggled one by one: ``tc:p:<nomination>``,
    pages ``tc:pp:<page>``, done ``tc:pd``. The picks and the page stay in the draft
    (``picked``, ``page``), so a restart keeps them; the answer only marks "done"."""

    key: str = "people"
    template: str = "trainings/ask_people"
    done_label: str = "training.pick_done"
    page_key: str = "page"
    chosen_key: str = "picked"
    editable: bool = False  # changed through the audience, as before
    when: Callable[[Run], bool] | None = choosing_people

    async def items(self, run: Run, offset: int, limit: int) -> tuple[Sequence[Any], int]:
        async with run.session() as session:
            return await trainings.pickable_pool(
                session, await acting(run), offset=offset, limit=limit
            )

    async def still(self, run: Run, ids: Sequence[int]) -> Sequence[Any]:
        async with run.session() as session:
            return await trainings.picked_pool(session, await acting(run), ids)

    def label(self, run: Run, item: Any) -> str:
        mark = run.label("training.mark_on" if self.on(run, item) else "training.mark_off")
        return f"{mark} {item.full_name} · {item.township}"

    async def refused(self, run: Run) -> Outcome:
        # Not in this official's pool (a forged button): refused, the page shown again.
        await run.chat.deny()
        return Reask()

    async def close(self, run: Run) -> Outcome:
        picked = self.chosen(run)
        return Answer(len(picked)) if picked else Reask(say="trainings/pick_none")

    def shown(self, run: Run) -> str | None:
        return None


def _line(key: str, low: int, high: int) -> Text:
    """One line of text (a title, a place) between `low` and `high` characters; the answer
    so far is shown when it is being changed from the review."""
    return _text(
        key,
        lambda run, raw: trainings.clean_line(raw, min_len=low, max_len=high),
        values=lambda run: {**_editing(run), "current": run.answers.get(key, "")},
    )


def _starts(run: Run, raw: str) -> str:
    return trainings.parse_starts_at(raw, now=datetime.now(UTC), tz=run.settings.tz).isoformat()


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
    starts = datetime.fromisoformat(answers["starts"]) if answers.get("starts") else None
    return {
        **{key: answers.get(key, "") for key in _AS_IS},
        "starts": local(starts, run.settings.tz) if starts else None,
        # Saving a session already started sends no invitation: the review says so.
        "recorded": starts is not None and starts <= datetime.now(UTC),
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
    now = datetime.now(UTC)
    try:
        actor = await acting(run)
        async with run.session() as session:
            created = await trainings.create_training(
                session, actor, _draft_of(run, answers), now=now
            )
            # Queued with the session it announces: sent by the dispatcher within limits.
            delivered = await plan_invitations(session, run, created.training, created.invitations)
    except RuleError as error:
        run.draft["editing"] = True
        return Goto("starts", say="trainings/invalid", values=said(error))
    except (AudienceChanged, EmptyAudience) as error:
        run.draft["editing"] = True
        key, say = _SENT_BACK[type(error)]
        return Goto(key, say=say)
    training = created.training
    values: dict[str, Any] = {
        "code": training.checkin_code,
        "invited": created.invited,
        "reachable": len(created.invitations),
        "delivered": delivered,
        "recorded": training.starts_at <= now,
        # Over: the code's window has closed, so the screen does not offer it.
        "over": training.ends_at < now,
        **session_values(training, run.settings.tz),
    }
    rows: Rows = ()
    if training.starts_at <= now:
        # Recorded afterwards: marking who came is what is left to do, one tap away.
        label = run.label("training.checkin_list")
        rows = ((Btn(label, CHECKIN_LIST.data(training.id, 0)),),)
    return Finish((Screen("trainings/saved", values, rows),))


def upgrade(draft: dict[str, Any], state: int | None) -> dict[str, Any]:
    """A draft of the conversation before the flow engine: its "at" a state int (20: a score
    being typed, with the invite beside the answers), "starts_at" now "starts"."""
    answers = dict(draft.get("answers") or {})
    if "starts_at" in answers:
        answers["starts"] = answers.pop("starts_at")
    position = Flow.old_position(draft, state, _OLD_AT)
    picked = [int(n) for n in draft.get("picked") or []]
    if position == "score" or draft.get("invite_id") is not None:
        answers, position = {"invite_id": int(draft.get("invite_id") or 0)}, "score"
    elif position == "review" and answers.get("audience") == "people" and picked:
        answers["people"] = len(picked)
    return {
        "answers": answers,
        "at": position,
        "editing": bool(draft.get("editing")),
        "picked": picked,
        "page": int(draft.get("page") or 0),
    }


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
        _line("title", trainings.TITLE_MIN, trainings.TITLE_MAX),
        _text("starts", _starts, values=_example),
        Option("duration", "d", tuple(DURATIONS)),
        _line("place", trainings.PLACE_MIN, trainings.PLACE_MAX),
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
