"""SQLAlchemy's aiosqlite adaptation with statements run on the event loop's thread.

The stock adapter sends each step of a statement (open a cursor, execute, fetch, close) to
aiosqlite's thread, each a future, a queue hand-off and a wake-up of the event loop. With
WAL and ``synchronous=NORMAL`` a statement takes SQLite microseconds and a commit writes no
fsync, so the hand-offs were most of the cost: here the whole cursor life, the commit and
the rollback run where SQLAlchemy calls them (measured: a transaction of three inserts
0.95 ms of CPU through the thread, one trip per statement, 0.48 ms here; a snapshot's read
0.58 -> 0.18 ms of wall time). Results, errors and attributes are those of the stock
adapter; server-side cursors (``stream()``), connecting and closing keep aiosqlite's thread.

Nothing here waits inside SQLite, which would stall the event loop: connections have no
busy timeout, and a statement that finds the database locked by another connection (another
process, or another ``Database`` on the file in this one) is tried again after a pause on
the event loop, for up to ``LOCK_WAIT_SECONDS``. In this process writes take the one write
connection in turn (``idp_common.db``), so they never wait here for each other.

A transaction's BEGIN runs with its first statement (``InlineConnection.begin``), and a
commit or rollback with nothing to end (no statement ran, or the pool's reset after a
commit) does nothing.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

_Outcome = tuple[Any, list[Any], int | None, int]  # description, rows, lastrowid, rowcount
# How long a statement waits for another connection's lock (SQLite's busy timeout before).
LOCK_WAIT_SECONDS = 30.0
_FIRST_PAUSE_SECONDS = 0.001
_LONGEST_PAUSE_SECONDS = 0.05


def _execute(
    connection: sqlite3.Connection, begin: str | None, operation: str, parameters: Any
) -> _Outcome:
    if begin is not None:
        connection.execute(begin)
    cursor = connection.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, rows, cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


def _executemany(
    connection: sqlite3.Connection,
    begin: str | None,
    operation: str,
    seq_of_parameters: Sequence[Any],
) -> _Outcome:
    if begin is not None:
        connection.execute(begin)
    cursor = connection.cursor()
    try:
        cursor.executemany(operation, seq_of_parameters)
        return None, [], cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


async def _at_once() -> None:
    return None


class InlineCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def _run(self, function: Any, operation: Any, parameters: Any) -> _Outcome:
        adapted: InlineConnection = self._adapt_connection  # type: ignore[assignment]
        begin, adapted.pending_begin = adapted.pending_begin, None
        # SQLAlchemy's async connections check that a statement awaited something (to catch
        # a synchronous driver): awaiting a coroutine that returns at once passes through
        # the event loop's side of the greenlet and back, without a turn of the loop.
        self.await_(_at_once())
        return adapted.when_unlocked(function, begin, operation, parameters)

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            description, rows, lastrowid, rowcount = self._run(_execute, operation, parameters)
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        if description:
            self.description = description
            self.lastrowid = self.rowcount = -1
            self._rows = deque(rows)
        else:
            self.description = None
            self.lastrowid = lastrowid  # type: ignore[assignment]
            self.rowcount = rowcount

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            _, _, lastrowid, rowcount = self._run(_executemany, operation, seq_of_parameters)
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self.description = None
        self.lastrowid = lastrowid  # type: ignore[assignment]
        self.rowcount = rowcount


class InlineConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("locked_out", "pending_begin")

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.pending_begin: str | None = None
        # A statement here waited LOCK_WAIT_SECONDS in vain, and none has run since.
        self.locked_out = False

    def begin(self, statement: str) -> None:
        """Start a transaction with ``statement`` (``BEGIN …``) on the next statement's trip."""
        self.pending_begin = statement

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        if not server_side:
            return InlineCursor(self)
        if self.pending_begin is not None:  # the stock cursor knows nothing of it
            begin, self.pending_begin = self.pending_begin, None
            self.await_(self._connection.execute(begin))
        return super().cursor(server_side)

    @property
    def _sqlite(self) -> sqlite3.Connection:
        connection: sqlite3.Connection = self._connection._conn
        return connection

    def when_unlocked(
        self, function: Callable[..., _Outcome], begin: str | None, *args: Any
    ) -> _Outcome:
        """``function(connection, begin, *args)``; while the database is locked by another
        connection, tried again after a pause on the event loop. A statement inside a
        transaction this call did not begin is not tried again (it cannot be locked out:
        a write transaction holds the lock from its BEGIN IMMEDIATE). Once one has waited
        ``LOCK_WAIT_SECONDS`` in vain, the next ones try once until one gets through: the
        writes queued for this connection's turn each waited their own 30 s in turn, and
        the last of them had its answer after minutes."""
        connection = self._sqlite
        deadline = time.monotonic() + (0.0 if self.locked_out else LOCK_WAIT_SECONDS)
        pause = _FIRST_PAUSE_SECONDS
        while True:
            try:
                outcome = function(connection, begin, *args)
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                if connection.in_transaction:
                    if begin is None:
                        raise
                    connection.rollback()  # begun by this call: nothing else ran in it
                if time.monotonic() + pause > deadline:
                    self.locked_out = True
                    raise
            else:
                self.locked_out = False
                return outcome
            self.await_(asyncio.sleep(pause))
            pause = min(pause * 2, _LONGEST_PAUSE_SECONDS)

    def commit(self) -> None:
        if self.pending_begin is not None:  # nothing ran: nothing to commit
            self.pending_begin = None
            return
        try:
            self._sqlite.commit()
        except Exception as error:
            self._handle_exception(error)

    def rollback(self) -> None:
        if self.pending_begin is not None:
            self.pending_begin = None
            return
        try:
            self._sqlite.rollback()
        except Exception as error:
            self._handle_exception(error)


class InlineDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """Pass as ``module=`` to ``create_async_engine`` for a ``sqlite+aiosqlite`` URL."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        if type(adapted) is AsyncAdapt_aiosqlite_connection:  # not the sync fallback
            return InlineConnection(self, adapted._connection)
        return adapted
