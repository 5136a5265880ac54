"""/post: an official sends a reserve cadre to a practice post.

The cadre (from those in scope), the kind of post, a hard post's name, the start date (typed,
or today), the end date (typed, or none yet), then a review to submit or cancel. Nothing is
written before the submit, which re-checks scope and dates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.acting import EXPIRED, as_actor, said, scoped
from handlers.chat.commands import command
from handlers.chat.flow import Finish, Flow, Outcome, Run
from handlers.chat.kinds import Choice, Day, Text
from handlers.chat.screen import Screen
from handlers.manage.kinds import OFFICIALS, PER_PAGE, TEXTS, Cadres, Decide
from storage import posts
from storage.people import Actor
from storage.rules.identity import RuleError

COMMAND = command("post", *OFFICIALS)
NAME = "practice_post"  # the conversation's persisted name and the draft's key
KEYS = ("page", "nid", "name", "township", "kind", "title", "start", "end")


def _about(run: Run) -> dict[str, Any]:
    return {"full_name": run.answers.get("name"), "township": run.answers.get("township")}


async def anyone_to_post(run: Run, args: str) -> dict[str, Any] | None:
    """Nobody in scope: said, and the flow does not start."""
    _, total = await as_actor(run, partial(posts.assignable, limit=PER_PAGE))
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


def _review(run: Run) -> dict[str, Any]:
    a = run.answers
    values = {"kind": a["kind"], "title": _title(a) or "", "start": a["start"]}
    return {**_about(run), **values, "end": a.get("end") or ""}


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
        Cadres(
            "nid",
            "posts/choose_person",
            lambda run: posts.assignable,
            posts.assignee,
            empty="posts/none",
            forget=KEYS[2:],
        ),
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
        # What will be stored: submit (``pst:ok``) or cancel (``pst:no``), nothing kept.
        Decide(
            "confirm",
            "posts/review",
            _review,
            tag="no",
            label="cancel",
            otherwise=lambda run: Finish((Screen("common/cancelled"),)),
        ),
    ),
    submit=save,
    texts=TEXTS,
    upgrade=_upgrade,
    legacy_states=(10, 11, 12, 13, 14, 15),
)
