"""The questions of the use stage (/project, /report, /outcome) the common kinds lack:
money in wan yuan, a project status with "keep", lead cadres chosen from a paged pool, a past
date (typed, or today's button), an assessment year with a recorded result.

Nothing here imports `telegram`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from handlers.chat import kinds as common
from handlers.chat.acting import acting
from handlers.chat.codec import CODE, YEAR, Button
from handlers.chat.flow import STALE, Answer, Outcome, Question, Reask, Run
from handlers.chat.kinds import Text
from handlers.chat.paged import Toggled
from handlers.chat.screen import Btn, Rows, Screen
from storage import outcomes, posts, projects
from storage.outcomes import YearResult

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
class Status(Question):
    """A project status as ``<prefix>:s:<code>`` (labels ``project_status.<code>``), in one
    row; `keep`: the current status (answer ``keep``) is not offered, "keep" is instead."""

    key: str
    template: str
    keep: bool = False
    editable: bool = True
    values: Values | None = None

    def options(self, run: Run) -> list[str]:
        if not self.keep:
            return list(projects.PROJECT_STATUSES)
        current = run.answers.get("current")
        return [s for s in projects.PROJECT_STATUSES if s != current]

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "s", CODE),)

    async def ask(self, run: Run, page: int) -> Screen:
        p = run.prefix
        row = tuple(Btn(run.label(f"project_status.{s}"), f"{p}:s:{s}") for s in self.options(run))
        rows: Rows = (row,)
        if self.keep:
            rows = (row, (Btn(run.label("project.keep_status"), f"{p}:s:{KEEP}"),))
        return Screen(self.template, self.values(run) if self.values else {}, rows)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        code = str(values[0])
        if code in self.options(run) or (self.keep and code == KEEP):
            return Answer(code)
        return STALE

    def shown(self, run: Run) -> str | None:
        value = run.answers.get(self.key)
        return None if value in (None, KEEP) else run.label(f"project_status.{value}")


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
        async with run.session() as session:
            return await projects.lead_candidates(
                session, await acting(run), int(run.answers["tid"]), offset=offset, limit=limit
            )

    async def still(self, run: Run, ids: Sequence[int]) -> Sequence[Any]:
        async with run.session() as session:
            return await projects.leads_named(
                session, await acting(run), int(run.answers["tid"]), ids
            )

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
