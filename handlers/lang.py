"""/lang: choose the language of the bot's messages (kept with the account, for reminders)."""

from __future__ import annotations

from handlers.chat.codec import Button, choice
from handlers.chat.commands import command
from handlers.chat.reply import LOCALE_KEY
from handlers.chat.screen import Btn, Screen, rows_of
from handlers.chat.screens import Act, screen
from storage import people
from templates import LOCALES

COMMAND = command("lang")
LANGUAGE_PRESS = Button("lang", choice(*LOCALES))


@screen(command=COMMAND)
async def choose_language(act: Act) -> Screen:
    """The languages, as buttons."""
    buttons = [Btn(act.label(f"lang.{loc}"), LANGUAGE_PRESS.data(loc)) for loc in LOCALES]
    return Screen("start/lang_choose", rows=rows_of(buttons))


@screen(button=LANGUAGE_PRESS)
async def set_language(act: Act) -> Screen:
    """Remember the chosen language for messages and for reminders sent later."""
    (locale,) = act.values
    # Read by every screen from now on, this one included.
    act.chat.user_data[LOCALE_KEY] = locale
    async with act.session() as session:
        await people.ensure_account(session, act.chat.user_id, act.chat.language)
        await people.set_locale(session, act.chat.user_id, locale)
    return Screen("start/lang_set", edit=True)
