"""/start (menu and invite codes), /name, /help, /lang, the global /cancel and the group guard."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from telegram import Update
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from handlers.chat import codec as cb
from handlers.chat.commands import Command, command
from handlers.chat.context import CadreContext
from handlers.chat.menu import declared, help_groups
from handlers.chat.reply import (
    LOCALE_KEY,
    conversation,
    edit_or_reply,
    keyboard,
    label,
    now,
    reply,
)
from handlers.chat.tg import on
from storage import people
from storage.people import RedeemOutcome
from storage.rules.identity import RuleError, normalize_name
from templates import LOCALES

PRIVATE = filters.ChatType.PRIVATE
NAME = 0  # /name waits for the name


async def start(update: Update, context: CadreContext) -> None:
    """Greet the person with their menu, or redeem the invite code after /start."""
    user = update.effective_user
    assert user is not None
    code = context.args[0] if context.args else None
    async with context.session() as session:
        account, created = await people.open_account(session, user.id, user.language_code)
        redeemed = None
        if code:
            redeemed = await people.redeem_invite(
                session,
                account,
                code,
                now=now(),
                max_failures=context.settings.invite_max_failures,
                window=timedelta(minutes=context.settings.invite_failure_window_minutes),
            )
        # A newcomer without a code holds no role: skip the query (the hottest path).
        actor = None if created and not code else await people.load_actor(session, user.id)
        unnamed = (
            redeemed is not None and await people.own_name(session, account.person_id) is None
        )
    roles = sorted(actor.roles) if actor else []
    if redeemed is not None and redeemed.outcome != RedeemOutcome.GRANTED:
        await reply(
            update,
            context,
            f"start/invite_{redeemed.outcome.value}",
            minutes=context.settings.invite_failure_window_minutes,
        )
        return
    if redeemed is not None:
        await reply(
            update,
            context,
            "start/invite_granted",
            role=label(update, context, f"role.{redeemed.role}"),
            township=redeemed.township_name or "",
            department=label(update, context, f"dept.{redeemed.department}")
            if redeemed.department
            else "",
            needs_name=unnamed,
        )
    await reply(
        update,
        context,
        "start/welcome",
        roles=[str(r) for r in roles],
        role_names=[label(update, context, f"role.{r}") for r in roles],
    )


async def begin_name(update: Update, context: CadreContext) -> int:
    """/name [NAME]: people who joined by invite record their own name, once."""
    user = update.effective_user
    assert user is not None
    if context.args:
        return await _record_name(update, context, " ".join(context.args))
    async with context.session() as session:
        account = await people.ensure_account(session, user.id, user.language_code)
        name = await people.own_name(session, account.person_id)
    if name is not None:
        await reply(update, context, "start/name_on_file", full_name=name)
        return ConversationHandler.END
    await reply(update, context, "start/name_ask")
    return NAME


async def on_name(update: Update, context: CadreContext) -> int:
    message = update.effective_message
    assert message is not None and message.text is not None
    return await _record_name(update, context, message.text)


async def _record_name(update: Update, context: CadreContext, raw: str) -> int:
    """Check the name with the nomination form's rule; a wrong one is asked for again."""
    user = update.effective_user
    assert user is not None
    try:
        name = normalize_name(raw)
    except RuleError as error:
        await reply(update, context, "form/invalid", code=error.code, params=error.params or {})
        await reply(update, context, "start/name_ask")
        return NAME
    async with context.session() as session:
        account = await people.ensure_account(session, user.id, user.language_code)
        on_file = await people.record_own_name(session, account.person_id, name)
    if on_file == name:
        await reply(update, context, "start/name_saved", full_name=name)
    else:
        await reply(update, context, "start/name_on_file", full_name=on_file or "")
    return ConversationHandler.END


async def name_busy(update: Update, context: CadreContext) -> int:
    await reply(update, context, "start/name_busy")
    return NAME


async def name_cancel(update: Update, context: CadreContext) -> int:
    await reply(update, context, "common/cancelled")
    return ConversationHandler.END


async def show_help(update: Update, context: CadreContext) -> None:
    """List the commands this person's roles allow, from the declarations the menu uses."""
    user = update.effective_user
    assert user is not None
    async with context.session() as session:
        actor = await people.load_actor(session, user.id)
    roles = actor.roles if actor else frozenset()
    groups = [
        (group, [{"name": c.name, "summary": label(update, context, c.summary_key)} for c in cs])
        for group, cs in help_groups(roles, declared(context.bot_data))
    ]
    await reply(update, context, "start/help", groups=groups)


async def choose_language(update: Update, context: CadreContext) -> None:
    """Offer the languages as buttons."""
    buttons = [(label(update, context, f"lang.{loc}"), f"lang:{loc}") for loc in LOCALES]
    await reply(update, context, "start/lang_choose", markup=keyboard(buttons))


async def set_language(update: Update, context: CadreContext) -> None:
    """Remember the chosen language for messages and for reminders sent later."""
    query = update.callback_query
    assert query is not None and query.data is not None and update.effective_user is not None
    (locale,) = LANGUAGE_PRESS.values(update)
    await query.answer()
    assert context.user_data is not None
    context.user_data[LOCALE_KEY] = locale
    async with context.session() as session:
        await people.ensure_account(
            session, update.effective_user.id, update.effective_user.language_code
        )
        await people.set_locale(session, update.effective_user.id, locale)
    await edit_or_reply(update, context, "start/lang_set")


async def cancel_idle(update: Update, context: CadreContext) -> None:
    """Answer /cancel outside any flow."""
    await reply(update, context, "common/nothing_to_cancel")


async def point_to_private_chat(update: Update, context: CadreContext) -> None:
    """In a group, say where to talk to the bot and stop: nothing personal is kept there."""
    message = update.effective_message
    if message is not None and message.text and message.text.startswith("/"):
        await reply(update, context, "common/private_only", username=context.bot.username)
    raise ApplicationHandlerStop


async def unknown_command(update: Update, context: CadreContext) -> None:
    """Answer a command this bot does not have."""
    await reply(update, context, "common/unknown_command")


async def not_understood(update: Update, context: CadreContext) -> None:
    """Answer free text that no flow is waiting for."""
    await reply(update, context, "common/not_understood")


async def stray_button(update: Update, context: CadreContext) -> None:
    """A button from a finished or forgotten flow: say so instead of spinning."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    await reply(update, context, "common/stale_button")


async def edit_not_read(update: Update, context: CadreContext) -> None:
    """An edited message is never an answer: say so, and stop before any flow sees it."""
    # A flow would take the edited text as the answer to the question asked *now*, not to the
    # one the message first answered; the draft stays as it is and the person sends it again.
    await reply(update, context, "common/edit_ignored")
    raise ApplicationHandlerStop


def guard_handlers() -> list[BaseHandler[Update, CadreContext, None]]:
    """Registered first, in their own group: keeps groups and channels away from the flows,
    and edited messages away from every conversation."""
    return [
        MessageHandler(~PRIVATE, point_to_private_chat),
        MessageHandler(filters.UpdateType.EDITED & PRIVATE, edit_not_read),
    ]


LANGUAGE_PRESS = cb.Button("lang", cb.choice(*LOCALES))


# /start, /help, /lang and /cancel belong to everyone; /name too (it refuses nobody).
COMMANDS: tuple[Command, ...] = (
    command("start"),
    command("help"),
    command("name"),
    command("lang"),
    command("cancel"),
)


def build_handlers() -> list[BaseHandler[Update, CadreContext, Any]]:
    name = conversation(
        "name",
        [CommandHandler("name", begin_name, filters=PRIVATE)],
        {NAME: [MessageHandler(filters.TEXT & ~filters.COMMAND & PRIVATE, on_name)]},
        cancel=name_cancel,
        busy=name_busy,
    )
    return [
        CommandHandler("start", start, filters=PRIVATE),
        name,
        CommandHandler("help", show_help, filters=PRIVATE),
        CommandHandler("lang", choose_language, filters=PRIVATE),
        on(LANGUAGE_PRESS, set_language),
    ]


def fallback_handlers() -> list[BaseHandler[Update, CadreContext, None]]:
    """Registered last: only what no flow took reaches these."""
    return [
        CommandHandler("cancel", cancel_idle, filters=PRIVATE),
        MessageHandler(filters.COMMAND & PRIVATE, unknown_command),
        CallbackQueryHandler(stray_button),
        MessageHandler(PRIVATE, not_understood),
    ]
