"""Async SQLAlchemy helpers: PostgreSQL (asyncpg) and SQLite (aiosqlite, the embedded default)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Executable, Insert, MetaData, String, Table, Uuid, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.types import TypeDecorator

from idp_common.sqlite_driver import InlineConnection, InlineDBAPI
from idp_common.unit_of_work import UnitOfWork

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# What a database that cannot be reached right now raises: a connection refused or dropped, a
# server starting up or shutting down, SQLite locked past the driver's wait, no connection
# free in the pool. The same request may succeed shortly.
UNREACHABLE: tuple[type[Exception], ...] = (
    ConnectionError,
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
)


def is_unreachable(error: BaseException, errors: tuple[type[Exception], ...] = UNREACHABLE) -> bool:
    """Whether ``error`` says the database cannot be reached right now: one of ``errors``, or
    a connection the server ended in the middle of a statement (a terminated backend, a
    restart, a failover), which asyncpg reports as an error SQLAlchemy only marks
    ``connection_invalidated``."""
    return isinstance(error, errors) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    )


def unreachable_errors(url: str) -> tuple[type[Exception], ...]:
    """``UNREACHABLE``, and on PostgreSQL asyncpg's error for a server shutting down: asyncpg
    is imported only there (on SQLite it would be 2.5 MB of each service's memory)."""
    if make_url(url).get_backend_name() == "sqlite":
        return UNREACHABLE
    from asyncpg.exceptions import OperatorInterventionError

    return (*UNREACHABLE, OperatorInterventionError)


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite returns naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _OnConflictDoNothing(ClauseElement):
    """``ON CONFLICT DO NOTHING``, the same on SQLite and PostgreSQL, as a clause SQLAlchemy
    can cache: the dialects' ``insert().on_conflict_do_nothing()`` has no cache key, so each
    use was compiled again (0.24 ms per execute on SQLite against 0.12 ms for this one)."""

    inherit_cache = True
    _traverse_internals = []


@compiles(_OnConflictDoNothing)
def _render_on_conflict_do_nothing(
    _clause: _OnConflictDoNothing, _compiler: Any, **_kw: Any
) -> str:
    return "ON CONFLICT DO NOTHING"


_INSERTS_IGNORING_CONFLICTS: dict[tuple[Table, str | None], Executable] = {}


def _ignoring_conflicts(table: Table, returning: str | None) -> Executable:
    # Built once per table and returned column, the rows given as parameters: a multi-row
    # VALUES clause built in Python costs more than the database takes to store the rows.
    key = (table, returning)
    if (statement := _INSERTS_IGNORING_CONFLICTS.get(key)) is None:
        ignoring = table.insert()
        ignoring._post_values_clause = _OnConflictDoNothing()  # where the dialects put theirs
        statement = ignoring if returning is None else ignoring.returning(table.c[returning])
        _INSERTS_IGNORING_CONFLICTS[key] = statement
    return statement


async def insert_new(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]], key: str
) -> set[Any]:
    """INSERT … ON CONFLICT DO NOTHING of ``rows``, in one statement; returns the ``key``
    column's values of the rows that were new."""
    if not rows:
        return set()
    result = await session.execute(_ignoring_conflicts(table, key), rows)
    return set(result.scalars().all())


_AT_COMMIT = "idp_statements_at_commit"
_INSERTS: dict[Table, Insert] = {}


def execute_at_commit(session: AsyncSession, statement: Executable, params: dict[str, Any]) -> None:
    """Run ``statement`` with ``params`` when the session commits, in one executemany with
    the transaction's other parameters for that statement (statements in the order of
    their first use); nothing if it rolls back. For writes nothing in the transaction
    reads back (audit rows, outbox events, log lines, conditional updates): a transaction
    that handles many items at once (a group commit) then runs each statement once, not
    once per item (a statement costs ~0.2 ms of CPU, a further row in it ~0.02 ms)."""
    session.info.setdefault(_AT_COMMIT, {}).setdefault(statement, []).append(params)


def insert_at_commit(session: AsyncSession, table: Table, row: dict[str, Any]) -> None:
    """Insert ``row`` into ``table`` when the session commits (``execute_at_commit``)."""
    if (statement := _INSERTS.get(table)) is None:
        statement = _INSERTS[table] = table.insert()
    execute_at_commit(session, statement, row)


def insert_at_commit_ignoring_conflicts(
    session: AsyncSession, table: Table, row: dict[str, Any]
) -> None:
    """Insert ``row`` into ``table`` at commit unless a row with its key exists."""
    execute_at_commit(session, _ignoring_conflicts(table, None), row)


def _run_statements_at_commit(session: Session) -> None:
    if _AT_COMMIT in session.info:
        session.flush()  # the rows they may refer to first
    for statement, params in session.info.pop(_AT_COMMIT, {}).items():
        session.execute(statement, params)


def _forget_statements_at_commit(session: Session) -> None:
    session.info.pop(_AT_COMMIT, None)
    session.info.pop(_AFTER_COMMIT, None)


_AFTER_COMMIT = "idp_after_commit"


def after_commit(session: AsyncSession | Session, callback: Callable[[], None]) -> None:
    """Call ``callback`` once the session has committed (never if it rolls back): for what
    must count only what happened, such as a metric of executions that ended."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, []):
        callback()


class TenantRecord:
    """Columns of every tenant-owned row: UUID id, tenant, creation and update times."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _configure_sqlite(engine: AsyncEngine, *, read_only: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below) instead of the driver's deferred BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            # No waiting inside SQLite, which would stall the event loop: the driver waits
            # for a lock on the loop (sqlite_driver.LOCK_WAIT_SECONDS). First, so that the
            # journal-mode pragma does not wait either (the driver's default is 5 s).
            "PRAGMA busy_timeout=0",
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
            f"PRAGMA query_only={int(read_only)}",
        ):
            cursor.execute(pragma)
        cursor.close()
        # SQLite's lower() (and so ilike) folds ASCII only: "über" found no "Über", as it
        # does on PostgreSQL.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: another process's writer waits on
        # busy_timeout instead of failing with SQLITE_BUSY when a read transaction upgrades.
        # Snapshots begin deferred: under WAL they neither take nor wait for that lock.
        options = connection.get_execution_options()
        if options.get("isolation_level") != "AUTOCOMMIT":
            driver: InlineConnection = connection.connection.dbapi_connection
            driver.begin("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _replace_connections_the_server_closed(engine: AsyncEngine) -> None:
    """A pooled connection the server has closed (a restart, a terminated backend) is
    replaced at checkout, so no transaction fails on it. SQLAlchemy's pre-ping costs three
    round trips per checkout on asyncpg (BEGIN, a ping, ROLLBACK), 5% of operation-svc's CPU
    (measured); the driver's own flag and a peek at the socket cost none."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _alive(_dbapi: Any, _record: Any, proxy: PoolProxiedConnection) -> None:
        driver = proxy.driver_connection
        if driver is None or driver.is_closed() or _hung_up(driver):
            raise DisconnectionError("the server closed this connection")


def _hung_up(driver: Any) -> bool:
    """Whether the server has closed the connection, even before asyncpg has processed the
    close: the server's parting message (an ErrorResponse, the only one an idle connection
    gets) or the end of the stream waits on the socket. asyncpg may read the first in one
    turn of the loop and the second in a later one; a query started in between fails with
    "cannot switch to state"."""
    transport = driver._transport  # asyncpg exposes no other way to its socket
    if transport is None or transport.is_closing():
        return True
    try:
        peeked = socket.socket(fileno=transport.get_extra_info("socket").fileno())
    except OSError:  # its descriptor is gone
        return True
    try:
        return peeked.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) in (b"", b"E")
    except BlockingIOError:
        return False  # nothing to read: open
    except OSError:
        return True
    finally:
        peeked.detach()  # the descriptor stays asyncpg's


# Limited snapshot sessions open at once on SQLite (measured when statements ran on each
# connection's thread: 2 gave ~6% more executions/s than no limit). Statements now run on the
# event loop (``sqlite_driver``), so a snapshot that only reads ends within a turn of the loop
# and the limit holds back only those that wait on something else while open.
SQLITE_SNAPSHOTS = 2


class Database:
    """One database per process: short write transactions and read-only snapshots.

    On SQLite (files only) writes go through one connection, the write turn: SQLite has one
    writer at a time, and waiting for that connection in this process (FIFO, no busy-wait)
    beats colliding on the file lock, where SQLite's busy handler backs off in sleeps of up
    to 100 ms. A transaction takes it at its first statement, not when it opens, and gives it
    back when it ends. Reads run on other connections, opened read-only."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if not self.is_sqlite:
            # Up to twice ``pool_size`` connections, all kept once open: a new one costs a
            # server process and, where the server offers it, a TLS handshake (~3% of
            # operation-svc's CPU in a burst when those beyond ``pool_size`` were closed on
            # return and opened again).
            self.engine = create_async_engine(url, pool_size=2 * pool_size, max_overflow=0)
            _replace_connections_the_server_closed(self.engine)
            self._read_engine = self.engine
        else:
            if not parsed.database or parsed.database == ":memory:":
                raise ValueError("SQLite databases are files: write and read connections share it")
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            # No pre-ping: a file does not drop connections, and the ping would be one more
            # statement in every transaction.
            module = {"module": InlineDBAPI()} if parsed.get_driver_name() == "aiosqlite" else {}
            self.engine = create_async_engine(
                url, pool_size=1, max_overflow=0, pool_timeout=None, **module
            )
            # Kept open rather than closed and reopened under load (SQLAlchemy's default
            # keeps 5): opening a connection starts a thread and runs the pragmas.
            self._read_engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=pool_size, **module
            )
            _configure_sqlite(self.engine, read_only=False)
            _configure_sqlite(self._read_engine, read_only=True)

        class _SyncSession(Session):
            """Per-database class so session events (statements at commit, the outbox
            wake-up) stay scoped to it."""

        self.sync_session_class: type[Session] = _SyncSession
        self._riders: list[Callable[[Session], None]] = []
        event.listen(_SyncSession, "before_commit", self._before_commit)
        event.listen(_SyncSession, "after_rollback", _forget_statements_at_commit)
        event.listen(_SyncSession, "after_commit", _run_after_commit)
        self._sqlite_snapshots = asyncio.Semaphore(SQLITE_SNAPSHOTS) if self.is_sqlite else None
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=_SyncSession
        )
        # On PostgreSQL, REPEATABLE READ: under its default READ COMMITTED every statement
        # would see the rows committed by then, not the snapshot its first one saw.
        snapshots = (
            self._read_engine
            if self.is_sqlite
            else self._read_engine.execution_options(
                postgresql_readonly=True, isolation_level="REPEATABLE READ"
            )
        )
        self._snapshot_sessionmaker = async_sessionmaker(snapshots, sync_session_class=_SyncSession)

    def ride_on_writes(self, step: Callable[[Session], None]) -> None:
        """Run ``step`` before the commit of every transaction that writes at commit anyway
        (``execute_at_commit``): for writes that need no transaction of their own, such as
        the outbox relay's deletes, which then cost no commit of theirs and never wait for
        SQLite's write turn. ``step`` learns whether its writes were kept from
        ``after_commit``."""
        self._riders.append(step)

    def _before_commit(self, session: Session) -> None:
        if _AT_COMMIT in session.info:
            for step in self._riders:
                step(session)
        _run_statements_at_commit(session)

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """The engines to instrument: the write engine first."""
        return tuple(dict.fromkeys((self.engine, self._read_engine)))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed on success and rolled back on any error. Never
        open one inside another: on SQLite the inner one would wait for the outer's turn."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """A transaction (``transaction``) as a unit of work: its steps run before it commits."""
        async with self.transaction() as session:
            work = UnitOfWork(session)
            yield work
            await work.run_steps()

    @asynccontextmanager
    async def snapshot(self, *, limited: bool = True) -> AsyncIterator[AsyncSession]:
        """A read-only session on one consistent snapshot; it never waits for a writer, not
        even SQLite's single write turn. ``limited``: on SQLite, at most ``SQLITE_SNAPSHOTS``
        such sessions are open at once (the others wait for one to end): for short reads,
        such as the checks before a write; never open one inside another. A request's own
        session, which may wait on other services while open, is not limited."""
        slots = self._sqlite_snapshots if limited else None
        async with slots or nullcontext(), self._snapshot_sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncConnection]:
        """A connection for single-statement reads that never waits for a writer (WAL);
        usable while the same task holds a transaction, e.g. to authenticate a request."""
        async with self._read_engine.connect() as connection:
            yield await connection.execution_options(isolation_level="AUTOCOMMIT")

    async def ping(self) -> None:
        async with self.transaction() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        for engine in self.engines:
            await engine.dispose()
