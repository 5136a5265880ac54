"""`cadrebot shell`: chat with the real handlers in a terminal, with no token and no network.

The application is the one `cadrebot run` builds (`build_application`), with Telegram's HTTP
transport replaced by the one fake Bot API (`bot.fakeapi`, as `LocalTelegram`), which answers
in-process, refuses what Telegram refuses and keeps what the bot sends so it can be printed as
terminal text. Each input line becomes an Update fed to `app.process_update`; then the outbox
is drained so notices to other people show too.

Input: `/command args` is a command; a number alone presses that inline button of the last
keyboard shown; `!contact`, `!voice`, `!sticker`, `!photo`, `!file PATH`, `!drain`, `!tick`,
`!say TEXT`, `!buttons`, `!whoami`, `!help`, `!quit` (or end of input); anything else is text.

Without DATA_KEY in the environment or `.env` a key is generated once and kept in
`./data/shell.key`, so drafts survive between shell sessions on the same database. The shell
uses the database every other command uses (DATABASE_URL, by default
`./data/cadrebot.sqlite3`), so an invite printed by `cadrebot invite` can be redeemed in it;
`--own-database` keeps its fake users apart in `./data/shell.sqlite3`. An empty database gets
the small demo county, and the demo people are linked to fixed fake Telegram ids.

Modules: `personas` (who you are), `repl` (input → updates), `render` (events → text),
`command` (the command line).
"""

from bot.fakeapi import Button, Event, Markup, ReplyKey, convert_html, html_to_text, parse_markup
from bot.shell.command import (
    DEFAULT_KEY_FILE,
    DEFAULT_OUT_DIR,
    OWN_DATABASE_URL,
    add_parser,
    load_or_create_key,
    main,
    run,
    shell_settings,
)
from bot.shell.personas import PERSONA_IDS, Persona, ShellError, demo_people, resolve_persona
from bot.shell.render import grant_label, number_buttons
from bot.shell.repl import BOT_ID, BOT_USERNAME, FAKE_TOKEN, LocalTelegram, Shell, demo_phone

__all__ = [
    "BOT_ID",
    "BOT_USERNAME",
    "DEFAULT_KEY_FILE",
    "DEFAULT_OUT_DIR",
    "FAKE_TOKEN",
    "OWN_DATABASE_URL",
    "PERSONA_IDS",
    "Button",
    "Event",
    "LocalTelegram",
    "Markup",
    "Persona",
    "ReplyKey",
    "Shell",
    "ShellError",
    "add_parser",
    "convert_html",
    "demo_people",
    "demo_phone",
    "grant_label",
    "html_to_text",
    "load_or_create_key",
    "main",
    "number_buttons",
    "parse_markup",
    "resolve_persona",
    "run",
    "shell_settings",
]
