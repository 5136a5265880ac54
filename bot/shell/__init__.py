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
