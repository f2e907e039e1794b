"""Two operation-svc replicas, each served with its own engine, scheduler and consumers, on
one PostgreSQL database: every slot of a schedule fires once (the unique schedule and slot),
however often both reach it at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from idp_common.db import Database
from operation_svc.app import create_app as create_operation
from operation_svc.config import OperationSettings
from operation_svc.models import Execution, Schedule
from operation_svc.schedules.repository import ScheduleBoard
from operation_svc.schedules.scheduler import TAKEN
from tests.factories import ADMIN, template
from tests.harness import (
    AUTH,
    SEALING,
    LocalSQSServer,
    ServedApp,
    local_client,
    running_platform,
)

FAST: dict[str, Any] = {"schedule_min_interval_seconds": 1, "scheduler_poll_seconds": 0.05}
# Longer than a scheduler's pass, so the other replica's next pass finds a turn in flight.
TURN_HELD_SECONDS = 0.1


@pytest.mark.postgres
async def test_two_replicas_fire_each_slot_of_a_schedule_once(
    tmp_path: Path, sqs_server: LocalSQSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    take = ScheduleBoard.take

    async def take_and_hold(board: ScheduleBoard, schedule_id: uuid.UUID) -> Schedule | None:
        # Both replicas' passes run every 0.05 s at phases fixed when they started, so
        # their turns met only by chance (none in 15 s, at times): each turn now holds its
        # row past the other's next pass, which finds it held.
        schedule = await take(board, schedule_id)
        await asyncio.sleep(TURN_HELD_SECONDS)
        return schedule

    monkeypatch.setattr(ScheduleBoard, "take", take_and_hold)
    async with running_platform(
        "postgres", tmp_path, sqs_server, allowed_executables=["echo"], operation=FAST
    ) as platform:
        await template(platform, "hello", "echo hello", [])
        url = platform.database_urls["operation"]
        second = ServedApp(
            create_operation(
                OperationSettings(
                    environment="test",
                    database_url=url,
                    sqs=platform.sqs,
                    auth=AUTH,
                    sealing=SEALING,
                    allowed_executables=["echo"],
                    **FAST,
                )
            )
        )
        async with second, local_client(second.url) as replica:
            taken_before = TAKEN._value.get()
            created = await platform.operation.post(
                "/api/v1/schedules",
                json={"template": "hello", "interval_seconds": 1, "overlap_policy": "allow"},
                headers=ADMIN,
            )
            assert created.status_code == 201, created.text
            schedule_id = created.json()["id"]
            await asyncio.sleep(15)
            await replica.post(f"/api/v1/schedules/{schedule_id}/pause", headers=ADMIN)
            listed = await replica.get(
                f"/api/v1/schedules/{schedule_id}/runs", params={"limit": 200}, headers=ADMIN
            )
            taken = TAKEN._value.get() - taken_before
        runs = sorted(listed.json()["items"], key=lambda run: str(run["slot_at"]))
        slots = [datetime.fromisoformat(run["slot_at"]) for run in runs]
        assert len(runs) >= 12
        assert {run["outcome"] for run in runs} == {"fired"}
        assert all(b - a == timedelta(seconds=1) for a, b in pairwise(slots))  # none left out
        db = Database(url)
        try:
            async with db.snapshot() as session:
                per_slot = (
                    await session.execute(
                        select(Execution.scheduled_for, func.count())
                        .where(Execution.schedule_id == schedule_id)
                        .group_by(Execution.scheduled_for)
                    )
                ).all()
        finally:
            await db.dispose()
        assert sorted(slot for slot, _ in per_slot) == slots
        assert {count for _, count in per_slot} == {1}
        assert taken > 0, "the replicas never raced for a slot: nothing was proven"


@pytest.mark.postgres
async def test_a_pause_waits_for_a_turn_in_flight_and_a_busy_schedule_is_left_to_its_turn(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """A turn holds its schedule's row: a pause sent meanwhile returns only once that turn
    has committed (so nothing fires after a pause returns), and a replica that finds the row
    held leaves the schedule to the turn that holds it."""
    async with running_platform(
        "postgres", tmp_path, sqs_server, allowed_executables=["echo"], operation=FAST
    ) as platform:
        await template(platform, "hello", "echo hello", [])
        created = await platform.operation.post(
            "/api/v1/schedules",
            json={"template": "hello", "interval_seconds": 1, "overlap_policy": "allow"},
            headers=ADMIN,
        )
        schedule_id = created.json()["id"]
        db = Database(platform.database_urls["operation"])
        try:
            async with db.transaction() as turn:  # another replica's turn, in flight
                await turn.execute(
                    select(Schedule.id).where(Schedule.id == schedule_id).with_for_update()
                )
                taken_before = TAKEN._value.get()
                pause = asyncio.ensure_future(
                    platform.operation.post(f"/api/v1/schedules/{schedule_id}/pause", headers=ADMIN)
                )
                await asyncio.sleep(1.5)  # this replica's scheduler polls every 0.05 s
                assert not pause.done(), "the pause returned while a turn was in flight"
                assert TAKEN._value.get() > taken_before  # it left the held schedule alone
            paused = await pause
        finally:
            await db.dispose()
        assert paused.status_code == 200, paused.text
        assert paused.json()["is_paused"] is True
