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
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import notices
from handlers.chat.acting import STALE_BUTTON, acting, scoped
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
    Texts,
    Turn,
)
from handlers.chat.screen import Btn, Screen
from handlers.manage.kinds import OFFICIALS, Cadres, Listed
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


async def _pending(run: Run, actor: Actor, year: int) -> int:
    async with run.session() as session:
        _, total = await grades.pending_for_year(session, actor, year, limit=1)
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
        if not await _pending(run, await acting(run), year):
            return Finish((Screen("grades/none_pending", {"year": year}),))
        run.answers.clear()
        run.answers["page"] = 0
        return Answer(year)


async def _load(
    run: Run, session: AsyncSession, actor: Actor, offset: int, limit: int
) -> tuple[Sequence[Listed], int]:
    year = int(run.answers["year"])
    return await grades.pending_for_year(session, actor, year, offset=offset, limit=limit)


async def _take(
    run: Run, session: AsyncSession, actor: Actor, nomination_id: int
) -> dict[str, Any]:
    found = await grades.candidate(session, actor, nomination_id)
    _forget_cadre(run)
    return {
        "name": found.full_name,
        "grade": found.grade,
        "years": found.years_in_grade,
        "township": found.township,
    }


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


class Confirm(_TakesFiles, Question):
    """The move the result makes, to confirm (``grd:ok``) or go back (``grd:rb``)."""

    key = "confirm"
    editable = False

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "ok"), Button(prefix, "rb"))

    async def ask(self, run: Run, page: int) -> Screen:
        state = _cadre(run.answers).state
        move = apply_result(state, Result(run.answers["result"]), _policy(run))
        rows = (
            (
                Btn(run.label("submit"), f"{run.prefix}:ok"),
                Btn(run.label("back"), f"{run.prefix}:rb"),
            ),
        )
        return Screen("grades/confirm", _shown(run, move=move), rows, edit=True)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        if button.parts[1] == "rb":
            run.answers.pop("result", None)
            return Goto("result")
        return Answer(True)


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
    if not await _pending(run, await acting(run), year):
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
            _load,
            _take,
            empty="grades/none_pending",
            values=lambda run: {"year": run.answers.get("year")},
            done=Screen("grades/results_done", edit=True),
        ),
        Assessment(),
        Confirm(),
    ),
    submit=record,
    texts=Texts(busy="grades/busy", use_buttons="grades/use_buttons"),
    upgrade=_upgrade,
)
