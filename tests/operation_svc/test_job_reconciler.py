"""The job reconciler sends again the jobs no worker claimed for redispatch_after, as many
as the jobs queue lacks messages for: under a backlog, waiting is no sign of loss."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from idp_common.messaging.envelope import encode_event
from idp_common.messaging.sqs import open_queues
from idp_common.messaging.topology import OPERATION_JOBS
from operation_svc.executions.dispatch import job_for
from operation_svc.executions.reconciler import JobReconciler
from operation_svc.models import Execution, OperationTemplate, messaging
from tests.clock import ManualClock
from tests.harness import LocalSQSServer, migrated_database, sqs_settings

BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgres"])


def a_template() -> OperationTemplate:
    return OperationTemplate(
        id=uuid.uuid4(),
        tenant="acme",
        slug="t",
        name="t",
        argv=["true"],
        parameters=[],
        created_by="a",
        updated_by="a",
    )


def an_execution(
    template: OperationTemplate,
    clock: ManualClock,
    status: str,
    dispatched_seconds_ago: float | None,
) -> Execution:
    dispatched = None
    if dispatched_seconds_ago is not None:
        dispatched = clock.now() - timedelta(seconds=dispatched_seconds_ago)
    return Execution(
        id=uuid.uuid4(),
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


async def resent_jobs(db: Any) -> list[str]:
    async with db.snapshot() as session:
        bodies = await session.scalars(select(messaging.outbox.c.body))
        return [json.loads(body)["data"]["execution_id"] for body in bodies]


@BACKENDS
async def test_unclaimed_jobs_are_sent_again(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    clock = ManualClock()
    template = a_template()

    def execution(status: str, dispatched_seconds_ago: float | None) -> Execution:
        return an_execution(template, clock, status, dispatched_seconds_ago)

    async with (
        migrated_database(backend, tmp_path, "operation") as db,
        open_queues(sqs_settings(sqs_server)) as queues,
    ):
        await queues.ensure_queues()
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
        reconciler = JobReconciler(db, queues, resend_after_seconds=60, clock=clock)
        await reconciler.run_once()
        await reconciler.run_once()  # dispatched again now: not again before redispatch_after
        async with db.snapshot() as session:
            redispatched = await session.get(Execution, lost_job.id)
        assert await resent_jobs(db) == [str(lost_job.id)]
        assert redispatched is not None
        assert redispatched.dispatched_at is not None
        assert redispatched.dispatched_at > clock.now() - timedelta(seconds=1)


@BACKENDS
async def test_jobs_waiting_behind_a_backlog_are_not_sent_again_only_those_lost(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """Four jobs waited past redispatch_after behind busy workers, their messages in the
    queue, a fifth's lost: one pass sends that one again, the oldest waiting, not all five."""
    clock = ManualClock()
    template = a_template()
    waiting = [an_execution(template, clock, "pending", 300 - second) for second in range(5)]
    async with (
        migrated_database(backend, tmp_path, "operation") as db,
        open_queues(sqs_settings(sqs_server)) as queues,
    ):
        await queues.ensure_queues()
        async with db.transaction() as session:
            session.add(template)
            await session.flush()
            session.add_all(waiting)
        url = await queues.url(OPERATION_JOBS.name)
        for execution in waiting[1:]:
            job = job_for(execution, [])
            await queues.wire.send_message_batch(
                QueueUrl=url, Entries=[{"Id": "0", "MessageBody": encode_event(job)}]
            )
        reconciler = JobReconciler(db, queues, resend_after_seconds=60, clock=clock)
        await reconciler.run_once()
        assert await resent_jobs(db) == [str(waiting[0].id)]
