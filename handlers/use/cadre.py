"""/outcome's first two questions: the cadre (or nobody, for a county publicity record) and
what to record for them; and the cadre's assessment years, which pay needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from handlers.chat.acting import scoped
from handlers.chat.codec import CODE, ID, PAGE, Button
from handlers.chat.flow import STALE, Answer, Goto, Outcome, Question, Reask, Run
from handlers.chat.paged import page_in_scope
from handlers.chat.screen import Btn, Pager, Rows, Screen
from handlers.manage.kinds import official
from storage import outcomes
from storage.outcomes import OUTCOME_KINDS, YearResult

PAGER = Pager(8)
NOBODY = 0  # "nid" of a county publicity record naming no cadre
# The answers a kind asks for; choosing another cadre or kind forgets them.
ANSWERS = ("position", "outlet", "title", "date", "year", "pay")


async def start(run: Run, args: str) -> dict[str, Any] | None:
    """Nobody in scope and no county publicity to record: said, and nothing to ask."""
    actor = await official(run)
    async with run.session() as session:
        total = (await outcomes.cadres(session, actor, limit=1))[1]
    if total == 0 and not outcomes.may_record_county_publicity(actor):
        await run.chat.show(Screen("outcomes/none"))
        return None
    return {}


def _forget_answers(run: Run) -> None:
    for key in ANSWERS:
        run.answers.pop(key, None)


@dataclass(slots=True)
class Cadre(Question):
    """The cadre, from a paged list (``<p>:p:<id>``, ``<p>:pg:<page>``), or nobody for a
    county publicity record (``<p>:np``, county officials and admins only)."""

    key: str = "nid"
    editable: bool = False

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "p", ID), Button(prefix, "pg", PAGE), Button(prefix, "np"))

    async def ask(self, run: Run, page: int) -> Screen:
        actor = await run.actor()
        page = int(run.draft.get("page", 0))
        page, items, total = await page_in_scope(run, actor, PAGER, page, outcomes.cadres)
        run.draft["page"] = page
        p = run.prefix
        rows: Rows = tuple(
            (
                Btn(
                    run.chat.text(
                        "outcomes/person_button",
                        full_name=c.full_name,
                        id=c.nomination_id,
                        status=c.status,
                    ),
                    f"{p}:p:{c.nomination_id}",
                ),
            )
            for c in items
        )
        nav = PAGER.nav(
            page, total, Button(p, "pg", PAGE), prev=run.label("prev"), next=run.label("next")
        )
        if nav:
            rows = (*rows, nav)
        if actor is not None and outcomes.may_record_county_publicity(actor):
            rows = (*rows, (Btn(run.label("outcome.county_publicity"), f"{p}:np"),))
        values = {"people": items, **PAGER.values(page, total)}
        return Screen("outcomes/choose_person", values, rows)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        tag = button.parts[1]
        if tag == "pg":
            run.draft["page"] = int(values[0])
            return Reask(edit=True)
        if tag == "np":
            if not outcomes.may_record_county_publicity(await official(run)):
                return STALE
            _forget_answers(run)
            run.answers.update(name="", township="", status="", kind="publicity")
            return Answer(NOBODY)
        found = await scoped(run, lambda s, a: outcomes.cadre(s, a, int(values[0])))
        if found is None:
            return STALE
        _forget_answers(run)
        run.answers.pop("kind", None)
        run.answers.update(name=found.full_name, township=found.township, status=found.status)
        return Answer(found.nomination_id)


async def years_of(run: Run) -> list[YearResult] | None:
    """The cadre's recorded assessment years, or None when the official may not act."""
    nomination_id = run.answers.get("nid")
    if not nomination_id:
        return None
    return await scoped(run, lambda s, a: outcomes.assessment_years(s, a, int(nomination_id)))


@dataclass(slots=True)
class Kind(Question):
    """What to record, one a row (``<p>:k:<kind>``), and back to the cadres (``<p>:b``).
    Pay needs a recorded assessment year first."""

    key: str = "kind"
    editable: bool = False

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "k", CODE), Button(prefix, "b"))

    async def ask(self, run: Run, page: int) -> Screen:
        p = run.prefix
        rows: Rows = (
            *((Btn(run.label(f"outcome_kind.{k}"), f"{p}:k:{k}"),) for k in OUTCOME_KINDS),
            (Btn(run.label("back"), f"{p}:b"),),
        )
        answers = run.answers
        values = {
            "full_name": answers.get("name", ""),
            "township": answers.get("township", ""),
            "status": answers.get("status", ""),
        }
        return Screen("outcomes/choose_kind", values, rows)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        if button.parts[1] == "b":
            run.answers.pop("nid", None)
            return Goto("nid")
        kind = str(values[0])
        if kind not in OUTCOME_KINDS or not run.answers.get("nid"):
            return STALE
        if kind == "pay":
            years = await years_of(run)
            if years is None:
                return STALE
            if not years:
                return Reask("outcomes/invalid", {"code": "pay.no_results", "params": {}})
        _forget_answers(run)
        return Answer(kind)
