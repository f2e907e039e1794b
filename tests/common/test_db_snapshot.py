"""Database.snapshot: reads that never wait for a writer, and refuse to write on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from idp_common.db import Database
from idp_common.messaging.inbox import record_processed
from operation_svc.models import messaging
from tests.harness import fresh_database, migrate


@contextlib.asynccontextmanager
async def database_with_one_row(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    """operation-svc's database, migrated, with one processed event (``e1``)."""
    async with fresh_database(backend, tmp_path, "operation") as url:
        await migrate(url, "operation")
        db = Database(url)
        async with db.transaction() as session:
            await record_processed(session, messaging, "c", ["e1"])
        try:
            yield db
        finally:
            await db.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_snapshot_reads_committed_rows_while_this_process_writes(
    backend: str, tmp_path: Path
) -> None:
    async with (
        database_with_one_row(backend, tmp_path) as db,
        db.transaction() as writing,  # holds SQLite's write turn in this process
    ):
        await writing.execute(text("DELETE FROM processed_events"))
        async with asyncio.timeout(2), db.snapshot() as reading:
            rows = (await reading.execute(text("SELECT event_id FROM processed_events"))).all()
        assert [row.event_id for row in rows] == ["e1"]


async def test_a_snapshot_refuses_writes_on_postgresql(tmp_path: Path) -> None:
    async with fresh_database("postgres", tmp_path, "operation") as url:
        await migrate(url, "operation")
        db = Database(url)
        for _ in range(3):  # the pool's connections go back writable
            with pytest.raises(DBAPIError, match="read-only"):
                async with db.snapshot() as session:
                    await session.execute(text("DELETE FROM processed_events"))
            async with db.transaction() as session:
                assert await record_processed(session, messaging, "c", [str(uuid.uuid4())])
        await db.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_snapshot_sees_one_state_across_its_statements(
    backend: str, tmp_path: Path
) -> None:
    async with database_with_one_row(backend, tmp_path) as db:
        count = text("SELECT count(*) FROM processed_events")
        async with db.snapshot() as reading:
            before = (await reading.execute(count)).scalar()
            async with db.transaction() as session:  # committed between the two reads
                await record_processed(session, messaging, "c", ["e2"])
            after = (await reading.execute(count)).scalar()
        assert before == after == 1
