"""Reads never queue behind writes: on SQLite a GET reads a snapshot instead of waiting for
the database's single write turn, which a long transaction may hold."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import (
    LocalSQSServer,
    Platform,
    auth_headers,
    running_platform,
    write_lock_held,
)

ADMIN = auth_headers(roles=("admin",))


@pytest.fixture
async def platform(tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    """No worker, and one template, ``noop``."""
    async with running_platform("sqlite", tmp_path, sqs_server, with_worker=False) as running:
        created = await running.operation.post(
            "/api/v1/templates",
            json={"slug": "noop", "name": "noop", "command_template": "echo hi"},
            headers=ADMIN,
        )
        assert created.status_code == 201
        yield running


async def test_a_read_is_served_while_another_connection_holds_the_write_lock(
    platform: Platform,
) -> None:
    async with write_lock_held(platform):
        started = time.monotonic()
        read = await platform.operation.get("/api/v1/templates", headers=ADMIN)
        waited = time.monotonic() - started
    assert read.status_code == 200
    assert read.json()["items"][0]["name"] == "noop"  # the last committed state
    assert waited < 1.0


async def test_a_live_log_stream_is_served_while_another_connection_holds_the_write_lock(
    platform: Platform,
) -> None:
    """The stream polls the database every 0.2 s: on the write turn, every watcher of a log
    would queue behind each write, and slow down every writer."""
    started = await platform.operation.post(
        "/api/v1/executions", json={"template": "noop"}, headers=ADMIN
    )
    execution_id = started.json()["id"]
    cancelled = await platform.operation.post(
        f"/api/v1/executions/{execution_id}/cancel", headers=ADMIN
    )
    assert cancelled.json()["status"] == "cancelled"
    async with write_lock_held(platform):
        began = time.monotonic()
        stream = await platform.operation.get(
            f"/api/v1/executions/{execution_id}/logs/stream", headers=ADMIN
        )
        waited = time.monotonic() - began
    assert stream.status_code == 200
    assert "event: end" in stream.text
    assert waited < 1.0
