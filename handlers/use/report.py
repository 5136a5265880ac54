"""/report: a lead cadre reports a project's progress: the income gained since the last report
(wan yuan, 0 allowed), the status (or "unchanged") and a note (or none); on submit the
township's officials are told, in the report's transaction.

Leads hold no role: who may report is who leads a project, re-checked on every press.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.acting import scoped
from handlers.chat.codec import ID, Button
from handlers.chat.commands import command
from handlers.chat.flow import STALE, Answer, Flow, Outcome, Question, ReviewScreen, Run
from handlers.chat.kinds import Text
from handlers.chat.screen import Btn, Screen
from handlers.use.kinds import KEEP, Status, money, stored
from handlers.use.project import TEXTS
from storage import projects, reminders
from storage.people import Actor
from storage.projects import ProjectRow

COMMAND = command("report")


async def _led(run: Run) -> list[ProjectRow]:
    actor = await run.actor()
    async with run.session() as session:
        return await projects.led_projects(session, actor) if actor is not None else []


async def start(run: Run, args: str) -> dict[str, Any] | None:
    """Only a lead has something to report."""
    if not await _led(run):
        await run.chat.show(Screen("projects/report_none"))
        return None
    return {}


@dataclass(slots=True)
class LedProject(Question):
    """One of the projects the person leads, one a row: ``<p>:p:<id>``."""

    key: str = "pid"
    editable: bool = False

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "p", ID),)

    async def ask(self, run: Run, page: int) -> Screen:
        led = await _led(run)
        rows = tuple((Btn(p.name, f"{run.prefix}:p:{p.id}"),) for p in led)
        return Screen("projects/report_choose", {"items": led}, rows)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        found = await scoped(run, lambda s, a: projects.led_project(s, a, int(values[0])))
        if found is None:
            return STALE
        # Another project: nothing said about the previous one still holds.
        run.answers.clear()
        run.answers.update(pname=found.name, current=found.status)
        return Answer(found.id)

    def shown(self, run: Run) -> str | None:
        name = run.answers.get("pname")
        return None if name is None else str(name)


@dataclass(slots=True)
class Note(Text):
    """The note, or none with "skip note" (``<p>:skip``)."""

    async def ask(self, run: Run, page: int) -> Screen:
        rows = ((Btn(run.label("project.skip_note"), f"{run.prefix}:skip"),),)
        return Screen(self.template, {"max": projects.NOTE_MAX}, rows)


async def _review_values(run: Run) -> dict[str, Any]:
    answers = run.answers
    status = answers.get("status")
    return {
        "project": answers.get("pname", ""),
        "income_wan": projects.format_wan(int(answers.get("income") or 0)),
        "current": answers.get("current", ""),
        "status": "" if status in (None, KEEP) else status,
        "note": answers.get("note") or "",
    }


async def submit(run: Run, answers: dict[str, Any]) -> Outcome:
    """Store the report (lead re-checked) and tell the township's officials, in one go."""
    status = answers.get("status")

    async def report(session: AsyncSession, actor: Actor) -> Screen:
        saved = await projects.add_report(
            session,
            actor,
            int(answers["pid"]),
            income_yuan=int(answers["income"]),
            status=None if status in (None, KEEP) else str(status),
            note=answers.get("note"),
            report_date=run.today(),
            now=datetime.now(UTC),
        )
        # In the report's transaction: the notice goes out if and only if it is stored.
        officials = await reminders.township_official_recipients(session, saved.township_id)
        await run.chat.notify(
            session,
            officials,
            "projects/notice_report",
            key=f"project-report:{saved.report_id}",
            report=saved,
        )
        return Screen("projects/report_saved", {"report": saved})

    return await stored(run, report, "projects/invalid")


# The positions of /report before the flow engine (its conversation states), kept at deploy.
_OLD_AT = {40: "pid", 41: "income", 42: "status", 43: "note", 44: "review"}


def upgrade(draft: dict[str, Any], state: int | None) -> dict[str, Any]:
    """A draft of the old /report: answers beside "at"; "status" None meant unchanged."""
    keys = ("pid", "pname", "current", "income", "note")
    answers: dict[str, Any] = {k: draft[k] for k in keys if k in draft}
    if "status" in draft:
        answers["status"] = draft["status"] or KEEP
    return {"answers": answers, "at": Flow.old_position(draft, state, _OLD_AT), "editing": False}


REPORT = Flow(
    name="project_report",
    command=COMMAND,
    prefix="rpt",
    start=start,
    questions=(
        LedProject(),
        money(
            "income",
            "projects/ask_income",
            values=lambda run: {"project": run.answers.get("pname", "")},
            editable=False,
        ),
        Status(
            "status",
            template="projects/report_status",
            keep=True,
            editable=False,
            values=lambda run: {"current": run.answers.get("current", "")},
        ),
        Note(
            "note",
            lambda _run, raw: projects.clean_note(raw),
            template="projects/ask_note",
            invalid="projects/invalid",
            optional=True,
            editable=False,
        ),
    ),
    review=ReviewScreen("projects/report_review", submit_tag="ok", values=_review_values),
    submit=submit,
    texts=TEXTS,
    version=2,
    upgrade=upgrade,
    legacy_states=tuple(_OLD_AT),
)
