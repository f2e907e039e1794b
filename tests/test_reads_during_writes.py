"""Reads never queue behind writes: on SQLite a GET reads a snapshot instead of waiting for
the database's single write turn, which a long transaction may hold."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import text

from idp_common.db import Database
from tests.harness import LocalSQSServer, auth_headers, running_platform

ADMIN = auth_headers(roles=("admin",))


async def test_a_read_is_served_while_another_connection_holds_the_write_lock(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform("sqlite", tmp_path, sqs_server, with_worker=False) as platform:
        created = await platform.operation.post(
            "/api/v1/templates",
            json={"slug": "noop", "name": "noop", "command_template": "echo hi"},
            headers=ADMIN,
        )
        assert created.status_code == 201
        writer = Database(platform.database_urls["operation"])
        holding = asyncio.Event()

        async def hold_the_write_lock() -> None:
            async with writer.transaction() as session:  # BEGIN IMMEDIATE
                await session.execute(text("UPDATE operation_templates SET name = 'busy'"))
                holding.set()
                await asyncio.sleep(3)

        holder = asyncio.create_task(hold_the_write_lock())
        await holding.wait()
        started = time.monotonic()
        read = await platform.operation.get(
            f"/api/v1/templates/{created.json()['id']}", headers=ADMIN
        )
        waited = time.monotonic() - started
        assert read.status_code == 200
        assert read.json()["name"] == "noop"  # the last committed state
        assert waited < 1.0
        await holder
        await writer.dispose()
