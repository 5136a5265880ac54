"""/withdraw: a candidate withdraws and has their personal data erased (PIPL), in the bot.

They see what will be erased, confirm with a button, and get a receipt; "keep" leaves
everything as it was. The erasure is storage.erasure's (the same as `cadrebot erase`): the
county keeps anonymous counts only. Only the person's own data can be erased: the button
carries nothing but yes or no, and the person is the one who pressed it.
"""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from telegram import Update
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CommandHandler,
    filters,
)

from handlers.chat import forget
from handlers.chat.codec import CODE, Button, choice
from handlers.chat.commands import Command, command
from handlers.chat.context import CadreContext
from handlers.chat.reply import (
    LOCALE_KEY,
    answer_query,
    button_text,
    drop_buttons,
    keyboard,
    now,
    reply,
)
from handlers.chat.tg import on
from storage import erasure
from storage.models import AuditLog

PRIVATE = filters.ChatType.PRIVATE
# The confirmation answers one preview: its buttons carry that preview's token, kept in
# user_data with what it showed. An old, repeated or forged press is "button expired".
CHOICE = Button("wd", choice("y", "n"), CODE)
PENDING = "withdraw"


async def _held(update: Update, context: CadreContext) -> tuple[int | None, erasure.Held]:
    user = update.effective_user
    assert user is not None
    async with context.session() as session:
        person_id = await erasure.person_of_telegram(session, user.id)
        if person_id is None:
            return None, erasure.Held(0, 0, 0, 0, 0)
        return person_id, await erasure.held(session, person_id)


def _nothing(held: erasure.Held, context: CadreContext) -> bool:
    # A draft may be only in memory so far (not yet flushed): it counts too.
    return held.nominations == 0 and held.drafts == 0 and not context.user_data


async def start_withdraw(update: Update, context: CadreContext) -> None:
    """Show what erasure would take, and ask to confirm.

    Registered before the flows (bot/app.py), so it is heard in the middle of a form; it
    stops there, so the form does not also answer that it is busy."""
    await _ask(update, context)
    raise ApplicationHandlerStop


def _shown(held: erasure.Held, context: CadreContext) -> list[int]:
    """What a preview tells the person will go: the counts of the confirm screen."""
    forms = set(context.user_data or ()) - {LOCALE_KEY, PENDING}
    return [
        held.nominations,
        held.talks,
        held.difficulties,
        held.messages,
        held.drafts or len(forms),
    ]


async def _ask(update: Update, context: CadreContext, *, again: bool = False) -> None:
    person_id, held = await _held(update, context)
    assert context.user_data is not None
    context.user_data.pop(PENDING, None)
    if person_id is None or _nothing(held, context):
        await reply(update, context, "withdraw/nothing")
        return
    shown = _shown(held, context)
    token = secrets.token_hex(4)
    context.user_data[PENDING] = {"token": token, "shown": shown}
    markup = keyboard(
        [
            (button_text(update, context, "withdraw/button_confirm"), CHOICE.data("y", token)),
            (button_text(update, context, "withdraw/button_keep"), CHOICE.data("n", token)),
        ]
    )
    nominations, talks, difficulties, messages, drafts = shown
    await reply(
        update,
        context,
        "withdraw/confirm",
        markup=markup,
        again=again,
        nominations=nominations,
        talks=talks,
        difficulties=difficulties,
        messages=messages,
        drafts=drafts,
    )


async def on_choice(update: Update, context: CadreContext) -> None:
    await _choose(update, context)
    raise ApplicationHandlerStop


async def _choose(update: Update, context: CadreContext) -> None:
    await answer_query(update)
    await drop_buttons(update)
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None and context.user_data is not None
    answer, token = CHOICE.values(update)
    pending = context.user_data.pop(PENDING, None)
    if not isinstance(pending, dict) or pending.get("token") != token:
        await reply(update, context, "common/stale_button")
        return
    if answer != "y":
        await reply(update, context, "withdraw/kept")
        return
    _, held = await _held(update, context)
    if _shown(held, context) != pending.get("shown"):
        # Something was added since the preview (a file submitted, a talk logged): the person
        # confirms what will really go, not what they saw then.
        await _ask(update, context, again=True)
        return
    async with context.session() as session:
        person_id = await erasure.person_of_telegram(session, user.id)
        erased = None
        if person_id is not None:
            erased = await erasure.erase_person(
                session, person_id, actor_person_id=person_id, now=now()
            )
            await session.flush()
            receipt = await session.scalar(
                select(func.max(AuditLog.id)).where(
                    AuditLog.action == "person.erase", AuditLog.subject_id == person_id
                )
            )
    if erased is None:
        await reply(update, context, "withdraw/nothing")
        return
    # This process forgets at once (the draft in memory, open forms); others within a second.
    forget.forget_users(context.application, [user.id])
    await reply(
        update,
        context,
        "withdraw/done",
        receipt=int(receipt or 0),
        at=now().astimezone(context.settings.tz),
        nominations=erased.nominations,
        cancelled=erased.cancelled,
    )


COMMANDS: tuple[Command, ...] = (command("withdraw"),)


def build_handlers() -> list[BaseHandler[Update, CadreContext, None]]:
    return [
        CommandHandler("withdraw", start_withdraw, filters=PRIVATE),
        on(CHOICE, on_choice),
    ]
