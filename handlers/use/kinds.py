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

from handlers.chat.codec import CODE, ID, PAGE, YEAR, Button
from handlers.chat.flow import STALE, Answer, Outcome, Question, Reask, Run
from handlers.chat.kinds import Text, invalid
from handlers.chat.screen import Btn, Pager, Rows, Screen
from storage import outcomes, posts, projects
from storage.outcomes import YearResult
from storage.rules.identity import RuleError

KEEP = "keep"  # /report: the status stays as it is (None in the report stored)
LEADS_PER_PAGE = 8

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


# -- lead cadres --------------------------------------------------------------------------


async def _candidates(
    run: Run, ids: list[int], page: int
) -> tuple[list[projects.LeadCandidate], int, list[projects.LeadCandidate]]:
    """One page of the township's pool, its size, and which of `ids` are still in it."""
    actor = await run.actor()
    if actor is None:  # the engine checked the flow's roles on this very update
        return [], 0, []
    township_id = int(run.answers["tid"])
    pager = Pager(LEADS_PER_PAGE)
    async with run.session() as session:
        items, total = await projects.lead_candidates(
            session, actor, township_id, offset=pager.offset(page), limit=LEADS_PER_PAGE
        )
        if not items and page > 0:
            items, total = await projects.lead_candidates(
                session, actor, township_id, limit=LEADS_PER_PAGE
            )
        chosen = await projects.leads_named(session, actor, township_id, ids)
    return items, total, chosen


@dataclass(slots=True)
class Leads(Question):
    """Lead cadres from the township's pool, toggled on a paged list: ``<p>:l:<id>``,
    ``<p>:lp:<page>``, ``<p>:ld`` (done, at least one). The choice in progress is kept in the
    draft ("chosen"), the answer (ids; names under "lead_names") only once done: an empty
    list would count as answered."""

    key: str = "leads"
    template: str = "projects/choose_leads"

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "l", ID), Button(prefix, "lp", PAGE), Button(prefix, "ld"))

    def chosen(self, run: Run) -> list[int]:
        ids = run.draft.get("chosen")
        if not isinstance(ids, list):
            ids = run.answers.get(self.key) or []
        return [int(i) for i in ids]

    async def ask(self, run: Run, page: int) -> Screen:
        page = int(run.draft.get("lpage", 0))
        items, total, chosen = await _candidates(run, self.chosen(run), page)
        page = Pager(LEADS_PER_PAGE).clamp(page, total)
        # Someone chosen earlier may have left the pool since: they are dropped here.
        run.draft.update(lpage=page, chosen=[c.nomination_id for c in chosen])
        on = {c.nomination_id for c in chosen}
        p = run.prefix
        rows: Rows = tuple(
            (
                Btn(
                    run.chat.text(
                        "projects/lead_button",
                        on=c.nomination_id in on,
                        full_name=c.full_name,
                        village=c.village or "",
                    ),
                    f"{p}:l:{c.nomination_id}",
                ),
            )
            for c in items
        )
        pager = Pager(LEADS_PER_PAGE)
        nav = pager.nav(
            page, total, Button(p, "lp", PAGE), prev=run.label("prev"), next=run.label("next")
        )
        if nav:
            rows = (*rows, nav)
        rows = (*rows, (Btn(run.label("project.leads_done"), f"{p}:ld"),))
        values = {
            "township": run.answers.get("tname", ""),
            "chosen": chosen,
            "total": total,
            "page": page + 1,
            "pages": pager.pages(total),
        }
        return Screen(self.template, values, rows)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        tag = button.parts[1]
        if tag == "lp":
            run.draft["lpage"] = int(values[0])
            return Reask(edit=True)
        chosen = self.chosen(run)
        actor = await run.actor()
        if actor is None:
            return STALE
        township_id = int(run.answers["tid"])
        if tag == "l":
            nomination_id = int(values[0])
            async with run.session() as session:
                found = await projects.leads_named(session, actor, township_id, [nomination_id])
            if not found:
                return STALE
            if nomination_id in chosen:
                chosen.remove(nomination_id)
            elif len(chosen) < projects.MAX_LEADS:
                chosen.append(nomination_id)
            run.draft["chosen"] = chosen
            return Reask(edit=True)
        if not chosen:
            return Reask(say="projects/invalid", values={"code": "project.no_leads", "params": {}})
        async with run.session() as session:
            still = await projects.leads_named(session, actor, township_id, chosen)
        if not still:
            run.draft["chosen"] = []
            return Reask(say="projects/invalid", values={"code": "project.leads", "params": {}})
        run.draft.pop("chosen", None)
        run.answers["lead_names"] = [c.full_name for c in still]
        return Answer([c.nomination_id for c in still])

    def shown(self, run: Run) -> str | None:
        names = run.answers.get("lead_names")
        return "、".join(str(n) for n in names) if isinstance(names, list) and names else None


# -- dates and years ----------------------------------------------------------------------


@dataclass(slots=True)
class Day(Question):
    """A day that has happened: typed (2025-03-01, a date in Chinese…) or ``<p>:today``; kept as
    an ISO date."""

    key: str
    template: str
    values: Values | None = None
    editable: bool = True
    when: Callable[[Run], bool] | None = None

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "today"),)

    async def ask(self, run: Run, page: int) -> Screen:
        rows = ((Btn(run.label("outcome.today"), f"{run.prefix}:today"),),)
        extra = self.values(run) if self.values else {}
        return Screen(self.template, {"today": run.today(), **extra}, rows)

    async def on_text(self, run: Run, text: str) -> Outcome:
        today = run.today()
        try:
            day = outcomes.check_past(posts.parse_date(text, today=today), today)
        except RuleError as error:
            return invalid("outcomes/invalid", error)
        return Answer(day.isoformat())

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        return Answer(run.today().isoformat())

    def shown(self, run: Run) -> str | None:
        value = run.answers.get(self.key)
        return date.fromisoformat(value).isoformat() if isinstance(value, str) else None


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
