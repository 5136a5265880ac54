"""/vetting (joint vetting): a department's reviewers approve or reject, each with a note.

A reviewer only ever reaches their own department's reviews: the queue and every button go
through storage queries filtered by the reviewer's departments. The note is the next message
after the approve/reject button (a small persistent conversation); nothing is recorded before
it arrives, so /cancel leaves the review undecided.
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
    drop_buttons,
    edit_or_reply,
    keyboard,
    label,
    now,
    plan_notice,
    reply,
)
from handlers.chat.tg import on
from handlers.review import PAGE_SIZE, callback_id, page_count, page_row, refuse
from storage import grades, nominations, people, review_queries
from storage.models import Role
from storage.nominations import NotAllowed
from storage.people import Actor
from storage.review_queries import Stale
from storage.rules.identity import RuleError, clean_text
from storage.rules.vetting import Decision, IllegalTransition, VettingOutcome

PRIVATE = filters.ChatType.PRIVATE
NOTE_MIN = 2
NOTE_MAX = 500
# Conversation state: waiting for the note of a decision.
NOTE = 0
DRAFT_KEY = "vetting_note"


async def reviewer(session: AsyncSession, update: Update) -> Actor:
    """The acting reviewer, or NotAllowed for anyone who reviews for no department."""
    user = update.effective_user
    assert user is not None
    actor = await people.load_actor(session, user.id)
    if actor is None or not actor.departments():
        raise NotAllowed
    return actor


# -- the queue ---------------------------------------------------------------------------------


async def show_vetting_queue(update: Update, context: CadreContext) -> None:
    """List the reviews awaiting this reviewer's department."""
    await send_queue(update, context, 0)


async def turn_vetting_page(update: Update, context: CadreContext) -> None:
    """Show another page of the vetting queue."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    await send_queue(update, context, callback_id(update))


async def send_queue(update: Update, context: CadreContext, page: int) -> None:
    """Show page `page` (from 0) of the vetting queue, the actor's scope read afresh."""
    try:
        async with context.session() as session:
            actor = await reviewer(session, update)
            items, total = await nominations.vetting_queue(
                session, actor, offset=page * PAGE_SIZE, limit=PAGE_SIZE
            )
            if not items and page > 0 and total:
                page = page_count(total) - 1
                items, total = await nominations.vetting_queue(
                    session, actor, offset=page * PAGE_SIZE, limit=PAGE_SIZE
                )
    except NotAllowed:
        await refuse(update, context, "common/forbidden")
        return
    start = page * PAGE_SIZE + 1
    tz = context.settings.tz
    shown = [
        {
            "full_name": item.full_name,
            "township": item.township,
            "department": item.department,
            "requested": item.requested_at.astimezone(tz).date(),
        }
        for item in items
    ]
    rows = [
        [
            InlineKeyboardButton(
                f"{start + i}. {item.full_name}", callback_data=f"vt:o:{item.review_id}"
            )
        ]
        for i, item in enumerate(items)
    ]
    nav = page_row(update, context, "vt:p:", page, total)
    if nav:
        rows.append(nav)
    await edit_or_reply(
        update,
        context,
        "vetting/queue",
        markup=InlineKeyboardMarkup(rows) if rows else None,
        items=shown,
        total=total,
        start=start,
        page=page + 1,
        pages=page_count(total),
    )


async def open_review(update: Update, context: CadreContext) -> None:
    """Show one review with the approve and reject buttons."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    try:
        async with context.session() as session:
            actor = await reviewer(session, update)
            card = await review_queries.vetting_card(session, actor, callback_id(update))
    except NotAllowed:
        await refuse(update, context, "common/forbidden")
        return
    except Stale:
        await refuse(update, context, "common/stale_button")
        return
    rid = card.review_id
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    label(update, context, "vetting.approve"), callback_data=f"vt:a:{rid}"
                ),
                InlineKeyboardButton(
                    label(update, context, "vetting.reject"), callback_data=f"vt:r:{rid}"
                ),
            ],
            [InlineKeyboardButton(label(update, context, "back"), callback_data="vt:p:0")],
        ]
    )
    await edit_or_reply(update, context, "vetting/item", markup=markup, c=card)


# -- deciding, with a note ---------------------------------------------------------------------


def draft(context: CadreContext) -> dict[str, Any] | None:
    assert context.user_data is not None
    value = context.user_data.get(DRAFT_KEY)
    return value if isinstance(value, dict) else None


def forget(context: CadreContext) -> None:
    assert context.user_data is not None
    context.user_data.pop(DRAFT_KEY, None)


async def ask_note(update: Update, context: CadreContext) -> int:
    pending = draft(context)
    assert pending is not None
    markup = None
    if pending["decision"] == Decision.APPROVE:
        markup = keyboard(
            [(label(update, context, "vetting.no_comment"), f"vt:n:{pending['review_id']}")]
        )
    await reply(
        update,
        context,
        "vetting/ask_note",
        markup=markup,
        decision=pending["decision"],
        full_name=pending["name"],
        min=NOTE_MIN,
        max=NOTE_MAX,
    )
    return NOTE


async def begin_decision(update: Update, context: CadreContext) -> int:
    """Take the approve or reject button and ask for the note that goes with it."""
    query = update.callback_query
    assert query is not None and query.data is not None
    await query.answer()
    try:
        async with context.session() as session:
            actor = await reviewer(session, update)
            card = await review_queries.vetting_card(session, actor, callback_id(update))
    except NotAllowed:
        # Ends any decision in progress too: PTB ends the conversation on END after re-entry.
        forget(context)
        await refuse(update, context, "common/forbidden")
        return ConversationHandler.END
    except Stale:
        forget(context)
        await refuse(update, context, "common/stale_button")
        return ConversationHandler.END
    decision = Decision.APPROVE if query.data.startswith("vt:a:") else Decision.REJECT
    assert context.user_data is not None
    context.user_data[DRAFT_KEY] = {
        "review_id": card.review_id,
        "decision": decision.value,
        "name": card.full_name,
    }
    return await ask_note(update, context)


async def receive_note(update: Update, context: CadreContext) -> int:
    """Record the decision with the typed note."""
    message = update.effective_message
    assert message is not None and message.text is not None
    if draft(context) is None:
        await refuse(update, context, "common/stale_button")
        return ConversationHandler.END
    try:
        note = clean_text(message.text, max_len=NOTE_MAX, min_len=NOTE_MIN)
    except RuleError as error:
        await reply(update, context, "vetting/note_invalid", code=error.code, params=error.params)
        return await ask_note(update, context)
    return await decide(update, context, note)


async def skip_note(update: Update, context: CadreContext) -> int:
    """Record an approval without a note ("no comment")."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    pending = draft(context)
    if (
        pending is None
        or pending["decision"] != Decision.APPROVE
        or pending["review_id"] != callback_id(update)
    ):
        # A rejection always needs its reason; an old button of another review is stale.
        await refuse(update, context, "common/stale_button")
        return await ask_note(update, context) if pending else ConversationHandler.END
    state = await decide(update, context, None)
    await drop_buttons(update)
    return state


async def decide(update: Update, context: CadreContext, note: str | None) -> int:
    """Record the pending decision; tell the candidate and the township once it is settled."""
    pending = draft(context)
    assert pending is not None
    departments = context.settings.department_codes
    try:
        async with context.session() as session:
            actor = await reviewer(session, update)
            card = await review_queries.vetting_card(session, actor, int(pending["review_id"]))
            try:
                result = await nominations.decide_review(
                    session,
                    actor,
                    card.review_id,
                    decision=Decision(pending["decision"]),
                    note=note,
                    departments=departments,
                    now=now(),
                    cipher=context.bot_data["cipher"],
                )
            except NotAllowed:
                # The card was ours and open a moment ago: a colleague decided first.
                raise Stale from None
            if result.outcome != VettingOutcome.PENDING:
                await plan_outcome_notices(session, context, result, card, note)
    except NotAllowed:
        forget(context)
        await refuse(update, context, "common/forbidden")
        return ConversationHandler.END
    except (Stale, IllegalTransition):
        forget(context)
        await refuse(update, context, "common/stale_button")
        return ConversationHandler.END
    # Only now: had the database failed, the note would still be there to send again.
    forget(context)
    await reply(
        update,
        context,
        "vetting/recorded",
        decision=pending["decision"],
        outcome=result.outcome.value,
        full_name=card.full_name,
    )
    return ConversationHandler.END


async def plan_outcome_notices(
    session: AsyncSession,
    context: CadreContext,
    result: nominations.VettingResult,
    card: review_queries.VettingCard,
    note: str | None,
) -> None:
    """Queue the outcome for the candidate and the township, in the decision's transaction."""
    chat_ids = await nominations.chat_ids_for_outcome(session, result.nomination)
    candidate = await people.recipients(session, chat_ids["candidate"])
    officials = await people.recipients(session, chat_ids["officials"])
    key = f"vetting-outcome:{result.nomination.id}"
    if result.outcome == VettingOutcome.APPROVED:
        # Entering the pool: the cadre starts on the grade ladder the moment they enter the pool.
        await grades.enter_pool(
            session, result.nomination.id, context.bot_data["grade_policy"], now=now()
        )
    # Neutral on purpose for the candidate: no department, no note; those go to the township.
    name = (
        "vetting/notice_pool"
        if result.outcome == VettingOutcome.APPROVED
        else "vetting/notice_not_selected"
    )
    subject = result.nomination.id
    await plan_notice(session, context, candidate, name, key=f"{key}:candidate", subject=subject)
    await plan_notice(
        session,
        context,
        officials,
        "vetting/notice_outcome",
        key=f"{key}:official",
        subject=subject,
        outcome=result.outcome.value,
        full_name=card.full_name,
        township=card.township,
        department=card.department,
        note=note or "",
        candidate_told=bool(candidate),
    )


async def reprompt_note(update: Update, context: CadreContext) -> int:
    """A sticker, photo or voice where the note is expected: ask again."""
    return await ask_again(
        update, context, pending=draft(context), say="common/wrong_input", ask=ask_note
    )


async def busy_with_note(update: Update, context: CadreContext) -> int:
    """Another command while the note is awaited: say how to go on or leave."""
    return await ask_again(
        update, context, pending=draft(context), say="vetting/busy", ask=ask_note
    )


async def cancel_decision(update: Update, context: CadreContext) -> int:
    """Leave without deciding; the review stays in the queue."""
    forget(context)
    await reply(update, context, "common/cancelled")
    return ConversationHandler.END


COMMANDS: tuple[Command, ...] = (command("vetting", Role.REVIEWER),)


def build_handlers() -> list[BaseHandler[Update, CadreContext, Any]]:
    anything = ~filters.COMMAND & PRIVATE
    decision = conversation(
        DRAFT_KEY,
        [on(cb.AnyOf(cb.Button("vt", "a", cb.ID), cb.Button("vt", "r", cb.ID)), begin_decision)],
        {
            NOTE: [
                on(cb.Button("vt", "n", cb.ID), skip_note),
                MessageHandler(filters.TEXT & anything, receive_note),
                MessageHandler(anything, reprompt_note),
            ]
        },
        cancel=cancel_decision,
        busy=busy_with_note,
        # Pressing approve/reject on another review switches to that one.
        allow_reentry=True,
    )
    return [
        decision,
        CommandHandler("vetting", show_vetting_queue, filters=PRIVATE),
        on(cb.Button("vt", "p", cb.PAGE), turn_vetting_page),
        on(cb.Button("vt", "o", cb.ID), open_review),
    ]
