"""/outcome's first two questions: the cadre (or nobody, for a county publicity record) and
what to record for them; and the cadre's assessment years, which pay needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from handlers.chat.acting import acting, as_actor, scoped
from handlers.chat.codec import CODE, Button
from handlers.chat.flow import STALE, Answer, Goto, Outcome, Question, Reask, Run
from handlers.chat.paged import Paged
from handlers.chat.screen import Btn, Rows, Screen
from storage import outcomes
from storage.outcomes import OUTCOME_KINDS, YearResult

NOBODY = 0  # "nid" of a county publicity record naming no cadre
# The answers a kind asks for; choosing another cadre or kind forgets them.
ANSWERS = ("position", "outlet", "title", "date", "year", "pay")


async def start(run: Run, args: str) -> dict[str, Any] | None:
    """Nobody in scope and no county publicity to record: said, and nothing to ask."""
    actor = await acting(run)
    async with run.session() as session:
        total = (await outcomes.cadres(session, actor, limit=1))[1]
    if total == 0 and not outcomes.may_record_county_publicity(actor):
        await run.chat.show(Screen("outcomes/none"))
        return None
    return {}


def _forget_answers(run: Run) -> None:
    for key in ANSWERS:
        run.answers.pop(key, None)


class Cadre(Paged):
    """The cadre, from a paged list (``<p>:p:<id>``, ``<p>:pg:<page>``, the page kept in the
    draft), or nobody for a county publicity record (``<p>:np``, county officials and admins
    only)."""

    key = "nid"
    editable = False
    template = "outcomes/choose_person"
    per_row = 1
    page_key = "page"
    done_tag = "np"
    done_label = "outcome.county_publicity"

    async def items(self, run: Run, offset: int, limit: int) -> tuple[Sequence[Any], int]:
        return await as_actor(run, lambda s, a: outcomes.cadres(s, a, offset=offset, limit=limit))

    def label(self, run: Run, item: Any) -> str:
        return run.chat.text(
            "outcomes/person_button",
            full_name=item.full_name,
            id=item.nomination_id,
            status=item.status,
        )

    async def more(self, run: Run) -> dict[str, Any]:
        return {}

    async def offers_done(self, run: Run) -> bool:
        return outcomes.may_record_county_publicity(await acting(run))

    async def close(self, run: Run) -> Outcome:
        if not outcomes.may_record_county_publicity(await acting(run)):
            return STALE
        _forget_answers(run)
        run.answers.update(name="", township="", status="", kind="publicity")
        return Answer(NOBODY)

    async def choose(self, run: Run, ident: int) -> Outcome:
        found = await scoped(run, lambda s, a: outcomes.cadre(s, a, ident))
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
