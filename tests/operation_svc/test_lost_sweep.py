"""The lost sweep retries what is retry-safe; a retry refused now (rules tightened since the
execution ran) is noted on the lost execution and holds up no other one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from idp_common.db import Database, utcnow
from operation_svc.executions.sweeper import LostExecutionSweeper
from operation_svc.executions.worker_protocol import mark_lost
from operation_svc.models import Execution, OperationTemplate, TemplateVersion
from operation_svc.templates.definition import TemplateDefinition
from tests.clock import ManualClock
from tests.harness import free_port, migrated_database

PARAMETERS = [{"name": "replicas", "type": "integer"}]
UNREACHABLE_POSTGRES = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"


def retry_safe_template() -> tuple[OperationTemplate, TemplateVersion]:
    template = OperationTemplate(
        id=uuid.uuid4(),
        tenant="acme",
        slug="scale",
        name="scale",
        command_template="echo {{replicas}}",
        argv=["echo", "{{replicas}}"],
        parameters=PARAMETERS,
        timeout_seconds=10,
        retry_safe=True,
        created_by="admin",
        updated_by="admin",
    )
    definition = TemplateDefinition.of(template)
    return template, TemplateVersion(
        template_id=template.id, version=1, definition=definition.snapshot(), created_by="admin"
    )


def silent(
    template: OperationTemplate,
    parameters: dict[str, Any],
    long_ago: datetime | None = None,
) -> Execution:
    """Running on a worker that stopped heartbeating ``long_ago`` (a minute ago)."""
    long_ago = long_ago or utcnow() - timedelta(minutes=1)
    return Execution(
        id=uuid.uuid4(),
        tenant="acme",
        template_id=template.id,
        template_slug=template.slug,
        template_version=1,
        submitted_by="alice",
        parameters=parameters,
        argv=["echo", str(parameters["replicas"])],
        timeout_seconds=10,
        status="running",
        worker_id="gone",
        started_at=long_ago,
        heartbeat_at=long_ago,
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_refused_retry_holds_up_no_other_lost_execution(
    backend: str, tmp_path: Path
) -> None:
    async with migrated_database(backend, tmp_path, "operation") as db:
        template, version = retry_safe_template()
        # Stored before today's rules: "3 replicas" is no integer now.
        stale, fine = (
            silent(template, {"replicas": "3 replicas"}),
            silent(template, {"replicas": 2}),
        )
        async with db.transaction() as session:
            session.add_all([template, version])
            await session.flush()
            session.add_all([stale, fine])
        async with db.transaction() as session:
            assert await mark_lost(session, utcnow() - timedelta(seconds=10)) == 2
        async with db.snapshot() as session:
            rows = {row.id: row for row in await session.scalars(select(Execution))}
        assert (rows[stale.id].status, rows[fine.id].status) == ("lost", "lost")
        assert "not retried: The parameters are refused now" in (rows[stale.id].error or "")
        retries = [row for row in rows.values() if row.retry_of is not None]
        assert [(row.retry_of, row.attempt, row.status) for row in retries] == [
            (fine.id, 2, "pending")
        ]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_lost_run_whose_cancel_was_requested_is_not_retried(
    backend: str, tmp_path: Path
) -> None:
    """The cancel of a running run is carried by the heartbeat: when its worker died first,
    the cancel (a 202 to its requester) was forgotten and a retry-safe run was run again."""
    async with migrated_database(backend, tmp_path, "operation") as db:
        template, version = retry_safe_template()
        cancelled = silent(template, {"replicas": 2})
        cancelled.cancel_requested_at = utcnow() - timedelta(seconds=30)
        async with db.transaction() as session:
            session.add_all([template, version])
            await session.flush()
            session.add(cancelled)
        async with db.transaction() as session:
            assert await mark_lost(session, utcnow() - timedelta(seconds=10)) == 1
        async with db.snapshot() as session:
            rows = list(await session.scalars(select(Execution)))
        assert [(row.id, row.status) for row in rows] == [(cancelled.id, "lost")]
        assert "not retried: its cancel was requested" in (rows[0].error or "")


class SweptExecution:
    """One running, retry-safe execution, its last heartbeat ``beat_seconds_ago`` by the
    clock when it is added, and a sweeper (lost_after 3 s, a sweep a second) that has
    swept once before it, on a clock the test moves."""

    def __init__(self, db: Database, clock: ManualClock) -> None:
        self.db, self.clock = db, clock
        self.sweeper = LostExecutionSweeper(
            db, lost_after_seconds=3, interval_seconds=1, clock=clock
        )

    async def add(self, beat_seconds_ago: float = 0) -> None:
        template, version = retry_safe_template()
        beat = self.clock.now() - timedelta(seconds=beat_seconds_ago)
        self.execution = silent(template, {"replicas": 2}, beat)
        async with self.db.transaction() as session:
            session.add_all([template, version])
            await session.flush()
            session.add(self.execution)

    async def status_after_a_sweep(self) -> str:
        await self.sweeper.run_once()
        async with self.db.snapshot() as session:
            found = await session.get(Execution, self.execution.id)
            assert found is not None
            return found.status


@asynccontextmanager
async def swept(tmp_path: Path) -> AsyncIterator[SweptExecution]:
    async with migrated_database("sqlite", tmp_path, "operation") as db:
        sweeping = SweptExecution(db, ManualClock())
        await sweeping.sweeper.run_once()  # nothing to sweep; the sweeps' pace starts here
        yield sweeping


async def test_a_sweep_that_comes_late_moves_its_cut_off_back(tmp_path: Path) -> None:
    """Heartbeats queue behind a stall like any write: a sweep late by the stall does not
    hold the silence it caused against the executions."""
    async with swept(tmp_path) as sweeping:
        sweeping.clock.advance(10)  # a stall: the next sweep comes 9 s late
        await sweeping.add(beat_seconds_ago=5)  # queued behind the stall
        assert await sweeping.status_after_a_sweep() == "running"
        sweeping.clock.advance(1)  # the next sweep on time: 6 s of silence is lost_after and more
        assert await sweeping.status_after_a_sweep() == "lost"


async def test_a_wall_clock_stepped_forward_moves_the_cut_off_back(tmp_path: Path) -> None:
    """Heartbeats are stamped by the wall clock: stepped forward an hour, every heartbeat
    written before the step looked an hour old, and every running execution was lost."""
    async with swept(tmp_path) as sweeping:
        await sweeping.add()  # beating until the step
        sweeping.clock.advance(1)
        sweeping.clock.step(3600)
        assert await sweeping.status_after_a_sweep() == "running"
        sweeping.clock.advance(5)  # silent since, by the clock as it now reads
        assert await sweeping.status_after_a_sweep() == "lost"


async def test_a_wall_clock_step_is_allowed_for_until_lost_after_has_passed_since(
    tmp_path: Path,
) -> None:
    """Only the sweep right after a step moved its cut-off back: the next one, an interval
    later, found the heartbeat written before the step an hour old and declared lost an
    execution silent for two seconds of a three-second lost_after."""
    async with swept(tmp_path) as sweeping:
        await sweeping.add()  # beating until the step
        sweeping.clock.step(3600)
        sweeping.clock.advance(1)
        await sweeping.status_after_a_sweep()
        sweeping.clock.advance(1)
        assert await sweeping.status_after_a_sweep() == "running"
        sweeping.clock.advance(2)  # silent for 4 s, the step aside
        assert await sweeping.status_after_a_sweep() == "lost"


async def test_a_stall_before_the_first_sweep_moves_its_cut_off_back(tmp_path: Path) -> None:
    """A service that stalls right after its start (before its first sweep, lost_after
    later) does not hold the silence it caused against the executions either."""
    clock = ManualClock()
    async with migrated_database("sqlite", tmp_path, "operation") as db:
        sweeper = LostExecutionSweeper(db, lost_after_seconds=0.05, interval_seconds=1, clock=clock)
        template, version = retry_safe_template()
        just_after_the_start = clock.now() + timedelta(milliseconds=10)
        beating_until_the_stall = silent(template, {"replicas": 2}, just_after_the_start)
        async with db.transaction() as session:
            session.add_all([template, version])
            await session.flush()
            session.add(beating_until_the_stall)
        first_sweep = asyncio.create_task(sweeper.run(loops=1))
        await asyncio.sleep(0)  # started: its first sweep is due 0.05 s from now
        clock.advance(10)  # the stall
        await first_sweep
        async with db.snapshot() as session:
            found = await session.get(Execution, beating_until_the_stall.id)
        assert found is not None
        assert found.status == "running"


async def test_a_sweep_after_a_database_outage_moves_its_cut_off_back(tmp_path: Path) -> None:
    """Heartbeats cannot be recorded while the database is down, nor can sweeps be made:
    the first sweep after the outage does not hold that silence against the executions."""
    clock = ManualClock()
    async with migrated_database("sqlite", tmp_path, "operation") as db:
        sweeper = LostExecutionSweeper(db, lost_after_seconds=3, interval_seconds=1, clock=clock)
        await sweeper.run_once()
        template, version = retry_safe_template()
        beating_until_the_outage = silent(template, {"replicas": 2}, clock.now())
        async with db.transaction() as session:
            session.add_all([template, version])
            await session.flush()
            session.add(beating_until_the_outage)
        sweeper.db = Database(UNREACHABLE_POSTGRES)
        for _ in range(10):  # a sweep a second fails
            clock.advance(1)
            with pytest.raises(ConnectionRefusedError):
                await sweeper.run_once()
        await sweeper.db.dispose()
        sweeper.db = db
        clock.advance(1)
        await sweeper.run_once()
        async with db.snapshot() as session:
            found = await session.get(Execution, beating_until_the_outage.id)
        assert found is not None
        assert found.status == "running"
