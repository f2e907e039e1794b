from __future__ import annotations

import logging
import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.auth import Principal
from idp_common.db import insert_ignoring_conflicts, utcnow
from idp_common.errors import Conflict, NotFound
from idp_common.events import (
    ExecutionFinished,
    ExecutionLog,
    ExecutionRequested,
    SubmissionCreated,
    SubmissionUpdated,
)
from idp_common.messaging.envelope import Event, InvalidEvent
from idp_common.messaging.outbox import add_event
from idp_common.messaging.topology import OPERATION_JOBS, SUBMISSION_UPDATES
from operation_svc.executions.repository import ExecutionRepository
from operation_svc.executions.state import can_enter, transition
from operation_svc.models import Execution, messaging
from operation_svc.models import ExecutionLog as ExecutionLogRow
from operation_svc.rendering import Refusal, render_argv
from operation_svc.templates.repository import TemplateRepository

SOURCE = "urn:idp:operation-svc"
logger = logging.getLogger(__name__)


async def _tell_submission(session: AsyncSession, execution: Execution) -> None:
    if execution.submission_id is None:
        return
    update_data = SubmissionUpdated(
        submission_id=execution.submission_id,
        status=execution.status,
        execution_id=execution.id,
        exit_code=execution.exit_code,
        output=execution.output,
        error=execution.error,
    )
    event = update_data.to_event(
        source=SOURCE, tenant=execution.tenant, subject=str(execution.submission_id)
    )
    await add_event(session, messaging, SUBMISSION_UPDATES, event)


def _string_values(parameters: dict[str, object]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in parameters.items():
        if not isinstance(value, str):
            raise Refusal("type", f"{name!r} must be a string", name)
        values[name] = value
    return values


async def create_from_submission(session: AsyncSession, event: Event) -> None:
    """Turn a ``panel.submission.created`` event into an execution: pending and queued for a
    worker, or rejected with the reason; either way the submission is told."""
    submitted = SubmissionCreated.from_event(event)
    template = await TemplateRepository(session, event.tenant).get_by_slug(
        submitted.operation_template
    )
    execution = Execution(
        tenant=event.tenant,
        template_id=template.id if template else None,
        template_slug=submitted.operation_template,
        template_version=template.version if template else None,
        submission_id=submitted.submission_id,
        submitted_by=submitted.submitted_by,
        parameters=submitted.parameters,
        timeout_seconds=template.timeout_seconds if template else 0,
        status="pending",
    )
    try:
        if template is None:
            raise Refusal("unknown_template", f"no template {submitted.operation_template!r}")
        execution.argv = render_argv(template.argv, _string_values(submitted.parameters))
    except Refusal as refusal:
        transition(execution, "rejected")
        execution.error = str(refusal)
    session.add(execution)
    await session.flush()
    if execution.status == "pending":
        assert execution.argv is not None
        job = ExecutionRequested(
            execution_id=execution.id,
            template_slug=execution.template_slug,
            argv=execution.argv,
            env={},
            timeout_seconds=execution.timeout_seconds,
        )
        event = job.to_event(source=SOURCE, tenant=execution.tenant, subject=str(execution.id))
        await add_event(session, messaging, OPERATION_JOBS, event)
    await _tell_submission(session, execution)


async def claim(session: AsyncSession, execution_id: uuid.UUID, worker_id: str) -> Execution:
    """Atomically move a pending execution to running for ``worker_id``; exactly one claim
    of an execution ever succeeds, so a redelivered job never runs twice."""
    now = utcnow()
    result = await session.execute(
        update(Execution)
        .where(Execution.id == execution_id, Execution.status.in_(can_enter("running")))
        .values(
            status="running", worker_id=worker_id, started_at=now, heartbeat_at=now, updated_at=now
        )
        .execution_options(synchronize_session=False)
    )
    execution = await session.scalar(
        select(Execution)
        .where(Execution.id == execution_id)
        .execution_options(populate_existing=True)
    )
    if execution is None:
        raise NotFound(f"Execution {execution_id} not found.")
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"Execution {execution_id} is {execution.status}; it cannot be claimed.")
    await _tell_submission(session, execution)
    return execution


async def apply_worker_event(session: AsyncSession, event: Event) -> None:
    """Store log batches (deduplicated by seq) and apply the finish of an execution."""
    if event.type == ExecutionLog.event_type:
        batch = ExecutionLog.from_event(event)
        execution = await ExecutionRepository(session, event.tenant).get(batch.execution_id)
        if execution is None:
            logger.warning("logs for an unknown execution %s ignored", batch.execution_id)
            return
        rows = [{"execution_id": batch.execution_id, **line.model_dump()} for line in batch.lines]
        await insert_ignoring_conflicts(session, ExecutionLogRow.__table__, rows)  # type: ignore[arg-type]
    elif event.type == ExecutionFinished.event_type:
        finished = ExecutionFinished.from_event(event)
        execution = await ExecutionRepository(session, event.tenant).get(finished.execution_id)
        if execution is None:
            logger.warning("finish of an unknown execution %s ignored", finished.execution_id)
            return
        if not transition(execution, finished.status):
            return
        execution.exit_code = finished.exit_code
        execution.output = finished.output_excerpt
        execution.error = finished.error
        await _tell_submission(session, execution)
    else:
        raise InvalidEvent(f"unexpected event type {event.type!r} on execution-events")


async def get_execution(
    session: AsyncSession, principal: Principal, execution_id: uuid.UUID
) -> Execution:
    return await ExecutionRepository(session, principal.tenant).get_or_404(execution_id)
