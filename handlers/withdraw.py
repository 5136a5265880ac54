"""/withdraw: a candidate withdraws and has their personal data erased (PIPL), in the bot.

They see what will be erased, confirm with a button, and get a receipt; "keep" leaves
everything as it was. The erasure is storage.erasure's (the same as `cadrebot erase`): the
county keeps anonymous counts only. Only the person's own data can be erased: the button
carries nothing but yes or no, and the person is the one who pressed it.

Registered before the flows (bot/app.py), so it is heard in the middle of a form, and the
form does not also answer that it is busy.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import func, select

from handlers.chat.codec import CODE, Button, choice
from handlers.chat.commands import command
from handlers.chat.reply import LOCALE_KEY
from handlers.chat.screen import Btn, Screen
from handlers.chat.screens import Act, Expired, screen
from storage import erasure
from storage.models import AuditLog

COMMAND = command("withdraw")
# The confirmation answers one preview: its buttons carry that preview's token, kept in
# user_data with what it showed. An old, repeated or forged press is "button expired".
CHOICE = Button("wd", choice("y", "n"), CODE)
PENDING = "withdraw"
# The counts a preview shows, in order; the drafts last (the forms open in memory count too).
SHOWN = ("nominations", "talks", "difficulties", "messages", "drafts")
# The bot's forget_users for this application (bot/app.py): memory, not only the rows.
FORGET = "forget"


async def _held(act: Act) -> tuple[int | None, erasure.Held]:
    async with act.session() as session:
        person_id = await erasure.person_of_telegram(session, act.chat.user_id)
        if person_id is None:
            return None, erasure.Held(0, 0, 0, 0, 0)
        return person_id, await erasure.held(session, person_id)


def _shown(act: Act, held: erasure.Held) -> list[int]:
    """What a preview tells the person will go: the counts of the confirm screen."""
    forms = set(act.chat.user_data) - {LOCALE_KEY, PENDING}
    return [*(getattr(held, count) for count in SHOWN[:-1]), held.drafts or len(forms)]


async def _ask(act: Act, *, again: bool = False) -> Screen:
    person_id, held = await _held(act)
    act.chat.user_data.pop(PENDING, None)
    # A draft may be only in memory so far (not yet flushed): it counts too.
    if person_id is None or (held.nominations == held.drafts == 0 and not act.chat.user_data):
        return Screen("withdraw/nothing")
    shown = _shown(act, held)
    token = secrets.token_hex(4)
    act.chat.user_data[PENDING] = {"token": token, "shown": shown}
    row = (
        Btn(act.chat.text("withdraw/button_confirm"), CHOICE.data("y", token)),
        Btn(act.chat.text("withdraw/button_keep"), CHOICE.data("n", token)),
    )
    values = {**dict(zip(SHOWN, shown, strict=True)), "again": again}
    return Screen("withdraw/confirm", values, (row,))


@screen(command=COMMAND)
async def start_withdraw(act: Act) -> Screen:
    """Show what erasure would take, and ask to confirm."""
    return await _ask(act)


@screen(button=CHOICE)
async def on_choice(act: Act) -> Screen:
    """Erase on "confirm" if the preview still shows what would go; "keep" changes nothing."""
    await act.chat.drop_buttons()
    answer, token = act.values
    pending = act.chat.user_data.pop(PENDING, None)
    if not isinstance(pending, dict) or pending.get("token") != token:
        raise Expired
    if answer != "y":
        return Screen("withdraw/kept")
    person_id, held = await _held(act)
    if person_id is None:
        return Screen("withdraw/nothing")
    if _shown(act, held) != pending.get("shown"):
        # Something was added since the preview (a file submitted, a talk logged): the person
        # confirms what will really go, not what they saw then.
        return await _ask(act, again=True)
    moment = datetime.now(UTC)
    async with act.session() as session:
        erased = await erasure.erase_person(
            session, person_id, actor_person_id=person_id, now=moment
        )
        await session.flush()
        receipt = await session.scalar(
            select(func.max(AuditLog.id)).where(
                AuditLog.action == "person.erase", AuditLog.subject_id == person_id
            )
        )
    # This process forgets at once (the draft in memory, open forms); others within a second.
    act.chat.service(FORGET)([act.chat.user_id])
    values = {"nominations": erased.nominations, "cancelled": erased.cancelled}
    at = moment.astimezone(act.settings.tz)
    return Screen("withdraw/done", {"receipt": int(receipt or 0), "at": at, **values})


MENUS = (start_withdraw, on_choice)
