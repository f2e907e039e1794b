"""Async SQLAlchemy helpers: PostgreSQL (asyncpg) and SQLite (aiosqlite, the embedded default)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Executable, MetaData, String, Table, Uuid, event, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from idp_common.sqlite_driver import OneTripConnection, OneTripDBAPI

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


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


_INSERTS_IGNORING_CONFLICTS: dict[tuple[str, Table], Executable] = {}


def _ignoring_conflicts(session: AsyncSession, table: Table) -> Executable:
    # Built once per backend and table, the rows given as parameters: a multi-row VALUES
    # clause built in Python costs more than the database takes to store the rows.
    backend = session.get_bind().dialect.name
    if (statement := _INSERTS_IGNORING_CONFLICTS.get((backend, table))) is None:
        insert = postgresql_insert if backend == "postgresql" else sqlite_insert
        statement = insert(table).on_conflict_do_nothing()
        _INSERTS_IGNORING_CONFLICTS[(backend, table)] = statement
    return statement


async def insert_ignoring_conflicts(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]]
) -> None:
    """INSERT … ON CONFLICT DO NOTHING of ``rows`` on either backend."""
    if rows:
        await session.execute(_ignoring_conflicts(session, table), rows)


async def insert_if_new(session: AsyncSession, table: Table, row: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING of one row; True if it was new."""
    result = await session.execute(_ignoring_conflicts(session, table), row)
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


class TenantRecord:
    """Columns of every tenant-owned row: UUID id, tenant, creation and update times."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


_SNAPSHOT = "idp_snapshot"


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below) instead of the driver's deferred BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=30000",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: two writers wait on busy_timeout
        # instead of failing with SQLITE_BUSY when a read transaction upgrades. Snapshots
        # (reads only) begin deferred: under WAL they neither take nor wait for that lock.
        options = connection.get_execution_options()
        if options.get("isolation_level") != "AUTOCOMMIT":
            driver: OneTripConnection = connection.connection.dbapi_connection
            driver.begin("BEGIN" if options.get(_SNAPSHOT) else "BEGIN IMMEDIATE")


class Database:
    """One engine and session factory per process; sessions are short-lived transactions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            # No pre-ping: a file does not drop connections, and the ping would be one more
            # round trip to aiosqlite's thread in every transaction.
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs |= {"pool_pre_ping": True, "pool_size": pool_size, "max_overflow": pool_size}
        if self.is_sqlite and parsed.get_driver_name() == "aiosqlite":
            kwargs["module"] = OneTripDBAPI()
        self.engine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)

        class _SyncSession(Session):
            """Per-database class so session events (outbox wake-up) stay scoped to it."""

        self.sync_session_class: type[Session] = _SyncSession
        self._sqlite_lock = asyncio.Lock() if self.is_sqlite else None
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=_SyncSession
        )
        self._snapshot_sessionmaker = async_sessionmaker(
            self.engine.execution_options(**{_SNAPSHOT: True, "postgresql_readonly": True}),
            sync_session_class=_SyncSession,
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed on success and rolled back on any error."""
        async with self._sqlite_turn(), self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncSession]:
        """A read-only session on one consistent snapshot; it never waits for a writer, not
        even SQLite's single write turn. Read-only is enforced on PostgreSQL."""
        async with self._snapshot_sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncConnection]:
        """A connection for single-statement reads that never waits for a writer (WAL);
        usable while the same task holds a transaction, e.g. to authenticate a request."""
        async with self.engine.connect() as connection:
            yield await connection.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def _sqlite_turn(self) -> AsyncIterator[None]:
        # SQLite has one writer at a time. Queueing transactions here (FIFO, no busy-wait)
        # beats letting them collide on the file lock, where SQLite's busy handler backs off
        # in sleeps of up to 100 ms. One process owns each file in the embedded default.
        if self._sqlite_lock is None:
            yield
        else:
            async with self._sqlite_lock:
                yield

    async def ping(self) -> None:
        async with self.transaction() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
