"""/start (menu and invite codes), /help, the global /cancel, the group guard and the
catch-alls for what no flow or menu took. /name is handlers/name.py, /lang handlers/lang.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import Update
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    MessageHandler,
    filters,
)

from handlers.chat.commands import Command, command
from handlers.chat.context import CadreContext
from handlers.chat.menu import COMMANDS_KEY, help_groups
from handlers.chat.reply import reply
from handlers.chat.screen import Screen
from handlers.chat.screens import Act, screen
from handlers.chat.tg import conversation_of, handlers_of
from handlers.lang import COMMAND as LANG
from handlers.lang import choose_language, set_language
from handlers.name import NAME
from storage import people
from storage.people import RedeemOutcome

PRIVATE = filters.ChatType.PRIVATE
COMMAND = command("start")
HELP = command("help")
# Mid-flow the flow's own /cancel leaves it; outside one it says there is nothing to leave.
CANCEL = command("cancel")


@screen(command=COMMAND)
async def start(act: Act) -> list[Screen]:
    """Greet the person with their menu, or redeem the invite code after /start."""
    code = act.args.split()[0] if act.args else None
    settings = act.settings
    async with act.session() as session:
        account, created = await people.open_account(session, act.chat.user_id, act.chat.language)
        redeemed = None
        if code:
            redeemed = await people.redeem_invite(
                session,
                account,
                code,
                now=datetime.now(UTC),
                max_failures=settings.invite_max_failures,
                window=timedelta(minutes=settings.invite_failure_window_minutes),
            )
        # A newcomer without a code holds no role: skip the query (the hottest path).
        actor = (
            None if created and not code else await people.load_actor(session, act.chat.user_id)
        )
        unnamed = (
            redeemed is not None and await people.own_name(session, account.person_id) is None
        )
    roles = sorted(actor.roles) if actor else []
    if redeemed is not None and redeemed.outcome != RedeemOutcome.GRANTED:
        minutes = settings.invite_failure_window_minutes
        return [Screen(f"start/invite_{redeemed.outcome.value}", {"minutes": minutes})]
    screens = []
    if redeemed is not None:
        granted = {
            "role": act.label(f"role.{redeemed.role}"),
            "township": redeemed.township_name or "",
            "department": act.label(f"dept.{redeemed.department}") if redeemed.department else "",
            "needs_name": unnamed,
        }
        screens.append(Screen("start/invite_granted", granted))
    menu = {
        "roles": [str(r) for r in roles],
        "role_names": [act.label(f"role.{r}") for r in roles],
    }
    return [*screens, Screen("start/welcome", menu)]


@screen(command=HELP, actor=True)
async def show_help(act: Act) -> Screen:
    """List the commands this person's roles allow, from the declarations the menu uses."""
    actor = act.maybe_actor
    roles = actor.roles if actor else frozenset()
    groups = [
        (group, [{"name": c.name, "summary": act.label(c.summary_key)} for c in cs])
        for group, cs in help_groups(roles, act.chat.service(COMMANDS_KEY))
    ]
    return Screen("start/help", {"groups": groups})


@screen(command=CANCEL)
async def cancel_idle(act: Act) -> Screen:
    """Answer /cancel outside any flow (a flow's own /cancel comes first)."""
    return Screen("common/nothing_to_cancel")


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


# /start, /help, /lang and /cancel belong to everyone; /name too (it refuses nobody).
COMMANDS: tuple[Command, ...] = (COMMAND, HELP, NAME.command, LANG, CANCEL)


def build_handlers() -> list[BaseHandler[Update, CadreContext, Any]]:
    """/start, /name, /help and /lang, in that order: before the flows, so they answer mid-form."""
    return [
        *handlers_of(start),
        conversation_of(NAME),
        *handlers_of(show_help),
        *handlers_of(choose_language),
        *handlers_of(set_language),
    ]


def fallback_handlers() -> list[BaseHandler[Update, CadreContext, None]]:
    """Registered last: only what no flow took reaches these."""
    return [
        *handlers_of(cancel_idle),
        MessageHandler(filters.COMMAND & PRIVATE, unknown_command),
        CallbackQueryHandler(stray_button),
        MessageHandler(PRIVATE, not_understood),
    ]
