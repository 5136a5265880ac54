"""A competition's scores: the list of attendees (``tr:s:<training>:<page>``), entering one
score (``tr:sc:<invite>``, a question of the /training conversation, so that the typed number
reaches it), and the ranking (``tr:k:<training>``). Only attendees the organizer marked as
present have a score."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.acting import REFUSALS, acting, as_actor, refusal, said
from handlers.chat.codec import ID, PAGE, Button
from handlers.chat.flow import Finish, InChat, Outcome, Question, Reask, Run
from handlers.chat.paged import Pages
from handlers.chat.screen import Btn, Screen
from handlers.chat.screens import Act, Refused, screen
from handlers.cultivate.training_values import PAGER, back_to, invitee_page, session_values
from storage import trainings
from storage.nominations import NotAllowed
from storage.people import Actor
from storage.rules.identity import RuleError

SCORE_PRESS = Button("tr", "sc", ID)
SCORES = Button("tr", "s", ID, PAGE)
RANKING = Button("tr", "k", ID)
SCORE_LIST = Pages("trainings/scores", PAGER, SCORES)


async def scores_screen(
    session: AsyncSession, at: InChat, actor: Actor, training_id: int, number: int
) -> Screen:
    """One page of a competition's attendees, each a button that asks for their score."""
    page = await trainings.invitees(
        session,
        actor,
        training_id,
        attended_only=True,
        offset=PAGER.offset(number),
        limit=PAGER.per_page,
    )
    rows: list[tuple[Btn, ...]] = []
    for row in page.rows:
        shown = f"{row.score:.1f}" if row.score is not None else at.label("training.no_score")
        rows.append((Btn(f"{row.full_name} · {shown}", SCORE_PRESS.data(row.invite_id)),))
    listed = [{"name": r.full_name, "score": r.score} for r in page.rows]
    return invitee_page(at, SCORE_LIST, number, page, tuple(rows), rows=listed)


@screen(button=SCORES, actor=True)
async def show_scores(act: Act) -> Screen:
    """A competition's attendees with their scores; pressing one asks for the score."""
    training_id, number = act.values
    async with act.session() as session:
        view = await trainings.training_view(session, act.actor, training_id)
        if view.training.kind != "competition":
            raise Refused
        return await scores_screen(session, act, act.actor, training_id, number)


@screen(button=RANKING, actor=True)
async def show_ranking(act: Act) -> Screen:
    """A competition's ranking; equal scores share a rank."""
    async with act.session() as session:
        training, ranks = await trainings.ranking(session, act.actor, act.values[0])
    rows = [
        {"rank": r.rank, "name": r.full_name, "township": r.township, "score": r.score}
        for r in ranks
    ]
    values = {"rows": rows, **session_values(training, act.settings.tz)}
    return Screen("trainings/ranking", values, (back_to(act, training),), edit=True)


# -- entering one score: the /training conversation's second way in ------------------------


async def _target(run: Run, invite_id: int) -> dict[str, Any]:
    """The attendee to score, if the organizer may score them (NotAllowed if not)."""
    target = await as_actor(run, lambda s, actor: trainings.score_target(s, actor, invite_id))
    return {"invite_id": target.invite_id, "person": target.full_name, "current": target.score}


async def start_score(run: Run, values: tuple[Any, ...]) -> dict[str, Any] | None:
    """``tr:sc:<invite>``: that attendee is the one to score."""
    return await _target(run, int(values[0]))


def scoring(run: Run) -> bool:
    return "invite_id" in run.answers


@dataclass(slots=True)
class Score(Question):
    """A typed score (0–100, one decimal), stored as soon as it is valid: there is nothing
    to review. A wrong one is said in the question's own message, as before the engine
    (one reply per wrong answer)."""

    key: str = "score"
    editable: bool = False
    when: Callable[[Run], bool] | None = scoring

    def shapes(self, prefix: str) -> Sequence[Button]:
        # Another attendee's score button while this one is asked: score that one instead.
        return (SCORE_PRESS,)

    async def ask(self, run: Run, page: int) -> Screen:
        if "person" not in run.answers:
            # A score question open before the flow engine kept only the invite: look it up.
            with contextlib.suppress(NotAllowed):
                run.answers.update(await _target(run, int(run.answers.get("invite_id", 0))))
        values = {
            "person": run.answers.get("person", ""),
            "score": run.answers.get("current"),
            "error": run.draft.pop("error", None),
        }
        return Screen("trainings/ask_score", values)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        try:
            run.answers.update(await _target(run, int(values[0])))
        except REFUSALS as error:
            # Said, and the score asked before stays open.
            await refusal(run, error)
        return Reask()

    def on_other(self, run: Run) -> Outcome:
        run.draft["error"] = {"code": "wrong_input", "params": {}}
        return Reask()

    async def on_text(self, run: Run, text: str) -> Outcome:
        try:
            score = trainings.parse_score(text)
        except RuleError as error:
            run.draft["error"] = said(error)
            return Reask()
        actor = await acting(run)
        async with run.session() as session:
            invite_id = int(run.answers.get("invite_id", 0))
            training = await trainings.set_score(session, actor, invite_id, score)
            shown = await scores_screen(session, run, actor, training.id, 0)
        listed = Screen(shown.template, shown.values, shown.rows)  # a new message, not an edit
        return Finish((Screen("trainings/score_saved", {"score": score}), listed))

    def shown(self, run: Run) -> str | None:
        return None


MENUS = (show_scores, show_ranking)
