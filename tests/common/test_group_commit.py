"""GroupCommit: concurrent items share transactions; a bad item fails alone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from idp_common.audit import record_audit
from idp_common.db import UNREACHABLE, Database
from idp_common.group_commit import GroupCommit
from idp_common.unit_of_work import UnitOfWork
from operation_svc.models import AuditEntry
from tests.harness import free_port, migrated_database


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_concurrent_items_share_transactions_and_a_bad_one_fails_alone(
    backend: str, tmp_path: Path
) -> None:
    async with migrated_database(backend, tmp_path, "operation") as db:
        groups: list[list[int]] = []

        async def write(work: UnitOfWork, items: list[int]) -> None:
            groups.append(items)
            for item in items:
                if item == 13:
                    raise ValueError("unlucky")
                record_audit(work.session, AuditEntry, "tester", "thing.write", item, tenant="t")

        together: GroupCommit[int] = GroupCommit(db, write, max_items=10)
        outcomes: list[Any] = await asyncio.gather(
            *(together.submit(item) for item in range(20)), return_exceptions=True
        )

        assert [type(outcome) for outcome in outcomes] == [
            ValueError if item == 13 else type(None) for item in range(20)
        ]
        async with db.snapshot() as session:
            written = set(await session.scalars(select(AuditEntry.object_id)))
        assert written == {str(item) for item in range(20) if item != 13}
        assert max(len(group) for group in groups) == 10  # shared, up to the bound
        assert [13] in groups  # the failed group's items were retried one by one


async def test_a_group_the_database_cannot_take_is_not_written_again_item_by_item() -> None:
    """Each item alone would find the database unreachable too, one after another: behind a
    SQLite lock each waited its 30 s again (the last create of a group of ten had its 503
    after five minutes), and every write after them waited behind them."""
    db = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing")
    groups: list[list[int]] = []

    async def write(work: UnitOfWork, items: list[int]) -> None:
        groups.append(items)
        await work.session.execute(text("SELECT 1"))

    together: GroupCommit[int] = GroupCommit(db, write, max_items=10)
    outcomes: list[Any] = await asyncio.gather(
        *(together.submit(item) for item in range(5)), return_exceptions=True
    )
    await db.dispose()
    assert all(isinstance(outcome, UNREACHABLE) for outcome in outcomes), outcomes
    assert sorted(item for group in groups for item in group) == list(range(5))  # once each
