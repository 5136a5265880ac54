"""/round: a county official opens a selection round (a year or a batch, with dates).

The rounds opened so far are shown first, then the round's name, its first day, its last
day, and what will be stored (submit or cancel). Nothing is written before the submit, which
checks the role again and refuses dates that cross another round's. What a round allows is
storage/rounds.py's.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.acting import as_actor
from handlers.chat.commands import command
from handlers.chat.flow import Finish, Flow, Goto, Outcome, Run, Texts
from handlers.chat.kinds import Confirm, Day, Text
from handlers.chat.screen import Screen
from storage import posts, rounds
from storage.models import Role, SelectionRound
from storage.people import Actor
from storage.rules.identity import clean_text

COMMAND = command("round", Role.COUNTY_OFFICIAL, Role.ADMIN)
NAME_MAX = 40


def _listed(found: list[SelectionRound], today: date) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name,
            "starts_on": r.starts_on.isoformat(),
            "ends_on": r.ends_on.isoformat(),
            "open": r.starts_on <= today <= r.ends_on,
        }
        for r in found
    ]


async def show_rounds(run: Run, args: str) -> dict[str, Any] | None:
    """The rounds so far, and whether nominations are taken today; then the new round's name."""
    today = run.today()
    async with run.session() as session:
        found = await rounds.all_rounds(session)
    await run.chat.show(Screen("rounds/list", {"rounds": _listed(found, today)}))
    return {}


def _name(run: Run, raw: str) -> str:
    return " ".join(clean_text(raw, max_len=NAME_MAX).split())


def _day(run: Run, raw: str) -> date:
    """A date typed (2025-03-01, 2025年3月1日)."""
    return posts.parse_date(raw, today=run.today())


def _last_day(run: Run, raw: str) -> date:
    """A date typed, not before the first day."""
    day = _day(run, raw)
    posts.check_dates(date.fromisoformat(run.answers["starts_on"]), day)
    return day


def _review(run: Run) -> dict[str, Any]:
    a = run.answers
    return {"round_name": a["name"], "starts_on": a["starts_on"], "ends_on": a["ends_on"]}


async def open_round(run: Run, answers: dict[str, Any]) -> Outcome:
    """Store the round; dates crossing another round's are asked again."""
    starts_on = date.fromisoformat(answers["starts_on"])
    ends_on = date.fromisoformat(answers["ends_on"])

    async def store(session: AsyncSession, actor: Actor) -> None:
        await rounds.open_round(
            session, actor, name=answers["name"], starts_on=starts_on, ends_on=ends_on
        )

    try:
        await as_actor(run, store)
    except rounds.RoundsOverlap as crossed:
        values = {
            "round_name": crossed.name,
            "starts_on": crossed.starts_on.isoformat(),
            "ends_on": crossed.ends_on.isoformat(),
        }
        return Goto("starts_on", "rounds/overlap", values)
    return Finish((Screen("rounds/opened", _review(run)),))


ROUND = Flow(
    name="selection_round",
    command=COMMAND,
    prefix="rnd",
    start=show_rounds,
    questions=(
        Text(
            "name",
            _name,
            template="rounds/ask_name",
            editable=False,
            values=lambda _run: {"max_len": NAME_MAX},
        ),
        Day(
            "starts_on",
            "rounds/ask_start",
            _day,
            label="posts.today",
            invalid="posts/invalid",
            editable=False,
        ),
        Day(
            "ends_on",
            "rounds/ask_end",
            _last_day,
            label="posts.today",
            values=lambda run: {"starts_on": run.answers.get("starts_on")},
            invalid="posts/invalid",
            editable=False,
        ),
        # What will be stored: submit (``rnd:ok:1``) or cancel (``rnd:ok:0``), nothing kept.
        Confirm(
            "confirm",
            "ok",
            "rounds/review",
            declined="common/cancelled",
            yes="submit",
            no="cancel",
            values=_review,
        ),
    ),
    submit=open_round,
    texts=Texts(busy="rounds/busy"),
)
