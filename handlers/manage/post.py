"""/post: an official sends a reserve cadre to a practice post.

The cadre (from those in scope), the kind of post, a hard post's name, the start date (typed,
or today), the end date (typed, or none yet), then a review to submit or cancel. Nothing is
written before the submit, which re-checks scope and dates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.acting import EXPIRED, acting, said, scoped
from handlers.chat.codec import Button
from handlers.chat.commands import command
from handlers.chat.flow import Answer, Finish, Flow, Outcome, Question, Run, Texts
from handlers.chat.kinds import Choice, Day, Text
from handlers.chat.screen import Btn, Screen
from handlers.manage.kinds import OFFICIALS, PER_PAGE, Cadres, Listed
from storage import posts
from storage.people import Actor
from storage.rules.identity import RuleError

COMMAND = command("post", *OFFICIALS)
NAME = "practice_post"  # the conversation's persisted name and the draft's key
KEYS = ("page", "nid", "name", "township", "kind", "title", "start", "end")


def _about(run: Run) -> dict[str, Any]:
    return {"full_name": run.answers.get("name"), "township": run.answers.get("township")}


async def _load(
    run: Run, session: AsyncSession, actor: Actor, offset: int, limit: int
) -> tuple[Sequence[Listed], int]:
    return await posts.assignable(session, actor, offset=offset, limit=limit)


async def _take(
    run: Run, session: AsyncSession, actor: Actor, nomination_id: int
) -> dict[str, Any]:
    found = await posts.assignee(session, actor, nomination_id)
    for key in KEYS[2:]:
        run.answers.pop(key, None)
    return {"name": found.full_name, "township": found.township}


async def anyone_to_post(run: Run, args: str) -> dict[str, Any] | None:
    """Nobody in scope: said, and the flow does not start."""
    async with run.session() as session:
        _, total = await posts.assignable(session, await acting(run), limit=PER_PAGE)
    if not total:
        await run.chat.show(Screen("posts/none"))
        return None
    return {"page": 0}


def _start(run: Run, raw: str) -> date:
    """A date typed (2025-03-01, 2025-3-1)."""
    return posts.parse_date(raw, today=run.today())


def _end(run: Run, raw: str) -> date:
    """A date typed, not before the start."""
    day = _start(run, raw)
    posts.check_dates(date.fromisoformat(run.answers["start"]), day)
    return day


class Review(Question):
    """What will be stored: submit (``pst:ok``) or cancel (``pst:no``), nothing kept."""

    key = "confirm"
    editable = False

    def shapes(self, prefix: str) -> Sequence[Button]:
        return (Button(prefix, "ok"), Button(prefix, "no"))

    async def ask(self, run: Run, page: int) -> Screen:
        a = run.answers
        values = {"kind": a["kind"], "title": _title(a) or "", "start": a["start"]}
        rows = (
            (
                Btn(run.label("submit"), f"{run.prefix}:ok"),
                Btn(run.label("cancel"), f"{run.prefix}:no"),
            ),
        )
        return Screen("posts/review", {**_about(run), **values, "end": a.get("end") or ""}, rows)

    async def on_button(self, run: Run, button: Button, values: tuple[Any, ...]) -> Outcome:
        if button.parts[1] == "no":
            return Finish((Screen("common/cancelled"),))
        return Answer(True)


def _title(answers: dict[str, Any]) -> str | None:
    """Only a hard post has a name; the other kinds are named by their kind."""
    return answers.get("title") if answers.get("kind") == "hard_post" else None


async def save(run: Run, answers: dict[str, Any]) -> Outcome:
    """Store the post (scope and dates re-checked) and show the cadre's posts."""
    nomination_id = int(answers["nid"])
    end = answers.get("end")

    async def assign(session: AsyncSession, actor: Actor) -> list[posts.PostRow]:
        await posts.assign_post(
            session,
            actor,
            nomination_id,
            kind=str(answers["kind"]),
            title=_title(answers),
            start_date=date.fromisoformat(answers["start"]),
            end_date=date.fromisoformat(end) if end else None,
            now=datetime.now(UTC),
        )
        return await posts.posts_of(session, nomination_id, today=run.today())

    try:
        history = await scoped(run, assign)
    except RuleError as error:
        return Finish((Screen("posts/invalid", said(error)),))
    if history is None:
        return EXPIRED
    return Finish((Screen("posts/saved", {"full_name": answers["name"], "posts": history}),))


def _upgrade(draft: dict[str, Any], state: int | None) -> dict[str, Any]:
    """A draft of /post before the flow engine: flat, its position (states 10–15) read from
    what it holds, as the old flow did."""
    answers = {k: draft[k] for k in KEYS if k in draft}
    if "end" in draft:
        at = "confirm"
    elif "start" in draft:
        at = "end"
    elif draft.get("kind") == "hard_post" and "title" not in draft:
        at = "title"
    elif "kind" in draft:
        at = "start"
    else:
        at = "kind" if "nid" in draft else "nid"
    return {"answers": answers, "at": at, "editing": False}


POST = Flow(
    name=NAME,
    command=COMMAND,
    prefix="pst",
    start=anyone_to_post,
    questions=(
        Cadres("nid", "posts/choose_person", _load, _take, empty="posts/none"),
        # Intern village cadre, grid worker or hard post: ``pst:k:<kind>``.
        Choice(
            "kind",
            posts.POST_KINDS,
            template="posts/choose_kind",
            per_row=1,
            editable=False,
            tag="k",
            labels="post_kind",
            values=_about,
            edit=True,
        ),
        Text(
            "title",
            lambda _run, raw: posts.clean_title(raw),
            template="posts/ask_title",
            editable=False,
            when=lambda run: run.answers.get("kind") == "hard_post",
            invalid="posts/invalid",
            values=lambda _run: {"max": posts.TITLE_MAX},
        ),
        Day(
            "start",
            "posts/ask_start",
            _start,
            label="posts.today",
            invalid="posts/invalid",
            editable=False,
        ),
        Day(
            "end",
            "posts/ask_end",
            _end,
            tag="skip",
            label="posts.no_end_date",
            quick=lambda run: None,
            values=lambda run: {"start": run.answers.get("start")},
            invalid="posts/invalid",
            optional=True,
            editable=False,
        ),
        Review(),
    ),
    submit=save,
    texts=Texts(busy="grades/busy", use_buttons="grades/use_buttons"),
    upgrade=_upgrade,
    legacy_states=(10, 11, 12, 13, 14, 15),
)
