"""Publish the "/" menu Telegram shows, from the command declarations (handlers/chat/menu.py).

- The default scope, once per language ("zh", "en") and once without a language (LOCALE's):
  what candidates and the public may run. Published at every start: three requests.
- One chat scope per staff member (BotCommandScopeChat, in their language): what their roles
  allow; a person whose last role ended gets the default back (deleteMyCommands). Published
  only for accounts marked changed (storage/menus.py: the mark is written with the grant, in
  its transaction): at start, then every MENU_SECONDS while running, so a role taken up by an
  invite is in the menu within seconds, and a restart of a big county sends only what changed.

Nothing here stops the bot. A network error or a 429 leaves the marks for the next run; a
chat Telegram refuses (403 blocked, 400 chat not found) is left marked and skipped until the
next start, so it is not asked again every few seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from jinja2 import Environment
from telegram import Bot, BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import Application

from bot.scheduler import JOB_KWARGS
from handlers.chat.commands import Command
from handlers.chat.context import CadreContext
from handlers.chat.menu import declared, menu_for
from storage import menus
from storage.db import Database
from storage.models import Role
from templates import LOCALES, labels_for, normalize_locale

log = logging.getLogger("cadrebot.menu")

MENU_SECONDS = 5.0
# Accounts read per query; a run goes on until none is left (or a request fails).
BATCH = 50
# Chats Telegram refused this process: skipped until the next start (bot_data key).
SKIP_KEY = "menu_skip"


def telegram_language(locale: str) -> str:
    """Telegram's language_code (ISO 639-1, two letters) of one of our locales: zh_CN → zh."""
    return locale.split("_", 1)[0].lower()


def bot_commands(commands: Sequence[Command], env: Environment, locale: str) -> list[BotCommand]:
    """The menu entries in `locale`: each command with its one line from the label table."""
    labels = labels_for(env, locale)
    return [BotCommand(c.name, labels[c.summary_key]) for c in commands]


def menu_commands(
    roles: frozenset[Role], commands: Sequence[Command], env: Environment, locale: str
) -> list[BotCommand]:
    return bot_commands(menu_for(roles, commands), env, locale)


async def publish_default(
    bot: Bot, commands: Sequence[Command], env: Environment, default_locale: str
) -> bool:
    """The public's menu in each language, and in LOCALE's for every other language."""
    requests: list[tuple[str | None, str]] = [(telegram_language(loc), loc) for loc in LOCALES]
    requests.append((None, default_locale))
    try:
        for language_code, locale in requests:
            await bot.set_my_commands(
                menu_commands(frozenset(), commands, env, locale),
                scope=BotCommandScopeDefault(),
                language_code=language_code,
            )
    except TelegramError as error:
        log.warning("menu: the default menu was not published (%s); next start retries", error)
        return False
    return True


async def publish_pending(
    bot: Bot,
    database: Database,
    commands: Sequence[Command],
    env: Environment,
    default_locale: str,
    skip: set[int],
) -> int:
    """Publish the menu of every account marked changed; returns how many were published."""
    done = 0
    sent: set[int] = set()
    while True:
        async with database.sessionmaker() as session:
            waiting = await menus.pending(session, limit=BATCH, exclude=skip)
        if not waiting:
            return done
        for account in waiting:
            if account.telegram_id in sent:
                # Changed again while this run published it: the next run sends the newest
                # menu, and a mark that somehow never clears cannot loop here.
                return done
            sent.add(account.telegram_id)
            scope = BotCommandScopeChat(account.telegram_id)
            try:
                if account.roles:
                    locale = normalize_locale(account.language, default_locale)
                    entries = menu_commands(account.roles, commands, env, locale)
                    await bot.set_my_commands(entries, scope=scope)
                else:
                    await bot.delete_my_commands(scope=scope)
            except (Forbidden, BadRequest) as error:
                # BadRequest first: PTB makes it a NetworkError too.
                log.warning("menu: chat %s refused (%s); next start retries", scope.chat_id, error)
                skip.add(account.telegram_id)
                continue
            except TelegramError as error:
                log.warning("menu: publishing stopped (%s); retried in a moment", error)
                return done
            async with database.sessionmaker.begin() as session:
                await menus.published(session, account.telegram_id, account.changes)
            done += 1


async def publish_job(context: CadreContext) -> None:
    """The repeating job: publish the menus marked changed since the last run."""
    done = await publish_pending(
        context.bot,
        context.bot_data["database"],
        declared(context.bot_data),
        context.bot_data["jinja"],
        context.settings.locale,
        context.bot_data.setdefault(SKIP_KEY, set()),
    )
    if done:
        log.info("menu: %d staff menu(s) published", done)


async def install(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """At start (post_init): the default menus now, the staff menus from the job."""
    settings = app.bot_data["settings"]
    await publish_default(app.bot, declared(app.bot_data), app.bot_data["jinja"], settings.locale)
    if app.job_queue is not None:
        app.job_queue.run_repeating(
            publish_job, interval=MENU_SECONDS, first=1, name="menus", job_kwargs=JOB_KWARGS
        )
