"""Database: rows written at commit, SQLite's write turn taken at the first statement, and
read connections that are read-only and few."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import OperationalError

from idp_common.audit import record_audit
from idp_common.db import SQLITE_SNAPSHOTS, Database
from operation_svc.models import AuditEntry
from tests.harness import migrated_database


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated_database(request.param, tmp_path, "operation") as database:
        yield database


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated_database("sqlite", tmp_path, "operation") as database:
        yield database


async def audited_objects(db: Database) -> list[str]:
    async with db.snapshot() as session:
        return list(await session.scalars(select(AuditEntry.object_id).order_by("object_id")))


async def test_rows_written_at_commit_arrive_together_and_not_after_a_rollback(
    db: Database,
) -> None:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    async with db.transaction() as session:
        for number in range(3):
            record_audit(session, AuditEntry, "tester", "thing.touch", number, tenant="t")
    assert await audited_objects(db) == ["0", "1", "2"]
    assert sum("INSERT INTO audit_log" in statement for statement in statements) == 1
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            record_audit(session, AuditEntry, "tester", "thing.touch", 9, tenant="t")
            raise RuntimeError("rolled back")
    async with db.transaction():  # the next transaction does not carry the rolled-back row
        pass
    assert await audited_objects(db) == ["0", "1", "2"]


async def test_a_transaction_takes_the_write_turn_at_its_first_statement(
    sqlite: Database,
) -> None:
    async with sqlite.transaction() as idle:  # open, nothing run yet: holds no turn
        async with asyncio.timeout(2), sqlite.transaction() as other:
            record_audit(other, AuditEntry, "tester", "thing.touch", 1, tenant="t")
        await idle.execute(text("select 1"))  # now it holds the turn
        waiting = asyncio.create_task(_write_one(sqlite))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # the next writer waits for the turn ...
    await asyncio.wait_for(waiting, 2)  # ... and gets it when the transaction ends
    assert await audited_objects(sqlite) == ["1", "2"]


async def _write_one(db: Database) -> None:
    async with db.transaction() as session:
        record_audit(session, AuditEntry, "tester", "thing.touch", 2, tenant="t")


async def test_sqlite_snapshots_are_read_only(sqlite: Database) -> None:
    with pytest.raises(OperationalError, match="readonly"):
        async with sqlite.snapshot() as session:
            await session.execute(text("delete from audit_log"))


async def test_sqlite_snapshots_beyond_the_limit_wait_for_one_to_end(sqlite: Database) -> None:
    """Limited snapshots (the short reads before a write) wait for a slot; a request's own
    snapshot, which may wait on another service while open, does not take one."""
    release = asyncio.Event()
    opened: list[int] = []

    async def read(number: int) -> None:
        async with sqlite.snapshot() as session:
            await session.execute(text("select 1"))
            opened.append(number)
            await release.wait()

    readers = [asyncio.create_task(read(number)) for number in range(SQLITE_SNAPSHOTS + 1)]
    await asyncio.sleep(0.3)
    assert len(opened) == SQLITE_SNAPSHOTS
    async with asyncio.timeout(1), sqlite.snapshot(limited=False) as session:  # a request's
        await session.execute(text("select 1"))
    release.set()
    await asyncio.wait_for(asyncio.gather(*readers), 2)
    assert sorted(opened) == list(range(SQLITE_SNAPSHOTS + 1))
