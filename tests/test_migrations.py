"""Each service's Alembic revisions build exactly the schema its models describe, on
PostgreSQL and on SQLite, and downgrade cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect, select
from sqlalchemy.ext.asyncio import create_async_engine

from datasource_svc.models import Base as DatasourceBase
from idp_common.db import Database
from idp_common.migrations import alembic_config
from operation_svc.models import Base as OperationBase
from operation_svc.models import Schedule
from panel_svc.models import Base as PanelBase
from tests.harness import MIGRATIONS, fresh_database, migrate
from tests.operation_svc.schedule_rows import panel_schedule

METADATA = {
    "panel": PanelBase.metadata,
    "operation": OperationBase.metadata,
    "datasource": DatasourceBase.metadata,
}


async def differences_and_tables(url: str, metadata: MetaData) -> tuple[list[object], set[str]]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
        )
        tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    return diff, tables


@pytest.mark.parametrize("service", sorted(METADATA))
async def test_migrations_match_the_models_and_downgrade(
    service: str, backend: str, tmp_path: Path
) -> None:
    async with fresh_database(backend, tmp_path, service) as url:
        await migrate(url, service)
        diff, tables = await differences_and_tables(url, METADATA[service])
        assert diff == []
        assert set(METADATA[service].tables) <= tables
        await asyncio.to_thread(command.downgrade, alembic_config(url, MIGRATIONS[service]), "base")
        _, tables = await differences_and_tables(url, METADATA[service])
        assert tables == {"alembic_version"}


async def test_schedules_saved_with_a_random_cron_are_paused_saying_why(
    backend: str, tmp_path: Path
) -> None:
    """croniter's R drew another time at each reading (each replica, each next slot): such a
    cron is refused when saved now, and those saved before are paused until it is written."""
    async with fresh_database(backend, tmp_path, "operation") as url:
        config = alembic_config(url, MIGRATIONS["operation"])
        await asyncio.to_thread(command.upgrade, config, "0011")
        db = Database(url)
        schedules = {
            cron: panel_schedule(cron=cron) for cron in ("R * * * *", "0 R(0-5) * * *", "5 * * * *")
        }
        async with db.transaction() as session:
            session.add_all(schedules.values())
        await asyncio.to_thread(command.upgrade, config, "head")
        async with db.snapshot() as session:
            paused = {
                row.cron: (row.is_paused, row.paused_reason)
                for row in await session.scalars(select(Schedule))
            }
        await db.dispose()
    assert paused["5 * * * *"] == (False, None)
    for cron in ("R * * * *", "0 R(0-5) * * *"):
        is_paused, reason = paused[cron]
        assert is_paused is True
        assert "random time (R)" in str(reason)
