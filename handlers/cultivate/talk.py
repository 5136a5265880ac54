"""/talk: a mentor logs a talk with a mentee: who, which day, how, the four must-talk topics
(text or voice), the difficulties raised; review with edit; save.

Nothing reaches the domain tables before the mentor presses save: the draft lives in
user_data["talk"] (JSON-plain, persisted encrypted). "Log a talk" under a mentee in /mentees
(``tk:s:<id>``) starts the same flow with the mentee chosen.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from handlers.chat.acting import acting
from handlers.chat.codec import ID, Button
from handlers.chat.commands import command
from handlers.chat.flow import Entry, Finish, Flow, Goto, Outcome, ReviewScreen, Run, Texts
from handlers.chat.screen import Screen
from handlers.cultivate.kinds import (
    MODE,
    Difficulties,
    PickMentee,
    TalkDate,
    Topic,
    date_invalid,
    own_mentee,
    talk_of,
    took,
)
from handlers.cultivate.mentees import cadence, mentee_list
from storage import mentoring
from storage.mentoring import Stale
from storage.models import Role
from storage.rules.cadence import TALK_MODES, TALK_TOPICS
from storage.rules.identity import RuleError

COMMAND = command("talk", Role.MENTOR)
TALK_WITH = Button("tk", "s", ID)
# The states of /talk before the flow engine (MENTEE, DATE, MODE, TOPIC, DIFFICULTIES,
# REVIEW = 0…5), with the topic a TOPIC draft was at kept under draft["topic"].
_OLD_STATES = ("mentee", "date", "mode", "topic", "difficulties", "review")


async def has_mentees(run: Run, args: str) -> dict[str, Any] | None:
    """/talk: the mentor picks a mentee next; a mentor without one is told so."""
    actor = await acting(run)  # the engine checked the role
    async with run.session() as session:
        mentees = await mentee_list(session, actor, run.settings)
    if not mentees:
        await run.chat.show(Screen("mentoring/no_mentees"))
        return None
    return {}


async def with_mentee(run: Run, values: tuple[Any, ...]) -> dict[str, Any] | None:
    """ "Log a talk" under a mentee in /mentees: that mentee, checked in SQL, is chosen."""
    return took(await own_mentee(run, int(values[0])))


async def save(run: Run, answers: dict[str, Any]) -> Outcome:
    """Store the talk and its difficulties in one transaction."""
    talk = talk_of(answers)
    pairing_id = int(answers["mentee"])
    try:
        actor = await acting(run)
        async with run.session() as session:
            await mentoring.save_talk(
                session,
                actor,
                pairing_id,
                talk,
                cipher=run.chat.service("cipher"),
                now=datetime.now(UTC),
                tz=run.settings.tz,
            )
            mentee = await mentoring.own_mentee(
                session, actor, pairing_id, **cadence(run.settings)
            )
    except Stale:
        gone = Screen("mentoring/talk_pairing_ended", {"mentee": answers.get("mentee_name", "")})
        return Finish((gone,))
    except RuleError as error:
        # The date left the window while the draft waited (past midnight, or weeks later):
        # ask for it again, then back to the review.
        run.answers.pop("date", None)
        run.draft["editing"] = True
        said = date_invalid(error)
        return Goto("date", say=said.template, values=said.values)
    saved = {
        "mentee": mentee.full_name,
        "talk_date": talk.talk_date,
        "difficulties": len(talk.difficulties),
        "due_date": mentee.cadence.due_date,
    }
    return Finish((Screen("mentoring/talk_saved", saved),))


def from_old_draft(stored: dict[str, Any], state: int | None) -> dict[str, Any]:
    """A draft /talk wrote before the flow engine → today's, at the same question."""
    at = state if state is not None else stored.get("at")
    position = _OLD_STATES[at] if isinstance(at, int) and 0 <= at < len(_OLD_STATES) else None
    if position == "topic":
        topic = stored.get("topic")
        position = topic if topic in TALK_TOPICS else TALK_TOPICS[0]
    answers: dict[str, Any] = {}
    if stored.get("pairing_id"):
        answers["mentee"] = int(stored["pairing_id"])
        answers["mentee_name"] = str(stored.get("mentee", ""))
        answers["paired_on"] = stored.get("paired_on")
    if stored.get("date"):
        answers["date"] = str(stored["date"])
    if stored.get("mode") in TALK_MODES:
        answers["mode"] = stored["mode"]
    topics = stored.get("topics")
    if isinstance(topics, dict):
        answers.update((c, topics[c]) for c in TALK_TOPICS if isinstance(topics.get(c), dict))
    difficulties = stored.get("difficulties")
    listed = [str(d) for d in difficulties] if isinstance(difficulties, list) else []
    # An empty list counts as answered ("none"): only once the mentor reached that question.
    if listed or position in ("difficulties", "review"):
        answers["difficulties"] = listed
    draft: dict[str, Any] = {"answers": answers, "editing": bool(stored.get("editing"))}
    if position is not None:
        draft["at"] = position
    if stored.get("typing"):
        draft["typing"] = True
    return draft


TALK = Flow(
    name="talk",
    command=COMMAND,
    prefix="tk",
    questions=(
        PickMentee(),
        TalkDate(),
        MODE,
        *(Topic(code) for code in TALK_TOPICS),
        Difficulties(),
    ),
    review=ReviewScreen.labelled("mentoring/talk_review", "talk"),
    submit=save,
    start=has_mentees,
    entries=(Entry(TALK_WITH, with_mentee),),
    texts=Texts(
        busy="mentoring/talk_busy",
        use_buttons="mentoring/use_buttons",
        # Only the review screen says it (every question of /talk says what it wants).
        wrong_input="mentoring/use_buttons",
    ),
    upgrade=from_old_draft,
)
