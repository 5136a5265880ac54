"""The questions of the use stage (/project, /report, /outcome) the common kinds lack:
money in wan yuan, a project status with "keep", lead cadres chosen from a paged pool, a past
date (typed, or today's button), an assessment year with a recorded result; and what their
submits share.

Nothing here imports `telegram`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat import kinds as common
from handlers.chat.acting import EXPIRED, as_actor, said, scoped
from handlers.chat.codec import YEAR, Button
from handlers.chat.flow import Answer, Finish, Goto, Outcome, Question, Reask, Review, Run
from handlers.chat.kinds import Choice, Codes, Text
from handlers.chat.paged import Toggled
from handlers.chat.screen import Btn, Screen
from storage import outcomes, posts, projects
from storage.outcomes import YearResult
from storage.people import Actor
from storage.rules.identity import RuleError

KEEP = "keep"  # /report: the status stays as it is (None in the report stored)

Values = Callable[[Run], dict[str, Any]]


def money(key: str, template: str, values: Values | None = None, *, editable: bool = True) -> Text:
    """An amount typed in wan yuan (10,000 yuan), kept as whole yuan; 0 allowed."""
    return Text(
        key,
        lambda _run, raw: projects.parse_wan(raw),
        template=template,
        invalid="projects/invalid",
        values=lambda run: (
            {"max": projects.format_wan(projects.MAX_YUAN)} | (values(run) if values else {})
        ),
        editable=editable,
    )


@dataclass(slots=True)
class Status(Choice):
    """A project status as ``<prefix>:s:<code>`` (labels ``project_status.<code>``), in one
    row; `keep`: the current status (answer ``keep``) is not offered, "keep" is instead."""

    codes: Codes = projects.PROJECT_STATUSES
    per_row: int = len(projects.PROJECT_STATUSES)
    tag: str = "s"
    labels: str = "project_status"
    keep: bool = False

    def options(self, run: Run) -> Sequence[str]:
        current = run.answers.get("current") if self.keep else None
        return [s for s in projects.PROJECT_STATUSES if s != current]

    async def ask(self, run: Run, page: int) -> Screen:
        screen = await Choice.ask(self, run, page)
        if not self.keep:
            return screen
        keep = Btn(run.label("project.keep_status"), f"{run.prefix}:s:{KEEP}")
        return replace(screen, rows=(*screen.rows, (keep,)))

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        if self.keep and values[0] == KEEP:
            return Answer(KEEP)
        return await Choice.on_button(self, run, button, values)

    def shown(self, run: Run) -> str | None:
        return None if run.answers.get(self.key) == KEEP else Choice.shown(self, run)


# -- lead cadres and a past day ------------------------------------------------------------


@dataclass(slots=True)
class Leads(Toggled):
    """Lead cadres from the township's pool, toggled on a paged list: ``<p>:l:<id>``,
    ``<p>:lp:<page>``, ``<p>:ld`` (done, at least one). The choice in progress is kept in the
    draft ("chosen"), the answer (ids; names under "lead_names") only once done: an empty
    list would count as answered."""

    key: str = "leads"
    template: str = "projects/choose_leads"
    tag: str = "l"
    done_label: str = "project.leads_done"
    page_key: str = "lpage"
    most: int = projects.MAX_LEADS

    async def items(self, run: Run, offset: int, limit: int) -> tuple[Sequence[Any], int]:
        tid = int(run.answers["tid"])
        return await as_actor(
            run, lambda s, a: projects.lead_candidates(s, a, tid, offset=offset, limit=limit)
        )

    async def still(self, run: Run, ids: Sequence[int]) -> Sequence[Any]:
        tid = int(run.answers["tid"])
        return await as_actor(run, lambda s, a: projects.leads_named(s, a, tid, ids))

    def label(self, run: Run, item: Any) -> str:
        return run.chat.text(
            "projects/lead_button",
            on=self.on(run, item),
            full_name=item.full_name,
            village=item.village or "",
        )

    async def more(self, run: Run) -> dict[str, Any]:
        return {"township": run.answers.get("tname", "")}

    async def close(self, run: Run) -> Outcome:
        chosen = self.chosen(run)
        if not chosen:
            return Reask(say="projects/invalid", values={"code": "project.no_leads", "params": {}})
        still = await self.still(run, chosen)
        if not still:
            run.draft["chosen"] = []
            return Reask(say="projects/invalid", values={"code": "project.leads", "params": {}})
        run.draft.pop("chosen", None)
        run.answers["lead_names"] = [c.full_name for c in still]
        return Answer([c.nomination_id for c in still])

    def shown(self, run: Run) -> str | None:
        names = run.answers.get("lead_names")
        return "、".join(str(n) for n in names) if isinstance(names, list) and names else None


def _past(run: Run, raw: str) -> date:
    today = run.today()
    return outcomes.check_past(posts.parse_date(raw, today=today), today)


@dataclass(slots=True)
class Day(common.Day):
    """A day that has happened: typed (2025-03-01, a date in Chinese…) or ``<p>:today``."""

    rule: Callable[[Run, str], date] = _past
    label: str = "outcome.today"
    invalid: str = "outcomes/invalid"


Years = Callable[[Run], Awaitable[list[YearResult] | None]]


@dataclass(slots=True)
class Year(Question):
    """An assessment year with a recorded result: ``<p>:y:<year>`` or typed."""

    key: str
    template: str
    years: Years
    values: Values | None = None
    editable: bool = True
    when: Callable[[Run], bool] | None = None

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "y", YEAR),)

    async def ask(self, run: Run, page: int) -> Screen:
        years = await self.years(run) or []
        rows = tuple(
            (
                Btn(
                    run.chat.text("outcomes/year_button", year=y.year, result=y.result),
                    f"{run.prefix}:y:{y.year}",
                ),
            )
            for y in years
        )
        extra = self.values(run) if self.values else {}
        return Screen(self.template, {"years": years, **extra}, rows)

    async def _take(self, run: Run, year: int | None) -> Outcome:
        years = await self.years(run) or []
        if year is None or year not in {y.year for y in years}:
            params = {"year": year} if year is not None else {}
            said = {"code": "pay.no_result", "params": params}
            return Reask(say="outcomes/invalid", values=said)
        return Answer(year)

    async def on_text(self, run: Run, text: str) -> Outcome:
        parsed = YEAR.parse(text.strip())
        return await self._take(run, parsed)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        return await self._take(run, int(values[0]))


# -- what the submits share -----------------------------------------------------------


async def stored(
    run: Run,
    work: Callable[[AsyncSession, Actor], Awaitable[Screen]],
    invalid: str,
    again: Mapping[str, str] | None = None,
    *,
    forget: bool = False,
) -> Outcome:
    """`work` as the acting person (`scoped`), then the screen it returned. A rule it refuses
    is said with `invalid`, and the question `again` names for the rule's code is asked again
    (its answer forgotten with `forget`: the rest of the draft stays), else the review is
    shown; out of scope: expired."""
    try:
        done = await scoped(run, work)
    except RuleError as error:
        step = (again or {}).get(error.code)
        if step is None:
            return Review(invalid, said(error))
        if forget:
            run.answers.pop(step, None)
        return Goto(step, invalid, said(error))
    return EXPIRED if done is None else Finish((done,))
