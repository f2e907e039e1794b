"""The workers' side of executions: claims, heartbeats, the reports (log batches,
finishes) the broker would not take, and the executions whose worker went silent
(``lost``). Every query here is cross-tenant: a worker serves all tenants."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import record_audit
from idp_common.db import utcnow
from idp_common.errors import Conflict
from idp_common.events import ExecutionFinished, ExecutionLog
from operation_svc.executions.dispatch import release_slot
from operation_svc.executions.lifecycle import record_ended, tell_requesters
from operation_svc.executions.metrics import record_start
from operation_svc.executions.reports import record_finish, store_lines
from operation_svc.executions.repository import SystemExecutions
from operation_svc.executions.schemas import HeartbeatOut
from operation_svc.executions.service import next_attempt
from operation_svc.executions.state import transition
from operation_svc.models import AuditEntry, Execution
from operation_svc.templates.repository import TemplateCatalog

logger = logging.getLogger(__name__)
SYSTEM_ACTOR = "operation-svc"


async def claim(
    session: AsyncSession,
    execution_ids: list[uuid.UUID],
    worker_id: str,
    claim_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Atomically move the pending executions among ``execution_ids`` to running for
    ``worker_id`` and return their ids; exactly one claim of an execution ever succeeds, so a
    redelivered job never runs twice. A claim repeated with its ``claim_id`` (its answer was
    lost: the worker runs none of them) is also given what it took the first time, which no
    other claim, of this worker or another, is."""
    executions = SystemExecutions(session)
    claimed = await executions.claim(execution_ids, worker_id, claim_id, utcnow())
    for execution in claimed:
        tell_requesters(session, execution)
        record_start(session, execution)
        record_audit(
            session,
            AuditEntry,
            worker_id,
            "execution.start",
            execution.id,
            tenant=execution.tenant,
        )
    taken = [execution.id for execution in claimed]
    if claim_id is not None and (others := set(execution_ids) - set(taken)):
        taken += await executions.taken_by(list(others), worker_id, claim_id)
    return taken


async def heartbeat(
    session: AsyncSession, worker_id: str, execution_ids: list[uuid.UUID]
) -> HeartbeatOut:
    """Record that ``worker_id`` still holds these executions; answer which ones it must stop
    (cancel requested, or no longer running under this worker) and which have ended here
    (finished, or declared lost)."""
    if not execution_ids:
        return HeartbeatOut(stop=[], ended=[])
    still_held = await SystemExecutions(session).beat(worker_id, execution_ids, utcnow())
    ended = [execution_id for execution_id in execution_ids if execution_id not in still_held]
    cancelled = [execution_id for execution_id, at in still_held.items() if at is not None]
    return HeartbeatOut(stop=ended + cancelled, ended=ended)


async def store_log(session: AsyncSession, worker_id: str, batch: ExecutionLog) -> bool:
    """Store a log batch of a run ``worker_id`` holds, which it could not send through the
    broker; False when the execution is unknown or not that worker's."""
    execution, _ = await _held(session, batch.execution_id, worker_id)
    if execution is None:
        return False
    store_lines(session, execution, batch.lines)
    return True


async def finish(session: AsyncSession, finished: ExecutionFinished) -> bool:
    """Record the end of a run its worker holds, which it could not send through the
    broker; False when the execution is unknown, not that worker's, or already ended (its
    finish arrived both ways)."""
    execution, limit = await _held(session, finished.execution_id, finished.worker_id)
    if execution is None:
        return False
    store_lines(session, execution, finished.last_lines)
    if not record_finish(session, execution, finished):
        return False
    if limit is not None and execution.template_id is not None:
        await release_slot(session, execution.template_id)
    return True


async def _held(
    session: AsyncSession, execution_id: uuid.UUID, worker_id: str
) -> tuple[Execution | None, int | None]:
    """The execution with its template's concurrency limit, if ``worker_id`` holds it (or
    held it: it may have ended since)."""
    found = await SystemExecutions(session).with_limits([execution_id])
    execution, limit = found.get(execution_id, (None, None))
    if execution is None or execution.worker_id != worker_id:
        return None, None
    return execution, limit


async def mark_lost(session: AsyncSession, older_than: datetime) -> int:
    """Executions whose worker stopped heartbeating become ``lost``; a retry-safe template
    gets a new execution in their place."""
    executions = await SystemExecutions(session).silent_since(older_than)
    for execution in executions:
        transition(execution, "lost")
        execution.error = (
            f"no heartbeat from worker {execution.worker_id} since {execution.heartbeat_at}"
        )
        record_ended(session, execution)
        record_audit(
            session,
            AuditEntry,
            SYSTEM_ACTOR,
            "execution.lost",
            execution.id,
            tenant=execution.tenant,
            changes={"worker_id": execution.worker_id},
        )
        if not await _retried_when_safe(session, execution) and execution.template_id is not None:
            await release_slot(session, execution.template_id)
        tell_requesters(session, execution)  # with the reason a retry was refused, if one was
    return len(executions)


async def _retried_when_safe(session: AsyncSession, lost: Execution) -> bool:
    """Retry a lost execution of a retry-safe template; False when it is not retried. A
    retry refused now (rules tightened since it ran) is noted on the lost execution and
    holds up no other one of the sweep. Nor is one whose cancel was requested: its worker
    died before the heartbeat could tell it, and its requester was answered 202."""
    if lost.template_id is None:
        return False
    version = await TemplateCatalog(session).version(lost.template_id, lost.template_version)
    if version is None or not version.definition.get("retry_safe"):
        return False
    if lost.cancel_requested_at is not None:
        lost.error = f"{lost.error}; not retried: its cancel was requested"
        return False
    try:
        # Still its requester's run: they may cancel it, and may not approve it themselves.
        retry = await next_attempt(session, lost, lost.submitted_by)
    except Conflict as refused:
        logger.warning("lost execution %s not retried: %s", lost.id, refused.detail)
        lost.error = f"{lost.error}; not retried: {refused.detail}"
        return False
    record_audit(
        session,
        AuditEntry,
        SYSTEM_ACTOR,
        "execution.retry",
        retry.id,
        tenant=lost.tenant,
        changes={"retry_of": str(lost.id), "submitted_by": lost.submitted_by},
    )
    return True
