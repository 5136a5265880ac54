"""asyncpg's connection with one extra: a statement sent in the COMMIT's own round trip.

The inbox marks each update handled as the last statement of the update's transaction
(storage/inbox.py). On its own that statement is a round trip of its own, right before the
COMMIT's. PostgreSQL's simple-query protocol takes several statements in one message and
runs them in order, stopping at the first error: "UPDATE …; COMMIT;" is the same two
statements in one round trip. SQLite's driver does the same in one thread hand-off
(storage/sqlite_driver.py, `run_before_commit`).

SQLAlchemy's asyncpg adapter commits through asyncpg's Transaction, which sends exactly
"COMMIT;" with `Connection.execute`: that call is where the pending statement is put in
front. A ROLLBACK drops it, as the transaction it belonged to is gone. The simple protocol
takes no parameters, so the statement carries its values as literals: callers build it from
an int and a datetime only (`inbox.pg_mark_literal`), never from text a person typed.
"""

from __future__ import annotations

from typing import Any

import asyncpg

_COMMIT = "COMMIT;"
_ROLLBACK = "ROLLBACK;"


class OneTripConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection (connect(connection_class=…)) that can piggyback on COMMIT."""

    _before_commit: str | None = None

    async def run_before_commit(self, sql: str) -> None:
        """Run `sql` as the transaction's last statement, in the COMMIT's round trip.

        Outside a transaction (nothing would commit), it runs at once, on its own.
        """
        if self.is_in_transaction():
            self._before_commit = sql
            return
        await super().execute(sql)

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109
        if not args and query in (_COMMIT, _ROLLBACK):
            pending, self._before_commit = self._before_commit, None
            if pending is not None and query == _COMMIT:
                # One message, run in order; an error in `pending` aborts before the COMMIT.
                query = f"{pending}; {_COMMIT}"
        status: str = await super().execute(query, *args, timeout=timeout)
        return status
