"""The callback context every handler receives: settings, one transaction, templates."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncSession
from telegram.ext import CallbackContext, ExtBot

if TYPE_CHECKING:
    from bot.settings import Settings
    from storage.db import Database


class UpdateTransaction:
    """The one transaction an update runs in (opened by `CadreApp.process_update`).

    Every `context.session()` block of the update's handlers joins it, the persistence flush
    (conversation states, user_data) is written into it, and the inbox marks the update
    handled in it: one commit, so either all of it happened or none of it did.
    """

    def __init__(self, session: AsyncSession, update_id: int) -> None:
        self.session = session
        self.update_id = update_id
        self.failed = False
        # Persistence writes gathered during the flush, run in order before the commit.
        self.writes: list[Callable[[AsyncSession], Awaitable[None]]] = []
        self.after_commit: list[Callable[[], None]] = []

    @asynccontextmanager
    async def block(self) -> AsyncIterator[AsyncSession]:
        """One `context.session()` block: its writes are undone if it raises, as before.

        A handler may catch what a block raised (NotAllowed…) and carry on, so a failed block
        must not leave its half-done writes in the update's transaction. The first block
        that opens the transaction rolls the whole (still empty) transaction back; a later
        one is a SAVEPOINT, which costs two statements, so only blocks that need it pay.
        """
        session = self.session
        if not session.in_transaction():
            try:
                yield session
                if session.new or session.dirty or session.deleted:
                    await session.flush()  # errors surface in the block, as before
            except BaseException:
                await session.rollback()
                raise
            return
        async with session.begin_nested():
            yield session

    async def checkpoint(self) -> None:
        """Commit what the update has written so far; the handled mark and the state flush
        follow in the final commit, so a crash after this handles the update again."""
        if self.session.in_transaction():
            await self.session.commit()


_current: ContextVar[UpdateTransaction | None] = ContextVar("cadrebot_update_tx", default=None)


def current_transaction() -> UpdateTransaction | None:
    """The transaction of the update being handled in this task, if any."""
    return _current.get()


def set_transaction(transaction: UpdateTransaction | None) -> Any:
    return _current.set(transaction)


def reset_transaction(token: Any) -> None:
    _current.reset(token)


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
        """The update's transaction (see UpdateTransaction); outside an update (jobs, the
        tick), a session with its own transaction: committed on exit, rolled back on error."""
        transaction = _current.get()
        if transaction is not None:
            return transaction.block()
        return self.database.sessionmaker.begin()

    async def checkpoint(self) -> None:
        """Before a long send (an upload): commit the update's writes so far, so that no
        database lock is held across it. Without an update transaction, nothing to do."""
        transaction = _current.get()
        if transaction is not None:
            await transaction.checkpoint()
