"""/review: a township's queue of nominations; send to vetting, decline with a reason, contact.

Every button re-checks scope in storage (`manageable_by`), so a forged or forwarded button
for another township's nomination gets "not allowed", and one whose nomination has moved on
gets "expired". Declining asks for a reason as the next message: a flow (DECLINE), so a
restart between the button and the reason loses nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import notices
from handlers.chat.acting import as_actor
from handlers.chat.codec import ID, Button
from handlers.chat.commands import command
from handlers.chat.flow import Entry, Finish, Flow, Outcome, Run, Texts
from handlers.chat.screen import Btn, Screen
from handlers.chat.screens import Act, screen
from handlers.select.kinds import Note
from handlers.select.queue import Queue, old_draft, tell
from handlers.select.reveal import phone_buttons
from storage import completion, nominations, review_queries
from storage.models import OFFICIAL_ROLES
from storage.people import Actor
from storage.review_queries import ReviewCard, Stale
from storage.rules.vetting import Channel, Event, Status, allowed_events

COMMAND = command("review", *OFFICIAL_ROLES)
PREFIX = "rv"
QUEUE = Queue(PREFIX, "review/queue", nominations.township_queue, lambda i: (i.id, i.full_name))
SEND = Button(PREFIX, "s", ID)
INVITE = Button(PREFIX, "i", ID)
CONTACTED = Button(PREFIX, "c", ID)
DECLINE_PRESS = Button(PREFIX, "r", ID)
# The events a township decides, in the order their buttons appear.
_ACTIONS: tuple[tuple[Event, str, Button], ...] = (
    (Event.SEND_TO_VETTING, "review.send_to_vetting", SEND),
    (Event.CONTACT, "review.mark_contacted", CONTACTED),
    (Event.DECLINE, "review.decline", DECLINE_PRESS),
)


def _allowed(card: ReviewCard) -> frozenset[Event]:
    return frozenset(allowed_events(Status(card.status), channel=Channel(card.channel)))


def item(act: Act, card: ReviewCard, notice: str = "", lacks: tuple[str, ...] = ()) -> Screen:
    """The nomination, the actions its status and channel allow, and a way back to the list;
    a recommendation its nominee has not completed (`lacks`) offers the nominee's code."""
    allowed = _allowed(card)
    rows = [
        (Btn(act.label(key), button.data(card.id)),)
        for event, key, button in _ACTIONS
        if event in allowed
    ]
    rows.extend((button,) for button in phone_buttons(act, card.id, card.phone_masked))
    if lacks and card.channel != Channel.SELF:
        rows.insert(0, (Btn(act.label("review.invite_nominee"), INVITE.data(card.id)),))
    rows.append((Btn(act.label("back"), QUEUE.turn.data(0)),))
    values = {"n": card, "notice": notice, "lacks": list(lacks)}
    return Screen("review/item", values, tuple(rows), edit=True)


# -- the queue ---------------------------------------------------------------------------------


@screen(command=COMMAND, button=QUEUE.turn, needs=OFFICIAL_ROLES)
async def review_queue(act: Act) -> Screen:
    """A page of the nominations awaiting this official's review (the first for /review)."""
    return await QUEUE.page(act, act.actor)


# -- one nomination ----------------------------------------------------------------------------


@screen(button=QUEUE.open, needs=OFFICIAL_ROLES)
async def open_nomination(act: Act) -> Screen:
    """One nomination with the actions its status allows."""
    (nomination_id,) = act.values
    async with act.session() as session:
        card = await review_queries.review_card(session, act.actor, nomination_id)
        lacks = await completion.lacking(session, act.actor, card.id)
    return item(act, card, lacks=lacks)


@screen(button=SEND, needs=OFFICIAL_ROLES)
async def send_to_vetting(act: Act) -> Screen:
    """Send a complete nomination to joint vetting and tell every department's reviewers and
    the candidate; an incomplete one is refused with what it lacks."""
    (nomination_id,) = act.values
    departments = act.settings.department_codes
    async with act.session() as session:
        card = await review_queries.review_card(session, act.actor, nomination_id)
        lacks = await completion.lacking(session, act.actor, card.id)
        if lacks:
            await completion.refuse_incomplete(session, act.actor, card.id)
            values = {"full_name": card.full_name, "lacks": list(lacks)}
            rows = (
                (Btn(act.label("review.invite_nominee"), INVITE.data(card.id)),),
                (Btn(act.label("back"), QUEUE.turn.data(0)),),
            )
            return Screen("review/incomplete", values, rows, edit=True)
        await completion.send_complete_to_vetting(
            session, act.actor, card.id, departments=departments, now=datetime.now(UTC)
        )
        notified = await tell(
            act,
            session,
            await nominations.reviewer_chat_ids(session, departments),
            "vetting/notice_new",
            key=f"vetting-new:{card.id}",
            subject=card.id,
            township=card.township,
        )
        await notices.sent_to_vetting(act.chat, session, card.id)
    values = {"full_name": card.full_name, "departments": list(departments)}
    return Screen("review/sent", {**values, "notified": notified}, edit=True)


@screen(button=CONTACTED, needs=OFFICIAL_ROLES)
async def mark_contacted(act: Act) -> Screen:
    """Record that the township has reached the nominee of a mass recommendation."""
    (nomination_id,) = act.values
    async with act.session() as session:
        nomination = await nominations.mark_contacted(
            session, act.actor, nomination_id, now=datetime.now(UTC)
        )
        card = await review_queries.review_card(session, act.actor, nomination.id)
        lacks = await completion.lacking(session, act.actor, card.id)
    return item(act, card, "contacted", lacks)


@screen(button=INVITE, needs=OFFICIAL_ROLES)
async def invite_nominee(act: Act) -> Screen:
    """A one-time code for a recommended person to complete their own file, shown this once
    to be passed on or printed (only its hash is kept)."""
    (nomination_id,) = act.values
    days = act.settings.invite_days
    async with act.session() as session:
        card = await review_queries.review_card(session, act.actor, nomination_id)
        code = await completion.invite_nominee(
            session, act.actor, card.id, now=datetime.now(UTC), days=days
        )
    values = {"full_name": card.full_name, "code": code, "days": days}
    return Screen("review/invite", values, edit=True)


MENUS = (review_queue, open_nomination, send_to_vetting, mark_contacted, invite_nominee)


# -- declining, with a reason ------------------------------------------------------------------


async def begin_decline(run: Run, values: tuple[Any, ...]) -> dict[str, Any] | None:
    """The decline button: the nomination, in the official's scope and still declinable."""
    (nomination_id,) = values
    card = await as_actor(run, lambda s, a: review_queries.review_card(s, a, nomination_id))
    if Event.DECLINE not in _allowed(card):
        raise Stale
    # The name only echoes back in the prompt; user_data is encrypted at rest.
    return {"nomination_id": card.id, "name": card.full_name}


async def decline(run: Run, answers: dict[str, Any]) -> Outcome:
    """Decline the nomination with the typed reason and tell the candidate, without it."""

    async def record(session: AsyncSession, actor: Actor) -> int:
        nomination = await nominations.decline(
            session,
            actor,
            int(answers["nomination_id"]),
            reason=answers["reason"],
            now=datetime.now(UTC),
            cipher=run.chat.service("cipher"),
        )
        chat_ids = await nominations.chat_ids_for_outcome(session, nomination)
        # Neutral on purpose: the reason is kept for officials, never sent to the person.
        return await tell(
            run,
            session,
            chat_ids["candidate"],
            "review/notice_declined",
            key=f"declined:{nomination.id}",
            subject=nomination.id,
        )

    told = await as_actor(run, record)
    values = {"full_name": answers["name"], "candidate_told": told > 0}
    return Finish((Screen("review/declined", values),))


DECLINE_ENTRY = Entry(DECLINE_PRESS, begin_decline)

DECLINE = Flow(
    name="review_decline",
    command=COMMAND,
    # Its own prefix: its catch-all for outdated buttons must not take the queue's rv: ones.
    prefix="rvd",
    by_command=False,
    entries=(DECLINE_ENTRY,),
    questions=(
        Note(
            "reason",
            "review/ask_reason",
            "review/reason_invalid",
            item="nomination_id",
            # Pressing "decline" on another nomination switches to that one.
            switch=(DECLINE_ENTRY,),
            optional=False,
        ),
    ),
    submit=decline,
    texts=Texts(busy="review/busy"),
    # Before the flow engine the draft was ``{"nomination_id", "name"}``.
    upgrade=old_draft("reason", "nomination_id"),
)
