"""The callback context every handler receives: settings, one transaction, templates."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncSession
from telegram.ext import Application, CallbackContext, ExtBot

if TYPE_CHECKING:
    from bot.settings import Settings
    from storage.db import Database


class CadreContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """Typed access to the services that `post_init` put into bot_data."""

    @property
    def settings(self) -> Settings:
        return self.bot_data["settings"]  # type: ignore[no-any-return]

    @property
    def database(self) -> Database:
        return self.bot_data["database"]  # type: ignore[no-any-return]

    @property
    def jinja(self) -> Environment:
        return self.bot_data["jinja"]  # type: ignore[no-any-return]

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """Open a session with its transaction: committed on exit, rolled back on error."""
        return self.database.sessionmaker.begin()


CadreApplication = Application[
    ExtBot[None], CadreContext, dict[Any, Any], dict[Any, Any], dict[Any, Any], Any
]
