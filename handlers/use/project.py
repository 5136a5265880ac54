"""/project: an official registers an idle-asset revitalisation project: its
township (skipped when there is one) and village, name, funds in wan yuan, status and lead
cadres from the township's pool; then a review with edit-and-come-back, and save.

Nothing is written before the review is confirmed, and every press is re-checked in storage
against the official's current scope: a forged button is "expired", never another's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import notices
from handlers.chat.acting import acting, as_actor, scoped
from handlers.chat.codec import Button
from handlers.chat.commands import command
from handlers.chat.flow import Answer, Finish, Flow, Outcome, ReviewScreen, Run, Texts
from handlers.chat.kinds import Pick, Text
from handlers.chat.screen import Screen
from handlers.use.kinds import Leads, Status, money, stored
from storage import projects
from storage.models import OFFICIAL_ROLES
from storage.people import Actor

COMMAND = command("project", *OFFICIAL_ROLES)
VILLAGES_PER_PAGE = 8
# /report says the same things while it waits for an answer.
TEXTS = Texts(busy="projects/busy", use_buttons="projects/use_buttons")


async def _not_ready(run: Run, township_id: int, township: str) -> Screen | None:
    """Why no project can be created in the township yet (no villages, or no cadre to lead
    one), said before anything is typed; None when it can."""
    actor = await acting(run)
    async with run.session() as session:
        villages = (await projects.villages_for(session, actor, township_id, limit=1))[1]
        cadres = (await projects.lead_candidates(session, actor, township_id, limit=1))[1]
    if villages == 0:
        return Screen("projects/no_villages")
    if cadres == 0:
        return Screen("projects/no_cadres", {"township": township})
    return None


async def _townships(run: Run, offset: int, limit: int) -> tuple[list[tuple[int, str]], int]:
    """All the official's townships (they are few: one page)."""
    actor = await run.actor()
    async with run.session() as session:
        townships = await projects.townships_for(session, actor) if actor else []
    return [(t.id, t.name) for t in townships], len(townships)


async def start(run: Run, args: str) -> dict[str, Any] | None:
    """The official's townships: none, refused; one, chosen for them."""
    townships, count = await _townships(run, 0, 0)
    if not count:
        await run.chat.show(Screen("projects/no_villages"))
        return None
    if count > 1:
        return {}
    tid, tname = townships[0]
    refusal = await _not_ready(run, tid, tname)
    if refusal is not None:
        await run.chat.show(refusal)
        return None
    return {"tid": tid, "tname": tname}


async def _take_township(run: Run, township_id: int) -> dict[str, Any] | None:
    found = await scoped(run, lambda s, a: projects.township_in_scope(s, a, township_id))
    if found is None:
        return None
    if run.answers.get("tid") != found.id:
        # Another township: its villages and cadres are not the ones chosen before.
        for key in ("vid", "vname", "leads", "lead_names"):
            run.answers.pop(key, None)
        run.draft.pop("chosen", None)
    return {"tid": found.id, "tname": found.name}


@dataclass(slots=True)
class Township(Pick):
    """The township, re-checked in scope; one with no villages or no cadres ends the flow."""

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        outcome = await Pick.on_button(self, run, button, values)
        if not isinstance(outcome, Answer):
            return outcome
        refusal = await _not_ready(run, int(outcome.value), str(run.answers.get("tname", "")))
        return Finish((refusal,)) if refusal is not None else outcome


async def _villages(run: Run, offset: int, limit: int) -> tuple[list[tuple[int, str]], int]:
    township = int(run.answers["tid"])
    villages, total = await as_actor(
        run, lambda s, a: projects.villages_for(s, a, township, offset=offset, limit=limit)
    )
    return [(v.id, v.name) for v in villages], total


async def _take_village(run: Run, village_id: int) -> dict[str, Any] | None:
    found = await scoped(run, lambda s, a: projects.village_in_scope(s, a, village_id))
    if found is None or found.township_id != run.answers.get("tid"):
        return None
    return {"vid": found.id, "vname": found.name}


@dataclass(slots=True)
class Village(Pick):
    """The village, paged, with its township's name above."""

    async def more(self, run: Run) -> dict[str, Any]:
        return {**run.values(), "township": run.answers.get("tname", "")}


async def _review_values(run: Run) -> dict[str, Any]:
    answers = run.answers
    names = answers.get("lead_names")
    return {
        "township": answers.get("tname", ""),
        "village": answers.get("vname", ""),
        "project": answers.get("name", ""),
        "funds_wan": projects.format_wan(int(answers.get("funds") or 0)),
        "status": answers.get("status", ""),
        "leads": [{"full_name": n} for n in names] if isinstance(names, list) else [],
        "lead_count": len(answers.get("leads") or []),
    }


async def submit(run: Run, answers: dict[str, Any]) -> Outcome:
    """Store the project (scope, village and leads re-checked) and show it."""

    async def create(session: AsyncSession, actor: Actor) -> Screen:
        leads = sorted({int(i) for i in answers["leads"]})
        project = await projects.create_project(
            session,
            actor,
            village_id=int(answers["vid"]),
            name=str(answers["name"]),
            funds_yuan=int(answers["funds"]),
            status=str(answers["status"]),
            lead_ids=leads,
            now=datetime.now(UTC),
        )
        row = await projects.project_row(session, actor, project.id)
        await notices.project_lead(run.chat, session, leads, row)
        return Screen("projects/saved", {"project": row})

    leads = {"project.leads": "leads", "project.no_leads": "leads"}
    return await stored(run, create, "projects/invalid", leads)


# The positions of /project before the flow engine (its conversation states), kept at deploy.
_OLD_AT = {20: "tid", 21: "vid", 22: "name", 23: "funds", 24: "status", 25: "leads", 26: "review"}
_OLD_ANSWERS = ("tid", "tname", "vid", "vname", "name", "funds", "status")


def upgrade(draft: dict[str, Any], state: int | None) -> dict[str, Any]:
    """A draft of the old /project: its answers side by side with "at" (a state number)."""
    answers = {k: draft[k] for k in _OLD_ANSWERS if draft.get(k) is not None}
    position = Flow.old_position(draft, state, _OLD_AT)
    upgraded: dict[str, Any] = {"answers": answers, "at": position}
    leads = [int(i) for i in draft.get("leads") or []]
    if position == "review" and leads:
        answers["leads"] = leads  # names are read again when the leads are next confirmed
    elif leads:
        upgraded["chosen"] = leads
    upgraded |= {k: draft[k] for k in ("vpage", "lpage") if isinstance(draft.get(k), int)}
    upgraded["editing"] = bool(draft.get("editing"))
    return upgraded


PROJECT = Flow(
    name="project",
    command=COMMAND,
    prefix="prj",
    start=start,
    questions=(
        Township(
            "tid",
            _townships,
            _take_township,
            tag="t",
            template="projects/choose_township",
            shows="tname",
            editable=False,
        ),
        Village(
            "vid",
            _villages,
            _take_village,
            tag="v",
            page_tag="vp",
            per_page=VILLAGES_PER_PAGE,
            template="projects/choose_village",
            shows="vname",
            editable=False,
        ),
        Text(
            "name",
            lambda _run, raw: projects.clean_name(raw),
            template="projects/ask_name",
            invalid="projects/invalid",
            values=lambda _run: {"min": projects.NAME_MIN, "max": projects.NAME_MAX},
        ),
        money("funds", "projects/ask_funds"),
        Status("status", template="projects/choose_status"),
        Leads(),
    ),
    review=ReviewScreen(
        "projects/review",
        submit_tag="ok",
        edit_label=lambda key: f"project.edit.{key}",
        values=_review_values,
    ),
    submit=submit,
    texts=TEXTS,
    version=2,
    upgrade=upgrade,
    legacy_states=tuple(_OLD_AT),
)
