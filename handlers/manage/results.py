"""/results: an official records a year's appraisal result, cadre after cadre.

The year, then a round: a cadre from the list of those still without a result for it, one of
the four results (each one's effect shown), a confirmation, and back to the list, until
"done" or nobody is left. Nothing is written before the confirmation, and every press is
re-checked against the official's current role and scope. A CSV file sent at any step
imports a whole file instead (handlers/manage/results_csv.py) and ends the round.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import notices
from handlers.chat.acting import STALE_BUTTON, acting, as_actor, scoped
from handlers.chat.codec import CODE, YEAR, Button
from handlers.chat.commands import command
from handlers.chat.flow import (
    STALE,
    Answer,
    Finish,
    Flow,
    Goto,
    Outcome,
    Question,
    Run,
    Turn,
)
from handlers.chat.paged import Lister
from handlers.chat.screen import Btn, Screen
from handlers.manage.kinds import OFFICIALS, TEXTS, Cadres, Decide, about
from handlers.manage.results_csv import LIMITS, import_file
from storage import grades
from storage.grades import Candidate, GradeError
from storage.people import Actor
from storage.rules.ladder import LadderPolicy, Result, apply_result

COMMAND = command("results", *OFFICIALS)
NAME = "grade_results"  # the conversation's persisted name and the draft's key
# What a picked cadre brings along; forgotten when the next cadre is picked.
CADRE_KEYS = ("nid", "name", "township", "grade", "years", "result", "confirm")


def _policy(run: Run) -> LadderPolicy:
    policy: LadderPolicy = run.chat.service("grade_policy")
    return policy


def _years(run: Run) -> tuple[int, int]:
    this_year = run.today().year
    return this_year - 1, this_year


def _cadre(answers: dict[str, Any]) -> Candidate:
    return Candidate(
        int(answers["nid"]),
        str(answers["name"]),
        str(answers["township"]),
        int(answers["grade"]),
        int(answers["years"]),
    )


def _shown(run: Run, **more: Any) -> dict[str, Any]:
    """What the result's screens show above their buttons: the year, the cadre, the period."""
    year, period = run.answers["year"], _policy(run).subsidy_period
    return {"year": year, "cadre": _cadre(run.answers), "period": period, **more}


def _forget_cadre(run: Run) -> None:
    for key in CADRE_KEYS:
        run.answers.pop(key, None)


async def _pending(run: Run, year: int) -> int:
    _, total = await as_actor(run, partial(grades.pending_for_year, year=year, limit=1))
    return total


class _TakesFiles:
    """A CSV file sent at any step of the round is imported, and the round ends."""

    __slots__ = ()

    async def on_file(self, run: Run, turn: Turn) -> Outcome:
        return Finish((await import_file(run.chat, await acting(run), turn),))


class Year(_TakesFiles, Question):
    """Last year or this one: ``grd:y:<year>``."""

    key = "year"
    editable = False

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "y", YEAR),)

    async def ask(self, run: Run, page: int) -> Screen:
        buttons = tuple(
            Btn(run.chat.text("grades/year_button", year=year), f"{run.prefix}:y:{year}")
            for year in _years(run)
        )
        return Screen("grades/choose_year", LIMITS, (buttons,))

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        year = int(values[0])
        if year not in _years(run):
            return STALE
        if not await _pending(run, year):
            return Finish((Screen("grades/none_pending", {"year": year}),))
        run.answers.clear()
        run.answers["page"] = 0
        return Answer(year)


def _pending_for(run: Run) -> Lister[Candidate]:
    return partial(grades.pending_for_year, year=int(run.answers["year"]))


def _kept(found: Candidate) -> dict[str, Any]:
    return {**about(found), "grade": found.grade, "years": found.years_in_grade}


class People(_TakesFiles, Cadres):
    """The cadres still without a result for the year, with "done" to end the round."""

    __slots__ = ()


class Assessment(_TakesFiles, Question):
    """One of the four results, each one's effect on the ladder shown; ``grd:b``: back."""

    key = "result"
    editable = False

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "r", CODE), Button(prefix, "b"))

    async def ask(self, run: Run, page: int) -> Screen:
        cadre = _cadre(run.answers)
        policy = _policy(run)
        buttons = [
            Btn(run.label(f"result.{r.value}"), f"{run.prefix}:r:{r.value}") for r in Result
        ]
        back = Btn(run.label("back"), f"{run.prefix}:b")
        values = _shown(run, previews=[apply_result(cadre.state, r, policy) for r in Result])
        rows = (tuple(buttons[:2]), tuple(buttons[2:]), (back,))
        return Screen("grades/choose_result", values, rows, edit=True)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        if button.parts[1] == "b":
            _forget_cadre(run)
            return Goto("nid")
        code = str(values[0])
        if code not in {r.value for r in Result}:
            return STALE
        return Answer(code)


class Confirm(_TakesFiles, Decide):
    __slots__ = ()


def _move(run: Run) -> dict[str, Any]:
    state = _cadre(run.answers).state
    return _shown(run, move=apply_result(state, Result(run.answers["result"]), _policy(run)))


def _result_again(run: Run) -> Outcome:
    run.answers.pop("result", None)
    return Goto("result")


async def record(run: Run, answers: dict[str, Any]) -> Outcome:
    """Record the result (scope, year and duplicates re-checked), say the move, and go on
    with the next cadre, below; the round ends when nobody is left."""
    policy = _policy(run)
    year = int(answers["year"])
    said = STALE_BUTTON

    async def write(session: AsyncSession, actor: Actor) -> grades.Applied:
        applied = await grades.record_result(
            session,
            actor,
            int(answers["nid"]),
            year,
            Result(answers["result"]),
            policy,
            this_year=run.today().year,
            now=datetime.now(UTC),
        )
        await notices.assessed(run.chat, session, applied)
        return applied

    try:
        applied = await scoped(run, write)
    except GradeError as error:
        said = Screen("grades/error", {"code": error.code, "params": error.params})
    else:
        if applied is not None:
            move = {"year": year, "full_name": answers["name"], "move": applied.move}
            said = Screen("grades/applied", {**move, "period": policy.subsidy_period})
    _forget_cadre(run)
    if not await _pending(run, year):
        return Finish((said, Screen("grades/none_pending", {"year": year})))
    run.draft["below"] = True
    return Goto("nid", say=said.template, values=said.values)


def _upgrade(draft: dict[str, Any], state: int | None) -> dict[str, Any]:
    """A draft of /results before the flow engine: flat (year, page, nid, name, township,
    grade, years, result), its position the state 0–3, which the questions keep."""
    answers = {k: draft[k] for k in ("year", "page", *CADRE_KEYS) if k in draft}
    at = "year"
    if state == 2 and "nid" in draft:
        at = "result"
    elif state == 3 and "result" in draft:
        at = "confirm"
    elif state in (1, 2, 3) and "year" in draft:
        at = "nid"
    return {"answers": answers, "at": at, "editing": False}


RESULTS = Flow(
    name=NAME,
    command=COMMAND,
    prefix="grd",
    questions=(
        Year(),
        People(
            "nid",
            "grades/choose_person",
            _pending_for,
            grades.candidate,
            empty="grades/none_pending",
            keep=_kept,
            forget=CADRE_KEYS,
            values=lambda run: {"year": run.answers.get("year")},
            done=Screen("grades/results_done", edit=True),
        ),
        Assessment(),
        # The move the result makes, to confirm (``grd:ok``) or go back (``grd:rb``).
        Confirm("confirm", "grades/confirm", _move, "rb", "back", _result_again, edit=True),
    ),
    submit=record,
    texts=TEXTS,
    upgrade=_upgrade,
)
