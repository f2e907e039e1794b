from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from idp_common.auth import ServiceCaller, Viewer
from idp_common.dependencies import SessionDep
from operation_svc.executions import service
from operation_svc.executions.repository import ExecutionRepository
from operation_svc.executions.schemas import ClaimIn, ClaimOut, ExecutionOut, LogLineOut, LogPage

router = APIRouter(prefix="/api/v1/executions", tags=["executions"])


@router.get("/{execution_id}")
async def get_execution(
    execution_id: uuid.UUID, session: SessionDep, principal: Viewer
) -> ExecutionOut:
    """An execution: status, rendered argv, exit code, output excerpt and timestamps."""
    return ExecutionOut.model_validate(
        await service.get_execution(session, principal, execution_id)
    )


@router.get("/{execution_id}/logs")
async def get_logs(
    execution_id: uuid.UUID,
    session: SessionDep,
    principal: Viewer,
    after_seq: Annotated[int, Query(ge=-1)] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> LogPage:
    """Log lines in order, after ``after_seq``."""
    await service.get_execution(session, principal, execution_id)
    lines = await ExecutionRepository(session, principal.tenant).logs_after(
        execution_id, after_seq, limit
    )
    return LogPage(
        items=[LogLineOut.model_validate(line) for line in lines],
        next_after_seq=lines[-1].seq if len(lines) == limit else None,
    )


@router.post("/{execution_id}/claim")
async def claim_execution(
    execution_id: uuid.UUID, body: ClaimIn, session: SessionDep, _caller: ServiceCaller
) -> ClaimOut:
    """Used by executor workers: claim a pending execution before running it (409 if it
    is already claimed or finished)."""
    execution = await service.claim(session, execution_id, body.worker_id)
    return ClaimOut(
        execution_id=execution.id, status=execution.status, worker_id=execution.worker_id
    )
