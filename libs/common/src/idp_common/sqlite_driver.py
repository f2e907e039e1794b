"""SQLAlchemy's aiosqlite adaptation with one trip to aiosqlite's thread per statement.

The stock adapter makes four (open a cursor, execute, fetch, close), each a future, a queue
hand-off and a wake-up of the event loop: about a third of a statement's cost on SQLite and
most of its latency when the machine is busy. Here the whole cursor life runs as one call on
aiosqlite's thread (``Connection._execute``, which aiosqlite uses for each of its own
methods). Results, errors and attributes are those of the stock adapter; server-side cursors
(``stream()``) keep the stock behaviour.

A transaction's BEGIN travels with its first statement (``OneTripConnection.begin``), and a
commit or rollback with nothing to end (no statement ran, or the pool's reset after a commit)
makes no trip: a transaction of one statement is two trips instead of four.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

_Outcome = tuple[Any, list[Any], int | None, int]  # description, rows, lastrowid, rowcount


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


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def _run(self, function: Any, operation: Any, parameters: Any) -> _Outcome:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        adapted: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
        begin, adapted.pending_begin = adapted.pending_begin, None
        outcome: _Outcome = self.await_(
            connection._execute(function, connection._conn, begin, operation, parameters)  # type: ignore[no-untyped-call]
        )
        return outcome

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


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("pending_begin",)

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.pending_begin: str | None = None

    def begin(self, statement: str) -> None:
        """Start a transaction with ``statement`` (``BEGIN …``) on the next statement's trip."""
        self.pending_begin = statement

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        if not server_side:
            return OneTripCursor(self)
        if self.pending_begin is not None:  # the stock cursor knows nothing of it
            begin, self.pending_begin = self.pending_begin, None
            self.await_(self._connection.execute(begin))
        return super().cursor(server_side)

    def commit(self) -> None:
        if self.pending_begin is not None:  # nothing ran: nothing to commit
            self.pending_begin = None
        else:
            super().commit()

    def rollback(self) -> None:
        if self.pending_begin is not None:
            self.pending_begin = None
        elif self._connection._conn.in_transaction:  # a plain attribute read: no trip
            super().rollback()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """Pass as ``module=`` to ``create_async_engine`` for a ``sqlite+aiosqlite`` URL."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        if type(adapted) is AsyncAdapt_aiosqlite_connection:  # not the sync fallback
            return OneTripConnection(self, adapted._connection)
        return adapted
