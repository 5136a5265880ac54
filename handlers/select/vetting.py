"""/vetting (joint vetting): a department's reviewers approve or reject, each with a note.

A reviewer only ever reaches their own department's reviews: the queue and every button go
through storage queries filtered by the reviewer's departments. The note is the next message
after the approve/reject button (a flow, DECIDE); nothing is recorded before it arrives, so
/cancel leaves the review undecided.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.chat.acting import as_actor
from handlers.chat.codec import ID, Button
from handlers.chat.commands import command
from handlers.chat.flow import Enter, Entry, Finish, Flow, Outcome, Run, Texts
from handlers.chat.screen import Attachment, Btn, Screen
from handlers.chat.screens import Act, Refused, screen
from handlers.oversight.export import SPOOL_BYTES, workbook_labels
from handlers.select.kinds import Note
from handlers.select.queue import Queue, old_draft, tell
from storage import export, grades, nominations, review_queries
from storage.models import Role
from storage.nominations import NotAllowed, VettingItem
from storage.people import Actor
from storage.review_queries import Stale, VettingCard
from storage.rules.vetting import Decision, VettingOutcome

COMMAND = command("vetting", Role.REVIEWER)
PREFIX = "vt"
QUEUE = Queue(
    PREFIX, "vetting/queue", nominations.vetting_queue, lambda i: (i.review_id, i.full_name)
)
APPROVE = Button(PREFIX, "a", ID)
REJECT = Button(PREFIX, "r", ID)
NO_COMMENT = Button(PREFIX, "n", ID)
# `/vetting 名单`: the queue as a list for the check, in either language's word.
LIST_WORDS = frozenset({"名单", "list", "xlsx"})


def reviewer(act: Act) -> Actor:
    """The acting reviewer; a reviewer grant without a department reaches nothing."""
    if not act.actor.departments():
        raise Refused
    return act.actor


# -- the queue ---------------------------------------------------------------------------------


@screen(command=COMMAND, button=QUEUE.turn)
async def vetting_queue(act: Act) -> Screen:
    """A page of the reviews awaiting this reviewer's department (the first for /vetting);
    `/vetting 名单` (or `list`) sends them as a workbook for the check instead."""
    tz = act.settings.tz
    if not act.pressed and act.args.strip().lower() in LIST_WORDS:
        checklist = await check_list(act)
        if checklist is not None:
            return checklist

    def shown(item: VettingItem) -> dict[str, Any]:
        return {**asdict(item), "requested": item.requested_at.astimezone(tz).date()}

    return await QUEUE.page(act, reviewer(act), shown)


async def check_list(act: Act) -> Screen | None:
    """The department's pending reviews as an .xlsx with what the check needs (each file
    listed is audited in storage); None when there are none (the empty queue says so)."""
    today = datetime.now(UTC).astimezone(act.settings.tz).date().isoformat()
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as buffer:
        async with act.session() as session:
            count = await export.write_vetting_list(
                session,
                reviewer(act),
                buffer,
                locale_labels=workbook_labels(act.chat.jinja, act.chat.locale),
                tz=act.settings.tz,
                cipher=act.chat.service("cipher"),
            )
        buffer.seek(0)
        data = buffer.read()
    if not count:
        return None
    document = Attachment("document", data, f"vetting-{today}.xlsx")
    return Screen("vetting/list_caption", {"rows": count, "day": today}, attachment=document)


@screen(button=QUEUE.open, needs=COMMAND.needs)
async def open_review(act: Act) -> Screen:
    """One review with the approve and reject buttons."""
    (review_id,) = act.values
    async with act.session() as session:
        # Opened for the check: the full ID number, audited as such.
        card = await review_queries.vetting_card(
            session, reviewer(act), review_id, cipher=act.chat.service("cipher")
        )
    rid = card.review_id
    rows = (
        (
            Btn(act.label("vetting.approve"), APPROVE.data(rid)),
            Btn(act.label("vetting.reject"), REJECT.data(rid)),
        ),
        (Btn(act.label("back"), QUEUE.turn.data(0)),),
    )
    return Screen("vetting/item", {"c": card}, rows, edit=True)


MENUS = (vetting_queue, open_review)


# -- deciding, with a note ---------------------------------------------------------------------


def begin(decision: Decision) -> Enter:
    """The approve or reject button: the review, in the reviewer's departments and open."""

    async def start(run: Run, values: tuple[Any, ...]) -> dict[str, Any] | None:
        (review_id,) = values
        card = await as_actor(run, lambda s, a: review_queries.vetting_card(s, a, review_id))
        return {"review_id": card.review_id, "decision": decision.value, "name": card.full_name}

    return start


async def decide(run: Run, answers: dict[str, Any]) -> Outcome:
    """Record the decision; once it is settled, queue the outcome for the candidate and the
    township in the decision's transaction."""
    note: str | None = answers.get("note")
    departments = run.settings.department_codes

    async def record(session: AsyncSession, actor: Actor) -> tuple[VettingOutcome, VettingCard]:
        card = await review_queries.vetting_card(session, actor, int(answers["review_id"]))
        try:
            result = await nominations.decide_review(
                session,
                actor,
                card.review_id,
                decision=Decision(answers["decision"]),
                note=note,
                departments=departments,
                now=datetime.now(UTC),
                cipher=run.chat.service("cipher"),
            )
        except NotAllowed:
            # The card was ours and open a moment ago: a colleague decided first.
            raise Stale from None
        if result.outcome == VettingOutcome.PENDING:
            return result.outcome, card
        chat_ids = await nominations.chat_ids_for_outcome(session, result.nomination)
        subject = result.nomination.id
        key = f"vetting-outcome:{subject}"
        approved = result.outcome == VettingOutcome.APPROVED
        if approved:
            # The cadre starts on the grade ladder the moment they enter the pool.
            policy = run.chat.service("grade_policy")
            await grades.enter_pool(session, subject, policy, now=datetime.now(UTC))
        # Neutral on purpose for the candidate: no department, no note; those go to the township.
        name = "vetting/notice_pool" if approved else "vetting/notice_not_selected"
        told = await tell(
            run, session, chat_ids["candidate"], name, key=f"{key}:candidate", subject=subject
        )
        await tell(
            run,
            session,
            chat_ids["officials"],
            "vetting/notice_outcome",
            key=f"{key}:official",
            subject=subject,
            outcome=result.outcome.value,
            full_name=card.full_name,
            township=card.township,
            department=card.department,
            note=note or "",
            candidate_told=told > 0,
        )
        return result.outcome, card

    outcome, card = await as_actor(run, record)
    values = {
        "decision": answers["decision"],
        "outcome": outcome.value,
        "full_name": card.full_name,
    }
    return Finish((Screen("vetting/recorded", values),))


ENTRIES = (Entry(APPROVE, begin(Decision.APPROVE)), Entry(REJECT, begin(Decision.REJECT)))

DECIDE = Flow(
    name="vetting_note",
    command=COMMAND,
    # Its own prefix: its catch-all for outdated buttons must not take the queue's vt: ones.
    prefix="vtd",
    by_command=False,
    entries=ENTRIES,
    questions=(
        Note(
            "note",
            "vetting/ask_note",
            "vetting/note_invalid",
            item="review_id",
            # Pressing approve/reject on another review switches to that one.
            switch=ENTRIES,
            skip=NO_COMMENT,
            skip_label="vetting.no_comment",
            skippable=lambda run: run.answers.get("decision") == Decision.APPROVE.value,
            values=lambda run: {"decision": run.answers.get("decision")},
        ),
    ),
    submit=decide,
    texts=Texts(busy="vetting/busy"),
    # Before the flow engine the draft was ``{"review_id", "decision", "name"}``.
    upgrade=old_draft("note", "review_id", "decision"),
)
