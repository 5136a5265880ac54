"""/outcome: record what became of a reserve cadre (the "use" stage).

An official picks a cadre in scope (in the pool or elected), then the kind:
- elected into the two committees: position, date (moves the nomination to ELECTED);
- an award or an exemplary-cadre recognition: title, date;
- a publicity record: outlet, title, date (county officials may record one naming nobody);
- performance pay linked to an annual assessment: the year (a recorded result), the pay.
Then a review and save; every press is re-checked in storage against the official's scope.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import notices
from handlers.chat.commands import command
from handlers.chat.flow import Flow, Outcome, ReviewScreen, Run, Texts
from handlers.chat.kinds import Text
from handlers.chat.screen import Screen
from handlers.use.cadre import ANSWERS, NOBODY, Cadre, Kind, start, years_of
from handlers.use.kinds import Day, Year, stored
from storage import outcomes
from storage.models import OFFICIAL_ROLES
from storage.nominations import NotAllowed
from storage.people import Actor

COMMAND = command("outcome", *OFFICIAL_ROLES)
TEXTS = Texts(busy="outcomes/busy", use_buttons="outcomes/use_buttons")


def _is(*kinds: str) -> Callable[[Run], bool]:
    return lambda run: run.answers.get("kind") in kinds


# How each typed answer is read and how long (or how much) it may be; a title by its kind.
_TYPED: dict[str, tuple[Callable[[str], Any], int, int]] = {
    "position": (outcomes.clean_position, outcomes.POSITION_MIN, outcomes.POSITION_MAX),
    "outlet": (outcomes.clean_outlet, outcomes.OUTLET_MIN, outcomes.OUTLET_MAX),
    "title": (outcomes.clean_award_title, outcomes.AWARD_TITLE_MIN, outcomes.AWARD_TITLE_MAX),
    "publicity_title": (
        outcomes.clean_publicity_title,
        outcomes.PUBLICITY_TITLE_MIN,
        outcomes.PUBLICITY_TITLE_MAX,
    ),
    "pay": (outcomes.parse_pay, 0, outcomes.PAY_MAX_YUAN),
}


def _typed(key: str, *kinds: str) -> Text:
    """A typed answer asked for `kinds` only, read and bounded as `_TYPED` says."""

    def typing(run: Run) -> tuple[Callable[[str], Any], int, int]:
        publicity = key == "title" and run.answers.get("kind") == "publicity"
        return _TYPED["publicity_title" if publicity else key]

    def values(run: Run) -> dict[str, Any]:
        _, low, high = typing(run)
        return {
            "kind": run.answers.get("kind", ""),
            "full_name": run.answers.get("name", ""),
            "min": low,
            "max": high,
        }

    return Text(
        key,
        lambda run, raw: typing(run)[0](raw),
        template=f"outcomes/ask_{key}",
        invalid="outcomes/invalid",
        when=_is(*kinds),
        values=values,
        editable=False,
    )


def shown(answers: dict[str, Any]) -> dict[str, Any]:
    """What the review and the saved message show."""
    return {
        "kind": answers.get("kind", ""),
        "full_name": answers.get("name", ""),
        "township": answers.get("township", ""),
        "position": answers.get("position") or "",
        "outlet": answers.get("outlet") or "",
        "title": answers.get("title") or "",
        "day": answers.get("date") or "",
        "year": answers.get("year") or "",
        "pay": answers.get("pay", ""),
    }


async def submit(run: Run, answers: dict[str, Any]) -> Outcome:
    """Store the outcome (scope and rules re-checked) and say what changed."""
    kind = str(answers["kind"])
    nid = int(answers["nid"]) or None
    today = run.today()
    day = date.fromisoformat(answers["date"]) if answers.get("date") else today

    async def record(session: AsyncSession, actor: Actor) -> Screen:
        if kind == "elected" and nid is not None:
            election = await outcomes.record_election(
                session,
                actor,
                nid,
                position=answers["position"],
                elected_on=day,
                today=today,
                now=datetime.now(UTC),
            )
            await notices.elected(
                run.chat,
                session,
                nid,
                election.id,
                full_name=answers.get("name", ""),
                position=election.position,
                day=day,
            )
        elif kind in outcomes.AWARD_KINDS and nid is not None:
            await outcomes.record_award(
                session, actor, nid, kind=kind, title=answers["title"], awarded_on=day, today=today
            )
        elif kind == "publicity":
            await outcomes.record_publicity(
                session,
                actor,
                nid,
                outlet=answers["outlet"],
                title=answers["title"],
                published_on=day,
                today=today,
            )
        elif kind == "pay" and nid is not None:
            year, pay = int(answers["year"]), int(answers["pay"])
            await outcomes.link_pay(session, actor, nid, year=year, pay_yuan=pay)
        else:
            raise NotAllowed
        return Screen("outcomes/saved", shown(answers))

    # Ask again what the rule refused; the rest of the draft stays.
    again = {"pay.no_result": "year", "date.past": "date"}
    return await stored(run, record, "outcomes/invalid", again, forget=True)


# The positions of /outcome before the flow engine (its conversation states 60–68, in this
# order), kept at deploy.
_OLD_AT = dict(
    enumerate(("nid", "kind", "position", "outlet", "title", "date", "year", "pay", "review"), 60)
)


def upgrade(draft: dict[str, Any], state: int | None) -> dict[str, Any]:
    """A draft of the old /outcome: answers beside "at"; "nid" None meant nobody."""
    keys = ("name", "township", "status", "kind", *ANSWERS)
    answers = {k: draft[k] for k in keys if draft.get(k) is not None}
    if "nid" in draft:
        answers["nid"] = NOBODY if draft["nid"] is None else int(draft["nid"])
    position = Flow.old_position(draft, state, _OLD_AT)
    upgraded: dict[str, Any] = {"answers": answers, "at": position, "editing": False}
    if isinstance(draft.get("page"), int):
        upgraded["page"] = draft["page"]
    return upgraded


async def _review_values(run: Run) -> dict[str, Any]:
    return shown(run.answers)


OUTCOME = Flow(
    name="outcome",
    command=COMMAND,
    prefix="out",
    start=start,
    questions=(
        Cadre(),
        Kind(),
        _typed("position", "elected"),
        _typed("outlet", "publicity"),
        _typed("title", "award", "exemplary", "publicity"),
        Day(
            "date",
            "outcomes/ask_date",
            values=lambda run: {"kind": run.answers.get("kind", "")},
            when=_is("elected", "award", "exemplary", "publicity"),
            editable=False,
        ),
        Year(
            "year",
            "outcomes/choose_year",
            years_of,
            values=lambda run: {"full_name": run.answers.get("name", "")},
            when=_is("pay"),
            editable=False,
        ),
        _typed("pay", "pay"),
    ),
    review=ReviewScreen("outcomes/review", submit_tag="ok", values=_review_values),
    submit=submit,
    texts=TEXTS,
    version=2,
    upgrade=upgrade,
    legacy_states=tuple(_OLD_AT),
)
