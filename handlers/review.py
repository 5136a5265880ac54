"""/review: a township's queue of nominations; send to vetting, decline with a reason, contact.

Every button re-checks scope in storage (`manageable_by`), so a forged or forwarded button
for another township's nomination gets "forbidden", and one whose nomination has moved on
gets "stale". Declining asks for a reason as the next message: a small persistent
conversation, so a restart between the button and the reason loses nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    BaseHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from handlers.chat import codec as cb
from handlers.chat.commands import Command, command
from handlers.chat.context import CadreContext
from handlers.chat.reply import (
    ask_again,
    conversation,
    deny,
    edit_or_reply,
    label,
    now,
    plan_notice,
    reply,
)
from handlers.chat.tg import on
from storage import nominations, people, review_queries
from storage.models import OFFICIAL_ROLES
from storage.nominations import NotAllowed
from storage.people import Actor
from storage.review_queries import ReviewCard
from storage.rules.identity import RuleError, clean_text
from storage.rules.vetting import Channel, Event, IllegalTransition, Status, allowed_events

PRIVATE = filters.ChatType.PRIVATE
PAGE_SIZE = 5
REASON_MIN = 2
REASON_MAX = 500
# Conversation state: waiting for the reason of a decline.
REASON = 0
DRAFT_KEY = "review_decline"
# The events a township decides, in the order their buttons appear.
_ACTIONS: tuple[tuple[Event, str, str], ...] = (
    (Event.SEND_TO_VETTING, "review.send_to_vetting", "s"),
    (Event.CONTACT, "review.mark_contacted", "c"),
    (Event.DECLINE, "review.decline", "r"),
)


def page_row(
    update: Update, context: CadreContext, prefix: str, page: int, total: int
) -> list[InlineKeyboardButton]:
    """Previous/next buttons for a list of `total` items shown PAGE_SIZE at a time."""
    row = []
    if page > 0:
        row.append((label(update, context, "prev"), f"{prefix}{page - 1}"))
    if (page + 1) * PAGE_SIZE < total:
        row.append((label(update, context, "next"), f"{prefix}{page + 1}"))
    return [InlineKeyboardButton(text, callback_data=data) for text, data in row]


def page_count(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def callback_id(update: Update) -> int:
    """The id at the end of the pressed button's data (its codec pattern admitted it)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    # Pages start at 0, ids at 1: the pattern has already told them apart.
    value = cb.Number(0, cb.INT_MAX).parse(query.data.rsplit(":", 1)[1])
    assert value is not None
    return value


async def official(session: AsyncSession, update: Update) -> Actor:
    """The acting official, or NotAllowed for anyone without an official role."""
    user = update.effective_user
    assert user is not None
    actor = await people.load_actor(session, user.id)
    if actor is None or not actor.has(*OFFICIAL_ROLES):
        raise NotAllowed
    return actor


def item_markup(update: Update, context: CadreContext, card: ReviewCard) -> InlineKeyboardMarkup:
    """The actions the nomination's status and channel allow, and a way back to the list."""
    allowed = allowed_events(Status(card.status), channel=Channel(card.channel))
    rows = [
        [InlineKeyboardButton(label(update, context, key), callback_data=f"rv:{code}:{card.id}")]
        for event, key, code in _ACTIONS
        if event in allowed
    ]
    rows.append([InlineKeyboardButton(label(update, context, "back"), callback_data="rv:p:0")])
    return InlineKeyboardMarkup(rows)


async def refuse(update: Update, context: CadreContext, name: str) -> None:
    """Answer a refused press or command with its own message; the screen stays as it was.

    A "not allowed" is audited (common.deny); a stale button is not a refusal.
    """
    if name == "common/forbidden":
        await deny(update, context)
        return
    await reply(update, context, name)


# -- the queue ---------------------------------------------------------------------------------


async def show_queue(update: Update, context: CadreContext) -> None:
    """List the nominations awaiting this official's review."""
    await send_queue(update, context, 0)


async def turn_page(update: Update, context: CadreContext) -> None:
    """Show another page of the review queue."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    await send_queue(update, context, callback_id(update))


async def send_queue(update: Update, context: CadreContext, page: int) -> None:
    """Show page `page` (from 0) of the review queue, the actor's scope read afresh."""
    try:
        async with context.session() as session:
            actor = await official(session, update)
            items, total = await nominations.township_queue(
                session, actor, offset=page * PAGE_SIZE, limit=PAGE_SIZE
            )
            if not items and page > 0 and total:
                # The list shrank since this page was shown: go to its new last page.
                page = page_count(total) - 1
                items, total = await nominations.township_queue(
                    session, actor, offset=page * PAGE_SIZE, limit=PAGE_SIZE
                )
    except NotAllowed:
        await refuse(update, context, "common/forbidden")
        return
    start = page * PAGE_SIZE + 1
    rows = [
        [InlineKeyboardButton(f"{start + i}. {item.full_name}", callback_data=f"rv:o:{item.id}")]
        for i, item in enumerate(items)
    ]
    nav = page_row(update, context, "rv:p:", page, total)
    if nav:
        rows.append(nav)
    await edit_or_reply(
        update,
        context,
        "review/queue",
        markup=InlineKeyboardMarkup(rows) if rows else None,
        items=items,
        total=total,
        start=start,
        page=page + 1,
        pages=page_count(total),
    )


# -- one nomination ----------------------------------------------------------------------------


async def open_nomination(update: Update, context: CadreContext) -> None:
    """Show one nomination with the actions its status allows."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    try:
        async with context.session() as session:
            actor = await official(session, update)
            card = await review_queries.review_card(session, actor, callback_id(update))
    except NotAllowed:
        await refuse(update, context, "common/forbidden")
        return
    markup = item_markup(update, context, card)
    await edit_or_reply(update, context, "review/item", markup=markup, n=card, notice="")


async def send_nomination_to_vetting(update: Update, context: CadreContext) -> None:
    """Send a nomination to joint vetting and tell every department's reviewers."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    departments = context.settings.department_codes
    try:
        async with context.session() as session:
            actor = await official(session, update)
            card = await review_queries.review_card(session, actor, callback_id(update))
            await nominations.send_to_vetting(
                session, actor, card.id, departments=departments, now=now()
            )
            reviewers = await people.recipients(
                session, await nominations.reviewer_chat_ids(session, departments)
            )
            notified = await plan_notice(
                session,
                context,
                reviewers,
                "vetting/notice_new",
                key=f"vetting-new:{card.id}",
                subject=card.id,
                township=card.township,
            )
    except NotAllowed:
        await refuse(update, context, "common/forbidden")
        return
    except IllegalTransition:
        await refuse(update, context, "common/stale_button")
        return
    await edit_or_reply(
        update,
        context,
        "review/sent",
        full_name=card.full_name,
        departments=list(departments),
        notified=notified,
    )


async def mark_nomination_contacted(update: Update, context: CadreContext) -> None:
    """Record that the township has reached the nominee of a mass recommendation."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    try:
        async with context.session() as session:
            actor = await official(session, update)
            nomination = await nominations.mark_contacted(
                session, actor, callback_id(update), now=now()
            )
            card = await review_queries.review_card(session, actor, nomination.id)
    except NotAllowed:
        await refuse(update, context, "common/forbidden")
        return
    except IllegalTransition:
        await refuse(update, context, "common/stale_button")
        return
    await edit_or_reply(
        update,
        context,
        "review/item",
        markup=item_markup(update, context, card),
        n=card,
        notice="contacted",
    )


# -- declining, with a reason ------------------------------------------------------------------


def draft(context: CadreContext) -> dict[str, Any] | None:
    assert context.user_data is not None
    value = context.user_data.get(DRAFT_KEY)
    return value if isinstance(value, dict) else None


def forget(context: CadreContext) -> None:
    assert context.user_data is not None
    context.user_data.pop(DRAFT_KEY, None)


async def ask_reason(update: Update, context: CadreContext) -> int:
    pending = draft(context)
    assert pending is not None
    await reply(
        update,
        context,
        "review/ask_reason",
        full_name=pending["name"],
        min=REASON_MIN,
        max=REASON_MAX,
    )
    return REASON


async def begin_decline(update: Update, context: CadreContext) -> int:
    """Ask why the nomination is declined; the answer is the next message."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    try:
        async with context.session() as session:
            actor = await official(session, update)
            card = await review_queries.review_card(session, actor, callback_id(update))
    except NotAllowed:
        # Ends any decline in progress too: PTB ends the conversation on END after re-entry.
        forget(context)
        await refuse(update, context, "common/forbidden")
        return ConversationHandler.END
    if Event.DECLINE not in allowed_events(Status(card.status), channel=Channel(card.channel)):
        forget(context)
        await refuse(update, context, "common/stale_button")
        return ConversationHandler.END
    assert context.user_data is not None
    # The name only echoes back in the prompt; user_data is encrypted at rest.
    context.user_data[DRAFT_KEY] = {"nomination_id": card.id, "name": card.full_name}
    return await ask_reason(update, context)


async def receive_reason(update: Update, context: CadreContext) -> int:
    """Decline the nomination with the typed reason and tell the candidate, without it."""
    message = update.effective_message
    assert message is not None and message.text is not None
    pending = draft(context)
    if pending is None:
        await refuse(update, context, "common/stale_button")
        return ConversationHandler.END
    try:
        reason = clean_text(message.text, max_len=REASON_MAX, min_len=REASON_MIN)
    except RuleError as error:
        await reply(update, context, "review/reason_invalid", code=error.code, params=error.params)
        return await ask_reason(update, context)
    try:
        async with context.session() as session:
            actor = await official(session, update)
            nomination = await nominations.decline(
                session,
                actor,
                int(pending["nomination_id"]),
                reason=reason,
                now=now(),
                cipher=context.bot_data["cipher"],
            )
            chat_ids = await nominations.chat_ids_for_outcome(session, nomination)
            candidate = await people.recipients(session, chat_ids["candidate"])
            # Neutral on purpose: the reason is kept for officials, never sent to the person.
            told = await plan_notice(
                session,
                context,
                candidate,
                "review/notice_declined",
                key=f"declined:{nomination.id}",
                subject=nomination.id,
            )
    except NotAllowed:
        forget(context)
        await refuse(update, context, "common/forbidden")
        return ConversationHandler.END
    except IllegalTransition:
        forget(context)
        await refuse(update, context, "common/stale_button")
        return ConversationHandler.END
    forget(context)
    await reply(
        update, context, "review/declined", full_name=pending["name"], candidate_told=told > 0
    )
    return ConversationHandler.END


async def reprompt_reason(update: Update, context: CadreContext) -> int:
    """A sticker, photo or voice where the reason is expected: ask again."""
    return await ask_again(
        update, context, pending=draft(context), say="common/wrong_input", ask=ask_reason
    )


async def busy_with_reason(update: Update, context: CadreContext) -> int:
    """Another command while the reason is awaited: say how to go on or leave."""
    return await ask_again(
        update, context, pending=draft(context), say="review/busy", ask=ask_reason
    )


async def cancel_decline(update: Update, context: CadreContext) -> int:
    """Leave without declining; the nomination stays as it was."""
    forget(context)
    await reply(update, context, "common/cancelled")
    return ConversationHandler.END


COMMANDS: tuple[Command, ...] = (command("review", *OFFICIAL_ROLES),)


def build_handlers() -> list[BaseHandler[Update, CadreContext, Any]]:
    anything = ~filters.COMMAND & PRIVATE
    decline = conversation(
        DRAFT_KEY,
        [on(cb.Button("rv", "r", cb.ID), begin_decline)],
        {
            REASON: [
                MessageHandler(filters.TEXT & anything, receive_reason),
                MessageHandler(anything, reprompt_reason),
            ]
        },
        cancel=cancel_decline,
        busy=busy_with_reason,
        # Pressing "decline" on another nomination switches to that one.
        allow_reentry=True,
    )
    return [
        decline,
        CommandHandler("review", show_queue, filters=PRIVATE),
        on(cb.Button("rv", "p", cb.PAGE), turn_page),
        on(cb.Button("rv", "o", cb.ID), open_nomination),
        on(cb.Button("rv", "s", cb.ID), send_nomination_to_vetting),
        on(cb.Button("rv", "c", cb.ID), mark_nomination_contacted),
    ]
