"""The job reconciler sends again the jobs no worker claimed for redispatch_after."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from operation_svc.executions.reconciler import JobReconciler
from operation_svc.models import Execution, OperationTemplate, messaging
from tests.clock import ManualClock
from tests.harness import migrated_database


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_unclaimed_jobs_are_sent_again(backend: str, tmp_path: Path) -> None:
    clock = ManualClock()
    template = OperationTemplate(
        id=uuid.uuid4(),
        tenant="acme",
        slug="t",
        name="t",
        argv=["true"],
        parameters=[],
        created_by="a",
        updated_by="a",
    )

    def execution(status: str, dispatched_seconds_ago: float | None) -> Execution:
        dispatched = None
        if dispatched_seconds_ago is not None:
            dispatched = clock.now() - timedelta(seconds=dispatched_seconds_ago)
        return Execution(
            tenant="acme",
            template_id=template.id,
            template_slug="t",
            submitted_by="bob",
            parameters={},
            argv=["true"],
            timeout_seconds=10,
            status=status,
            dispatched_at=dispatched,
        )

    async with migrated_database(backend, tmp_path, "operation") as db:
        lost_job, recent, waiting_slot, running = (
            execution("pending", 120),
            execution("pending", 5),
            execution("pending", None),
            execution("running", 120),
        )
        async with db.transaction() as session:
            session.add(template)
            await session.flush()
            session.add_all([lost_job, recent, waiting_slot, running])
        reconciler = JobReconciler(db, resend_after_seconds=60, clock=clock)
        await reconciler.run_once()
        await reconciler.run_once()  # dispatched again now: not again before redispatch_after
        async with db.snapshot() as session:
            jobs = [
                json.loads(body) for body in await session.scalars(select(messaging.outbox.c.body))
            ]
            redispatched = await session.get(Execution, lost_job.id)
        assert [job["data"]["execution_id"] for job in jobs] == [str(lost_job.id)]
        assert redispatched is not None
        assert redispatched.dispatched_at is not None
        assert redispatched.dispatched_at > clock.now() - timedelta(seconds=1)
