"""One replica leads at a time on PostgreSQL; on SQLite the one process always leads."""

from __future__ import annotations

from pathlib import Path

import pytest

from idp_common.db import Database
from idp_common.leadership import Leadership
from tests.harness import fresh_database


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_one_replica_leads_until_it_lets_go(backend: str, tmp_path: Path) -> None:
    async with fresh_database(backend, tmp_path, "leadership") as url:
        first, second = Database(url), Database(url)  # two replicas
        try:
            one, other = Leadership(first, "monitor"), Leadership(second, "monitor")
            assert await one.held()
            assert await one.held()  # still, on its own connection
            expected = backend == "sqlite"  # SQLite: one process per file, it leads
            assert await other.held() is expected
            await one.release()
            assert await other.held()
            another = Leadership(second, "another job")
            assert await another.held()
            for leadership in (other, another):
                await leadership.release()
        finally:
            await first.dispose()
            await second.dispose()
